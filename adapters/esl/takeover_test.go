package esl

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// restartScene: 1001 calls 1002 (d_hold) and 1002 answers while no
// bridge is connected; both channels carry the csta_ids the previous
// bridge stored (1001: 5, 1002: -5) unless tagged is false. Then the
// adapter starts. model tunes the FreeSWITCH first.
type restartScene struct {
	h    *harness
	m    *fsModel
	c    *fsCall
	clk  *manualClock
	a, b string // 1001's and 1002's channel
}

func startAfterCall(t *testing.T, tagged bool, model func(m *fsModel)) *restartScene {
	x := &restartScene{clk: newManualClock()}
	x.h = start(t, func(o *Options, s *fakeesl.Server) {
		x.m = newFSModel(t, s)
		if model != nil {
			model(x.m)
		}
		x.c = x.m.newCall("d_hold")
		x.a, x.b = x.c.id(holdA), x.c.id(holdB)
		x.m.play(x.c.until("CALL_UPDATE", holdA)...)
		if tagged {
			x.m.mu.Lock()
			x.m.chans[x.a].vars["csta_id"] = "5"
			x.m.chans[x.b].vars["csta_id"] = "-5"
			x.m.mu.Unlock()
		}
		o.newTimer = x.clk.newTimer
	})
	return x
}

// syncCalls renders a sync's calls by connection.
func syncCalls(s pbx.Event) map[pbx.CallRef]string {
	out := map[pbx.CallRef]string{}
	for _, c := range s.Calls {
		out[c.Call] = c.State.String() + " csta_id=" + strconv.Itoa(c.CSTAID)
	}
	return out
}

func wantSynced(t *testing.T, s pbx.Event, x *restartScene) {
	t.Helper()
	got := syncCalls(s)
	want := map[pbx.CallRef]string{ref("1001", x.a): "connected csta_id=5", ref("1002", x.b): "connected csta_id=-5"}
	if len(got) != len(want) || got[ref("1001", x.a)] != want[ref("1001", x.a)] || got[ref("1002", x.b)] != want[ref("1002", x.b)] {
		t.Errorf("sync %v, want %v", got, want)
	}
}

// noNewCalls fails on any event that would make the core announce the
// call again (it knows it by its csta_id).
func noNewCalls(t *testing.T, evs []pbx.Event) {
	t.Helper()
	for _, e := range evs {
		switch e.Kind {
		case pbx.EventOffered, pbx.EventOriginated, pbx.EventConnected:
			t.Errorf("%v %v: a call the CTI software knows reported as new", e.Kind, e.Call)
		}
	}
}

// Issue 19: the bridge restarts just after a call was answered. FreeSWITCH
// lists the call's channels in `show channels` only a moment later (its
// SQL thread), while `status` already counts them: the resync waits for
// the listing, so the first sync has the call with its csta_ids, and the
// recheck reports nothing.
func TestResyncWaitsForChannelsListedLate(t *testing.T) {
	x := startAfterCall(t, true, func(m *fsModel) { m.listAfter(150 * time.Millisecond) })
	wantSynced(t, x.h.up(), x)
	x.clk.next(t).fire()
	if _, err := x.h.srv.WaitCommand(ctxT(t), "api show channels as json", 1); err != nil {
		t.Fatal(err)
	}
	noNewCalls(t, x.h.flush())
}

// Issue 19: the core reports itself ready on the link and takes the next
// request at once; a HoldCall sent the moment a restarted bridge was
// ready got "no call -N" when the core took it between the link and the
// sync. The sync with the taken-over call comes first, then the link.
func TestSyncBeforeLinkUp(t *testing.T) {
	x := startAfterCall(t, true, nil)
	first := x.h.next()
	if first.Kind != pbx.EventSync {
		t.Fatalf("first event after connecting: %v (up=%v), want the sync", first.Kind, first.Up)
	}
	wantSynced(t, first, x)
	if e := x.h.next(); e.Kind != pbx.EventLink || !e.Up {
		t.Fatalf("after the sync: %v (up=%v), want the link up", e.Kind, e.Up)
	}
	// The call is workable the moment the link is reported.
	if err := x.h.a.Hold(ctxT(t), ref("1002", x.b)); err != nil {
		t.Errorf("Hold right after the link came up: %v", err)
	}
}

// Issue 19: the core stores a call's csta_id in the background right after
// it announced the call; a bridge stopped (restarted) meanwhile must still
// store it, or the next bridge reports the call as a new one. The adapter
// closes its session only once the TagCall under way is answered.
func TestStopLetsTagCallFinish(t *testing.T) {
	h, sc := startScripted(t, nil)
	h.connectedCall()
	sc.on("uuid_setvar", func(string) fakeesl.Reply { return fakeesl.Reply{Body: "+OK\n", Delay: 300 * time.Millisecond} })
	done := make(chan error, 1)
	go func() { done <- h.a.TagCall(context.Background(), ref("1001", basicA), 7) }()
	if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_setvar "+basicA+" csta_id 7", 0); err != nil {
		t.Fatal(err)
	}
	h.stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("TagCall under way when the adapter stopped: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("TagCall did not return")
	}
}

