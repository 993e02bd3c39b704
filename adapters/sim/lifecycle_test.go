package sim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func TestCommandsOutsideRun(t *testing.T) {
	p := New(Options{})
	p.SetExtensions([]pbx.Extension{alice, bob})
	check := func(when string) {
		t.Helper()
		c := pbx.CallRef{Ext: "1001", ID: "x"}
		for name, err := range map[string]error{
			"answer":   p.Answer(bg, c),
			"hold":     p.Hold(bg, c),
			"retrieve": p.Retrieve(bg, c),
			"clearc":   p.ClearConnection(bg, c),
			"clear":    p.ClearCall(bg, c),
			"sst":      p.SingleStepTransfer(bg, c, "1002"),
			"transfer": p.Transfer(bg, c, pbx.CallRef{Ext: "1001", ID: "y"}),
			"makecall": p.MakeCall(bg, pbx.MakeCallRequest{Call: c, Destination: "1002", AutoAnswer: true}),
			"tag":      p.TagCall(bg, c, 1),
			"dtmf":     p.SendDTMF(bg, c, "1"),
		} {
			if !errors.Is(err, pbx.ErrUnavailable) {
				t.Errorf("%s %s: %v, want ErrUnavailable", when, name, err)
			}
		}
	}
	check("before Run")
	ctx, cancel := context.WithCancel(bg)
	events := make(chan pbx.Event, 8)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, events) }()
	<-events // link: Run is active
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
	check("after Run")
}

func TestRunTwiceAtOnce(t *testing.T) {
	h := newHarness(t, Options{})
	if err := h.p.Run(bg, make(chan pbx.Event)); err == nil {
		t.Fatal("a second concurrent Run succeeded")
	}
	if err := h.p.Run(bg, nil); err == nil {
		t.Fatal("Run with a nil channel succeeded")
	}
}

func TestSyncAfterSecondRun(t *testing.T) {
	h := newHarness(t, Options{NeverAnswer: true})
	_, a := h.incoming("+4930123456", "1001", -1)
	must(t, h.p.Answer(bg, a))
	h.expect(connected(a, outside))
	must(t, h.p.Hold(bg, a))
	h.expect(held(a, false))
	id, b, _ := h.extCall("1002", "1003")
	must(t, h.p.TagCall(bg, b, 4))
	mc := pbx.CallRef{Ext: "1001", ID: "mc-2"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: mc, CSTAID: 2, Destination: "+4940999", AutoAnswer: true}))
	h.expect(originated(mc, pbx.Party{Number: "+4940999"}, 2))

	h.stop()
	// The PBX goes on while the bridge is away: Bob gives up calling Carol.
	h.mustCall(http.MethodPost, "/sim/calls/"+id+"/hangup", `{"party":"1002"}`, http.StatusOK, nil)

	h.start()
	if ev := h.next(); ev.Kind != pbx.EventLink || !ev.Up {
		t.Fatalf("got %s, want link up", fmtEvent(ev))
	}
	ev := h.next()
	if ev.Kind != pbx.EventSync {
		t.Fatalf("got %s, want sync", fmtEvent(ev))
	}
	want := []pbx.CallInfo{
		{Call: a, State: pbx.StateHeld, Direction: pbx.Incoming, Remote: outside, CSTAID: -1},
		{Call: mc, State: pbx.StateInitiated, Direction: pbx.Outgoing, Remote: pbx.Party{Number: "+4940999"}, CSTAID: 2},
	}
	if len(ev.Calls) != len(want) {
		t.Fatalf("sync calls = %+v", ev.Calls)
	}
	for i, w := range want {
		g := ev.Calls[i]
		if g.SIPCallID == "" {
			t.Errorf("sync call %d has no Call-ID", i)
		}
		g.SIPCallID = ""
		if g != w {
			t.Errorf("sync call %d = %+v, want %+v", i, g, w)
		}
	}
	h.quiet()
	must(t, h.p.Retrieve(bg, a))
	h.expect(retrieved(a, false))
}

func TestCommandsNeverBlockOnEvents(t *testing.T) {
	h := newHarness(t, Options{})
	// Nobody reads h.events from here on.
	const n = 300
	for i := range n {
		ref := pbx.CallRef{Ext: "1001", ID: "mc-" + itoa(i)}
		must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, Destination: "1002", AutoAnswer: true}))
		must(t, h.p.ClearConnection(bg, ref))
	}
	h.p.tagWait = 0
	h.mustCall(http.MethodPost, "/sim/calls", `{"from":"+4930123456","to":"1003"}`, http.StatusCreated, nil)
	// Now read them all, in order: per call Originated, Offered, Cleared, Cleared.
	for i := range n {
		ref := pbx.CallRef{Ext: "1001", ID: "mc-" + itoa(i)}
		evs := []pbx.Event{h.next(), h.next(), h.next(), h.next()}
		if evs[0].Kind != pbx.EventOriginated || evs[0].Call != ref || evs[1].Kind != pbx.EventOffered ||
			evs[2].Kind != pbx.EventCleared || evs[2].Call != ref || evs[3].Kind != pbx.EventCleared ||
			evs[3].Call != evs[1].Call || evs[3].Cause != pbx.CauseCancelled {
			t.Fatalf("call %d: %s | %s | %s | %s", i, fmtEvent(evs[0]), fmtEvent(evs[1]), fmtEvent(evs[2]), fmtEvent(evs[3]))
		}
	}
	if ev := h.next(); ev.Kind != pbx.EventOffered || ev.Call.Ext != "1003" {
		t.Fatalf("got %s", fmtEvent(ev))
	}
	h.quiet()
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func TestSetExtensionsClearsRemovedCalls(t *testing.T) {
	h := newHarness(t, Options{NeverAnswer: true})
	_, b, a := h.extCall("1002", "1001")
	must(t, h.p.Answer(bg, a))
	h.expect(connected(a, bobParty), connected(b, aliceParty))
	_, b2, c := h.extCall("1002", "1003")
	_, a2 := h.incoming("+4930123456", "1001", -1)

	h.p.SetExtensions([]pbx.Extension{alice, bob}) // Carol leaves
	h.expect(cleared(c, pbx.CauseRejected), cleared(b2, pbx.CauseUnreachable))
	h.p.SetExtensions([]pbx.Extension{bob, carol}) // Alice leaves
	h.expect(cleared(a, pbx.CauseNormal), cleared(b, pbx.CauseNormal), cleared(a2, pbx.CauseRejected))

	// A new extension can be called at once.
	h.p.tagWait = 0
	h.mustCall(http.MethodPost, "/sim/calls", `{"from":"+4930123456","to":"1003"}`, http.StatusCreated, nil)
	h.expect(offered(newRef("1003"), outside))
	h.mustCall(http.MethodPost, "/sim/calls", `{"from":"+4930123456","to":"1001"}`, http.StatusUnprocessableEntity, nil)
}

