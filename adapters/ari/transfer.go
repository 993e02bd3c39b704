package ari

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	legID, at := l.ch.id, fch.stasisAt
	a.mu.Unlock()

	if held {
		// Sent on with the music still playing, the far party could hear
		// it in its new call (Asterisk 22 keeps it playing when a channel
		// joins a bridge): the transfer is not done. Music that may have
		// stopped is started again.
		if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().StopMOH(chanKey(far)) }); err != nil {
			return a.singleStepFailed(ctx, op, c, l, fch, legID, mayHaveRun(err), err)
		}
	}
	err = a.rest(ctx, func(x ari.Client) error { return x.Channel().Continue(chanKey(far), a.opts.Context, number, 1) })
	if err != nil && mayHaveRun(err) {
		// The far party cannot be brought back from the dialplan: if the
		// Continue was carried out the transfer is done, and the leg must
		// not stay behind in a call with no one.
		done, verr := a.continueDone(context.WithoutCancel(ctx), far, at)
		switch {
		case httpStatus(verr) == http.StatusNotFound:
			// The far party hung up: its end is reported from its events.
		case verr != nil:
			a.log.Warn("Asterisk did not answer a transfer's continue, and whether it was carried out cannot be told; taken as not done",
				"call", c.String(), "channel", far, "err", err, "check", verr)
		case done:
			a.log.Warn("Asterisk did not answer a transfer's continue but carried it out", "call", c.String(), "channel", far, "err", err)
			err = nil
		}
	}
	if err != nil {
		return a.singleStepFailed(ctx, op, c, l, fch, legID, held, err)
	}
	a.mu.Lock()
	// The far party is on its way to the destination whatever happened to
	// the extension's leg meanwhile, so the transfer is done; but a leg that
	// ended while the request ran has been reported cleared already and
	// gets no "transferred" after that.
	if a.live(l) && !l.transferred {
		l.transferred = true
		a.emit(pbx.Event{Kind: pbx.EventTransferred, Call: l.ref, Transfer: pbx.TransferBlind, CSTAID: l.cstaID, Remote: pbx.Party{Number: number}})
	}
	a.mu.Unlock()
	// The leg's hangup handler (the snippet's csta-bridge-hangup) would
	// hang up its partner, the party just sent on: Asterisk 22 leaves that
	// party's BRIDGEPEER naming this leg until it is bridged again, so the
	// handler takes it for still connected (real Asterisk, issue 15 stress:
	// SoftHangup of the transferred caller, the target never rang). The leg
	// no longer has a partner.
	if err := a.rest(context.WithoutCancel(ctx), func(x ari.Client) error { return x.Channel().SetVariable(chanKey(legID), varPeer, "") }); err != nil && httpStatus(err) != 404 {
		a.log.Warn("transfer done but the extension's leg could not be told it has no partner", "call", c.String(), "err", err)
	}
	if err := a.rest(context.WithoutCancel(ctx), func(x ari.Client) error { return x.Channel().Hangup(chanKey(legID), "normal") }); err != nil && httpStatus(err) != 404 {
		a.log.Warn("transfer done but the extension's leg could not be hung up", "call", c.String(), "err", err)
	}
	return nil
}

// continueDone finds out whether a Continue Asterisk did not answer was
// carried out. While a channel is in the application Asterisk keeps its
// dialplan position where it entered (at); a Continue moves it to the
// destination, from where the dialplan takes it on (for a mapped
// extension, through the snippet back into the application as a new
// call). So a channel still at at was not continued. One case is misread:
// a Continue Asterisk has taken but not yet carried out when it answers
// the position (it carries out a channel's queued requests within
// milliseconds, and the position is read only after the answer to the
// Continue was given up on).
func (a *Adapter) continueDone(ctx context.Context, id string, at dialplanPos) (bool, error) {
	if at == (dialplanPos{}) {
		return false, errors.New("where the channel entered the application is not known")
	}
	var d *ari.ChannelData
	if err := a.rest(ctx, func(x ari.Client) (err error) { d, err = x.Channel().Data(chanKey(id)); return }); err != nil {
		return false, err
	}
	if d == nil || d.Dialplan == nil {
		return false, errors.New("Asterisk gave no dialplan position")
	}
	return dialplanPos{d.Dialplan.Context, d.Dialplan.Exten, d.Dialplan.Priority} != at, nil
}

