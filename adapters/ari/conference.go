package ari

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

var _ pbx.Conferencer = (*Adapter)(nil)

// A conference joins two owned calls of one extension in one mixing bridge:
// the active call's bridge, which the held call's far party and the held
// call's device channel join. Each call stays a call of its own (its device
// channel and its far party, its connection, its two-party rule: when one
// of the two goes, the other is hung up), so that every connection keeps
// its channel and its meaning: clearing one drops that far party only, a
// far party that hangs up ends its connection only, and Transfer of the two
// moves both far parties into a new bridge of their own, like any attended
// transfer.
//
// The device has two channels in the bridge (one dialog per call), but a
// phone talks on one: the held call's device channel is muted both ways
// (POST /channels/{id}/mute?direction=both), so the phone neither hears
// itself through its second dialog nor is heard twice. When the call with
// the speaking device channel ends, the other call is a plain call again
// and its device channel is unmuted.
type conference struct {
	bridge string
	calls  map[*call]bool
}

// Conference joins the extension's held call (held by the bridge) and its
// active one (connected, or an outgoing call still ringing) into one
// three-party call.
func (a *Adapter) Conference(ctx context.Context, held, active pbx.CallRef) error {
	const op = "conference"
	if held.Ext != active.Ext || held.ID == active.ID {
		return fmt.Errorf("ari: %s %s, %s: %w: needs two different calls of one extension", op, held, active, pbx.ErrInvalidState)
	}
	a.mu.Lock()
	ls, release, err := a.claimLegs(op,
		claimReq{call: held, states: []pbx.State{pbx.StateHeld}},
		claimReq{call: active, states: []pbx.State{pbx.StateConnected, pbx.StateInitiated}})
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer release()
	p, err := a.conferencePlan(op, ls[0], ls[1])
	a.mu.Unlock()
	if err != nil {
		return err
	}

	// Each step's undo, run in reverse order when a later step fails. A
	// step Asterisk did not answer may have been carried out: its own undo
	// runs too.
	var undos []func(context.Context) error
	step := func(do, undo func(x ari.Client) error) error {
		err := a.rest(ctx, do)
		if err == nil || mayHaveRun(err) {
			undos = append(undos, func(ctx context.Context) error { return a.rest(ctx, undo) })
		}
		return err
	}
	steps := []struct{ do, undo func(x ari.Client) error }{
		{ // the held call's device channel stays silent in the mix
			func(x ari.Client) error { return x.Channel().Mute(chanKey(p.dev), ari.DirectionBoth) },
			func(x ari.Client) error { return x.Channel().Unmute(chanKey(p.dev), ari.DirectionBoth) },
		},
		{ // adding it takes it out of its call's bridge
			func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(p.bridge), p.dev) },
			func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(p.oldBridge), p.dev) },
		},
		{ // Asterisk 22 keeps music on hold playing when a channel joins a bridge
			func(x ari.Client) error { return x.Channel().StopMOH(chanKey(p.far)) },
			func(x ari.Client) error { return x.Channel().MOH(chanKey(p.far), a.opts.MOHClass) },
		},
		{
			func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(p.bridge), p.far) },
			func(x ari.Client) error {
				err := x.Bridge().RemoveChannel(bridgeKey(p.bridge), p.far)
				if httpStatus(err) == http.StatusUnprocessableEntity { // never joined
					return nil
				}
				return err
			},
		},
	}
	for _, s := range steps {
		if err := step(s.do, s.undo); err != nil {
			return a.conferenceFailed(ctx, op, p, undos, err)
		}
	}

	a.mu.Lock()
	if !a.live(p.lh) || !a.live(p.la) || a.ended.has(p.far) || p.ch.destroyed || p.ca.destroyed {
		a.mu.Unlock()
		return a.conferenceFailed(ctx, op, p, undos, nil)
	}
	conf := p.ca.conf
	if conf == nil {
		conf = &conference{bridge: p.bridge, calls: map[*call]bool{p.ca: true}}
		p.ca.conf = conf
	}
	conf.calls[p.ch] = true
	p.ch.conf = conf
	p.ch.bridge = p.bridge
	if dch := a.chans[p.dev]; dch != nil {
		dch.muted = true
	}
	p.lh.state = pbx.StateConnected
	p.lh.heldBy = false
	a.emit(pbx.Event{Kind: pbx.EventRetrieved, Call: p.lh.ref, CSTAID: p.lh.cstaID})
	a.mu.Unlock()

	// The held call's bridge is empty now.
	if err := a.rest(context.WithoutCancel(ctx), func(x ari.Client) error { return x.Bridge().Delete(bridgeKey(p.oldBridge)) }); err != nil && httpStatus(err) != http.StatusNotFound {
		a.log.Warn("conference done but the held call's old bridge could not be deleted", "bridge", p.oldBridge, "err", err)
	}
	return nil
}

