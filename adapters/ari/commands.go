package ari

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// wrap names the command and the connection in a failed REST step's error,
// mapped to the pbx sentinel the core turns into a CSTA error code.
func wrap(op string, c pbx.CallRef, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ari: %s %s: %w", op, c, mapErr(err))
}

// originateErr is wrap for a failed call to the extension's own device
// (AnswerCall's auto-answer call, MakeCall's first leg): when Asterisk
// cannot create a channel to the endpoint at all, the device is what the
// CTI client must be told is unreachable, not the PBX.
func originateErr(op string, c pbx.CallRef, err error) error {
	if allocationFailed(err) {
		return fmt.Errorf("ari: %s %s: %w (%v)", op, c, pbx.ErrDeviceUnreachable, err)
	}
	return wrap(op, c, err)
}

// Hold puts the far party on hold at the PBX: it leaves the call's bridge
// and hears music on hold; the phone keeps a silent, connected call. ARI
// raises no event for this, so the adapter reports EventHeld itself.
func (a *Adapter) Hold(ctx context.Context, c pbx.CallRef) error {
	const op = "hold"
	a.mu.Lock()
	l, release, err := a.claimLeg(op, c, pbx.StateConnected)
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
	if !l.call.answered {
		a.mu.Unlock()
		return fmt.Errorf("ari: %s %s: %w: the far party has not answered", op, c, pbx.ErrInvalidState)
	}
	bridge := l.call.bridge
	a.mu.Unlock()

	if err := a.rest(ctx, func(x ari.Client) error { return x.Bridge().RemoveChannel(bridgeKey(bridge), far) }); err != nil {
		return a.holdFailed(ctx, op, c, l, far, bridge, false, err)
	}
	if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().MOH(chanKey(far), a.opts.MOHClass) }); err != nil {
		return a.holdFailed(ctx, op, c, l, far, bridge, true, err)
	}
	a.markHeld(ctx, far, true)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.live(l) {
		return errEnded(op, c)
	}
	l.state = pbx.StateHeld
	l.heldBy = true
	a.emit(pbx.Event{Kind: pbx.EventHeld, Call: l.ref, CSTAID: l.cstaID})
	return nil
}

// holdFailed undoes a hold whose request failed while the call goes on,
// so the connection is what it is still reported as: connected, the far
// party in the call's bridge and hearing no music. music says the failed
// request was starting the music (the party had been taken out of the
// bridge). A request Asterisk did not answer (a timeout, a dropped
// connection) may have been carried out all the same, so its undo is done
// too. Asterisk 22 answers 204 to both undos when there was nothing to
// undo: stopping music that does not play is a no-op, and adding a party
// to the bridge it is in takes it out and back at once. Music that did
// start keeps playing when the party re-joins the bridge, so it is
// stopped first. A call that ended needs no undo.
func (a *Adapter) holdFailed(ctx context.Context, op string, c pbx.CallRef, l *leg, far, bridge string, music bool, err error) error {
	a.mu.Lock()
	ended := !a.live(l) || a.ended.has(far)
	a.mu.Unlock()
	unanswered := mayHaveRun(err)
	if !ended && (music || unanswered) {
		ctx = context.WithoutCancel(ctx)
		var uerrs []error
		undo := func(fn func(ari.Client) error) {
			if uerr := a.rest(ctx, fn); uerr != nil && !partyGone(uerr) {
				uerrs = append(uerrs, uerr)
			}
		}
		if music && unanswered {
			undo(func(x ari.Client) error { return x.Channel().StopMOH(chanKey(far)) })
		}
		// Even with the music still playing, the party is better back in
		// the call the phone is told it has than left outside it.
		undo(func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(bridge), far) })
		if len(uerrs) > 0 {
			a.log.Warn("hold failed and the far party could not be put back into the call", "call", c.String(), "channel", far, "err", errors.Join(uerrs...))
		}
	}
	return a.stepFailed(op, c, l, far, err)
}

// mayHaveRun says a failed request may have been carried out all the same:
// Asterisk did not answer it (a timeout, a dropped connection). One it
// refused was not, nor one never sent for want of a connection: rest
// returns the bare pbx.ErrUnavailable for it, hence the identity check.
func mayHaveRun(err error) bool {
	return httpStatus(err) == 0 && err != pbx.ErrUnavailable
}

