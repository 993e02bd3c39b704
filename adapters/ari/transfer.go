package ari

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

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
	l, release, err := a.claimLeg(op, c, pbx.StateConnected, pbx.StateHeld)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer release()
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
	ls, release, err := a.claimLegs(op,
		claimReq{call: held, states: []pbx.State{pbx.StateHeld, pbx.StateConnected}},
		// The consultation call may still be ringing at the far end.
		claimReq{call: active, states: []pbx.State{pbx.StateConnected, pbx.StateHeld, pbx.StateInitiated}})
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer release()
	lh, la := ls[0], ls[1]
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