func TestPromptDestinationRemovedBeforeCalled(t *testing.T) {
	h := newHarness(t, Options{})
	ref := pbx.CallRef{Ext: "1001", ID: "mc-1"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, Destination: "1002"}))
	h.expect(originated(ref, bobParty, 0))
	h.p.SetExtensions([]pbx.Extension{alice, carol})
	h.expect(cleared(ref, pbx.CauseNormal)) // Alice's device had not answered yet
}

func TestTagWaitGivesUp(t *testing.T) {
	h := newHarness(t, Options{})
	h.p.tagWait = 20 * time.Millisecond // a bound on a wait, not a sleep: nobody tags
	var v callView
	h.mustCall(http.MethodPost, "/sim/calls", `{"from":"+4930123456","to":"1001"}`, http.StatusCreated, &v)
	if v.CSTAID != nil || v.Legs[0].CSTAID != nil {
		t.Fatalf("csta_id present without a tag: %+v", v)
	}
	h.expect(offered(newRef("1001"), outside))
}

func TestTwoExtensionsReplyCarriesBothCSTAIDs(t *testing.T) {
	h := newHarness(t, Options{})
	res := make(chan callView, 1)
	go func() {
		var v callView
		h.call(http.MethodPost, "/sim/calls", `{"from":"1002","to":"1001"}`, &v)
		res <- v
	}()
	o, f := h.next(), h.next()
	must(t, h.p.TagCall(bg, f.Call, -3))
	must(t, h.p.TagCall(bg, o.Call, 5))
	v := <-res
	if v.CSTAID == nil || *v.CSTAID != -3 || *v.Legs[0].CSTAID != 5 || *v.Legs[1].CSTAID != -3 {
		t.Fatalf("reply %+v", v)
	}
	h.quiet()
}

func TestDTMF(t *testing.T) {
	h := newHarness(t, Options{})
	v, a := h.incoming("+4930123456", "1001", -1)
	wantErr(t, h.p.SendDTMF(bg, a, "1"), pbx.ErrInvalidState)
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/dtmf", `{"digits":"1"}`, http.StatusConflict, nil)
	must(t, h.p.Answer(bg, a))
	h.expect(connected(a, outside))
	must(t, h.p.SendDTMF(bg, a, "12#"))
	wantErr(t, h.p.SendDTMF(bg, a, ""), pbx.ErrNotSupported)
	wantErr(t, h.p.SendDTMF(bg, a, "1x"), pbx.ErrNotSupported)
	var list []dtmfRecord
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/dtmf", `{"digits":"*9"}`, http.StatusOK, &list)
	h.mustCall(http.MethodGet, "/sim/calls/"+v.ID+"/dtmf", "", http.StatusOK, &list)
	if len(list) != 2 || list[0].Digits != "12#" || list[0].By != "bridge" || list[0].Ext != "1001" ||
		list[1].Digits != "*9" || list[1].By != "phone" {
		t.Fatalf("dtmf = %+v", list)
	}
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/dtmf", `{"digits":"x"}`, http.StatusBadRequest, nil)
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/dtmf", `{"digits":"1","party":"1002"}`, http.StatusUnprocessableEntity, nil)
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/dtmf", "", http.StatusBadRequest, nil)
	h.mustCall(http.MethodPut, "/sim/calls/"+v.ID+"/dtmf", "", http.StatusMethodNotAllowed, nil)
	h.mustCall(http.MethodGet, "/sim/calls/c999/dtmf", "", http.StatusNotFound, nil)
	h.quiet()
}

func TestCleanNumber(t *testing.T) {
	for in, want := range map[string]string{
		"1002":                              "1002",
		" sip:1002@pbx.test ":               "1002",
		"<sip:1002@pbx.test;transport=tcp>": "1002",
		"SIPS:alice@pbx.test":               "alice",
		"tel:+4930123456":                   "+4930123456",
		"+4930123456;user=phone":            "+4930123456",
		"*97#":                              "*97#",
	} {
		got, err := cleanNumber(in)
		if err != nil || got != want {
			t.Errorf("cleanNumber(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", " ", "sip:@pbx", "10 02", "a/b", "<>", "tel:"} {
		if got, err := cleanNumber(in); err == nil {
			t.Errorf("cleanNumber(%q) = %q, want an error", in, got)
		}
	}
}
