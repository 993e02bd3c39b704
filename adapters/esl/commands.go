package esl

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// newUUID returns a random (version 4) UUID for origination_uuid.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// wait blocks until one of the waiter's signals, the timeout or ctx.
func wait(ctx context.Context, w *waiter, timeout time.Duration) (signal, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case sig := <-w.ch:
		return sig, nil
	case <-t.C:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (a *Adapter) usePhoneEvents(ctx context.Context, s *session, l legView) bool {
	switch a.opts.PhoneEvents {
	case PhoneEventsAlways:
		return true
	case PhoneEventsNever:
		return false
	}
	if l.talk {
		return true
	}
	// FreeSWITCH copies a directory user's <variables> onto a channel that
	// calls the user (user/1001) only once the phone has answered, so a
	// ringing channel never shows csta_allow_events. Ask the directory.
	user, domain, ok := strings.Cut(l.presence, "@")
	if !ok || !isToken(user) || !isToken(domain) {
		return false
	}
	body, err := s.api(ctx, "user_data", user+"@"+domain+" var csta_allow_events")
	if err != nil || !advertisesTalk(body) {
		return false
	}
	a.state.update(l.uuid, func(x *leg) { x.talk = true })
	return true
}

// phoneEvent sends uuid_phone_event and waits for its effect: FreeSWITCH
// answers +OK even when the phone rejects the NOTIFY. It reports whether
// the phone did it.
func (a *Adapter) phoneEvent(ctx context.Context, s *session, l legView, event string, want signal) (bool, error) {
	w := a.state.watch(l.uuid, want, sigGone)
	defer a.state.unwatch(w)
	if _, err := s.api(ctx, "uuid_phone_event", l.uuid+" "+event); err != nil {
		if isNoSuchCall(err) || errors.Is(err, pbx.ErrUnavailable) {
			return false, err
		}
		a.log.Info("phone refused remote control, using the PBX-side method", "uuid", l.uuid, "event", event, "err", err)
		return false, nil
	}
	sig, err := wait(ctx, w, a.opts.ConfirmTimeout)
	switch {
	case err != nil:
		return false, err
	case sig == sigGone:
		return false, pbx.ErrNoSuchCall
	case sig == want:
		return true, nil
	}
	a.log.Info("phone did not act on remote control, using the PBX-side method", "uuid", l.uuid, "event", event)
	return false, nil
}

// Answer makes the extension's alerting connection connected.
func (a *Adapter) Answer(ctx context.Context, c pbx.CallRef) error {
	s, err := a.session()
	if err != nil {
		return err
	}
	l, err := a.state.lookup(c)
	if err != nil {
		return fmt.Errorf("esl: answer %s: %w", c, err)
	}
	if l.dir != pbx.Incoming || l.answered {
		return fmt.Errorf("esl: answer %s: not alerting: %w", c, pbx.ErrInvalidState)
	}
	if a.usePhoneEvents(ctx, s, l) {
		bridged := a.state.watch(l.uuid, sigBridged, sigGone)
		ok, err := a.phoneEvent(ctx, s, l, "talk", sigAnswered)
		if err == nil && ok {
			a.awaitBridge(ctx, l.uuid, bridged)
		}
		a.state.unwatch(bridged)
		if err != nil {
			return fmt.Errorf("esl: answer %s: %w", c, err)
		}
		if ok {
			return nil
		}
	}
	if err := a.answerBySwap(ctx, s, c, l); err != nil {
		return fmt.Errorf("esl: answer %s: %w", c, err)
	}
	return nil
}

// awaitBridge waits, after a phone answered in place, until FreeSWITCH
// has bridged its channel to the caller (CHANNEL_BRIDGE follows
// CHANNEL_ANSWER by some 20-70 ms). Until then the call has no partner to
// hold, and a phone's hold re-INVITE that FreeSWITCH 1.10 handles while
// the bridge starts transcoding can deadlock the two channels for good
// (mod_sofia's session mutex against the codec write lock: the sofia
// thread activating the re-INVITE's media waits for the codec, the
// bridge's first transcoded frame holds the codec and waits for the
// session to take TRANSCODING_NECESSARY). AnswerCall therefore returns
// once the call is connected end to end; where no bridge follows (the
// caller is parked or runs an application) the wait ends after
// ConfirmTimeout and the answer stands.
func (a *Adapter) awaitBridge(ctx context.Context, uuid string, w *waiter) {
	if sig, err := wait(ctx, w, a.opts.ConfirmTimeout); err == nil && sig == 0 {
		a.log.Debug("no bridge event after the phone answered", "uuid", uuid)
	}
}

// answerBySwap calls the device again with auto-answer headers, bridges the
// waiting caller to the new channel and drops the ringing one. The CallRef
// moves to the new channel.
func (a *Adapter) answerBySwap(ctx context.Context, s *session, c pbx.CallRef, l legView) error {
	if l.other == "" {
		return fmt.Errorf("caller channel unknown: %w", pbx.ErrNotSupported)
	}
	x, ok := a.state.extension(l.ext)
	if !ok {
		return fmt.Errorf("extension %s is no longer mapped: %w", l.ext, pbx.ErrNoSuchCall)
	}
	vars, err := autoAnswerVars(x.AutoAnswerHeaders)
	if err != nil {
		return fmt.Errorf("%v: %w", err, pbx.ErrNotSupported)
	}
	if a.ringsOthers(ctx, s, l) {
		// FreeSWITCH 1.10.12 drops a caller whose ring-all bridge
		// uuid_bridge takes away (502, DESTINATION_OUT_OF_ORDER, every
		// phone cancelled): the swap would lose the call. It keeps
		// ringing; the phone's own answer (or its talk event) takes it.
		return fmt.Errorf("the caller rings other phones too (a ring group), and FreeSWITCH drops it if the auto-answer swap takes it: %w", pbx.ErrNotSupported)
	}
	id := newUUID()
	legVars := append([]chanVar{
		{"origination_uuid", id},
		{"originate_timeout", strconv.Itoa(max(1, int(a.opts.AnswerTimeout/time.Second)))},
		// Keep the auto-answer headers off any channel this one is later
		// bridged to (mod_sofia copies sip_h_* variables by default).
		{"sip_copy_custom_headers", "false"},
	}, vars...)
	if err := checkVarValue(l.remote.Name); err == nil && l.remote.Name != "" {
		legVars = append(legVars, chanVar{"origination_caller_id_name", l.remote.Name})
	}
	if err := checkVarValue(l.remote.Number); err == nil && l.remote.Number != "" {
		legVars = append(legVars, chanVar{"origination_caller_id_number", l.remote.Number})
	}
	if l.cstaID != 0 {
		legVars = append(legVars, chanVar{"csta_id", strconv.Itoa(l.cstaID)})
	}

	a.state.mu.Lock()
	a.state.expect[id] = &leg{uuid: id, ext: l.ext, id: c.ID, dir: pbx.Incoming, swapLeg: true, replaces: l.uuid,
		remote: l.remote, cstaID: l.cstaID, other: l.other, expected: a.state.now()}
	a.state.mu.Unlock()
	// A session that ended hands every swap under way to the resync after
	// the reconnect (callState.settleSwaps), which goes by FreeSWITCH's
	// channels. This command then only gives up: a change it makes to the
	// state under a.state.mu is made only while its session is alive, that
	// is before that resync.
	lost := func() error {
		return fmt.Errorf("the connection to FreeSWITCH was lost: %w", pbx.ErrUnavailable)
	}
	dropNew := func() {
		// The new channel never stood for the connection: it is hung up
		// (after the reconnect if the link is down now), its end is silent.
		live := s.ctx.Err() == nil
		a.state.doom(id, "", live)
		if live {
			a.hangUp(context.WithoutCancel(ctx), s, kill{uuid: id})
		}
	}

	job, res, err := s.bgapi(ctx, "originate", varBlock("[", "]", legVars)+x.Endpoint+" &park()")
	if err != nil {
		dropNew()
		return err
	}
	timer := time.NewTimer(a.opts.AnswerTimeout + a.opts.CommandTimeout)
	defer timer.Stop()
	var out string
	select {
	case out = <-res:
	case <-timer.C:
		a.jobs.forget(job)
		dropNew()
		return fmt.Errorf("the device did not answer the auto-answer call: %w", pbx.ErrDeviceUnreachable)
	case <-ctx.Done():
		a.jobs.forget(job)
		dropNew()
		return ctx.Err()
	case <-s.ctx.Done():
		a.jobs.forget(job)
		dropNew()
		return lost()
	}
	if err := checkReply("originate", out); err != nil {
		dropNew()
		return err
	}

	// The device answered the new call: from here on the connection is the
	// new channel; the ringing one ends silently.
	var alive, answered, live bool
	a.state.mu.Lock()
	if live = s.ctx.Err() == nil; live {
		if old := a.state.legs[l.uuid]; old != nil && !old.ended {
			alive, answered = true, old.answered
			if !answered {
				old.swapped = true
				a.state.refs[c] = id
				if nl := a.state.legs[id]; nl != nil {
					nl.other = l.other
				}
			}
		}
	}
	a.state.mu.Unlock()
	switch {
	case !live:
		dropNew()
		return lost()
	case !alive:
		dropNew()
		return fmt.Errorf("the call ended meanwhile: %w", pbx.ErrNoSuchCall)
	case answered:
		// Picked up at the phone while the auto-answer call was set up.
		dropNew()
		return nil
	}
	// uuid_bridge answers +OK before the bridge exists, and FreeSWITCH
	// reports the device's answer and the bridge a moment after the job
	// result and the +OK. Answer returns once the bridge is there and the
	// new channel is the connection, answered and connected: a HoldCall
	// sent the moment AnswerCall returns must find the call connected, and
	// uuid_hold must find the caller as the new channel's partner (its
	// hold music goes to the partner).
	bridged := a.state.watch(id, sigBridged, sigGone)
	defer a.state.unwatch(bridged)
	if _, err := s.api(ctx, "uuid_bridge", l.other+" "+id); err != nil {
		a.state.mu.Lock()
		live = s.ctx.Err() == nil
		if old := a.state.legs[l.uuid]; old != nil && live {
			old.swapped = false
			a.state.refs[c] = l.uuid
		}
		a.state.mu.Unlock()
		if !live {
			// FreeSWITCH may have made the bridge before the link was
			// lost: the resync finds out which channel is the connection.
			return lost()
		}
		dropNew()
		return err
	}
	sig, err := wait(ctx, bridged, a.opts.CommandTimeout)
	switch {
	case err != nil:
		return err
	case sig == sigGone:
		return fmt.Errorf("the device's new call ended before it was bridged: %w", pbx.ErrNoSuchCall)
	case sig == 0:
		// FreeSWITCH said +OK, so the bridge is being made.
		a.log.Warn("no bridge event after uuid_bridge of an answer swap", "caller", l.other, "uuid", id)
	}
	if !a.state.swapDone(s, c, id, l.other) {
		return lost()
	}
	// Bridging the caller away already cancels the ringing channel; make sure.
	if _, err := s.api(ctx, "uuid_kill", l.uuid+" LOSE_RACE"); err != nil && !isNoSuchCall(err) {
		a.log.Warn("cannot drop the ringing channel after answer", "uuid", l.uuid, "err", err)
	}
	return nil
}

// ringsOthers reports whether the caller of l also rings other phones
// (a ring group: `bridge user/1001,user/1002`, group_call): another mapped
// extension's channel it calls, or the data of the bridge it runs.
func (a *Adapter) ringsOthers(ctx context.Context, s *session, l legView) bool {
	if a.state.siblings(l.other, l.uuid) {
		return true
	}
	app, err := s.api(ctx, "uuid_getvar", l.other+" current_application")
	if err != nil || strings.TrimSpace(app) != "bridge" {
		return false
	}
	data, err := s.api(ctx, "uuid_getvar", l.other+" current_application_data")
	return err == nil && strings.Contains(data, ",")
}

// Hold puts the far party of a connected call on hold.
func (a *Adapter) Hold(ctx context.Context, c pbx.CallRef) error {
	return a.holdOrRetrieve(ctx, c, true)
}

// Retrieve takes a held call back.
func (a *Adapter) Retrieve(ctx context.Context, c pbx.CallRef) error {
	return a.holdOrRetrieve(ctx, c, false)
}

func (a *Adapter) holdOrRetrieve(ctx context.Context, c pbx.CallRef, hold bool) error {
	op, event, want, args := "retrieve", "talk", sigRetrieved, "off "
	if hold {
		op, event, want, args = "hold", "hold", sigHeld, ""
	}
	s, err := a.session()
	if err != nil {
		return err
	}
	l, err := a.state.lookup(c)
	if err != nil {
		return fmt.Errorf("esl: %s %s: %w", op, c, err)
	}
	if !l.connected || l.held != !hold {
		return fmt.Errorf("esl: %s %s: call is %s: %w", op, c, stateWord(l), pbx.ErrInvalidState)
	}
	mark := func() {
		a.state.update(l.uuid, func(x *leg) {
			x.bridgeHoldUntil = a.state.now().Add(a.opts.ConfirmTimeout + a.opts.CommandTimeout)
		})
	}
	mark()
	if a.usePhoneEvents(ctx, s, l) {
		ok, err := a.phoneEvent(ctx, s, l, event, want)
		if err != nil {
			return fmt.Errorf("esl: %s %s: %w", op, c, err)
		}
		if ok {
			return nil
		}
		mark()
	}
	// uuid_hold answers +OK even for a channel that does not exist.
	out, err := s.api(ctx, "uuid_exists", l.uuid)
	if err != nil {
		return fmt.Errorf("esl: %s %s: %w", op, c, err)
	}
	if strings.TrimSpace(out) != "true" {
		return fmt.Errorf("esl: %s %s: %w", op, c, pbx.ErrNoSuchCall)
	}
	// FreeSWITCH reports the hold change a moment after its +OK. The
	// request is answered once the state machine has seen it: a RetrieveCall
	// right after a HoldCall must find the call held.
	if hold {
		// Hold music starts on the partner a moment after uuid_hold's
		// events (160 ms after CHANNEL_HOLD in traces/freeswitch/d_hold).
		a.state.update(l.uuid, func(x *leg) { x.mohPending, x.mohSince = true, a.state.now() })
	} else if l.mohPending {
		a.waitHoldMusic(ctx, l)
	}
	w := a.state.watch(l.uuid, want, sigGone)
	defer a.state.unwatch(w)
	if _, err := s.api(ctx, "uuid_hold", args+l.uuid); err != nil {
		if hold {
			a.state.update(l.uuid, func(x *leg) { x.mohPending = false })
		}
		return fmt.Errorf("esl: %s %s: %w", op, c, err)
	}
	sig, err := wait(ctx, w, a.opts.ConfirmTimeout)
	switch {
	case err != nil:
		return fmt.Errorf("esl: %s %s: %w", op, c, err)
	case sig == sigGone:
		// It ended instead (FreeSWITCH says +OK for a channel it no longer has).
		return fmt.Errorf("esl: %s %s: %w", op, c, pbx.ErrNoSuchCall)
	case sig == 0:
		// FreeSWITCH said +OK, so the change is made; take it as done
		// (its event, should it still come, then changes nothing).
		a.log.Warn("no hold event after uuid_hold", "uuid", l.uuid, "op", op)
		a.state.update(l.uuid, func(x *leg) {
			x.held = hold
			x.bridgeHoldUntil = time.Time{}
		})
	}
	return nil
}

// waitHoldMusic waits until the hold music uuid_hold queued on the
// partner of l has started, or until HoldMusicWait after the hold.
// `uuid_hold off` stops the partner's music only if it is playing
// (switch_ivr_unhold → switch_channel_stop_broadcast, which tests
// CF_BROADCAST): music still queued when the retrieve arrives starts
// afterwards and loops for good, and the caller never hears the phone
// again. The bound counts from the hold, so only a retrieve sent right
// after it waits; where no music plays (hold_music unset, a missing
// local_stream, a loopback partner) nothing starts and the wait is that
// bound at most, not a confirmation timeout per retrieve.
func (a *Adapter) waitHoldMusic(ctx context.Context, l legView) {
	w := a.state.watch(l.uuid, sigMusic, sigGone)
	defer a.state.unwatch(w)
	pending, since := true, time.Time{}
	a.state.update(l.uuid, func(x *leg) { pending, since = x.mohPending, x.mohSince })
	if !pending {
		return
	}
	left := a.opts.HoldMusicWait - a.state.now().Sub(since)
	if left <= 0 {
		return
	}
	if sig, err := wait(ctx, w, left); err == nil && sig == 0 {
		a.log.Debug("no hold music seen starting on the held call's partner; retrieving", "uuid", l.uuid, "partner", l.other, "waited", left)
	}
}

func stateWord(l legView) string {
	switch {
	case l.held:
		return "held"
	case l.connected:
		return "connected"
	case l.dir == pbx.Incoming:
		return "alerting"
	default:
		return "initiated"
	}
}

// ClearConnection releases the extension's connection (reject when alerting).
func (a *Adapter) ClearConnection(ctx context.Context, c pbx.CallRef) error {
	s, err := a.session()
	if err != nil {
		return err
	}
	l, err := a.state.lookup(c)
	if err != nil {
		return fmt.Errorf("esl: clear connection %s: %w", c, err)
	}
	if conf := a.conferenced(l.uuid); conf != nil {
		// Its far party leaves the conference with it (conference.go).
		if err := a.confClear(ctx, s, conf, l.uuid); err != nil {
			return fmt.Errorf("esl: clear connection %s: %w", c, err)
		}
		return nil
	}
	args := l.uuid
	if l.dir == pbx.Incoming && !l.answered {
		a.state.update(l.uuid, func(x *leg) { x.rejected = true })
		args += " CALL_REJECTED"
	}
	if _, err := s.api(ctx, "uuid_kill", args); err != nil {
		a.state.update(l.uuid, func(x *leg) { x.rejected = false })
		return fmt.Errorf("esl: clear connection %s: %w", c, err)
	}
	return nil
}

// ClearCall releases every connection of the call.
func (a *Adapter) ClearCall(ctx context.Context, c pbx.CallRef) error {
	s, err := a.session()
	if err != nil {
		return err
	}
	l, err := a.state.lookup(c)
	if err != nil {
		return fmt.Errorf("esl: clear call %s: %w", c, err)
	}
	if l.other != "" {
		if _, err := s.api(ctx, "uuid_kill", l.other); err != nil && !isNoSuchCall(err) {
			return fmt.Errorf("esl: clear call %s: %w", c, err)
		}
	}
	if _, err := s.api(ctx, "uuid_kill", l.uuid); err != nil {
		if isNoSuchCall(err) && l.other != "" {
			return nil // gone with its partner
		}
		return fmt.Errorf("esl: clear call %s: %w", c, err)
	}
	return nil
}

// SingleStepTransfer moves the far party of c to destination and releases
// the extension's leg.
func (a *Adapter) SingleStepTransfer(ctx context.Context, c pbx.CallRef, destination string) error {
	s, err := a.session()
	if err != nil {
		return err
	}
	dest, err := cleanDestination(destination)
	if err != nil {
		return fmt.Errorf("esl: single step transfer %s: %v: %w", c, err, pbx.ErrInvalidDestination)
	}
	l, err := a.state.lookup(c)
	if err != nil {
		return fmt.Errorf("esl: single step transfer %s: %w", c, err)
	}
	w := a.state.watch(l.uuid, sigUnbridged, sigGone)
	defer a.state.unwatch(w)
	a.state.update(l.uuid, func(x *leg) { x.xfer, x.xferKind = true, pbx.TransferBlind })
	if _, err := s.api(ctx, "uuid_transfer", l.uuid+" -bleg "+dest+" XML "+a.opts.Context); err != nil {
		a.state.update(l.uuid, func(x *leg) { x.xfer = false })
		return fmt.Errorf("esl: single step transfer %s: %w", c, err)
	}
	// The a-leg of a call stays up after its partner was transferred away;
	// release it once the partner has left the bridge (killing it earlier
	// could take the partner down with it).
	sig, err := wait(ctx, w, a.opts.ConfirmTimeout)
	if err != nil || sig == sigGone {
		return nil
	}
	if _, err := s.api(ctx, "uuid_kill", l.uuid); err != nil && !isNoSuchCall(err) {
		a.log.Warn("cannot release the transferring channel", "uuid", l.uuid, "err", err)
	}
	return nil
}

// Transfer connects the far parties of held and active and releases the
// extension's two legs.
func (a *Adapter) Transfer(ctx context.Context, held, active pbx.CallRef) error {
	s, err := a.session()
	if err != nil {
		return err
	}
	h, err := a.state.lookup(held)
	if err != nil {
		return fmt.Errorf("esl: transfer %s: %w", held, err)
	}
	ac, err := a.state.lookup(active)
	if err != nil {
		return fmt.Errorf("esl: transfer %s: %w", active, err)
	}
	if hf, af, ok := a.confLeave(h.uuid, ac.uuid); ok {
		// The extension leaves its conference: its far parties talk on.
		h.other, ac.other = hf, af
	} else if h.uuid != ac.uuid && ringingConsultation(ac) {
		return a.transferRinging(ctx, s, held, active, h, ac)
	}
	if h.other == "" || ac.other == "" || h.uuid == ac.uuid {
		return fmt.Errorf("esl: transfer %s to %s: far parties unknown: %w", held, active, pbx.ErrInvalidState)
	}
	for _, u := range []string{h.uuid, ac.uuid} {
		a.state.update(u, func(x *leg) { x.xfer, x.xferKind = true, pbx.TransferAttended })
	}
	// uuid_bridge answers +OK before the bridge exists. If a far party
	// hangs up before then, FreeSWITCH 1.10 leaves the other one parked
	// for good, so the extension's legs are released (and the request
	// answered) only once the far parties are bridged.
	w := a.state.watch(h.other, sigBridged)
	defer a.state.unwatch(w)
	if _, err := s.api(ctx, "uuid_bridge", h.other+" "+ac.other); err != nil {
		for _, u := range []string{h.uuid, ac.uuid} {
			a.state.update(u, func(x *leg) { x.xfer = false })
		}
		return fmt.Errorf("esl: transfer %s to %s: %w", held, active, err)
	}
	if sig, err := wait(ctx, w, a.opts.CommandTimeout); err != nil {
		return fmt.Errorf("esl: transfer %s to %s: %w", held, active, err)
	} else if sig != sigBridged {
		a.log.Warn("no bridge event after uuid_bridge, releasing the transferring channels anyway",
			"held_far", h.other, "active_far", ac.other)
	}
	// With hangup_after_bridge the extension's legs are usually gone
	// already: "-ERR No such channel!" is fine then.
	for _, u := range []string{h.uuid, ac.uuid} {
		if _, err := s.api(ctx, "uuid_kill", u); err != nil && !isNoSuchCall(err) {
			a.log.Warn("cannot release a transferring channel", "uuid", u, "err", err)
		}
	}
	return nil
}

// MakeCall calls the extension's device first, then the destination.
func (a *Adapter) MakeCall(ctx context.Context, req pbx.MakeCallRequest) error {
	s, err := a.session()
	if err != nil {
		return err
	}
	c := req.Call
	dest, err := cleanDestination(req.Destination)
	if err != nil {
		return fmt.Errorf("esl: make call %s: %v: %w", c, err, pbx.ErrInvalidDestination)
	}
	x, ok := a.state.extension(c.Ext)
	if !ok {
		return fmt.Errorf("esl: make call %s: extension not mapped: %w", c, pbx.ErrDeviceUnreachable)
	}
	id := newUUID()
	legVars := []chanVar{{"origination_uuid", id}, {"csta_makecall", "true"}}
	if req.CSTAID != 0 {
		legVars = append(legVars, chanVar{"csta_id", strconv.Itoa(req.CSTAID)})
	}
	if req.AutoAnswer {
		vars, err := autoAnswerVars(x.AutoAnswerHeaders)
		if err != nil {
			return fmt.Errorf("esl: make call %s: %v: %w", c, err, pbx.ErrNotSupported)
		}
		// mod_sofia copies a channel's sip_h_* variables (and the
		// Call-Info that sip_auto_answer adds) to every channel it
		// bridges to: without this the destination would auto-answer too.
		legVars = append(legVars, vars...)
		legVars = append(legVars, chanVar{"sip_copy_custom_headers", "false"})
	}
	// The device shows the number it is about to call.
	global := []chanVar{{"origination_caller_id_number", dest}, {"origination_caller_id_name", dest}}
	args := varBlock("{", "}", global) + varBlock("[", "]", legVars) + x.Endpoint + " " + dest + " XML " + a.opts.Context

	a.state.mu.Lock()
	if _, busy := a.state.refs[c]; busy {
		a.state.mu.Unlock()
		return fmt.Errorf("esl: make call %s: connection id in use: %w", c, pbx.ErrInvalidState)
	}
	a.state.expect[id] = &leg{uuid: id, ext: c.Ext, id: c.ID, dir: pbx.Outgoing, makeCall: true,
		remote: pbx.Party{Number: dest}, cstaID: req.CSTAID, expected: a.state.now()}
	a.state.refs[c] = id
	a.state.mu.Unlock()

	// Once the originate may have reached FreeSWITCH, a failure does not
	// mean that the device is not called: the channel may come later (a
	// slow FreeSWITCH), or already be there with its events still in the
	// reorder window (a device that refuses at once). abandonMakeCall
	// keeps such a channel from being taken for a call to the extension.
	w := a.state.watch(id, sigCreated, sigGone)
	defer a.state.unwatch(w)
	job, res, err := s.bgapi(ctx, "originate", args)
	if err != nil {
		a.state.abandonMakeCall(id, c, true)
		return fmt.Errorf("esl: make call %s: %w", c, err)
	}
	timer := time.NewTimer(a.opts.CommandTimeout)
	defer timer.Stop()
	select {
	case <-w.ch:
		// The device is being called; the rest is reported as events.
		a.jobs.forget(job)
		return nil
	case out := <-res:
		if err := checkReply("originate", out); err != nil {
			a.state.abandonMakeCall(id, c, true)
			return fmt.Errorf("esl: make call %s: %w", c, err)
		}
		return nil
	case <-timer.C:
		a.jobs.forget(job)
		if a.state.abandonMakeCall(id, c, false) {
			return nil // reported just now
		}
		return fmt.Errorf("esl: make call %s: FreeSWITCH did not start the call in %v: %w", c, a.opts.CommandTimeout, pbx.ErrUnavailable)
	case <-ctx.Done():
		a.jobs.forget(job)
		if a.state.abandonMakeCall(id, c, false) {
			return nil
		}
		return ctx.Err()
	}
}

// TagCall stores the csta_id on the channel, so a restarted bridge reads it
// back in the resync.
func (a *Adapter) TagCall(ctx context.Context, c pbx.CallRef, cstaID int) error {
	a.tags.add()
	defer a.tags.done()
	s, err := a.session()
	if err != nil {
		return err
	}
	l, err := a.state.lookup(c)
	if err != nil {
		return fmt.Errorf("esl: tag %s: %w", c, err)
	}
	if _, err := s.api(ctx, "uuid_setvar", l.uuid+" csta_id "+strconv.Itoa(cstaID)); err != nil {
		return fmt.Errorf("esl: tag %s: %w", c, err)
	}
	a.state.update(l.uuid, func(x *leg) { x.cstaID = cstaID })
	return nil
}

// SendDTMF sends DTMF digits on the extension's channel.
func (a *Adapter) SendDTMF(ctx context.Context, c pbx.CallRef, digits string) error {
	if err := checkDTMF(digits); err != nil {
		return fmt.Errorf("esl: dtmf %s: %v: %w", c, err, pbx.ErrInvalidDestination)
	}
	s, err := a.session()
	if err != nil {
		return err
	}
	l, err := a.state.lookup(c)
	if err != nil {
		return fmt.Errorf("esl: dtmf %s: %w", c, err)
	}
	if !l.connected {
		return fmt.Errorf("esl: dtmf %s: call is %s: %w", c, stateWord(l), pbx.ErrInvalidState)
	}
	if _, err := s.api(ctx, "uuid_send_dtmf", l.uuid+" "+digits); err != nil {
		return fmt.Errorf("esl: dtmf %s: %w", c, err)
	}
	return nil
}
