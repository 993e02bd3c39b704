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
	if err != nil {
		a.mu.Lock()
		old.released = false
		cl.dialing = old.id
		a.mu.Unlock()
		undo()
		return originateErr(op, c, err)
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
