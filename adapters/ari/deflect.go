package ari

import (
	"context"
	"fmt"
	"net/http"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

var _ pbx.Deflector = (*Adapter)(nil)

// Deflect sends the caller of a ringing routed call on to destination
// without the extension answering: the caller's channel continues in the
// dialplan at destination in the configured context (as SingleStepTransfer
// does, so the destination is dialled as if the caller had dialled it), and
// the ringing device channel is hung up with reason answered_elsewhere, the
// CANCEL a phone does not log as a missed call. The connection ends as
// deflected.
func (a *Adapter) Deflect(ctx context.Context, c pbx.CallRef, destination string) error {
	const op = "deflect"
	number, err := destinationNumber(destination)
	if err != nil {
		return fmt.Errorf("ari: %s %s: %w", op, c, err)
	}
	a.mu.Lock()
	l, release, err := a.claimLeg(op, c, pbx.StateAlerting)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer release()
	if l.dir != pbx.Incoming {
		a.mu.Unlock()
		return errState(op, c, l.state)
	}
	// Only a call the adapter dials to the device has a caller it holds.
	if !l.owned() || l.call.dialing != l.ch.id {
		a.mu.Unlock()
		return errNotOwned(op, c)
	}
	far, ok := a.farOf(l)
	fch := a.chans[far]
	if !ok || fch == nil || !fch.inStasis {
		a.mu.Unlock()
		return errNotOwned(op, c)
	}
	// Released, the caller leaving the call does not take the ringing
	// device channel down as a caller who gave up (a missed call), and the
	// device channel's hang-up does not take the caller down.
	fch.released = true
	prev := l.clearCause
	cc := pbx.CauseDeflected
	l.clearCause = &cc
	legID, at := l.ch.id, fch.stasisAt
	a.mu.Unlock()

	err = a.rest(ctx, func(x ari.Client) error { return x.Channel().Continue(chanKey(far), a.opts.Context, number, 1) })
	if err != nil && mayHaveRun(err) {
		done, verr := a.continueDone(context.WithoutCancel(ctx), far, at)
		switch {
		case httpStatus(verr) == http.StatusNotFound:
		case verr != nil:
			a.log.Warn("Asterisk did not answer a deflect's continue, and whether it was carried out cannot be told; taken as not done",
				"call", c.String(), "channel", far, "err", err, "check", verr)
		case done:
			a.log.Warn("Asterisk did not answer a deflect's continue but carried it out", "call", c.String(), "channel", far, "err", err)
			err = nil
		}
	}
	if err != nil {
		a.mu.Lock()
		if a.live(l) {
			l.clearCause = prev
		}
		a.mu.Unlock()
		return a.singleStepFailed(ctx, op, c, l, fch, legID, false, err)
	}
	if err := a.rest(context.WithoutCancel(ctx), func(x ari.Client) error {
		return x.Channel().Hangup(chanKey(legID), "answered_elsewhere")
	}); err != nil && httpStatus(err) != http.StatusNotFound {
		// The caller is on its way to the destination: the deflect is done,
		// and the device rings on only until the dial times out.
		a.log.Warn("deflect done but the ringing device channel could not be hung up", "call", c.String(), "err", err)
	}
	return nil
}