// singleStepFailed puts a single step transfer that could not be done
// back: the far party (fch) belongs to the call again, and music says its
// music on hold may have been stopped and is started again. While the far
// party was released, the two-party rule left the call alone when one side
// hung up; it applies now.
func (a *Adapter) singleStepFailed(ctx context.Context, op string, c pbx.CallRef, l *leg, fch *channel, legID string, music bool, err error) error {
	far := fch.id
	a.mu.Lock()
	fch.released = false
	farEnded, legEnded := a.ended.has(far), !a.live(l)
	a.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	var orphan string
	switch {
	case farEnded && legEnded:
	case farEnded:
		orphan = legID
	case legEnded:
		orphan = far
	case music:
		if merr := a.rest(ctx, func(x ari.Client) error { return x.Channel().MOH(chanKey(far), a.opts.MOHClass) }); merr != nil && !partyGone(merr) {
			a.log.Warn("transfer failed and the far party could not be put back on music on hold", "call", c.String(), "channel", far, "err", merr)
		}
	}
	if orphan != "" {
		if herr := a.rest(ctx, func(x ari.Client) error { return x.Channel().Hangup(chanKey(orphan), "normal") }); herr != nil && httpStatus(herr) != 404 {
			a.log.Warn("cannot hang up the rest of a call that ended during a transfer", "call", c.String(), "channel", orphan, "err", herr)
		}
	}
	if farEnded || legEnded {
		return fmt.Errorf("%w (asterisk: %v)", errEnded(op, c), err)
	}
	return wrap(op, c, err)
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
	// Where each far party is now, so a transfer that cannot finish puts it
	// back: in its call's bridge, or outside any bridge on music on hold
	// (held by the bridge), or outside any bridge ringing (a consultation
	// call not answered yet).
	parties := []xferParty{{id: fh, ref: held, l: lh, moh: lh.heldBy}, {id: fa, ref: active, l: la, moh: la.heldBy}}
	for i := range parties {
		p := &parties[i]
		// Known from what the adapter did (the bridge events of a hold
		// just done may not have arrived yet): a party held by the bridge
		// is outside it; once the call is answered both parties are in
		// it; before, only the side already in the bridge (the caller).
		if ch := a.chans[p.id]; !p.moh && (p.l.call.answered || (ch != nil && ch.bridge == p.l.call.bridge)) {
			p.bridge = p.l.call.bridge
		}
	}
	hID, aID := lh.ch.id, la.ch.id
	a.mu.Unlock()

	if err := a.rest(ctx, func(x ari.Client) error {
		_, err := x.Bridge().Create(bridgeKey(nc.id), "mixing", a.bridgeName(nc.id))
		return err
	}); err != nil {
		return a.transferFailed(ctx, op, nc.id, nil, parties, nil, err)
	}
	// Adding a channel moves it out of its current bridge.
	for i, p := range parties {
		if err := a.rest(ctx, func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(nc.id), p.id) }); err != nil {
			moved := parties[:i]
			if mayHaveRun(err) {
				// Asterisk did not answer: the party may be in the new
				// bridge all the same, and deleting it would leave the
				// party outside any bridge in silence.
				moved = parties[:i+1]
			}
			return a.transferFailed(ctx, op, nc.id, moved, parties, nil, err)
		}
	}
	a.mu.Lock()
	// A side that ended while the requests ran has been reported cleared
	// (or is being hung up by the two-party rule): the transfer cannot be
	// finished, and the other side goes back to where it was.
	if side := a.transferSideEnded(parties); side != nil {
		a.mu.Unlock()
		return a.transferFailed(ctx, op, nc.id, parties, parties, side, nil)
	}
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
		if ch == nil || other == nil || ch.leg == nil || ch.leg.ch != ch || !a.live(ch.leg) {
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
	a.keepTransferred(context.WithoutCancel(ctx), nc)
	// Either call may have been held by the bridge; the music would go on
	// playing in the new bridge.
	for _, p := range parties {
		if !p.moh {
			continue
		}
		if err := a.rest(context.WithoutCancel(ctx), func(x ari.Client) error { return x.Channel().StopMOH(chanKey(p.id)) }); err != nil && !partyGone(err) {
			a.log.Warn("transfer done but music on hold could not be stopped for a far party", "call", p.ref.String(), "channel", p.id, "err", err)
		}
	}
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

// xferParty is a far party of a transfer and where it was before.
type xferParty struct {
	id     string      // the far party's channel
	ref    pbx.CallRef // the extension's connection it talks to
	l      *leg
	moh    bool   // held by the bridge: outside any bridge, on music on hold
	bridge string // the bridge it was in ("" if none)
}

// transferSideEnded names the side of a transfer whose connection ended,
// or whose far party hung up, or returns nil. Called with a.mu held.
func (a *Adapter) transferSideEnded(parties []xferParty) *xferParty {
	for i, p := range parties {
		if !a.live(p.l) || a.ended.has(p.id) {
			return &parties[i]
		}
	}
	return nil
}

// transferFailed undoes a transfer that could not be finished: the far
// parties that moved, or may have (their request got no answer), go back
// where they were, and the new bridge goes. Going back is the same whether
// a party moved or not: Asterisk 22 answers 204 to adding a channel to the
// bridge it is in (it leaves and re-enters), and 422 "Channel not in this
// bridge" to taking out one that never joined, which is where it should
// be. The error names the side that ended (side, or the one found now), if
// one did, or else the failed request err.
func (a *Adapter) transferFailed(ctx context.Context, op, bridge string, moved, parties []xferParty, side *xferParty, err error) error {
	ctx = context.WithoutCancel(ctx)
	for _, p := range moved {
		a.mu.Lock()
		gone := a.ended.has(p.id)
		a.mu.Unlock()
		if gone {
			continue
		}
		var uerr error
		if p.bridge != "" {
			uerr = a.rest(ctx, func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(p.bridge), p.id) })
		} else {
			uerr = a.rest(ctx, func(x ari.Client) error { return x.Bridge().RemoveChannel(bridgeKey(bridge), p.id) })
			if httpStatus(uerr) == http.StatusUnprocessableEntity {
				uerr = nil
			}
		}
		if uerr == nil && p.moh {
			// Asterisk 22 keeps music on hold playing across bridges, and
			// starting the class that plays changes nothing (204); this
			// only matters if a later Asterisk stops it on a bridge change.
			uerr = a.rest(ctx, func(x ari.Client) error { return x.Channel().MOH(chanKey(p.id), a.opts.MOHClass) })
		}
		if uerr != nil && !partyGone(uerr) {
			a.log.Warn("transfer failed and a far party could not be put back", "call", p.ref.String(), "channel", p.id, "err", uerr)
		}
	}
	if derr := a.rest(ctx, func(x ari.Client) error { return x.Bridge().Delete(bridgeKey(bridge)) }); derr != nil && httpStatus(derr) != 404 {
		a.log.Warn("cannot delete the bridge of a failed transfer", "bridge", bridge, "err", derr)
	}
	if side == nil {
		a.mu.Lock()
		side = a.transferSideEnded(parties)
		a.mu.Unlock()
	}
	switch {
	case side != nil && err != nil:
		return fmt.Errorf("%w (asterisk: %v)", errEnded(op, side.ref), err)
	case side != nil:
		return errEnded(op, side.ref)
	}
	return wrap(op, parties[0].ref, err)
}
