package esl

import (
	"cmp"
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Taking live calls over after a restart or a reconnect (issue 19).
//
// `show channels` reads FreeSWITCH's core database, which its SQL thread
// writes in batches: a channel is listed up to about 200 ms after it was
// created (switch_core_sqldb.c, switch_user_sql_thread: it waits up to
// 40 × 5 ms between batches while fewer than 500 statements are queued).
// A bridge restarted just after a call was answered would not find the
// call in its first listing. `status` counts FreeSWITCH's sessions from
// memory, so the resync reads the listing again while it has fewer rows
// than FreeSWITCH has sessions, for at most syncSettle.
//
// A call that carries a stored csta_id is one the CTI software knows. It
// is taken over silently however it is found — the resync, the recheck a
// second later, or its first event — that is, it reaches the core in an
// EventSync, never as a new call (Offered, Originated), which the core
// would announce a second time. Calls without a csta_id started while no
// bridge was watching and are reported as new, once.

const (
	syncSettle = time.Second           // longest wait for the listing to catch up
	syncRetry  = 25 * time.Millisecond // between two readings meanwhile
)

var sessionCountRe = regexp.MustCompile(`(?m)^(\d+) session\(s\) - peak`)

// sessionCount reads how many sessions FreeSWITCH has (`status`); ok is
// false when the reply does not say.
func (a *Adapter) sessionCount(s *session) (n int, ok bool, err error) {
	body, err := s.api(s.ctx, "status", "")
	if err != nil {
		if errors.Is(err, pbx.ErrUnavailable) {
			return 0, false, err
		}
		return 0, false, nil
	}
	m := sessionCountRe.FindStringSubmatch(body)
	if m == nil {
		return 0, false, nil
	}
	n, err = strconv.Atoi(m[1])
	return n, err == nil, nil
}

// settledRows lists the channels once the listing has as many rows as
// FreeSWITCH has sessions, or after syncSettle. Other calls on a shared
// FreeSWITCH may keep the two apart for a while; the recheck (and the
// silent takeover) covers a channel the listing still lacks then.
func (a *Adapter) settledRows(s *session) ([]channelRow, error) {
	deadline := time.Now().Add(syncSettle)
	for {
		n, known, err := a.sessionCount(s)
		if err != nil {
			return nil, err
		}
		rows, err := a.listRows(s)
		if err != nil {
			return nil, err
		}
		if !known || len(rows) >= n || !time.Now().Before(deadline) {
			return rows, nil
		}
		t := time.NewTimer(syncRetry)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return nil, context.Cause(s.ctx)
		case <-t.C:
		}
	}
}

// syncedState sets a leg's state from a channel dump or a first event: its
// answer and hold state as FreeSWITCH has it now.
func syncedState(l *leg, ev chEvent) {
	l.answered = ev.Answer == "answered"
	l.held = ev.State == "HELD"
	l.connected = l.answered && (!l.makeCall && !l.swapLeg || l.other != "" || l.makeCall && answersApp(ev.App))
}

// callInfo is a leg as EventSync lists it.
func callInfo(l *leg) pbx.CallInfo {
	st := pbx.StateInitiated
	switch {
	case l.held && !l.xfer && !l.xferReported:
		st = pbx.StateHeld
	case l.connected:
		st = pbx.StateConnected
	case l.dir == pbx.Incoming && !l.makeCall:
		st = pbx.StateAlerting
	}
	return pbx.CallInfo{Call: l.ref(), State: st, Direction: l.dir, Remote: l.remote, SIPCallID: l.sipID, CSTAID: l.cstaID}
}

// reported says whether the core knows the leg's connection: every
// connection the adapter tracks, except an offer still waiting for its
// Call-ID and a MakeCall's (or an orphan's) device that has not answered.
func reported(l *leg) bool {
	return !l.offerPending && !((l.makeCall || l.orphan) && !l.answered)
}

// takeOver emits an EventSync of every connection the core knows, l
// (just found, with a stored csta_id) among them: the core takes l over
// silently and finds the others as they are. s.mu is held.
func (s *callState) takeOver(l *leg) {
	s.log.Info("live call found after connecting, taken over", "ext", l.ext, "uuid", l.uuid, "csta_id", l.cstaID)
	var calls []pbx.CallInfo
	for ref, u := range s.refs {
		if x := s.legs[u]; x != nil && x.ref() == ref && reported(x) {
			calls = append(calls, callInfo(x))
		}
	}
	slices.SortFunc(calls, func(a, b pbx.CallInfo) int {
		return cmp.Or(cmp.Compare(a.Call.Ext, b.Call.Ext), cmp.Compare(a.Call.ID, b.Call.ID))
	})
	s.emit(pbx.Event{Kind: pbx.EventSync, Calls: calls})
}

// storedTakeover reports whether a channel found after connecting is one
// the core is to take over silently: it carries a csta_id the core gave
// it, and its connection is one the core would know (a MakeCall's device
// that has not answered yet is reported once it does).
func storedTakeover(l *leg) bool {
	return l.cstaID != 0 && reported(l)
}

// answersApp: dialplan applications that answer the call (or run on an
// answered one) and so connect a MakeCall whose destination is not a
// channel but an application (issue 16): `answer` itself, and those that
// answer by themselves. `bridge`, `transfer`, `pre_answer`, `ring_ready`,
// `playback` and the like do not: the far party has not answered (early
// media is not connected).
func answersApp(app string) bool {
	switch app {
	case "answer", "echo", "delay_echo", "conference", "voicemail", "ivr", "fifo", "callcenter", "valet_park":
		return true
	}
	return false
}

// appStarted: the device's channel of a MakeCall runs a dialplan
// application that answers (CHANNEL_EXECUTE): the destination is that
// application, which has answered now. s.mu is held.
func (s *callState) appStarted(l *leg, ev chEvent) {
	if !l.makeCall || !l.answered || l.connected || l.swapped || !answersApp(ev.App) {
		return
	}
	if p := s.remoteOf(l, ev); p.Number != "" {
		l.remote = p
	}
	s.connected(l)
}
