package ari

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// errNotOwned is the reason every Stasis-only service gives for a call the
// adapter only observes.
func errNotOwned(op string, c pbx.CallRef) error {
	return fmt.Errorf("ari: %s %s: %w: call is not under the bridge's Stasis application; route it through the csta-bridge dialplan snippet", op, c, pbx.ErrNotSupported)
}

// legOf finds the live leg of c. Called with a.mu held.
func (a *Adapter) legOf(op string, c pbx.CallRef) (*leg, error) {
	if a.client == nil {
		return nil, fmt.Errorf("ari: %s %s: %w", op, c, pbx.ErrUnavailable)
	}
	l := a.legs[c.Ext+"/"+c.ID]
	if l == nil {
		return nil, fmt.Errorf("ari: %s %s: %w", op, c, pbx.ErrNoSuchCall)
	}
	return l, nil
}

// claim marks l as taken by a multi-step command; a second command on the
// same connection meanwhile is refused rather than interleaved. Called with
// a.mu held; the returned func releases it and takes the lock itself.
func (a *Adapter) claim(op string, c pbx.CallRef, l *leg) (func(), error) {
	if l.busy {
		return nil, fmt.Errorf("ari: %s %s: %w: another request on this call is in progress", op, c, pbx.ErrInvalidState)
	}
	l.busy = true
	return func() {
		a.mu.Lock()
		l.busy = false
		a.mu.Unlock()
	}, nil
}

// farOf is the other member of an owned leg's call. Called with a.mu held.
func (a *Adapter) farOf(l *leg) (string, bool) {
	if l.call == nil {
		return "", false
	}
	others := l.call.others(l.ch.id)
	if len(others) != 1 {
		return "", false
	}
	return others[0], true
}

func wrap(op string, c pbx.CallRef, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ari: %s %s: %w", op, c, mapErr(err))
}

