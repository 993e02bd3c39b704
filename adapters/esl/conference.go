package esl

// ConferenceCall on FreeSWITCH: the extension's two calls and their far
// parties meet in a conference room (mod_conference) that the bridge
// names per call. Every party keeps its channel, so each connection and
// its csta_id stay what they were. While the room lives:
//
//   - the extension leaving (Transfer of its two conferenced connections,
//     a Snom's transfer on hang-up) bridges the two far parties out of the
//     room (uuid_bridge) and releases the extension's two channels;
//   - one of the four channels ending (a far party hangs up, the phone
//     hangs up one of its calls, ClearConnection of one connection) ends
//     the other channel of that call too, and the remaining call leaves the
//     room as an ordinary two-party call (uuid_bridge of its two channels),
//     so hold, transfer and hang-up work on it as on any call;
//   - the room empties with its last member and FreeSWITCH destroys it.

import (
	"context"
	"fmt"
	"sync"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

var _ pbx.Conferencer = (*Adapter)(nil)

// confProfile is the mod_conference profile of the rooms (the vanilla
// configuration's "default").
const confProfile = "default"

// confTable holds the conferences of this adapter by the extension's
// channel uuids.
type confTable struct {
	mu    sync.Mutex
	byLeg map[string]*conference
}

// conference is one room: calls[i] is the extension's channel of call i
// and its far party.
type conference struct {
	room  string
	calls [2]confCall
	done  chan struct{} // closed when the room is no longer the bridge's business

	mu      sync.Mutex // serialises the changes (monitor and commands)
	leaving bool       // the extension leaves (Transfer): its channels' ends are expected
	over    bool
}

type confCall struct {
	leg, far string
	ended    bool
}

func (t *confTable) add(c *conference) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byLeg == nil {
		t.byLeg = map[string]*conference{}
	}
	for _, cc := range c.calls {
		t.byLeg[cc.leg] = c
	}
}

func (t *confTable) of(leg string) *conference {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byLeg[leg]
}

// finish forgets c; c.mu is held.
func (t *confTable) finish(c *conference) {
	if c.over {
		return
	}
	c.over = true
	close(c.done)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, cc := range c.calls {
		if t.byLeg[cc.leg] == c {
			delete(t.byLeg, cc.leg)
		}
	}
}

// Conference joins the extension's held and active calls in a room.
func (a *Adapter) Conference(ctx context.Context, held, active pbx.CallRef) error {
	s, err := a.session()
	if err != nil {
		return err
	}
	h, err := a.state.lookup(held)
	if err != nil {
		return fmt.Errorf("esl: conference %s: %w", held, err)
	}
	ac, err := a.state.lookup(active)
	if err != nil {
		return fmt.Errorf("esl: conference %s: %w", active, err)
	}
	switch {
	case h.uuid == ac.uuid:
		return fmt.Errorf("esl: conference %s and %s: the same call: %w", held, active, pbx.ErrInvalidState)
	case !h.connected || !ac.connected || h.other == "" || ac.other == "":
		return fmt.Errorf("esl: conference %s and %s: both calls must be connected: %w", held, active, pbx.ErrInvalidState)
	case ac.held:
		return fmt.Errorf("esl: conference %s and %s: the active call is held: %w", held, active, pbx.ErrInvalidState)
	case a.confs.of(h.uuid) != nil || a.confs.of(ac.uuid) != nil:
		return fmt.Errorf("esl: conference %s and %s: already in a conference: %w", held, active, pbx.ErrInvalidState)
	}
	// The phone shows both calls connected once conferenced (a Snom
	// reports the held one's unhold); its held call is taken back first,
	// which also stops the hold music of its far party.
	if h.held {
		if err := a.holdOrRetrieve(ctx, held, false); err != nil {
			return fmt.Errorf("esl: conference %s and %s: %w", held, active, err)
		}
	}
	c := &conference{room: "csta-" + newUUID(), done: make(chan struct{}),
		calls: [2]confCall{{leg: h.uuid, far: h.other}, {leg: ac.uuid, far: ac.other}}}
	// Every end counts from here on: a party that hangs up while the
	// others are moved in is handled like one that hangs up later.
	ws := make([]*waiter, 0, 4)
	for _, cc := range c.calls {
		ws = append(ws, a.state.watch(cc.leg, sigHangup), a.state.watch(cc.far, sigHangup))
	}
	// Only the a-leg of a bridge reports its CHANNEL_UNBRIDGE, and not
	// always naming its partner: either channel of a call will do.
	var unbridged [2]chan signal
	for i, cc := range c.calls {
		unbridged[i] = make(chan signal, 8)
		for _, w := range a.state.watchShared(unbridged[i], []string{cc.leg, cc.far}, sigUnbridged, sigGone) {
			defer a.state.unwatch(w)
		}
	}
	a.confs.add(c)
	left := make(chan string, len(ws))
	for _, w := range ws {
		go func() {
			select {
			case <-w.ch:
				left <- w.uuid
			case <-c.done:
			case <-s.ctx.Done():
			}
		}()
	}
	go a.runConference(s, c, ws, left)

	// -both moves the channel and its bridge partner; each call's two
	// channels leave their bridge together, so neither is hung up for
	// losing its partner.
	target := " -both conference:" + c.room + "@" + confProfile + " inline"
	for i, cc := range c.calls {
		if _, err := s.api(ctx, "uuid_transfer", cc.leg+target); err != nil {
			if i == 0 {
				c.mu.Lock()
				a.confs.finish(c)
				c.mu.Unlock()
			} else {
				// The first call is in the room already: it goes back to
				// being a two-party call, the second is untouched.
				a.confLeft(context.WithoutCancel(ctx), s, c, c.calls[1].leg, false)
			}
			return fmt.Errorf("esl: conference %s and %s: %w", held, active, err)
		}
	}
	// Both calls have left their bridges once FreeSWITCH reports it; a
	// command sent the moment this returns finds them in the room.
	for i, ch := range unbridged {
		if sig, err := wait(ctx, &waiter{ch: ch}, a.opts.ConfirmTimeout); err != nil {
			return fmt.Errorf("esl: conference %s and %s: %w", held, active, err)
		} else if sig == 0 {
			a.log.Warn("no unbridge event after moving a call into the conference", "uuid", c.calls[i].leg, "room", c.room)
		}
	}
	return nil
}

