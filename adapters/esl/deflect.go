package esl

import (
	"context"
	"fmt"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

var _ pbx.Deflector = (*Adapter)(nil)

// Deflect sends the caller of a call ringing at the extension to
// destination: the caller's channel is transferred there in the
// dialplan context (as if it had dialled it), which makes FreeSWITCH
// cancel the call to the device. That cancel is reported as deflected,
// never as a missed call.
func (a *Adapter) Deflect(ctx context.Context, c pbx.CallRef, destination string) error {
	s, err := a.session()
	if err != nil {
		return err
	}
	dest, err := cleanDestination(destination)
	if err != nil {
		return fmt.Errorf("esl: deflect %s: %v: %w", c, err, pbx.ErrInvalidDestination)
	}
	l, err := a.state.lookup(c)
	if err != nil {
		return fmt.Errorf("esl: deflect %s: %w", c, err)
	}
	if l.dir != pbx.Incoming || l.answered {
		return fmt.Errorf("esl: deflect %s: call is %s: %w", c, stateWord(l), pbx.ErrInvalidState)
	}
	if l.other == "" {
		return fmt.Errorf("esl: deflect %s: caller channel unknown: %w", c, pbx.ErrNotSupported)
	}
	w := a.state.watch(l.uuid, sigGone)
	defer a.state.unwatch(w)
	if !a.state.update(l.uuid, func(x *leg) { x.deflected = true }) {
		return fmt.Errorf("esl: deflect %s: %w", c, pbx.ErrNoSuchCall)
	}
	if _, err := s.api(ctx, "uuid_transfer", l.other+" "+dest+" XML "+a.opts.Context); err != nil {
		a.state.update(l.uuid, func(x *leg) { x.deflected = false })
		return fmt.Errorf("esl: deflect %s: %w", c, err)
	}
	// The transfer cancels the call to the device (ORIGINATOR_CANCEL); make
	// sure, so that the phone stops ringing whatever the caller's dialplan
	// did meanwhile.
	if sig, err := wait(ctx, w, a.opts.ConfirmTimeout); err != nil || sig == sigGone {
		return nil
	}
	if _, err := s.api(ctx, "uuid_kill", l.uuid+" LOSE_RACE"); err != nil && !isNoSuchCall(err) {
		a.log.Warn("cannot release the deflected channel", "uuid", l.uuid, "err", err)
	}
	return nil
}