// Answer makes the extension's alerting connection connected. No ARI call
// can make a ringing SIP phone go off-hook, so the adapter replaces the
// ringing leg with a new call to the device that carries the extension's
// auto-answer headers, and bridges that one to the waiting caller, who
// hears ringing all along. The CallRef stays the same.
func (a *Adapter) Answer(ctx context.Context, c pbx.CallRef) error {
	const op = "answer"
	a.mu.Lock()
	l, err := a.legOf(op, c)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	release, err := a.claim(op, c, l)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer release()
	if l.dir != pbx.Incoming || l.state != pbx.StateAlerting {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w (state %s)", op, c, pbx.ErrInvalidState, l.state)
	}
	if !l.owned() || l.call.dialing != l.ch.id {
		a.mu.Unlock()
		return errNotOwned(op, c)
	}
	ext := a.exts[c.Ext]
	cl := l.call
	old := l.ch
	far, _ := a.farOf(l)
	caller := ""
	if fch := a.chans[far]; fch != nil {
		caller = callerID(fch.caller)
	}
	cstaID := l.cstaID
	newID := a.newID("ans")
	a.swaps[newID] = l
	old.released = true
	cl.pending++
	cl.members[newID] = true
	cl.dialing = newID
	cl.swapIn = newID
	a.callOf[newID] = cl
	a.mu.Unlock()

	undo := func() {
		a.mu.Lock()
		delete(a.swaps, newID)
		delete(cl.members, newID)
		delete(a.callOf, newID)
		cl.pending--
		a.mu.Unlock()
	}
	if far != "" {
		_ = a.rest(ctx, func(x ari.Client) error { return x.Channel().Ring(chanKey(far)) })
	}
	vars := autoAnswerVars(ext.AutoAnswerHeaders)
	vars[varLeg] = c.ID + ",in"
	vars[varCall] = cl.id
	if cstaID != 0 {
		vars[varCSTAID] = strconv.Itoa(cstaID)
	}
	// Originate first, then drop the ringing leg: if the device cannot be
	// called at all, the original call is still there.
	err = a.rest(ctx, func(x ari.Client) error {
		_, err := x.Channel().Originate(chanKey(far), ari.OriginateRequest{
			Endpoint:   ext.Endpoint,
			Timeout:    int(a.opts.DialTimeout / time.Second),
			CallerID:   caller,
			App:        a.opts.Application,
			AppArgs:    argAnswer + "," + cl.id,
			ChannelID:  newID,
			Originator: far,
			Variables:  vars,
		})
		return err
	})
	if err != nil {
		a.mu.Lock()
		old.released = false
		cl.dialing = old.id
		a.mu.Unlock()
		undo()
		if st := httpStatus(err); st == 500 || st == 400 {
			return fmt.Errorf("ari: %s %s: %w (%v)", op, c, pbx.ErrDeviceUnreachable, err)
		}
		return wrap(op, c, err)
	}
	// Point the leg at the new channel before the ringing one goes: its
	// ChannelDestroyed can arrive before the hang-up request returns, and
	// must not be taken for the end of the connection.
	a.mu.Lock()
	if a.ended.has(newID) {
		// The device refused the new call at once; keep the ringing one.
		delete(a.swaps, newID)
		old.released = false
		cl.dialing = old.id
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w: the device refused the auto-answer call", op, c, pbx.ErrDeviceUnreachable)
	}
	if l.ch == old {
		delete(a.swaps, newID)
		nch := a.chans[newID]
		if nch == nil {
			nch = &channel{id: newID, endpoint: endpointKey(ext.Endpoint), state: "Down"}
			a.chans[newID] = nch
		}
		nch.leg = l
		l.ch = nch
	}
	a.mu.Unlock()
	if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().Hangup(chanKey(old.id), "answered_elsewhere") }); err != nil && httpStatus(err) != 404 {
		a.log.Warn("cannot drop the ringing leg after re-originate", "call", c.String(), "err", err)
	}

	wctx, cancel := context.WithTimeout(ctx, a.opts.AnswerTimeout)
	defer cancel()
	err = a.waitFor(wctx, newID, func(ch *channel) (bool, error) {
		if ch == nil {
			return false, fmt.Errorf("ari: %s %s: %w: the device hung up the auto-answer call", op, c, pbx.ErrDeviceUnreachable)
		}
		return l.state == pbx.StateConnected, nil
	})
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("ari: %s %s: %w: the device did not auto-answer within %s (check its auto-answer policy); it keeps ringing", op, c, pbx.ErrDeviceUnreachable, a.opts.AnswerTimeout)
	}
	return err
}

// autoAnswerVars turns "Name: value" headers into originate variables that
// chan_pjsip adds to the INVITE.
func autoAnswerVars(headers []string) map[string]string {
	vars := map[string]string{}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			continue
		}
		vars["PJSIP_HEADER(add,"+name+")"] = strings.TrimSpace(value)
	}
	return vars
}

func callerID(p wireParty) string {
	switch {
	case p.Name != "" && p.Number != "":
		return strconv.Quote(p.Name) + " <" + p.Number + ">"
	case p.Number != "":
		return "<" + p.Number + ">"
	}
	return ""
}

// Hold puts the far party on hold at the PBX: it leaves the call's bridge
// and hears music on hold; the phone keeps a silent, connected call. ARI
// raises no event for this, so the adapter reports EventHeld itself.
func (a *Adapter) Hold(ctx context.Context, c pbx.CallRef) error {
	const op = "hold"
	a.mu.Lock()
	l, err := a.legOf(op, c)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	release, err := a.claim(op, c, l)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer release()
	if l.state != pbx.StateConnected {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w (state %s)", op, c, pbx.ErrInvalidState, l.state)
	}
	far, ok := a.farOf(l)
	if !ok {
		a.mu.Unlock()
		return errNotOwned(op, c)
	}
	if !l.call.answered {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w: the far party has not answered", op, c, pbx.ErrInvalidState)
	}
	bridge := l.call.bridge
	a.mu.Unlock()

	if err := a.rest(ctx, func(x ari.Client) error { return x.Bridge().RemoveChannel(bridgeKey(bridge), far) }); err != nil {
		return wrap(op, c, err)
	}
	if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().MOH(chanKey(far), a.opts.MOHClass) }); err != nil {
		_ = a.rest(context.WithoutCancel(ctx), func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(bridge), far) })
		return wrap(op, c, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.legs[c.Ext+"/"+c.ID] != l {
		return fmt.Errorf("ari: %s %s: %w", op, c, pbx.ErrNoSuchCall)
	}
	l.state = pbx.StateHeld
	l.heldBy = true
	a.emit(pbx.Event{Kind: pbx.EventHeld, Call: l.ref, CSTAID: l.cstaID})
	return nil
}