// Issue 19: the listing lags longer than the resync waits; the recheck
// finds the call. It carries csta_ids, so it is taken over silently: an
// EventSync lists it, never Offered/Originated/Connected.
func TestRecheckTakesTaggedCallOverSilently(t *testing.T) {
	x := startAfterCall(t, true, func(m *fsModel) { m.hideNew(true) })
	if s := x.h.up(); len(s.Calls) != 0 {
		t.Fatalf("first sync %v, want none (the listing lags)", syncCalls(s))
	}
	x.m.reveal()
	x.clk.next(t).fire()
	connected := 0
	s := x.h.collect(func(e pbx.Event) bool {
		if e.Kind == pbx.EventConnected {
			connected++ // not wanted: noNewCalls says so
		}
		return e.Kind == pbx.EventSync && len(e.Calls) == 2 || connected == 2
	})
	noNewCalls(t, s)
	wantSynced(t, s[len(s)-1], x)
	noNewCalls(t, x.h.flush())
	// From here on the call is tracked: its hang-up is reported.
	x.m.play(x.c.hangup()...)
	got := describe(x.h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventCleared && e.Call.Ext == "1002" }))
	if len(got[ref("1002", x.b)]) != 1 {
		t.Errorf("1002's events after the takeover %v, want its clearing", got)
	}
}

// Issue 19: neither listing has the call; its next event finds it. It
// carries csta_ids: taken over silently.
func TestLateEventTakesTaggedCallOverSilently(t *testing.T) {
	x := startAfterCall(t, true, func(m *fsModel) { m.hideNew(true) })
	x.h.up()
	x.clk.next(t).fire()
	if _, err := x.h.srv.WaitCommand(ctxT(t), "api show channels as json", 1); err != nil {
		t.Fatal(err)
	}
	noNewCalls(t, x.h.flush())
	// 1001's channel is put on hold (d_hold's uuid_hold of the 1001 leg).
	var held fakeesl.Event
	for _, e := range x.c.leg(holdA, x.c.rename(x.c.capture)) {
		if e.Name() == "CHANNEL_CALLSTATE" && e.Get("Channel-Call-State") == "HELD" {
			held = e
			break
		}
	}
	if held.Headers == nil {
		t.Fatal("d_hold has no hold of the 1001 leg")
	}
	x.m.play(held)
	s := x.h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventSync })
	noNewCalls(t, s)
	got := syncCalls(s[len(s)-1])
	if st := got[ref("1001", x.a)]; st != "held csta_id=5" {
		t.Errorf("1001 in the takeover sync: %q, want held csta_id=5 (all: %v)", st, got)
	}
}

// A call that started while no bridge was watching carries no csta_id:
// found by the recheck, it is reported once, as new.
func TestRecheckReportsUntaggedCallAsNew(t *testing.T) {
	x := startAfterCall(t, false, func(m *fsModel) { m.hideNew(true) })
	x.h.up()
	x.m.reveal()
	x.clk.next(t).fire()
	connected := 0
	got := describe(x.h.collect(func(e pbx.Event) bool {
		if e.Kind == pbx.EventConnected {
			connected++
		}
		return connected == 2
	}))
	checkCalls(t, got, map[pbx.CallRef][]string{
		ref("1001", x.a): {"originated 1002", "connected 1002"},
		ref("1002", x.b): {"offered 1001", "connected 1001"},
	})
}

// Issue 16: a MakeCall to a dialplan application (the vanilla dialplan's
// echo, music on hold, conference) is connected when the device's channel
// runs the application (its `answer`), with the dialled number as the far
// party, and cleared normally after ClearCall (captures of FreeSWITCH
// 1.10.12, testdata/k_makecall_*).
func TestMakeCallToApplicationConnects(t *testing.T) {
	for dest, capture := range appCaptures {
		t.Run(capture, func(t *testing.T) {
			h := start(t, func(_ *Options, s *fakeesl.Server) { newFSModel(t, s) })
			h.up()
			c := ref("1001", "mc-"+dest)
			if err := h.a.MakeCall(ctxT(t), pbx.MakeCallRequest{Call: c, CSTAID: 3, Destination: dest, AutoAnswer: true}); err != nil {
				t.Fatal(err)
			}
			got := h.collect(func(e pbx.Event) bool { return e.Call == c && e.Kind == pbx.EventConnected })
			checkCalls(t, describe(got), map[pbx.CallRef][]string{c: {"originated " + dest, "connected " + dest}})
			if err := h.a.ClearCall(ctxT(t), c); err != nil {
				t.Fatal(err)
			}
			got = h.collect(func(e pbx.Event) bool { return e.Call == c && e.Kind == pbx.EventCleared })
			checkCalls(t, describe(got), map[pbx.CallRef][]string{c: {"cleared normal"}})
		})
	}
}
