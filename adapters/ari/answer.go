package ari

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Answer makes the extension's alerting connection connected. No ARI call
// can make a ringing SIP phone go off-hook, so the adapter replaces the
// ringing leg with a new call to the device that carries the extension's
// auto-answer headers, and bridges that one to the waiting caller, who
// hears ringing all along. The CallRef stays the same.
func (a *Adapter) Answer(ctx context.Context, c pbx.CallRef) error {
	const op = "answer"
	a.mu.Lock()
	l, release, err := a.claimLeg(op, c, pbx.StateAlerting)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	defer release()
	// Only a call to the extension rings its device; nothing else is answered.
	if l.dir != pbx.Incoming {
		a.mu.Unlock()
		return errState(op, c, l.state)
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
	a.mu.Lock()
	if !a.live(l) || cl.destroyed || (far != "" && a.ended.has(far)) {
		a.mu.Unlock()
		return a.answerAbandoned(ctx, op, c, l, old, far, newID, err == nil)
	}
	if err != nil {
		old.released = false
		cl.dialing = old.id
		a.mu.Unlock()
		undo()
		return originateErr(op, c, err)
	}
	// Point the leg at the new channel before the ringing one goes: its
	// ChannelDestroyed can arrive before the hang-up request returns, and
	// must not be taken for the end of the connection. The ringing channel
	// leaves the call now, not when Asterisk reports its end: Asterisk
	// answers the hang-up before the channel is gone, and its
	// ChannelDestroyed may come after Answer has returned and the next
	// command (HoldCall) looks for the call's one far party.
	if l.ch == old {
		delete(a.swaps, newID)
		nch := a.chans[newID]
		if nch == nil {
			nch = &channel{id: newID, endpoint: endpointKey(ext.Endpoint), state: "Down"}
			a.chans[newID] = nch
		}
		nch.leg = l
		l.ch = nch
		if a.callOf[old.id] == cl {
			delete(cl.members, old.id)
			delete(a.callOf, old.id)
		}
	}
	a.mu.Unlock()
	if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().Hangup(chanKey(old.id), "answered_elsewhere") }); err != nil && httpStatus(err) != 404 {
		a.log.Warn("cannot drop the ringing leg after re-originate", "call", c.String(), "err", err)
	}

	wctx, cancel := context.WithTimeout(ctx, a.opts.AnswerTimeout)
	defer cancel()
	err = a.waitFor(wctx, newID, func(ch *channel) (bool, error) {
		if ch == nil {
			if callerGaveUp(l) {
				return false, errEnded(op, c)
			}
			return false, fmt.Errorf("ari: %s %s: %w: the device hung up the auto-answer call", op, c, pbx.ErrDeviceUnreachable)
		}
		return l.state == pbx.StateConnected, nil
	})
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("ari: %s %s: %w: the device did not auto-answer within %s (check its auto-answer policy); it keeps ringing", op, c, pbx.ErrDeviceUnreachable, a.opts.AnswerTimeout)
	}
	return err
}

// answerAbandoned ends an Answer whose call ended while the auto-answer
// call was being placed: the ringing leg went (the device rejected it, its
// ring time ran out), the device refused the new call at once, or the
// caller gave up. The connection has been reported cleared, or is about to
// be; while Answer had the ringing leg released, the two-party rule did not
// take the rest of the call down, so this does. placed says the new call
// to the device exists.
func (a *Adapter) answerAbandoned(ctx context.Context, op string, c pbx.CallRef, l *leg, old *channel, far, newID string, placed bool) error {
	type hangup struct{ id, reason string }
	var hangups []hangup
	a.mu.Lock()
	cl := l.call
	delete(cl.members, newID)
	delete(a.callOf, newID)
	if cl.pending > 0 {
		cl.pending--
	}
	if !placed {
		delete(a.swaps, newID)
	}
	// A placed channel not seen yet stays in a.swaps: when its events come
	// it joins l, which has either ended (and says nothing more) or ends
	// with it. Without the entry it would be announced as a new call.
	// The caller's own hang-up decides it when it came first: the new
	// call's end may then be reported before or after it.
	callerGone := callerGaveUp(l) || far != "" && a.ended.has(far)
	refused := !a.live(l) && l.ch.id == newID && !callerGone
	if a.live(l) {
		// The caller went: the extension missed the call.
		cc := pbx.CauseCancelled
		l.clearCause = &cc
	} else if far != "" && !a.ended.has(far) {
		// The caller hears why the call ended, as it would have without
		// the answer.
		hangups = append(hangups, hangup{far, hangupReason(l.ch.dialStatus, l.ch.cause())})
		a.spawnDestroy(cl)
	}
	if a.chans[old.id] != nil {
		hangups = append(hangups, hangup{old.id, "normal"})
	}
	if placed && !a.ended.has(newID) {
		hangups = append(hangups, hangup{newID, "normal"})
	}
	a.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	for _, h := range hangups {
		if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().Hangup(chanKey(h.id), h.reason) }); err != nil && httpStatus(err) != 404 {
			a.log.Warn("cannot hang up after an abandoned answer", "call", c.String(), "channel", h.id, "err", err)
		}
	}
	if refused {
		return fmt.Errorf("ari: %s %s: %w: the device refused the auto-answer call", op, c, pbx.ErrDeviceUnreachable)
	}
	return errEnded(op, c)
}

// callerGaveUp says whether the ringing connection l ended, or is being
// ended, because the caller went: the two-party rule marks it so (and the
// core is told "cancelled"). Called with a.mu held.
func callerGaveUp(l *leg) bool {
	return l.clearCause != nil && *l.clearCause == pbx.CauseCancelled
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