// Retrieve takes a call held by the bridge back.
func (a *Adapter) Retrieve(ctx context.Context, c pbx.CallRef) error {
	const op = "retrieve"
	a.mu.Lock()
	l, err := a.legOf(op, c)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	release, err := a.claim(op, c, l)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer release()
	if l.state != pbx.StateHeld {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w (state %s)", op, c, pbx.ErrInvalidState, l.state)
	}
	if !l.heldBy {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w: the phone put this call on hold itself; only the phone can take it back", op, c, pbx.ErrNotSupported)
	}
	far, ok := a.farOf(l)
	if !ok {
		a.mu.Unlock()
		return errNotOwned(op, c)
	}
	bridge := l.call.bridge
	a.mu.Unlock()

	if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().StopMOH(chanKey(far)) }); err != nil && httpStatus(err) != 404 {
		return wrap(op, c, err)
	}
	if err := a.rest(ctx, func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(bridge), far) }); err != nil {
		return wrap(op, c, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l.state = pbx.StateConnected
	l.heldBy = false
	a.emit(pbx.Event{Kind: pbx.EventRetrieved, Call: l.ref, CSTAID: l.cstaID})
	return nil
}

// ClearConnection hangs up the extension's leg. DELETE /channels works on
// any channel, owned or not. An alerting call is rejected as busy.
func (a *Adapter) ClearConnection(ctx context.Context, c pbx.CallRef) error {
	const op = "clear connection"
	a.mu.Lock()
	l, err := a.legOf(op, c)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	id := l.ch.id
	reason := "normal"
	var prev *pbx.Cause
	if l.dir == pbx.Incoming && l.state == pbx.StateAlerting {
		reason = "busy"
		cc := pbx.CauseRejected
		prev, l.clearCause = l.clearCause, &cc
	}
	a.mu.Unlock()
	err = a.rest(ctx, func(x ari.Client) error { return x.Channel().Hangup(chanKey(id), reason) })
	if err != nil {
		a.mu.Lock()
		l.clearCause = prev
		a.mu.Unlock()
	}
	return wrap(op, c, err)
}

// ClearCall hangs up every channel of the call the adapter knows of.
func (a *Adapter) ClearCall(ctx context.Context, c pbx.CallRef) error {
	const op = "clear call"
	a.mu.Lock()
	l, err := a.legOf(op, c)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	ids := []string{l.ch.id}
	if l.call != nil {
		ids = append(ids, l.call.others(l.ch.id)...)
	} else if l.ch.peer != "" {
		ids = append(ids, l.ch.peer)
	}
	a.mu.Unlock()
	var errs []error
	for i, id := range ids {
		err := a.rest(ctx, func(x ari.Client) error { return x.Channel().Hangup(chanKey(id), "normal") })
		if err != nil && (i == 0 || httpStatus(err) != 404) {
			errs = append(errs, err)
		}
	}
	return wrap(op, c, errors.Join(errs...))
}

// SingleStepTransfer sends the far party into the dialplan at destination
// (in the configured context, so routing and the snippet apply) and hangs
// up the extension's leg.
func (a *Adapter) SingleStepTransfer(ctx context.Context, c pbx.CallRef, destination string) error {
	const op = "single step transfer"
	number, err := destinationNumber(destination)
	if err != nil {
		return fmt.Errorf("ari: %s %s: %w", op, c, err)
	}
	a.mu.Lock()
	l, err := a.legOf(op, c)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	release, err := a.claim(op, c, l)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer release()
	if l.state != pbx.StateConnected && l.state != pbx.StateHeld {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w (state %s)", op, c, pbx.ErrInvalidState, l.state)
	}
	far, ok := a.farOf(l)
	if !ok {
		a.mu.Unlock()
		return errNotOwned(op, c)
	}
	fch := a.chans[far]
	if fch == nil || !fch.inStasis {
		a.mu.Unlock()
		return errNotOwned(op, c)
	}
	held := l.heldBy
	fch.released = true
	legID := l.ch.id
	a.mu.Unlock()

	if held {
		_ = a.rest(ctx, func(x ari.Client) error { return x.Channel().StopMOH(chanKey(far)) })
	}
	if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().Continue(chanKey(far), a.opts.Context, number, 1) }); err != nil {
		a.mu.Lock()
		fch.released = false
		a.mu.Unlock()
		return wrap(op, c, err)
	}
	a.mu.Lock()
	if !l.transferred {
		l.transferred = true
		a.emit(pbx.Event{Kind: pbx.EventTransferred, Call: l.ref, Transfer: pbx.TransferBlind, CSTAID: l.cstaID, Remote: pbx.Party{Number: number}})
	}
	a.mu.Unlock()
	if err := a.rest(context.WithoutCancel(ctx), func(x ari.Client) error { return x.Channel().Hangup(chanKey(legID), "normal") }); err != nil && httpStatus(err) != 404 {
		a.log.Warn("transfer done but the extension's leg could not be hung up", "call", c.String(), "err", err)
	}
	return nil
}

