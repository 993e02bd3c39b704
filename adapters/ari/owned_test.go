package ari

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// findChannel waits for a fake channel of endpoint in state.
func findChannel(t *testing.T, f *fakeari.Server, endpoint, state string) fakeari.Channel {
	t.Helper()
	var found fakeari.Channel
	waitFake(t, f, endpoint+" "+state, func() bool {
		for _, c := range f.Channels() {
			if c.Endpoint == endpoint && c.State == state {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

// ownedRinging routes a call from 1001 to 1002 through Stasis and waits
// until 1002 rings. It returns the caller's channel id and 1002's leg.
func ownedRinging(t *testing.T, h *harness, from string) (string, pbx.CallRef) {
	t.Helper()
	aID := h.fake.PhoneDials("PJSIP/"+from, "1002")
	o := h.waitKind(from, pbx.EventOriginated)
	if o.Call.ID != aID || o.Remote.Number != "1002" {
		t.Fatalf("originated %+v", o)
	}
	// Asterisk's ChannelCreated has no protocol_id yet; the call must be
	// announced with the SIP Call-ID all the same ($call-id).
	if o.SIPCallID == "" {
		t.Fatalf("originated without SIP Call-ID: %+v", o)
	}
	off := h.waitKind("1002", pbx.EventOffered)
	if off.Remote.Number != from || off.SIPCallID == "" {
		t.Fatalf("offered %+v", off)
	}
	return aID, off.Call
}

// ownedConnected is ownedRinging plus 1002 answering on its own.
func ownedConnected(t *testing.T, h *harness, from string) (string, pbx.CallRef) {
	t.Helper()
	aID, ref := ownedRinging(t, h, from)
	if err := h.fake.Answer(ref.ID); err != nil {
		t.Fatal(err)
	}
	h.waitBothConnected(ref, pbx.CallRef{Ext: from, ID: aID})
	return aID, ref
}

// waitBothConnected waits for Connected on two legs, in either order.
func (h *harness) waitBothConnected(x, y pbx.CallRef) {
	h.t.Helper()
	seen := map[pbx.CallRef]bool{}
	h.waitEvent("both legs connected", func(ev pbx.Event) bool {
		if ev.Kind == pbx.EventConnected {
			seen[ev.Call] = true
		}
		return seen[x] && seen[y]
	})
}

func TestOwnedCallRoutedThroughStasis(t *testing.T) {
	h := newHarness(t)
	aID, ref := ownedRinging(t, h, "1001")
	b := h.fake.Channel(ref.ID)
	if b == nil || !b.InStasis || b.State != "Ringing" {
		t.Fatalf("1002's leg in the fake: %+v", b)
	}
	if r, ok := lastRequest(h.fake, "POST", "/channels/"+aID+"/ring"); !ok {
		t.Errorf("caller not given ringback: %v", r)
	}
	if err := h.fake.Answer(ref.ID); err != nil {
		t.Fatal(err)
	}
	h.waitBothConnected(ref, pbx.CallRef{Ext: "1001", ID: aID})
	waitFake(t, h.fake, "both legs bridged", func() bool {
		for _, id := range h.fake.Bridges() {
			if ch := h.fake.BridgeChannels(id); slices.Contains(ch, aID) && slices.Contains(ch, ref.ID) {
				return true
			}
		}
		return false
	})
	// The callee hangs up: the caller is hung up and the bridge goes.
	if err := h.fake.Hangup(ref.ID, 16); err != nil {
		t.Fatal(err)
	}
	got := h.collect(clearedAll("1001", "1002"))
	if k := kinds(got["1001"]) + " / " + kinds(got["1002"]); k != "cleared(normal) / cleared(normal)" {
		t.Errorf("got %s", k)
	}
	waitFake(t, h.fake, "bridge deleted", func() bool { return len(h.fake.Bridges()) == 0 })
}

func TestOwnedCallBusyCallee(t *testing.T) {
	h := newHarness(t)
	_, ref := ownedRinging(t, h, "1001")
	if err := h.fake.Hangup(ref.ID, 17); err != nil {
		t.Fatal(err)
	}
	got := h.collect(clearedAll("1001", "1002"))
	if k := kinds(got["1002"]); k != "cleared(rejected)" {
		t.Errorf("1002: %s", k)
	}
	if k := kinds(got["1001"]); k != "cleared(busy)" {
		t.Errorf("1001: %s", k)
	}
}

// Rejecting a ringing routed call gives the caller busy, as the phone's
// own 486 would (ARI's ChannelHangupRequest says cause 32 for any reason;
// only ChannelDestroyed has the real one).
func TestClearConnectionRejectsRingingCall(t *testing.T) {
	h := newHarness(t)
	aID, ref := ownedRinging(t, h, "1001")
	if err := h.a.ClearConnection(ctxT(t), ref); err != nil {
		t.Fatal(err)
	}
	got := h.collect(clearedAll("1001", "1002"))
	if k := kinds(got["1002"]) + " / " + kinds(got["1001"]); k != "cleared(rejected) / cleared(busy)" {
		t.Errorf("1002 / 1001: %s", k)
	}
	if r, ok := lastRequest(h.fake, "DELETE", "/channels/"+aID); !ok || r.Params["reason"] != "busy" {
		t.Errorf("caller hung up with %+v, want reason busy", r)
	}
}

// HoldCall sent the moment the callee is reported connected must work: the
// duplicated ChannelStateChange(Up) Asterisk sends for a Stasis channel of
// a subscribed endpoint must not announce the leg before it is bridged.
func TestHoldRightAfterConnected(t *testing.T) {
	h := newHarness(t)
	_, ref := ownedRinging(t, h, "1001")
	if err := h.fake.Answer(ref.ID); err != nil {
		t.Fatal(err)
	}
	h.waitEvent("callee connected", func(ev pbx.Event) bool { return ev.Kind == pbx.EventConnected && ev.Call == ref })
	if err := h.a.Hold(ctxT(t), ref); err != nil {
		t.Fatalf("Hold right after Connected: %v", err)
	}
}

func TestOwnedCallCallerGivesUp(t *testing.T) {
	h := newHarness(t)
	aID, _ := ownedRinging(t, h, "1001")
	if err := h.fake.Hangup(aID, 16); err != nil {
		t.Fatal(err)
	}
	got := h.collect(clearedAll("1001", "1002"))
	if k := kinds(got["1002"]); k != "cleared(cancelled)" {
		t.Errorf("1002: %s", k)
	}
}

func TestAnswerByReoriginate(t *testing.T) {
	h := newHarness(t)
	aID, ref := ownedRinging(t, h, "1001")
	h.fake.SetAutoAnswer("PJSIP/1002", true)
	if err := h.a.Answer(ctxT(t), ref); err != nil {
		t.Fatalf("Answer: %v", err)
	}
	c := h.waitEvent("1002 connected", func(ev pbx.Event) bool { return ev.Call.Ext == "1002" && ev.Kind != pbx.EventSync })
	if c.Kind != pbx.EventConnected || c.Call != ref {
		t.Fatalf("after answer got %s %s, want connected %s (same CallRef)", c.Kind, c.Call, ref)
	}
	if h.fake.Channel(ref.ID) != nil {
		t.Error("the ringing leg was not replaced")
	}
	orig, ok := lastOriginate(h.fake)
	if !ok || orig.Path != "/channels" {
		t.Fatalf("no originate: %+v", orig)
	}
	if got := orig.Vars["PJSIP_HEADER(add,Call-Info)"]; got != "<sip:pbx>;answer-after=0" {
		t.Errorf("auto-answer header variable = %q (vars %v)", got, orig.Vars)
	}
	if orig.Vars[varLeg] != ref.ID+",in" {
		t.Errorf("CSTA_LEG = %q", orig.Vars[varLeg])
	}
	if del, ok := lastRequest(h.fake, "DELETE", "/channels/"+ref.ID); !ok || del.Params["reason"] != "answered_elsewhere" {
		t.Errorf("old leg hangup: %+v", del)
	}
	newID := orig.Params["channelId"]
	waitFake(t, h.fake, "caller and new leg bridged", func() bool {
		for _, id := range h.fake.Bridges() {
			if ch := h.fake.BridgeChannels(id); slices.Contains(ch, aID) && slices.Contains(ch, newID) {
				return true
			}
		}
		return false
	})

	// The CallRef keeps working on the new channel.
	if err := h.a.TagCall(ctxT(t), ref, -3); err != nil {
		t.Fatalf("TagCall: %v", err)
	}
	if v := h.fake.Channel(newID).Vars[varCSTAID]; v != "-3" {
		t.Errorf("CSTA_ID on new channel = %q", v)
	}
	if err := h.a.ClearConnection(ctxT(t), ref); err != nil {
		t.Fatal(err)
	}
	got := h.collect(clearedAll("1001", "1002"))
	if k := kinds(got["1002"]); k != "cleared(normal)" {
		t.Errorf("1002: %s", k)
	}
	if got["1002"][0].Call != ref || got["1002"][0].CSTAID != -3 {
		t.Errorf("cleared %+v", got["1002"][0])
	}
}

func TestAnswerDeviceDoesNotAutoAnswer(t *testing.T) {
	h := newHarness(t)
	_, ref := ownedRinging(t, h, "1001")
	err := h.a.Answer(ctxT(t), ref)
	if !errors.Is(err, pbx.ErrDeviceUnreachable) || !strings.Contains(err.Error(), "auto-answer") {
		t.Fatalf("Answer = %v, want ErrDeviceUnreachable about auto-answer", err)
	}
	// The replacement call keeps ringing; answering it by hand connects.
	orig, _ := lastOriginate(h.fake)
	if err := h.fake.Answer(orig.Params["channelId"]); err != nil {
		t.Fatal(err)
	}
	h.waitEvent("connected", func(ev pbx.Event) bool { return ev.Kind == pbx.EventConnected && ev.Call == ref })
}

// Asterisk refuses AnswerCall's new call to the device: a device it cannot
// call is reported unreachable, any other failure as what it is, and the
// call keeps ringing either way.
func TestAnswerOriginateRefused(t *testing.T) {
	h := newHarness(t)
	_, ref := ownedRinging(t, h, "1001")
	ctx := ctxT(t)
	for _, c := range []struct {
		status int
		body   string
		want   error
	}{
		{500, `{"error":"Allocation failed"}`, pbx.ErrDeviceUnreachable},
		{400, `{"message":"Invalid parameters for originating a channel"}`, pbx.ErrDeviceUnreachable},
		{503, `{"message":"Service Unavailable"}`, pbx.ErrUnavailable},
	} {
		// The caller's ringback request (POST /channels/<id>/ring) comes
		// first and takes one of the two.
		h.fake.Fail("POST", "/channels", c.status, c.body, 2)
		if err := h.a.Answer(ctx, ref); !errors.Is(err, c.want) {
			t.Errorf("Answer with originate answering %d = %v, want %v", c.status, err, c.want)
		}
		h.fake.ClearFaults()
	}
	if c := h.fake.Channel(ref.ID); c == nil || c.State != "Ringing" {
		t.Fatalf("the ringing leg did not survive: %+v", c)
	}
	h.fake.SetAutoAnswer("PJSIP/1002", true)
	if err := h.a.Answer(ctx, ref); err != nil {
		t.Fatalf("Answer once the device can be called: %v", err)
	}
	h.waitEvent("connected", func(ev pbx.Event) bool { return ev.Kind == pbx.EventConnected && ev.Call == ref })
}

func TestHoldRetrieveDTMF(t *testing.T) {
	h := newHarness(t)
	aID, ref := ownedConnected(t, h, "1001")
	ctx := ctxT(t)
	if err := h.a.Hold(ctx, ref); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	ev := h.waitKind("1002", pbx.EventHeld)
	if ev.ByPhone || ev.Call != ref {
		t.Errorf("held %+v", ev)
	}
	if c := h.fake.Channel(aID); !c.MOH || c.Bridge != "" {
		t.Errorf("far party not on music on hold outside the bridge: %+v", c)
	}
	if err := h.a.Hold(ctx, ref); !errors.Is(err, pbx.ErrInvalidState) {
		t.Errorf("second Hold = %v", err)
	}
	if err := h.a.Retrieve(ctx, ref); err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	h.waitKind("1002", pbx.EventRetrieved)
	if c := h.fake.Channel(aID); c.MOH || c.Bridge == "" {
		t.Errorf("far party not back: %+v", c)
	}
	if err := h.a.SendDTMF(ctx, ref, "12#"); err != nil {
		t.Fatalf("SendDTMF: %v", err)
	}
	if r, ok := lastRequest(h.fake, "POST", "/channels/"+aID+"/dtmf"); !ok || r.Params["dtmf"] != "12#" {
		t.Errorf("dtmf request %+v", r)
	}
	if err := h.a.SendDTMF(ctx, ref, "x"); !errors.Is(err, pbx.ErrInvalidDestination) {
		t.Errorf("bad DTMF = %v", err)
	}
	// The phone's own hold is reported as such.
	if err := h.fake.PhoneHold(aID, true); err != nil {
		t.Fatal(err)
	}
	if ev := h.waitKind("1001", pbx.EventHeld); !ev.ByPhone {
		t.Error("phone hold not ByPhone")
	}
	if err := h.a.Retrieve(ctx, pbx.CallRef{Ext: "1001", ID: aID}); !errors.Is(err, pbx.ErrNotSupported) {
		t.Errorf("Retrieve of a phone-held call = %v", err)
	}
	if err := h.fake.PhoneHold(aID, false); err != nil {
		t.Fatal(err)
	}
	if ev := h.waitKind("1001", pbx.EventRetrieved); !ev.ByPhone {
		t.Error("phone unhold not ByPhone")
	}
	if err := h.a.ClearCall(ctx, ref); err != nil {
		t.Fatal(err)
	}
	h.collect(clearedAll("1001", "1002"))
}

func TestSingleStepTransfer(t *testing.T) {
	h := newHarness(t)
	aID, ref := ownedConnected(t, h, "1001")
	if err := h.a.SingleStepTransfer(ctxT(t), ref, "bad dest"); !errors.Is(err, pbx.ErrInvalidDestination) {
		t.Errorf("bad destination = %v", err)
	}
	if err := h.a.SingleStepTransfer(ctxT(t), ref, "sip:1003@pbx.test;user=phone"); err != nil {
		t.Fatalf("SingleStepTransfer: %v", err)
	}
	got := h.collect(clearedAll("1002"))
	if k := kinds(got["1002"]); k != "transferred(blind) cleared(transferred)" {
		t.Errorf("1002: %s", k)
	}
	r, ok := lastRequest(h.fake, "POST", "/channels/"+aID+"/continue")
	if !ok || r.Params["context"] != "from-internal" || r.Params["extension"] != "1003" || r.Params["priority"] != "1" {
		t.Errorf("continue request %+v", r)
	}
	if c := h.fake.Channel(aID); c == nil || c.InStasis {
		t.Errorf("caller should live on in the dialplan: %+v", c)
	}
	if len(got["1001"]) != 0 {
		t.Errorf("1001 must not be cleared: %s", kinds(got["1001"]))
	}
}

func TestAttendedTransfer(t *testing.T) {
	h := newHarness(t)
	a1, ref1 := ownedConnected(t, h, "1001")
	a3, ref3 := ownedConnected(t, h, "1003")
	ctx := ctxT(t)
	if err := h.a.Hold(ctx, ref1); err != nil {
		t.Fatal(err)
	}
	h.waitKind("1002", pbx.EventHeld)
	if err := h.a.Transfer(ctx, ref1, ref3); err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	got := h.collect(func(m map[string][]pbx.Event) bool {
		n := 0
		for _, e := range m["1002"] {
			if e.Kind == pbx.EventCleared {
				n++
			}
		}
		return n == 2 && len(m["1001"]) > 0 && len(m["1003"]) > 0
	})
	for _, e := range got["1002"] {
		if e.Kind == pbx.EventCleared && e.Cause != pbx.CauseTransferred {
			t.Errorf("1002 cleared with %s", e.Cause)
		}
	}
	if pc := got["1001"][0]; pc.Kind != pbx.EventPartyChanged || pc.Remote.Number != "1003" {
		t.Errorf("1001 got %+v", pc)
	}
	if pc := got["1003"][0]; pc.Kind != pbx.EventPartyChanged || pc.Remote.Number != "1001" {
		t.Errorf("1003 got %+v", pc)
	}
	waitFake(t, h.fake, "far parties bridged together", func() bool {
		for _, id := range h.fake.Bridges() {
			if ch := h.fake.BridgeChannels(id); len(ch) == 2 && slices.Contains(ch, a1) && slices.Contains(ch, a3) {
				return true
			}
		}
		return false
	})
	if c := h.fake.Channel(a1); c.MOH {
		t.Error("music on hold not stopped for the held party")
	}
	// They talk on; when one hangs up the other follows.
	if err := h.fake.Hangup(a1, 16); err != nil {
		t.Fatal(err)
	}
	h.waitEvent("1003 cleared", func(ev pbx.Event) bool { return ev.Kind == pbx.EventCleared && ev.Call.Ext == "1003" })
}

func TestMakeCall(t *testing.T) {
	h := newHarness(t)
	h.fake.SetAutoAnswer("PJSIP/1001", true)
	ref := pbx.CallRef{Ext: "1001", ID: "core-7"}
	err := h.a.MakeCall(ctxT(t), pbx.MakeCallRequest{Call: ref, CSTAID: 5, Destination: "sip:1002@pbx.test", AutoAnswer: true})
	if err != nil {
		t.Fatalf("MakeCall: %v", err)
	}
	o := h.waitKind("1001", pbx.EventOriginated)
	if o.Call != ref || o.Remote.Number != "1002" || o.CSTAID != 5 {
		t.Errorf("originated %+v", o)
	}
	orig, _ := lastOriginate(h.fake)
	if orig.Params["endpoint"] != "PJSIP/1001" || orig.Vars["PJSIP_HEADER(add,Alert-Info)"] == "" || orig.Vars[varCSTAID] != "5" {
		t.Errorf("originate %+v", orig)
	}
	local := findChannel(t, h.fake, "Local/1002@from-internal/n", "Ringing")
	if err := h.fake.Answer(local.ID); err != nil {
		t.Fatal(err)
	}
	if c := h.waitKind("1001", pbx.EventConnected); c.Call != ref {
		t.Errorf("connected %+v", c)
	}
	if err := h.fake.Hangup(local.ID, 16); err != nil {
		t.Fatal(err)
	}
	if c := h.waitKind("1001", pbx.EventCleared); c.Call != ref || c.Cause != pbx.CauseNormal {
		t.Errorf("cleared %+v", c)
	}
}

func TestMakeCallWithoutAutoAnswerHeaders(t *testing.T) {
	h := newHarness(t)
	ref := pbx.CallRef{Ext: "1001", ID: "core-8"}
	if err := h.a.MakeCall(ctxT(t), pbx.MakeCallRequest{Call: ref, Destination: "1002"}); err != nil {
		t.Fatal(err)
	}
	orig, _ := lastOriginate(h.fake)
	for k := range orig.Vars {
		if strings.HasPrefix(k, "PJSIP_HEADER") {
			t.Errorf("auto-answer header without AutoAnswer: %s", k)
		}
	}
	// Nobody picks up the device: the call ends as not answered.
	dev := findChannel(t, h.fake, "PJSIP/1001", "Ringing")
	if err := h.fake.Hangup(dev.ID, 19); err != nil {
		t.Fatal(err)
	}
	if c := h.waitKind("1001", pbx.EventCleared); c.Call != ref || c.Cause != pbx.CauseNoAnswer {
		t.Errorf("cleared %+v", c)
	}
}

func TestMakeCallBusyDestination(t *testing.T) {
	h := newHarness(t)
	h.fake.SetAutoAnswer("PJSIP/1001", true)
	ref := pbx.CallRef{Ext: "1001", ID: "core-9"}
	if err := h.a.MakeCall(ctxT(t), pbx.MakeCallRequest{Call: ref, Destination: "1002", AutoAnswer: true}); err != nil {
		t.Fatal(err)
	}
	h.waitKind("1001", pbx.EventOriginated)
	local := findChannel(t, h.fake, "Local/1002@from-internal/n", "Ringing")
	if err := h.fake.Hangup(local.ID, 17); err != nil {
		t.Fatal(err)
	}
	if c := h.waitKind("1001", pbx.EventCleared); c.Call != ref || c.Cause != pbx.CauseBusy {
		t.Errorf("cleared %+v", c)
	}
}

func TestMakeCallErrors(t *testing.T) {
	h := newHarness(t)
	ctx := ctxT(t)
	if err := h.a.MakeCall(ctx, pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "9999", ID: "x"}, Destination: "1002"}); !errors.Is(err, pbx.ErrInvalidDestination) {
		t.Errorf("unmapped extension: %v", err)
	}
	if err := h.a.MakeCall(ctx, pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1001", ID: "x"}, Destination: "10,02"}); !errors.Is(err, pbx.ErrInvalidDestination) {
		t.Errorf("bad destination: %v", err)
	}
	h.fake.Fail("POST", "/channels", 500, `{"error":"Allocation failed"}`, 1)
	if err := h.a.MakeCall(ctx, pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1001", ID: "y"}, Destination: "1002"}); !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Errorf("allocation failed: %v", err)
	}
}

func TestObservedCallServices(t *testing.T) {
	h := newHarness(t)
	aID, bID := h.fake.PlainDial("PJSIP/1001", "PJSIP/1002")
	off := h.waitKind("1002", pbx.EventOffered)
	if off.Call.ID != bID {
		t.Fatalf("offered %+v", off)
	}
	ctx := ctxT(t)
	for name, err := range map[string]error{
		"answer":   h.a.Answer(ctx, off.Call),
		"hold":     h.a.Hold(ctx, pbx.CallRef{Ext: "1001", ID: aID}),
		"transfer": h.a.SingleStepTransfer(ctx, pbx.CallRef{Ext: "1001", ID: aID}, "1003"),
		"tag":      h.a.TagCall(ctx, off.Call, 3),
	} {
		if !errors.Is(err, pbx.ErrNotSupported) && !errors.Is(err, pbx.ErrInvalidState) {
			t.Errorf("%s on observed call = %v, want ErrNotSupported", name, err)
		}
		if errors.Is(err, pbx.ErrNotSupported) && !strings.Contains(err.Error(), "route it through the csta-bridge dialplan snippet") {
			t.Errorf("%s error does not say why: %v", name, err)
		}
	}
	if err := h.a.Answer(ctx, off.Call); !errors.Is(err, pbx.ErrNotSupported) {
		t.Errorf("answer = %v", err)
	}
	if err := h.a.ClearConnection(ctx, off.Call); err != nil {
		t.Fatalf("ClearConnection: %v", err)
	}
	if c := h.waitKind("1002", pbx.EventCleared); c.Cause != pbx.CauseRejected {
		t.Errorf("reject cleared with %s", c.Cause)
	}
	if err := h.a.ClearConnection(ctx, off.Call); !errors.Is(err, pbx.ErrNoSuchCall) {
		t.Errorf("clear twice = %v", err)
	}
}

func TestObservedClearCall(t *testing.T) {
	h := newHarness(t)
	aID, bID := h.fake.PlainDial("PJSIP/1001", "PJSIP/1002")
	h.waitKind("1002", pbx.EventOffered)
	if err := h.fake.Answer(bID); err != nil {
		t.Fatal(err)
	}
	h.waitKind("1001", pbx.EventConnected)
	if err := h.a.ClearCall(ctxT(t), pbx.CallRef{Ext: "1001", ID: aID}); err != nil {
		t.Fatalf("ClearCall: %v", err)
	}
	h.collect(clearedAll("1001", "1002"))
}

func TestPhoneBlindTransferInsideOwnedCall(t *testing.T) {
	// Trace e3: the phone REFERs an owned call; Asterisk puts a Local
	// channel into the bridge in its place (StasisStart replace_channel).
	h := newHarness(t)
	aID, ref := ownedConnected(t, h, "1001")
	b := h.fake.Channel(ref.ID)
	local := `{"id":"1795639629.125","name":"Local/1003@from-internal-00000007;1","state":"Down","protocol_id":"","caller":{"name":"","number":""},"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"from-internal","exten":"1003","priority":1,"app_name":"","app_data":""},"creationtime":"2026-11-25T20:47:09.460+0000","language":"en"}`
	bJSON := `{"id":"` + b.ID + `","name":"` + b.Name + `","state":"Up","protocol_id":"x","caller":{"name":"Phone 1002","number":"1002"},"connected":{"name":"Phone 1001","number":"1001"},"accountcode":"","dialplan":{"context":"default","exten":"s","priority":1,"app_name":"Stasis","app_data":"csta-bridge,outbound"},"creationtime":"2026-11-25T20:47:02.442+0000","language":"en"}`
	for _, f := range []string{
		`{"type":"StasisStart","timestamp":"2026-11-25T20:47:09.461+0000","args":[],"channel":` + local + `,"replace_channel":` + bJSON + `,"asterisk_id":"02:fc:00:00:00:01","application":"csta-bridge"}`,
		`{"type":"BridgeBlindTransfer","timestamp":"2026-11-25T20:47:09.470+0000","channel":` + bJSON + `,"exten":"1003","context":"from-internal","result":"Success","is_external":true,"replace_channel":` + local + `,"asterisk_id":"02:fc:00:00:00:01","application":"csta-bridge"}`,
	} {
		if err := h.fake.SendRaw([]byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.fake.Hangup(ref.ID, 16); err != nil {
		t.Fatal(err)
	}
	got := h.collect(clearedAll("1002"))
	if k := kinds(got["1002"]); k != "transferred(blind) cleared(transferred)" {
		t.Errorf("1002: %s", k)
	}
	if len(got["1001"]) != 0 {
		t.Errorf("1001 must stay in the call: %s", kinds(got["1001"]))
	}
	if c := h.fake.Channel(aID); c == nil {
		t.Error("the bridge hung up the transferred party")
	}
}

func TestRouteToUnmappedNumberAndLoopGuard(t *testing.T) {
	h := newHarness(t)
	h.fake.PhoneDials("PJSIP/1001", "0301234")
	h.waitKind("1001", pbx.EventOriginated)
	findChannel(t, h.fake, "Local/0301234@from-internal/n", "Ringing")
	// The context routes the number into the application again: the
	// second leg must not be dialled once more.
	loop := `{"type":"StasisStart","timestamp":"2026-11-25T20:47:09.461+0000","args":["dial","0301234"],"channel":{"id":"loop.2","name":"Local/0301234@from-internal-00000009;2","state":"Ring","protocol_id":"","caller":{"name":"","number":"1001"},"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"from-internal","exten":"0301234","priority":2,"app_name":"Stasis","app_data":"csta-bridge,dial,0301234"},"creationtime":"2026-11-25T20:47:09.460+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"csta-bridge"}`
	if err := h.fake.SendRaw([]byte(loop)); err != nil {
		t.Fatal(err)
	}
	waitFake(t, h.fake, "looping leg hung up", func() bool {
		r, ok := lastRequest(h.fake, "DELETE", "/channels/loop.2")
		return ok && r.Params["reason"] == "unallocated"
	})
	for _, r := range h.fake.Requests() {
		if r.Method == "POST" && r.Path == "/channels/create" && r.Params["originator"] == "loop.2" {
			t.Errorf("looping call dialled again: %+v", r)
		}
	}
}

func TestConcurrentCommandsOnOneCall(t *testing.T) {
	h := newHarness(t)
	_, ref := ownedConnected(t, h, "1001")
	h.fake.SetDelay(200 * time.Millisecond)
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { errs <- h.a.Hold(ctxT(t), ref) }()
	}
	e1, e2 := <-errs, <-errs
	h.fake.SetDelay(0)
	if (e1 == nil) == (e2 == nil) {
		t.Fatalf("want exactly one Hold to succeed: %v / %v", e1, e2)
	}
	if err := errors.Join(e1, e2); !errors.Is(err, pbx.ErrInvalidState) {
		t.Errorf("refused Hold = %v, want ErrInvalidState", err)
	}
	h.waitKind("1002", pbx.EventHeld)
}