// watchShared registers interest in signals of several channels, all
// delivered on ch (which should have room for one of each).
func (s *callState) watchShared(ch chan signal, uuids []string, sigs ...signal) []*waiter {
	ws := make([]*waiter, 0, len(uuids))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uuids {
		w := &waiter{uuid: u, sigs: sigs, ch: ch}
		s.waiters[u] = append(s.waiters[u], w)
		ws = append(ws, w)
	}
	return ws
}

// runConference reacts to the ends of the room's channels until the
// room is no longer the bridge's business or the session ends (after a
// reconnect FreeSWITCH keeps the room; it empties as its parties hang up).
func (a *Adapter) runConference(s *session, c *conference, ws []*waiter, left <-chan string) {
	defer func() {
		for _, w := range ws {
			a.state.unwatch(w)
		}
	}()
	for {
		select {
		case u := <-left:
			a.confLeft(s.ctx, s, c, u, false)
		case <-c.done:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// confLeft handles channel uuid of the room ending, or being asked to end
// (drop: ClearConnection of the extension's channel uuid drops its far
// party): the other channel of that call is hung up, and the remaining
// call, if any, leaves the room as a two-party call. It returns once that
// call is bridged again.
func (a *Adapter) confLeft(ctx context.Context, s *session, c *conference, uuid string, drop bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over || c.leaving {
		return nil
	}
	i := -1
	for k, cc := range c.calls {
		if cc.leg == uuid || cc.far == uuid {
			i = k
		}
	}
	if i < 0 || c.calls[i].ended {
		return nil
	}
	c.calls[i].ended = true
	gone := c.calls[i]
	kill := []string{gone.leg, gone.far}
	if !drop {
		// uuid itself is ending already.
		kill = []string{gone.far}
		if uuid == gone.far {
			kill = []string{gone.leg}
		}
	}
	for _, u := range kill {
		if _, err := s.api(ctx, "uuid_kill", u); err != nil && !isNoSuchCall(err) {
			a.log.Warn("cannot end a call that left the conference", "uuid", u, "room", c.room, "err", err)
		}
	}
	rest := c.calls[1-i]
	a.confs.finish(c)
	if rest.ended {
		return nil
	}
	w := a.state.watch(rest.leg, sigBridged, sigGone)
	defer a.state.unwatch(w)
	if _, err := s.api(ctx, "uuid_bridge", rest.far+" "+rest.leg); err != nil {
		if isNoSuchCall(err) {
			return nil // it is ending too
		}
		a.log.Warn("cannot take the last call out of the conference", "room", c.room, "err", err)
		return err
	}
	if sig, err := wait(ctx, w, a.opts.CommandTimeout); err == nil && sig == 0 {
		a.log.Warn("no bridge event after taking the last call out of the conference", "room", c.room, "uuid", rest.leg)
	}
	return nil
}

// conferenced returns the conference of the extension's channel leg, if any.
func (a *Adapter) conferenced(leg string) *conference {
	return a.confs.of(leg)
}

// confLeave prepares Transfer of the extension's two conferenced channels
// (the extension leaves): it returns the far parties to bridge, and from
// then on the ends of the extension's channels are expected. ok is false
// when the two are not the two calls of one conference.
func (a *Adapter) confLeave(held, active string) (heldFar, activeFar string, ok bool) {
	c := a.confs.of(held)
	if c == nil || a.confs.of(active) != c {
		return "", "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over || c.calls[0].ended || c.calls[1].ended {
		return "", "", false
	}
	c.leaving = true
	a.confs.finish(c)
	far := map[string]string{c.calls[0].leg: c.calls[0].far, c.calls[1].leg: c.calls[1].far}
	return far[held], far[active], true
}

// confClear is ClearConnection of a conferenced connection: its far party
// is dropped with it and the extension talks on with the other.
func (a *Adapter) confClear(ctx context.Context, s *session, c *conference, leg string) error {
	return a.confLeft(ctx, s, c, leg, true)
}