// destinationNumber takes a number or a SIP URI as the CTI client wrote it
// and returns the extension to dial.
func destinationNumber(dest string) (string, error) {
	d := strings.TrimSpace(dest)
	low := strings.ToLower(d)
	if strings.HasPrefix(low, "sip:") || strings.HasPrefix(low, "sips:") || strings.HasPrefix(low, "tel:") {
		_, rest, _ := strings.Cut(d, ":")
		rest, _, _ = strings.Cut(rest, ";")
		user, _, _ := strings.Cut(rest, "@")
		if u, err := url.PathUnescape(user); err == nil {
			user = u
		}
		d = user
	}
	if !validNumber(d) {
		return "", fmt.Errorf("%w: %q", pbx.ErrInvalidDestination, dest)
	}
	return d, nil
}

// Transfer joins the far parties of two calls of the extension in a new
// bridge and hangs up the extension's two legs.
func (a *Adapter) Transfer(ctx context.Context, held, active pbx.CallRef) error {
	const op = "transfer"
	if held.Ext != active.Ext || held.ID == active.ID {
		return fmt.Errorf("ari: %s %s, %s: %w: needs two different calls of one extension", op, held, active, pbx.ErrInvalidState)
	}
	a.mu.Lock()
	lh, err := a.legOf(op, held)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	la, err := a.legOf(op, active)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	releaseH, err := a.claim(op, held, lh)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer releaseH()
	releaseA, err := a.claim(op, active, la)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer releaseA()
	if lh.state != pbx.StateHeld && lh.state != pbx.StateConnected {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w (state %s)", op, held, pbx.ErrInvalidState, lh.state)
	}
	if la.state != pbx.StateConnected && la.state != pbx.StateHeld && la.state != pbx.StateInitiated {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w (state %s)", op, active, pbx.ErrInvalidState, la.state)
	}
	fh, ok1 := a.farOf(lh)
	fa, ok2 := a.farOf(la)
	if !ok1 {
		a.mu.Unlock()
		return errNotOwned(op, held)
	}
	if !ok2 {
		a.mu.Unlock()
		return errNotOwned(op, active)
	}
	nc := &call{id: a.newID("xfer"), members: map[string]bool{}, answered: la.state != pbx.StateInitiated}
	heldMOH := lh.heldBy
	hID, aID := lh.ch.id, la.ch.id
	a.mu.Unlock()

	if err := a.rest(ctx, func(x ari.Client) error {
		_, err := x.Bridge().Create(bridgeKey(nc.id), "mixing", "csta-"+nc.id)
		return err
	}); err != nil {
		return wrap(op, held, err)
	}
	// Adding a channel moves it out of its current bridge.
	for _, f := range []string{fh, fa} {
		if err := a.rest(ctx, func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(nc.id), f) }); err != nil {
			_ = a.rest(context.WithoutCancel(ctx), func(x ari.Client) error { return x.Bridge().Delete(bridgeKey(nc.id)) })
			return wrap(op, held, err)
		}
	}
	if heldMOH {
		_ = a.rest(ctx, func(x ari.Client) error { return x.Channel().StopMOH(chanKey(fh)) })
	}
	a.mu.Lock()
	nc.bridge = nc.id
	for _, f := range []string{fh, fa} {
		if old := a.callOf[f]; old != nil {
			delete(old.members, f)
			if old.dialing == f {
				old.dialing = ""
				nc.dialing = f
			}
		}
		nc.members[f] = true
		a.callOf[f] = nc
	}
	a.calls[nc.id] = nc
	for _, l := range []*leg{lh, la} {
		if !l.transferred {
			l.transferred = true
			a.emit(pbx.Event{Kind: pbx.EventTransferred, Call: l.ref, Transfer: pbx.TransferAttended, CSTAID: l.cstaID, Remote: l.remote})
		}
	}
	// Far parties that are extensions of this bridge now talk to someone else.
	pairs := [][2]string{{fh, fa}, {fa, fh}}
	for _, p := range pairs {
		ch, other := a.chans[p[0]], a.chans[p[1]]
		if ch == nil || other == nil || ch.leg == nil || ch.leg.ch != ch {
			continue
		}
		if ch.leg.state == pbx.StateConnected || ch.leg.state == pbx.StateHeld {
			ch.leg.remote = partyOf(other.caller)
			if other.leg != nil {
				ch.leg.remote = pbx.Party{Number: other.leg.ref.Ext, Name: other.caller.Name}
			}
			a.emit(pbx.Event{Kind: pbx.EventPartyChanged, Call: ch.leg.ref, Remote: ch.leg.remote, CSTAID: ch.leg.cstaID})
		}
	}
	a.mu.Unlock()
	var errs []error
	for _, id := range []string{hID, aID} {
		if err := a.rest(context.WithoutCancel(ctx), func(x ari.Client) error { return x.Channel().Hangup(chanKey(id), "normal") }); err != nil && httpStatus(err) != 404 {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		a.log.Warn("transfer done but an extension leg could not be hung up", "held", held.String(), "active", active.String(), "err", err)
	}
	return nil
}

