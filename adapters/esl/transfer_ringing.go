package esl

// TransferCall while the consultation call still rings at the far party
// (issue 18). The extension's device channel of the consultation calls
// the far party (the bridge application of its dialplan); uuid_bridge of
// the held party's channel with the ringing channel takes the ringing
// channel over: switch_ivr_uuid_bridge marks it CF_REDIRECT, which the
// device channel's originate leaves alone when it gives up
// (switch_ivr_originate.c), and the held party waits for its answer
// (uuid_bridge_on_soft_execute → switch_ivr_wait_for_answer, playing
// transfer_ringback to it, since it has answered long ago). The
// extension's two channels are then released at once.
//
// If the far party refuses or does not answer, FreeSWITCH would hang the
// held party up (ORIGINATOR_CANCEL); uuid_bridge_continue_on_cancel lets
// its dialplan go on instead, like a call to the extension nobody
// answered (the vanilla Local_Extension: voicemail), and a channel with
// nothing left to run hangs up. Nobody is left on silent hold.

import (
	"context"
	"fmt"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// ringbackTone is what the held party hears while the far party rings
// (the vanilla configuration's us-ring).
const ringbackTone = "%(2000,4000,440,480)"

// ringingConsultation reports whether the active call of a transfer is one
// the extension placed whose far party still rings.
func ringingConsultation(ac legView) bool {
	return ac.dir == pbx.Outgoing && !ac.connected && ac.dialing != ""
}

// transferRinging joins the held party of h to the channel ringing for
// ac and releases the extension's two channels.
func (a *Adapter) transferRinging(ctx context.Context, s *session, held, active pbx.CallRef, h, ac legView) error {
	fail := func(err error) error {
		return fmt.Errorf("esl: transfer %s to %s while it rings: %w", held, active, err)
	}
	if !h.connected || h.other == "" {
		return fail(fmt.Errorf("held call is %s: %w", stateWord(h), pbx.ErrInvalidState))
	}
	for _, v := range [][2]string{
		{h.other, "transfer_ringback " + ringbackTone},
		{h.other, "uuid_bridge_continue_on_cancel true"},
		// The extension's channel gives up calling the far party the
		// moment the ringing channel is taken over; without this its
		// dialplan would go on (the vanilla Local_Extension: answer and
		// voicemail) until it is released below.
		{ac.uuid, "continue_on_fail false"},
	} {
		if _, err := s.api(ctx, "uuid_setvar", v[0]+" "+v[1]); err != nil {
			return fail(err)
		}
	}
	for _, u := range []string{h.uuid, ac.uuid} {
		a.state.update(u, func(x *leg) { x.xfer, x.xferKind = true, pbx.TransferAttended })
	}
	left := make(chan signal, 4)
	for _, w := range a.state.watchShared(left, []string{h.uuid, h.other}, sigUnbridged, sigGone) {
		defer a.state.unwatch(w)
	}
	gone := ringingPair{held: a.state.watch(h.other, sigHangup), ringing: a.state.watch(ac.dialing, sigHangup)}
	if _, err := s.api(ctx, "uuid_bridge", h.other+" "+ac.dialing); err != nil {
		gone.stop(a)
		for _, u := range []string{h.uuid, ac.uuid} {
			a.state.update(u, func(x *leg) { x.xfer = false })
		}
		return fail(err)
	}
	// The held party leaves its bridge with the extension at once (its
	// CHANNEL_UNBRIDGE); releasing the extension's channel before could
	// take it down with it.
	go a.watchRingingTransfer(s, ac.dialing, gone)
	if sig, err := wait(ctx, &waiter{ch: left}, a.opts.ConfirmTimeout); err != nil {
		return fail(err)
	} else if sig == 0 {
		a.log.Warn("no unbridge event after uuid_bridge of the held party to the ringing call", "held_far", h.other, "ringing", ac.dialing)
	}
	for _, u := range []string{ac.uuid, h.uuid} {
		if _, err := s.api(ctx, "uuid_kill", u); err != nil && !isNoSuchCall(err) {
			a.log.Warn("cannot release a transferring channel", "uuid", u, "err", err)
		}
	}
	return nil
}

// ringingPair watches the hang-ups of the held party and the ringing
// channel it was joined to.
type ringingPair struct{ held, ringing *waiter }

func (p ringingPair) stop(a *Adapter) {
	a.state.unwatch(p.held)
	a.state.unwatch(p.ringing)
}

// watchRingingTransfer ends the ringing channel when the held party
// hangs up: switch_ivr_wait_for_answer gives up on the held party's
// hang-up without touching the channel it waited for (it would ring on,
// or, answered in that moment, stay up with nobody), and FreeSWITCH ends
// it with its partner only once they are bridged. The other way round
// needs nothing: a far party that refuses leaves the held party to its
// dialplan (uuid_bridge_continue_on_cancel), one that hangs up after the
// bridge takes it down with it.
func (a *Adapter) watchRingingTransfer(s *session, ringing string, gone ringingPair) {
	defer gone.stop(a)
	select {
	case <-s.ctx.Done():
		return
	case <-gone.ringing.ch:
		return
	case <-gone.held.ch:
	}
	if _, err := s.api(s.ctx, "uuid_kill", ringing); err != nil && !isNoSuchCall(err) {
		a.log.Warn("cannot end the transferred call's far party after the held party hung up", "uuid", ringing, "err", err)
	}
}
