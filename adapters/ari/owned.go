package ari

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Owned calls: a channel enters the application (the dialplan snippet, or
// a channel the adapter originated), the adapter creates the other leg,
// one mixing bridge holds both, and the adapter keeps the rule a two-party
// call has: when one side goes, the other is hung up.

func (a *Adapter) onStasisStart(ch *channel, ev *wireEvent) {
	if rc := ev.ReplaceChannel; rc != nil && rc.ID != "" {
		// A transfer done by the phone put a Local channel in place of one
		// of our channels, in the same bridge (trace e3/e4).
		if c := a.callOf[rc.ID]; c != nil {
			if old := a.chans[rc.ID]; old != nil {
				old.released = true
			}
			delete(c.members, rc.ID)
			delete(a.callOf, rc.ID)
			c.members[ch.id] = true
			a.callOf[ch.id] = c
		}
		return
	}
	kind, rest := "", []string(nil)
	if len(ev.Args) > 0 {
		kind, rest = ev.Args[0], ev.Args[1:]
	}
	switch kind {
	case argOutbound, argAnswer:
		// Channels the adapter created; their commands wait on them.
	case argMakeCall:
		c := a.callOf[ch.id]
		req, ok := a.makeCalls[ch.id]
		if c == nil || !ok {
			a.spawn("hang up stray MakeCall channel", func(ctx context.Context) error {
				return a.rest(ctx, func(cl ari.Client) error { return cl.Channel().Hangup(chanKey(ch.id), "normal") })
			})
			return
		}
		if l := ch.leg; l != nil && a.live(l) && l.state == pbx.StateNull {
			l.state = pbx.StateInitiated
			a.emit(a.legEvent(pbx.EventOriginated, l))
		}
		a.spawn("MakeCall dial destination", func(ctx context.Context) error {
			return a.dialOut(ctx, c, ch.id, req.Destination, true)
		})
	case argDial, "":
		number := ch.exten
		if len(rest) > 0 {
			number = rest[0]
		}
		a.routeCall(ch, number)
	default:
		if validNumber(kind) {
			// Stasis(app,<number>): the number alone is accepted too.
			a.routeCall(ch, kind)
			return
		}
		a.log.Warn("channel entered the application with unknown arguments; returning it to the dialplan", "channel", ch.name, "args", strings.Join(ev.Args, ","))
		a.spawn("continue unknown channel", func(ctx context.Context) error {
			return a.rest(ctx, func(cl ari.Client) error { return cl.Channel().Continue(chanKey(ch.id), "", "", 0) })
		})
	}
}

// routeCall makes ch, which entered the application to reach number, the
// caller of a new owned call. Called with a.mu held.
func (a *Adapter) routeCall(ch *channel, number string) {
	if a.callOf[ch.id] != nil {
		return // a repeated StasisStart after a resync
	}
	c := &call{id: a.newID("call"), members: map[string]bool{ch.id: true}, pending: 1}
	a.calls[c.id] = c
	a.callOf[ch.id] = c
	if ch.leg != nil {
		ch.leg.call = c
	}
	a.spawn("route call", func(ctx context.Context) error { return a.dialOut(ctx, c, ch.id, number, false) })
}

// dialTarget picks what to dial for number: a mapped extension's device
// directly, anything else through the configured context. viaContext forces
// the context (MakeCall), so the dialplan's routing for the number applies.
func (a *Adapter) dialTarget(number string, viaContext bool) (string, error) {
	if strings.Contains(number, "/") && !viaContext {
		return number, nil // a dial string such as PJSIP/1002
	}
	if !validNumber(number) {
		return "", fmt.Errorf("%w: %q", pbx.ErrInvalidDestination, number)
	}
	if !viaContext {
		if e, ok := a.exts[number]; ok && e.Endpoint != "" {
			return e.Endpoint, nil
		}
	}
	// /n keeps the Local pair from optimising away, so the channel the
	// adapter bridged stays the one it tracks.
	return "Local/" + number + "@" + a.opts.Context + "/n", nil
}

// dialOut creates and dials the far leg of call c for channel aID, which is
// already in the application. makeCall says aID is an answered device leg.
func (a *Adapter) dialOut(ctx context.Context, c *call, aID, number string, makeCall bool) error {
	a.mu.Lock()
	target, err := a.dialTarget(number, makeCall)
	if ach := a.chans[aID]; err == nil && ach != nil && strings.HasPrefix(target, "Local/") &&
		strings.HasPrefix(ach.name, strings.TrimSuffix(target, "/n")+"-") {
		// The context sends this unmapped number back into the
		// application: dialling it again would loop.
		err = fmt.Errorf("%w: %s routes back into the application (only mapped extensions may use the snippet)", pbx.ErrInvalidDestination, number)
	}
	a.mu.Unlock()
	if err != nil {
		a.failCall(c, aID, "unallocated")
		return err
	}
	if !makeCall {
		_ = a.rest(ctx, func(cl ari.Client) error { return cl.Channel().Ring(chanKey(aID)) })
		_ = a.rest(ctx, func(cl ari.Client) error { return cl.Channel().SetVariable(chanKey(aID), varCall, c.id) })
		a.storeLegVars(ctx, aID)
	} else if id := a.ownCallerID(aID); id != "" {
		// The device was called with the destination as caller id (so it
		// shows whom it is calling); the destination must see the extension.
		_ = a.rest(ctx, func(cl ari.Client) error { return cl.Channel().SetVariable(chanKey(aID), "CALLERID(all)", id) })
	}
	bid := c.id
	if err := a.rest(ctx, func(cl ari.Client) error {
		_, err := cl.Bridge().Create(bridgeKey(bid), "mixing", a.bridgeName(c.id))
		return err
	}); err != nil {
		a.failCall(c, aID, "congestion")
		return fmt.Errorf("create bridge: %w", err)
	}
	a.mu.Lock()
	c.bridge = bid
	if c.destroyed {
		// The caller went away while the bridge was being made.
		a.mu.Unlock()
		a.destroyBridge(ctx, c)
		return nil
	}
	bID := a.newID("out")
	c.members[bID] = true
	c.dialing = bID
	a.callOf[bID] = c
	a.mu.Unlock()
	if err := a.rest(ctx, func(cl ari.Client) error { return cl.Bridge().AddChannel(bridgeKey(bid), aID) }); err != nil {
		a.failCall(c, aID, "congestion")
		return fmt.Errorf("add caller to bridge: %w", err)
	}
	err = a.rest(ctx, func(cl ari.Client) error {
		_, err := cl.Channel().Create(chanKey(aID), ari.ChannelCreateRequest{
			Endpoint:   target,
			App:        a.opts.Application,
			AppArgs:    argOutbound + "," + c.id,
			ChannelID:  bID,
			Originator: aID,
		})
		return err
	})
	if err != nil {
		a.mu.Lock()
		delete(c.members, bID)
		delete(a.callOf, bID)
		a.mu.Unlock()
		reason := "congestion"
		if allocationFailed(err) {
			reason = "unallocated"
		}
		a.failCall(c, aID, reason)
		return fmt.Errorf("create channel to %s: %w", target, err)
	}
	// POST /channels/create returns before the new channel's Stasis
	// control exists; until its StasisStart, dial and set-variable answer
	// 409 "Channel not in Stasis application" (seen on Asterisk 22).
	sctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	err = a.waitFor(sctx, bID, func(ch *channel) (bool, error) {
		if ch == nil {
			if a.ended.has(bID) {
				return false, fmt.Errorf("channel to %s ended before it could be dialled", target)
			}
			return false, nil
		}
		return ch.inStasis, nil
	})
	cancel()
	if err != nil {
		_ = a.rest(ctx, func(cl ari.Client) error { return cl.Channel().Hangup(chanKey(bID), "normal") })
		return fmt.Errorf("wait for %s to enter the application: %w", target, err)
	}
	_ = a.rest(ctx, func(cl ari.Client) error { return cl.Channel().SetVariable(chanKey(bID), varCall, c.id) })
	if !makeCall {
		a.passHeaders(ctx, c, aID, bID)
	}
	a.mu.Lock()
	gone := c.destroyed
	a.mu.Unlock()
	if gone {
		return a.rest(ctx, func(cl ari.Client) error { return cl.Channel().Hangup(chanKey(bID), "normal") })
	}
	if err := a.rest(ctx, func(cl ari.Client) error {
		return cl.Channel().Dial(chanKey(bID), aID, a.opts.DialTimeout)
	}); err != nil {
		_ = a.rest(ctx, func(cl ari.Client) error { return cl.Channel().Hangup(chanKey(bID), "normal") })
		return fmt.Errorf("dial %s: %w", target, err)
	}
	return nil
}

// ownCallerID is the caller id of the extension whose device channel id is.
func (a *Adapter) ownCallerID(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := a.chans[id]
	if ch == nil || ch.leg == nil {
		return ""
	}
	e := a.exts[ch.leg.ref.Ext]
	return callerID(wireParty{Name: e.DisplayName, Number: e.Name})
}

// failCall ends a call whose far leg could not be set up.
func (a *Adapter) failCall(c *call, aID, reason string) {
	a.mu.Lock()
	c.pending = 0
	a.mu.Unlock()
	a.spawn("hang up unroutable call", func(ctx context.Context) error {
		err := a.rest(ctx, func(cl ari.Client) error { return cl.Channel().Hangup(chanKey(aID), reason) })
		if httpStatus(err) == 404 {
			err = nil
		}
		a.destroyBridge(ctx, c)
		return err
	})
}

// spawnConnect runs when the dialled leg of c answers: answer the other
// side, bridge the answered leg. Called with a.mu held.
func (a *Adapter) spawnConnect(c *call, bID string) {
	c.dialing = ""
	others := c.others(bID)
	bridge := c.bridge
	swapIn := c.swapIn == bID
	a.spawn("connect answered call", func(ctx context.Context) error {
		if id := a.ownCallerID(bID); swapIn && id != "" {
			// The auto-answer call was placed with the caller's identity,
			// so the phone shows who is calling; bridged like that, Asterisk
			// would give the caller its own number as connected line.
			_ = a.rest(ctx, func(cl ari.Client) error { return cl.Channel().SetVariable(chanKey(bID), "CALLERID(all)", id) })
		}
		// Bridge first, answer then: joining the bridge gives the waiting
		// side the answered party's identity (connected line). Still
		// ringing, it gets it in the 200 OK; answered, chan_pjsip sends it
		// in a re-INVITE right behind the 200 OK, which a phone that has
		// not yet processed that 200 OK answers 481, and Asterisk hangs
		// the call up (seen under load with the test phones, issue 15).
		a.mu.Lock()
		// A transfer may have bridged it already while it rang.
		inBridge := a.chans[bID] != nil && a.chans[bID].bridge == bridge
		a.mu.Unlock()
		if !inBridge {
			if err := a.rest(ctx, func(cl ari.Client) error { return cl.Bridge().AddChannel(bridgeKey(bridge), bID) }); err != nil {
				// A leg that cannot be bridged is useless: end it, and the
				// two-party rule ends the call cleanly.
				_ = a.rest(context.WithoutCancel(ctx), func(cl ari.Client) error { return cl.Channel().Hangup(chanKey(bID), "congestion") })
				return fmt.Errorf("bridge %s: %w", bID, err)
			}
		}
		for _, o := range others {
			a.mu.Lock()
			och := a.chans[o]
			skip := och == nil || och.state == "Up" || och.released
			a.mu.Unlock()
			if !skip {
				if err := a.rest(ctx, func(cl ari.Client) error { return cl.Channel().Answer(chanKey(o)) }); err != nil && httpStatus(err) != 404 {
					return fmt.Errorf("answer %s: %w", o, err)
				}
			}
		}
		// Asterisk keeps the call's rule too before anyone learns the
		// call is connected (and may stop the bridge).
		a.keepRule(ctx, c)
		a.mu.Lock()
		defer a.mu.Unlock()
		c.answered = true
		if c.pending > 0 {
			c.pending--
		}
		for m := range c.members {
			if ch := a.chans[m]; ch != nil && ch.leg != nil && ch.leg.ch == ch {
				a.connectLeg(ch.leg)
			}
		}
		return nil
	})
}

// memberGone applies the two-party rule when ch left owned call c.
// Called with a.mu held.
func (a *Adapter) memberGone(c *call, ch *channel) {
	delete(c.members, ch.id)
	delete(a.callOf, ch.id)
	if ch.released {
		if len(c.members) == 0 && c.pending == 0 {
			a.spawnDestroy(c)
		}
		return
	}
	reason := "normal"
	if c.dialing == ch.id {
		// The dialled leg ended before answering: give the caller the
		// reason (busy, no answer) so its phone and the core see it.
		c.dialing = ""
		c.pending = 0
		reason = hangupReason(ch.dialStatus, ch.cause())
	}
	// A member the adapter let go of (continued into the dialplan by a
	// transfer) may not have left yet: its StasisEnd can come after this
	// channel's end. It is no longer part of the call, so it is not hung up.
	var others []string
	for _, o := range c.others("") {
		if och := a.chans[o]; och != nil && och.released {
			continue
		}
		others = append(others, o)
	}
	reasons := map[string]string{}
	for _, o := range others {
		reasons[o] = reason
		if och := a.chans[o]; och != nil && och.leg != nil && och.leg.ch == och && och.leg.state == pbx.StateAlerting {
			cc := pbx.CauseCancelled
			if lostRace(ch) {
				cc, reasons[o] = pbx.CauseAnsweredElsewhere, reasonAnsweredElsewhere
			}
			och.leg.clearCause = &cc
		}
	}
	a.spawnDestroy(c)
	a.spawn("hang up the other party", func(ctx context.Context) error {
		var errs []error
		for _, o := range others {
			err := a.rest(ctx, func(cl ari.Client) error { return cl.Channel().Hangup(chanKey(o), reasons[o]) })
			if err != nil && httpStatus(err) != 404 {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// cause is why the channel ended. The destroy cause wins: a hangup
// requested over ARI shows a placeholder cause (32) in
// ChannelHangupRequest even when a reason such as busy was given, and only
// ChannelDestroyed carries the real one (17).
func (ch *channel) cause() int {
	if ch.endCause != 0 {
		return ch.endCause
	}
	return ch.hangupBy
}

func (a *Adapter) spawnDestroy(c *call) {
	if c.destroyed {
		return
	}
	c.destroyed = true
	delete(a.calls, c.id)
	if c.bridge == "" || a.leaveConference(c) {
		return
	}
	a.spawn("delete bridge", func(ctx context.Context) error { a.destroyBridge(ctx, c); return nil })
}

func (a *Adapter) destroyBridge(ctx context.Context, c *call) {
	a.mu.Lock()
	bid := c.bridge
	c.bridge = ""
	delete(a.calls, c.id)
	a.mu.Unlock()
	if bid == "" {
		return
	}
	err := a.rest(ctx, func(cl ari.Client) error { return cl.Bridge().Delete(bridgeKey(bid)) })
	if err != nil && httpStatus(err) != 404 {
		a.log.Warn("cannot delete bridge", "bridge", bid, "err", err)
	}
}

// validNumber accepts what a dialplan extension can be: digits, *, #, +
// and letters, no separators that would change a dial string.
func validNumber(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '*', r == '#', r == '+', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

// storeLegVars writes the leg id, direction and csta_id of the extension's
// channel chID onto it, so a restarted bridge's resync gives the call back
// as it was (issue 19). A routed caller's channel is announced before it
// enters the application, when Asterisk refuses to set variables on it, so
// TagCall may only have kept the csta_id in memory until now.
func (a *Adapter) storeLegVars(ctx context.Context, chID string) {
	a.mu.Lock()
	ch := a.chans[chID]
	if ch == nil || ch.leg == nil || ch.leg.ch != ch {
		a.mu.Unlock()
		return
	}
	l := ch.leg
	dir := "in"
	if l.dir == pbx.Outgoing {
		dir = "out"
	}
	vars := map[string]string{varLeg: l.ref.ID + "," + dir}
	if l.cstaID != 0 {
		vars[varCSTAID] = strconv.Itoa(l.cstaID)
	}
	a.mu.Unlock()
	for _, k := range []string{varLeg, varCSTAID} {
		v, ok := vars[k]
		if !ok {
			continue
		}
		if err := a.rest(ctx, func(cl ari.Client) error { return cl.Channel().SetVariable(chanKey(chID), k, v) }); err != nil {
			a.log.Debug("cannot store leg variable", "channel", chID, "variable", k, "err", err)
		}
	}
}