// MakeCall calls the extension's device into the application (auto-answered
// when asked), then, once the device answers, dials the destination in the
// configured context and bridges the two.
func (a *Adapter) MakeCall(ctx context.Context, req pbx.MakeCallRequest) error {
	const op = "make call"
	c := req.Call
	number, err := destinationNumber(req.Destination)
	if err != nil {
		return fmt.Errorf("ari: %s %s: %w", op, c, err)
	}
	a.mu.Lock()
	if a.client == nil {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w", op, c, pbx.ErrUnavailable)
	}
	ext, ok := a.exts[c.Ext]
	if !ok || ext.Endpoint == "" {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w: extension not mapped", op, c, pbx.ErrInvalidDestination)
	}
	if c.ID == "" || a.legs[c.Ext+"/"+c.ID] != nil {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w: call id in use", op, c, pbx.ErrInvalidState)
	}
	if reg, known := a.registered[c.Ext]; known && !reg {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w: %s is not registered", op, c, pbx.ErrDeviceUnreachable, ext.Endpoint)
	}
	devID := a.newID("mc")
	req.Destination = number
	cl := &call{id: a.newID("call"), members: map[string]bool{devID: true}, pending: 1}
	a.calls[cl.id] = cl
	a.callOf[devID] = cl
	a.makeCalls[devID] = req
	a.mu.Unlock()

	vars := map[string]string{}
	if req.AutoAnswer {
		vars = autoAnswerVars(ext.AutoAnswerHeaders)
	}
	vars[varLeg] = c.ID + ",out"
	vars[varCall] = cl.id
	if req.CSTAID != 0 {
		vars[varCSTAID] = strconv.Itoa(req.CSTAID)
	}
	// The device shows whom it is about to call, not its own number.
	vars["CONNECTEDLINE(num)"] = number
	err = a.rest(ctx, func(x ari.Client) error {
		_, err := x.Channel().Originate(nil, ari.OriginateRequest{
			Endpoint:  ext.Endpoint,
			Timeout:   int(a.opts.DialTimeout / time.Second),
			CallerID:  "<" + number + ">",
			App:       a.opts.Application,
			AppArgs:   argMakeCall + "," + cl.id,
			ChannelID: devID,
			Variables: vars,
		})
		return err
	})
	if err != nil {
		a.mu.Lock()
		delete(a.calls, cl.id)
		delete(a.callOf, devID)
		delete(a.makeCalls, devID)
		if l := a.legs[c.Ext+"/"+c.ID]; l != nil && l.ch.id == devID {
			delete(a.legs, c.Ext+"/"+c.ID)
		}
		a.mu.Unlock()
		if st := httpStatus(err); st == 500 || st == 400 {
			return fmt.Errorf("ari: %s %s: %w (%v)", op, c, pbx.ErrDeviceUnreachable, err)
		}
		return wrap(op, c, err)
	}
	return nil
}