// conferencePlan is what Conference works on: the held call's device
// channel and far party, the bridge they leave and the one they join.
type conferencePlan struct {
	lh, la    *leg
	ch, ca    *call  // the held call, the active call
	dev, far  string // the held call's device channel and far party
	bridge    string // the active call's bridge: the conference's
	oldBridge string // the held call's bridge
}

// conferencePlan checks that the two claimed legs can be joined. Called
// with a.mu held.
func (a *Adapter) conferencePlan(op string, lh, la *leg) (conferencePlan, error) {
	p := conferencePlan{lh: lh, la: la}
	if !lh.heldBy {
		return p, fmt.Errorf("ari: %s %s: %w: the phone put this call on hold itself; only the phone can take it back", op, lh.ref, pbx.ErrNotSupported)
	}
	far, ok := a.farOf(lh)
	if !ok {
		return p, errNotOwned(op, lh.ref)
	}
	if _, ok := a.farOf(la); !ok {
		return p, errNotOwned(op, la.ref)
	}
	p.ch, p.ca = lh.call, la.call
	if p.ch == p.ca {
		return p, fmt.Errorf("ari: %s %s, %s: %w: connections of the same call", op, lh.ref, la.ref, pbx.ErrInvalidState)
	}
	if p.ch.conf != nil || p.ca.conf != nil {
		return p, fmt.Errorf("ari: %s %s, %s: %w: a call already in a conference joins no other", op, lh.ref, la.ref, pbx.ErrNotSupported)
	}
	if p.ch.bridge == "" || p.ca.bridge == "" {
		return p, fmt.Errorf("ari: %s %s, %s: %w: the call has no bridge yet", op, lh.ref, la.ref, pbx.ErrInvalidState)
	}
	p.dev, p.far = lh.ch.id, far
	p.bridge, p.oldBridge = p.ca.bridge, p.ch.bridge
	return p, nil
}

// conferenceFailed undoes the steps of a conference that could not be
// finished (undos, the last step's first), so the held call is what it is
// still reported as: its device channel in its own bridge and heard, its far
// party outside any bridge on music on hold. An undo that fails because a
// party or a bridge is gone needs none: that call is ending, and its
// hang-up is reported from its events. err is the failed request, nil when
// a call ended while the steps ran.
func (a *Adapter) conferenceFailed(ctx context.Context, op string, p conferencePlan, undos []func(context.Context) error, err error) error {
	ctx = context.WithoutCancel(ctx)
	var uerrs []error
	for i := len(undos) - 1; i >= 0; i-- {
		if uerr := undos[i](ctx); uerr != nil && !partyGone(uerr) {
			uerrs = append(uerrs, uerr)
		}
	}
	if len(uerrs) > 0 {
		a.log.Warn("conference failed and the held call could not be put back as it was", "held", p.lh.ref.String(), "active", p.la.ref.String(), "err", errors.Join(uerrs...))
	}
	a.mu.Lock()
	var side pbx.CallRef
	switch {
	case !a.live(p.lh) || a.ended.has(p.far) || p.ch.destroyed:
		side = p.lh.ref
	case !a.live(p.la) || p.ca.destroyed:
		side = p.la.ref
	}
	a.mu.Unlock()
	switch {
	case side != (pbx.CallRef{}) && err != nil:
		return fmt.Errorf("%w (asterisk: %v)", errEnded(op, side), err)
	case side != (pbx.CallRef{}):
		return errEnded(op, side)
	}
	return wrap(op, p.lh.ref, err)
}

// leaveConference takes call c, which is ending, out of its conference. It
// says whether the conference's bridge lives on with another call (and must
// not be deleted with c). The call left alone is a plain call again: if
// its device channel is the muted one, it is heard again. Called with a.mu
// held.
func (a *Adapter) leaveConference(c *call) bool {
	conf := c.conf
	if conf == nil {
		return false
	}
	c.conf = nil
	delete(conf.calls, c)
	if len(conf.calls) == 0 {
		return false
	}
	c.bridge = ""
	if len(conf.calls) > 1 {
		return true
	}
	for rest := range conf.calls {
		rest.conf = nil
		for m := range rest.members {
			ch := a.chans[m]
			if ch == nil || !ch.muted {
				continue
			}
			ch.muted = false
			id := m
			a.spawn("unmute the device after its conference", func(ctx context.Context) error {
				err := a.rest(ctx, func(x ari.Client) error { return x.Channel().Unmute(chanKey(id), ari.DirectionBoth) })
				if partyGone(err) {
					return nil // hung up meanwhile
				}
				return err
			})
		}
	}
	return true
}