// partyGone says an undo's request failed because the call is ending:
// Asterisk answers 404 for a gone channel (/channels/{id}/...) or bridge,
// and 400 "Channel not found" when a bridge's addChannel or removeChannel
// names a gone channel. The hangup's events clear the connection.
func partyGone(err error) bool {
	st := httpStatus(err)
	return st == http.StatusNotFound || st == http.StatusBadRequest
}

// Retrieve takes a call held by the bridge back.
func (a *Adapter) Retrieve(ctx context.Context, c pbx.CallRef) error {
	const op = "retrieve"
	a.mu.Lock()
	l, release, err := a.claimLeg(op, c, pbx.StateHeld)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer release()
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

	// Asterisk answers 204 even when no music plays: a refusal is one.
	if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().StopMOH(chanKey(far)) }); err != nil {
		return a.retrieveFailed(ctx, op, c, l, far, bridge, false, err)
	}
	if err := a.rest(ctx, func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(bridge), far) }); err != nil {
		return a.retrieveFailed(ctx, op, c, l, far, bridge, true, err)
	}
	a.markHeld(ctx, far, false)
	a.mu.Lock()
	defer a.mu.Unlock()
	// A hangup while the requests ran has cleared the connection already;
	// "retrieved" after "cleared" would bring it back to life.
	if !a.live(l) {
		return errEnded(op, c)
	}
	l.state = pbx.StateConnected
	l.heldBy = false
	a.emit(pbx.Event{Kind: pbx.EventRetrieved, Call: l.ref, CSTAID: l.cstaID})
	return nil
}

// retrieveFailed undoes a retrieve whose request failed while the call goes
// on, so the connection is what it is still reported as: held, the far
// party outside the call's bridge on music on hold rather than outside it
// in silence. joining says the failed request was the re-join (the music
// was stopped). A request Asterisk did not answer (a timeout, a dropped
// connection) may have been carried out all the same, so its undo is done
// too. Asterisk 22 refuses taking out a party that never joined (422
// "Channel not in this bridge"), which is the state wanted, and answers 204
// to starting the music that still plays, which changes nothing. A call
// that ended needs no undo: its channels are gone and the connection has
// been reported cleared.
func (a *Adapter) retrieveFailed(ctx context.Context, op string, c pbx.CallRef, l *leg, far, bridge string, joining bool, err error) error {
	a.mu.Lock()
	ended := !a.live(l) || a.ended.has(far)
	a.mu.Unlock()
	unanswered := mayHaveRun(err)
	if !ended && (joining || unanswered) {
		ctx = context.WithoutCancel(ctx)
		var uerr error
		if joining && unanswered {
			uerr = a.rest(ctx, func(x ari.Client) error { return x.Bridge().RemoveChannel(bridgeKey(bridge), far) })
			if httpStatus(uerr) == http.StatusUnprocessableEntity {
				uerr = nil
			}
		}
		// A party that could not be taken out of the bridge talks with the
		// phone again; music would only drown the conversation.
		if uerr == nil {
			uerr = a.rest(ctx, func(x ari.Client) error { return x.Channel().MOH(chanKey(far), a.opts.MOHClass) })
		}
		if uerr != nil && !partyGone(uerr) {
			a.log.Warn("retrieve failed and the far party could not be put back on hold", "call", c.String(), "channel", far, "err", uerr)
		}
	}
	return a.stepFailed(op, c, l, far, err)
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
	if c.ID == "" || a.legs[c] != nil {
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
	// The connection is the adapter's from the moment it asks for the
	// channel: Asterisk may answer the originate before any event about
	// the channel, and a ClearConnection sent as soon as MakeCall returns
	// must find it. Its events then update this channel.
	dev := &channel{id: devID, endpoint: endpointKey(ext.Endpoint), state: "Down"}
	dev.leg = &leg{ch: dev, ref: c, dir: pbx.Outgoing, cstaID: req.CSTAID, remote: pbx.Party{Number: number}, call: cl}
	if a.chans[devID] == nil {
		a.chans[devID] = dev
		a.legs[c] = dev.leg
	}
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
		if l := a.legs[c]; l != nil && l.ch.id == devID {
			delete(a.legs, c)
		}
		if ch := a.chans[devID]; ch == dev {
			delete(a.chans, devID)
		}
		a.mu.Unlock()
		return originateErr(op, c, err)
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
		return errState(op, c, l.state)
	}
	far, ok := a.farOf(l)
	a.mu.Unlock()
	if !ok {
		return errNotOwned(op, c)
	}
	return wrap(op, c, a.rest(ctx, func(x ari.Client) error { return x.Channel().SendDTMF(chanKey(far), digits, nil) }))
}