// TagCall stores the csta_id on the extension's channel so a restarted
// bridge reads it back. Asterisk only lets Stasis channels be written; for
// observed calls the id is kept in memory, which survives reconnects but
// not a bridge restart.
func (a *Adapter) TagCall(ctx context.Context, c pbx.CallRef, cstaID int) error {
	const op = "tag call"
	a.mu.Lock()
	l, err := a.legOf(op, c)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	l.cstaID = cstaID
	id, owned := l.ch.id, l.ch.inStasis
	a.mu.Unlock()
	if !owned {
		return errNotOwned(op, c)
	}
	return wrap(op, c, a.rest(ctx, func(x ari.Client) error {
		return x.Channel().SetVariable(chanKey(id), varCSTAID, strconv.Itoa(cstaID))
	}))
}

// SendDTMF plays digits to the far party of an owned, connected call, as
// if the extension had pressed the keys.
func (a *Adapter) SendDTMF(ctx context.Context, c pbx.CallRef, digits string) error {
	const op = "send dtmf"
	for _, r := range digits {
		if !strings.ContainsRune("0123456789*#ABCDabcd", r) {
			return fmt.Errorf("ari: %s %s: %w: bad DTMF digit %q", op, c, pbx.ErrInvalidDestination, r)
		}
	}
	if digits == "" {
		return fmt.Errorf("ari: %s %s: %w: no digits", op, c, pbx.ErrInvalidDestination)
	}
	a.mu.Lock()
	l, err := a.legOf(op, c)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	if l.state != pbx.StateConnected {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w (state %s)", op, c, pbx.ErrInvalidState, l.state)
	}
	far, ok := a.farOf(l)
	a.mu.Unlock()
	if !ok {
		return errNotOwned(op, c)
	}
	return wrap(op, c, a.rest(ctx, func(x ari.Client) error { return x.Channel().SendDTMF(chanKey(far), digits, nil) }))
}
