package sim

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

var outside = pbx.Party{Number: "+4930123456"}

func TestIncomingAnsweredThenFarHangup(t *testing.T) {
	h := newHarness(t, Options{})
	v, a := h.incoming("+4930123456", "1001", -1)
	if v.State != "ringing" || v.From != "+4930123456" || v.To != "1001" || v.CSTAID == nil || *v.CSTAID != -1 {
		t.Fatalf("201 reply = %+v, want ringing with csta_id -1", v)
	}
	if len(v.Legs) != 1 || v.Legs[0].Ref != a.ID || v.Legs[0].State != "alerting" || v.Legs[0].Side != "to" {
		t.Fatalf("legs = %+v", v.Legs)
	}
	must(t, h.p.Answer(bg, a))
	h.expect(connected(a, outside))

	var got callView
	h.mustCall(http.MethodGet, "/sim/calls/"+v.ID, "", http.StatusOK, &got)
	if got.State != "connected" || got.Legs[0].State != "connected" {
		t.Fatalf("after answer: %+v", got)
	}
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/hangup", "", http.StatusOK, &got)
	if got.State != "ended" {
		t.Fatalf("after hangup: state %q", got.State)
	}
	h.expect(cleared(a, pbx.CauseNormal))
	h.mustCall(http.MethodGet, "/sim/calls/"+v.ID, "", http.StatusNotFound, nil)
}

func TestIncomingOfferedDetails(t *testing.T) {
	h := newHarness(t, Options{})
	done := make(chan callView, 1)
	go func() {
		var v callView
		h.call(http.MethodPost, "/sim/calls", `{"from":"sip:+4930123456@carrier.example","to":"sip:1001@pbx.test","name":"Bob Outside"}`, &v)
		done <- v
	}()
	ev := h.next()
	want := offered(ev.Call, pbx.Party{Number: "+4930123456", Name: "Bob Outside"})
	if fmtEvent(ev) != fmtEvent(want) || ev.Call.Ext != "1001" {
		t.Fatalf("got %s", fmtEvent(ev))
	}
	if got := ev.Headers["P-Asserted-Identity"]; got != `"Bob Outside" <sip:+4930123456@pbx.test>` {
		t.Errorf("P-Asserted-Identity = %q", got)
	}
	must(t, h.p.TagCall(bg, ev.Call, -7))
	v := <-done
	if ev.Headers["X-Sim-Call"] != v.ID || v.Name != "Bob Outside" || v.Legs[0].SIPCallID != ev.SIPCallID {
		t.Errorf("reply %+v does not match event %+v", v, ev)
	}
}

func TestMissedCall(t *testing.T) {
	h := newHarness(t, Options{})
	v, a := h.incoming("+4930123456", "1001", -1)
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/hangup", "", http.StatusOK, nil)
	h.expect(cleared(a, pbx.CauseCancelled))
}

func TestRejectIncoming(t *testing.T) {
	h := newHarness(t, Options{})
	_, a := h.incoming("+4930123456", "1001", -1)
	must(t, h.p.ClearConnection(bg, a))
	h.expect(cleared(a, pbx.CauseRejected))
	wantErr(t, h.p.ClearConnection(bg, a), pbx.ErrNoSuchCall)
}

func TestPhoneRejectsThroughControlAPI(t *testing.T) {
	h := newHarness(t, Options{})
	v, a := h.incoming("+4930123456", "1001", -1)
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/hangup", `{"party":"1001"}`, http.StatusOK, nil)
	h.expect(cleared(a, pbx.CauseRejected))
}

// extCall makes from call to through the control API and returns the two
// connections (Originated, Offered).
func (h *harness) extCall(from, to string) (string, pbx.CallRef, pbx.CallRef) {
	h.t.Helper()
	h.p.tagWait = 0 // nobody tags here
	var v callView
	h.mustCall(http.MethodPost, "/sim/calls", fmt.Sprintf(`{"from":%q,"to":%q}`, from, to), http.StatusCreated, &v)
	o, f := h.next(), h.next()
	if o.Kind != pbx.EventOriginated || o.Call.Ext != from || f.Kind != pbx.EventOffered || f.Call.Ext != to {
		h.t.Fatalf("got %s, %s", fmtEvent(o), fmtEvent(f))
	}
	h.quiet()
	return v.ID, o.Call, f.Call
}

func TestTwoExtensions(t *testing.T) {
	h := newHarness(t, Options{})
	h.p.tagWait = 0
	var v callView
	h.mustCall(http.MethodPost, "/sim/calls", `{"from":"1002","to":"1001"}`, http.StatusCreated, &v)
	o, f := h.next(), h.next()
	b, a := o.Call, f.Call
	if fmtEvent(o) != fmtEvent(originated(b, aliceParty, 0)) || fmtEvent(f) != fmtEvent(offered(a, bobParty)) {
		t.Fatalf("got %s, %s", fmtEvent(o), fmtEvent(f))
	}
	if b.Ext != "1002" || a.Ext != "1001" || o.SIPCallID == f.SIPCallID {
		t.Fatalf("refs %s %s, call-ids %q %q", b, a, o.SIPCallID, f.SIPCallID)
	}
	h.quiet()
	if len(v.Legs) != 2 || v.Legs[0].Direction != "outgoing" || v.Legs[1].Direction != "incoming" {
		t.Fatalf("legs %+v", v.Legs)
	}
	// The user of 1001 picks up the handset.
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/answer", "", http.StatusOK, &v)
	h.expect(connected(a, bobParty), connected(b, aliceParty))
	if v.State != "connected" {
		t.Fatalf("state %q", v.State)
	}
	must(t, h.p.ClearConnection(bg, a))
	h.expect(cleared(a, pbx.CauseNormal), cleared(b, pbx.CauseNormal))
}

func TestTwoExtensionsRejectAndCancel(t *testing.T) {
	h := newHarness(t, Options{})
	_, b, a := h.extCall("1002", "1001")
	must(t, h.p.ClearConnection(bg, a))
	h.expect(cleared(a, pbx.CauseRejected), cleared(b, pbx.CauseBusy))

	_, b, a = h.extCall("1002", "1001")
	must(t, h.p.ClearConnection(bg, b)) // the caller gives up: a missed call at 1001
	h.expect(cleared(b, pbx.CauseNormal), cleared(a, pbx.CauseCancelled))

	id, b, a := h.extCall("1002", "1001")
	h.mustCall(http.MethodPost, "/sim/calls/"+id+"/hangup", "", http.StatusOK, nil) // default: the caller
	h.expect(cleared(b, pbx.CauseNormal), cleared(a, pbx.CauseCancelled))
}

func TestClearCall(t *testing.T) {
	h := newHarness(t, Options{})
	_, b, a := h.extCall("1002", "1001")
	must(t, h.p.Answer(bg, a))
	h.expect(connected(a, bobParty), connected(b, aliceParty))
	must(t, h.p.ClearCall(bg, b))
	h.expect(cleared(b, pbx.CauseNormal), cleared(a, pbx.CauseNormal))
	wantErr(t, h.p.ClearCall(bg, b), pbx.ErrNoSuchCall)
}

func TestHoldRetrieve(t *testing.T) {
	h := newHarness(t, Options{})
	v, a := h.incoming("+4930123456", "1001", -1)
	wantErr(t, h.p.Hold(bg, a), pbx.ErrInvalidState) // still ringing
	must(t, h.p.Answer(bg, a))
	h.expect(connected(a, outside))
	wantErr(t, h.p.Retrieve(bg, a), pbx.ErrInvalidState)

	must(t, h.p.Hold(bg, a))
	h.expect(held(a, false))
	var got callView
	h.mustCall(http.MethodGet, "/sim/calls/"+v.ID, "", http.StatusOK, &got)
	if got.State != "held" || got.Legs[0].State != "held" {
		t.Fatalf("after hold: %+v", got)
	}
	wantErr(t, h.p.Hold(bg, a), pbx.ErrInvalidState)
	must(t, h.p.Retrieve(bg, a))
	h.expect(retrieved(a, false))

	// The phone itself.
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/hold", "", http.StatusOK, nil)
	h.expect(held(a, true))
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/hold", "", http.StatusConflict, nil)
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/unhold", `{"party":"1001"}`, http.StatusOK, nil)
	h.expect(retrieved(a, true))
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/unhold", "", http.StatusConflict, nil)
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/hold", `{"party":"+4930123456"}`, http.StatusUnprocessableEntity, nil)
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/hold", `{"party":"1002"}`, http.StatusUnprocessableEntity, nil)
	h.quiet()

	// A held call ends normally.
	must(t, h.p.Hold(bg, a))
	h.expect(held(a, false))
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/hangup", "", http.StatusOK, nil)
	h.expect(cleared(a, pbx.CauseNormal))
}

func TestSingleStepTransferToExtension(t *testing.T) {
	h := newHarness(t, Options{})
	v, a := h.incoming("+4930123456", "1001", -1)
	must(t, h.p.Answer(bg, a))
	h.expect(connected(a, outside))

	must(t, h.p.SingleStepTransfer(bg, a, "sip:1002@pbx.test"))
	evs := h.expect(transferred(a, pbx.TransferBlind), cleared(a, pbx.CauseTransferred), offered(newRef("1002"), outside))
	b := evs[2].Call
	var got callView
	h.mustCall(http.MethodGet, "/sim/calls/"+v.ID, "", http.StatusOK, &got)
	if got.From != "+4930123456" || got.To != "1002" || got.State != "ringing" || len(got.Legs) != 1 || got.Legs[0].Ref != b.ID {
		t.Fatalf("after transfer: %+v", got)
	}
	must(t, h.p.Answer(bg, b))
	h.expect(connected(b, outside))
	h.mustCall(http.MethodPost, "/sim/calls/"+v.ID+"/hangup", "", http.StatusOK, nil)
	h.expect(cleared(b, pbx.CauseNormal))
}

func TestSingleStepTransferBetweenExtensions(t *testing.T) {
	h := newHarness(t, Options{})
	_, b, a := h.extCall("1002", "1001")
	must(t, h.p.Answer(bg, a))
	h.expect(connected(a, bobParty), connected(b, aliceParty))
	must(t, h.p.Hold(bg, a))
	h.expect(held(a, false))

	must(t, h.p.SingleStepTransfer(bg, a, "1003")) // from held
	evs := h.expect(transferred(a, pbx.TransferBlind), cleared(a, pbx.CauseTransferred),
		partyChanged(b, carolParty), offered(newRef("1003"), bobParty))
	c := evs[3].Call
	must(t, h.p.Answer(bg, c))
	h.expect(connected(c, bobParty)) // Bob's connection stayed connected
	must(t, h.p.ClearConnection(bg, b))
	h.expect(cleared(b, pbx.CauseNormal), cleared(c, pbx.CauseNormal))
}

func TestDeflect(t *testing.T) {
	h := newHarness(t, Options{})
	_, b, a := h.extCall("1002", "1001")
	must(t, h.p.SingleStepTransfer(bg, a, "1003")) // alerting: deflect
	evs := h.expect(transferred(a, pbx.TransferBlind), cleared(a, pbx.CauseTransferred),
		partyChanged(b, carolParty), offered(newRef("1003"), bobParty))
	c := evs[3].Call
	must(t, h.p.Answer(bg, c))
	h.expect(connected(c, bobParty), connected(b, carolParty))
}

func TestSingleStepTransferToOutside(t *testing.T) {
	h := newHarness(t, Options{AnswerAfter: time.Second})
	id, b, a := h.extCall("1002", "1001")
	must(t, h.p.Answer(bg, a))
	h.expect(connected(a, bobParty), connected(b, aliceParty))

	must(t, h.p.SingleStepTransfer(bg, a, "tel:+4940999"))
	far := pbx.Party{Number: "+4940999"}
	h.expect(transferred(a, pbx.TransferBlind), cleared(a, pbx.CauseTransferred), partyChanged(b, far))
	var got callView
	h.mustCall(http.MethodGet, "/sim/calls/"+id, "", http.StatusOK, &got)
	if got.State != "ringing" || got.To != "+4940999" {
		t.Fatalf("before answer: %+v", got)
	}
	if h.clock.pending() != 1 || h.clock.timers[0].d != time.Second {
		t.Fatalf("want one 1s answer timer, have %d", h.clock.pending())
	}
	h.clock.fire()
	h.quiet() // Bob was connected all along
	h.mustCall(http.MethodGet, "/sim/calls/"+id, "", http.StatusOK, &got)
	if got.State != "connected" {
		t.Fatalf("after answer: %+v", got)
	}
	h.mustCall(http.MethodPost, "/sim/calls/"+id+"/hangup", "", http.StatusOK, nil) // the outside party
	h.expect(cleared(b, pbx.CauseNormal))
}

func TestDeflectToOutsideConnectsCaller(t *testing.T) {
	h := newHarness(t, Options{AnswerAfter: time.Second})
	_, b, a := h.extCall("1002", "1001")
	must(t, h.p.SingleStepTransfer(bg, a, "+4940999"))
	far := pbx.Party{Number: "+4940999"}
	h.expect(transferred(a, pbx.TransferBlind), cleared(a, pbx.CauseTransferred), partyChanged(b, far))
	h.clock.fire()
	h.expect(connected(b, far))
}

func TestSingleStepTransferErrors(t *testing.T) {
	h := newHarness(t, Options{})
	_, b, a := h.extCall("1002", "1001")
	wantErr(t, h.p.SingleStepTransfer(bg, a, ""), pbx.ErrInvalidDestination)
	wantErr(t, h.p.SingleStepTransfer(bg, a, "sip:@pbx.test"), pbx.ErrInvalidDestination)
	wantErr(t, h.p.SingleStepTransfer(bg, a, "10 01"), pbx.ErrInvalidDestination)
	wantErr(t, h.p.SingleStepTransfer(bg, a, "1001"), pbx.ErrInvalidDestination) // itself
	wantErr(t, h.p.SingleStepTransfer(bg, a, "1002"), pbx.ErrInvalidDestination) // the far party
	wantErr(t, h.p.SingleStepTransfer(bg, b, "1003"), pbx.ErrInvalidState)       // initiated
	wantErr(t, h.p.SingleStepTransfer(bg, pbx.CallRef{Ext: "1001", ID: "nope"}, "1003"), pbx.ErrNoSuchCall)
	h.quiet()
}

// An outside caller talks to Alice; Alice holds, calls Bob, and transfers.
func attendedSetup(t *testing.T, h *harness, answerBob bool) (callID string, a1, a2, b pbx.CallRef) {
	t.Helper()
	v, a1 := h.incoming("+4930123456", "1001", -1)
	must(t, h.p.Answer(bg, a1))
	h.expect(connected(a1, outside))
	must(t, h.p.Hold(bg, a1))
	h.expect(held(a1, false))
	a2 = pbx.CallRef{Ext: "1001", ID: "mc-1"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: a2, CSTAID: 3, Destination: "1002", AutoAnswer: true}))
	evs := h.expect(originated(a2, bobParty, 3), offered(newRef("1002"), aliceParty))
	b = evs[1].Call
	if answerBob {
		must(t, h.p.Answer(bg, b))
		h.expect(connected(b, aliceParty), connected(a2, bobParty))
	}
	return v.ID, a1, a2, b
}

func TestAttendedTransfer(t *testing.T) {
	h := newHarness(t, Options{})
	id, a1, a2, b := attendedSetup(t, h, true)
	must(t, h.p.Transfer(bg, a1, a2))
	h.expect(transferred(a1, pbx.TransferAttended), transferred(a2, pbx.TransferAttended),
		cleared(a1, pbx.CauseTransferred), cleared(a2, pbx.CauseTransferred), partyChanged(b, outside))
	var list []callView
	h.mustCall(http.MethodGet, "/sim/calls", "", http.StatusOK, &list)
	if len(list) != 1 || list[0].ID != id || list[0].From != "+4930123456" || list[0].To != "1002" ||
		list[0].State != "connected" || len(list[0].Legs) != 1 || list[0].Legs[0].Remote != "+4930123456" {
		t.Fatalf("calls after transfer: %+v", list)
	}
	h.mustCall(http.MethodPost, "/sim/calls/"+id+"/hangup", "", http.StatusOK, nil)
	h.expect(cleared(b, pbx.CauseNormal))
}

func TestAttendedTransferOnRinging(t *testing.T) {
	h := newHarness(t, Options{})
	id, a1, a2, b := attendedSetup(t, h, false)
	must(t, h.p.Transfer(bg, a1, a2))
	h.expect(transferred(a1, pbx.TransferAttended), transferred(a2, pbx.TransferAttended),
		cleared(a1, pbx.CauseTransferred), cleared(a2, pbx.CauseTransferred), partyChanged(b, outside))
	h.mustCall(http.MethodPost, "/sim/calls/"+id+"/answer", "", http.StatusOK, nil) // Bob picks up
	h.expect(connected(b, outside))
}

func TestAttendedTransferJoinsTwoExtensions(t *testing.T) {
	h := newHarness(t, Options{})
	_, b, a1 := h.extCall("1002", "1001")
	must(t, h.p.Answer(bg, a1))
	h.expect(connected(a1, bobParty), connected(b, aliceParty))
	must(t, h.p.Hold(bg, a1))
	h.expect(held(a1, false))
	_, a2, c := h.extCall("1001", "1003")
	must(t, h.p.Answer(bg, c))
	h.expect(connected(c, aliceParty), connected(a2, carolParty))
	must(t, h.p.Transfer(bg, a1, a2))
	h.expect(transferred(a1, pbx.TransferAttended), transferred(a2, pbx.TransferAttended),
		cleared(a1, pbx.CauseTransferred), cleared(a2, pbx.CauseTransferred),
		partyChanged(b, carolParty), partyChanged(c, bobParty))
	must(t, h.p.ClearConnection(bg, c))
	h.expect(cleared(c, pbx.CauseNormal), cleared(b, pbx.CauseNormal))
}

func TestAttendedTransferErrors(t *testing.T) {
	h := newHarness(t, Options{NeverAnswer: true})
	_, a1, a2, b := attendedSetup(t, h, true)
	wantErr(t, h.p.Transfer(bg, a2, a1), pbx.ErrInvalidState) // a2 is not held
	wantErr(t, h.p.Transfer(bg, a1, a1), pbx.ErrInvalidState)
	wantErr(t, h.p.Transfer(bg, a1, b), pbx.ErrInvalidState) // another extension
	wantErr(t, h.p.Transfer(bg, a1, pbx.CallRef{Ext: "1001", ID: "nope"}), pbx.ErrNoSuchCall)
	wantErr(t, h.p.Transfer(bg, pbx.CallRef{Ext: "1001", ID: "nope"}, a2), pbx.ErrNoSuchCall)
	// Prompt MakeCall: the device has not answered, there is nothing to join yet.
	a3 := pbx.CallRef{Ext: "1001", ID: "mc-3"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: a3, Destination: "+4940999"}))
	h.expect(originated(a3, pbx.Party{Number: "+4940999"}, 0))
	wantErr(t, h.p.Transfer(bg, a1, a3), pbx.ErrInvalidState)
	h.quiet()
}

func TestMakeCallOutsideAnswersAtOnce(t *testing.T) {
	h := newHarness(t, Options{AnswerAfter: 0})
	h.p.mu.Lock()
	h.p.after = New(Options{}).after // real timers
	h.p.mu.Unlock()
	ref := pbx.CallRef{Ext: "1001", ID: "mc-7"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, CSTAID: 7, Destination: "sip:+4930123456@pbx.test", AutoAnswer: true}))
	h.expect(originated(ref, outside, 7), connected(ref, outside))
	must(t, h.p.ClearConnection(bg, ref))
	h.expect(cleared(ref, pbx.CauseNormal))
}

func TestMakeCallNeverAnswer(t *testing.T) {
	h := newHarness(t, Options{NeverAnswer: true})
	ref := pbx.CallRef{Ext: "1001", ID: "mc-8"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, CSTAID: 8, Destination: "+4930123456", AutoAnswer: true}))
	h.expect(originated(ref, outside, 8))
	if h.clock.pending() != 0 {
		t.Fatal("NeverAnswer armed a timer")
	}
	var list []callView
	h.mustCall(http.MethodGet, "/sim/calls", "", http.StatusOK, &list)
	if len(list) != 1 || list[0].State != "ringing" || list[0].Legs[0].Ref != "mc-8" || *list[0].CSTAID != 8 ||
		list[0].Legs[0].State != "initiated" {
		t.Fatalf("calls: %+v", list)
	}
	// The far party declines.
	h.mustCall(http.MethodPost, "/sim/calls/"+list[0].ID+"/hangup", "", http.StatusOK, nil)
	h.expect(cleared(ref, pbx.CauseBusy))
}

func TestMakeCallTimerStopsWhenCleared(t *testing.T) {
	h := newHarness(t, Options{AnswerAfter: time.Minute})
	ref := pbx.CallRef{Ext: "1001", ID: "mc-9"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, Destination: "+4930123456", AutoAnswer: true}))
	h.expect(originated(ref, outside, 0))
	must(t, h.p.ClearConnection(bg, ref))
	h.expect(cleared(ref, pbx.CauseNormal))
	if h.clock.pending() != 0 {
		t.Fatal("answer timer still armed")
	}
	h.clock.fire()
	h.quiet()
}

func TestMakeCallFarPartyAnsweredByControlAPI(t *testing.T) {
	h := newHarness(t, Options{AnswerAfter: time.Minute})
	ref := pbx.CallRef{Ext: "1001", ID: "mc-10"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, Destination: "+4930123456", AutoAnswer: true}))
	h.expect(originated(ref, outside, 0))
	var list []callView
	h.mustCall(http.MethodGet, "/sim/calls", "", http.StatusOK, &list)
	h.mustCall(http.MethodPost, "/sim/calls/"+list[0].ID+"/answer", "", http.StatusOK, nil)
	h.expect(connected(ref, outside))
	h.mustCall(http.MethodPost, "/sim/calls/"+list[0].ID+"/answer", "", http.StatusConflict, nil)
	h.clock.fire() // the stopped timer must not answer twice
	h.quiet()
}

func TestMakeCallToExtension(t *testing.T) {
	h := newHarness(t, Options{})
	ref := pbx.CallRef{Ext: "1001", ID: "mc-11"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, CSTAID: 11, Destination: "1002", AutoAnswer: true}))
	evs := h.expect(originated(ref, bobParty, 11), offered(newRef("1002"), aliceParty))
	b := evs[1].Call
	must(t, h.p.Answer(bg, b))
	h.expect(connected(b, aliceParty), connected(ref, bobParty))
	wantErr(t, h.p.Answer(bg, b), pbx.ErrInvalidState)
	must(t, h.p.ClearConnection(bg, ref))
	h.expect(cleared(ref, pbx.CauseNormal), cleared(b, pbx.CauseNormal))
}

func TestMakeCallPrompt(t *testing.T) {
	h := newHarness(t, Options{})
	ref := pbx.CallRef{Ext: "1001", ID: "mc-12"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, CSTAID: 12, Destination: "1002"}))
	h.expect(originated(ref, bobParty, 12)) // Bob is not called before Alice's device answers
	wantErr(t, h.p.Answer(bg, ref), pbx.ErrInvalidState)
	var list []callView
	h.mustCall(http.MethodGet, "/sim/calls", "", http.StatusOK, &list)
	if list[0].State != "dialing" {
		t.Fatalf("state %q, want dialing", list[0].State)
	}
	h.mustCall(http.MethodPost, "/sim/calls/"+list[0].ID+"/answer", "", http.StatusOK, nil) // Alice's device
	evs := h.expect(offered(newRef("1002"), aliceParty))
	h.mustCall(http.MethodPost, "/sim/calls/"+list[0].ID+"/answer", "", http.StatusOK, nil) // Bob
	h.expect(connected(evs[0].Call, aliceParty), connected(ref, bobParty))
}

func TestMakeCallPromptRejectedAtDevice(t *testing.T) {
	h := newHarness(t, Options{})
	ref := pbx.CallRef{Ext: "1001", ID: "mc-13"}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, Destination: "+4930123456"}))
	h.expect(originated(ref, outside, 0))
	must(t, h.p.ClearConnection(bg, ref))
	h.expect(cleared(ref, pbx.CauseNormal))
	if h.clock.pending() != 0 {
		t.Fatal("the destination was called")
	}
}

func TestMakeCallErrors(t *testing.T) {
	h := newHarness(t, Options{NeverAnswer: true})
	ref := pbx.CallRef{Ext: "1001", ID: "mc-20"}
	for _, tc := range []struct {
		req  pbx.MakeCallRequest
		want error
	}{
		{pbx.MakeCallRequest{Call: ref, Destination: ""}, pbx.ErrInvalidDestination},
		{pbx.MakeCallRequest{Call: ref, Destination: "  "}, pbx.ErrInvalidDestination},
		{pbx.MakeCallRequest{Call: ref, Destination: "sip:1001@pbx.test"}, pbx.ErrInvalidDestination},
		{pbx.MakeCallRequest{Call: ref, Destination: "12/34"}, pbx.ErrInvalidDestination},
		{pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "9999", ID: "x"}, Destination: "1002"}, pbx.ErrDeviceUnreachable},
		{pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1001"}, Destination: "1002"}, pbx.ErrInvalidState},
	} {
		wantErr(t, h.p.MakeCall(bg, tc.req), tc.want)
	}
	must(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, Destination: "1002", AutoAnswer: true}))
	h.expect(originated(ref, bobParty, 0), offered(newRef("1002"), aliceParty))
	wantErr(t, h.p.MakeCall(bg, pbx.MakeCallRequest{Call: ref, Destination: "1003", AutoAnswer: true}), pbx.ErrInvalidState)
	h.quiet()
}

func TestCommandsOnUnknownCalls(t *testing.T) {
	h := newHarness(t, Options{})
	x := pbx.CallRef{Ext: "1001", ID: "nope"}
	wantErr(t, h.p.Answer(bg, x), pbx.ErrNoSuchCall)
	wantErr(t, h.p.Hold(bg, x), pbx.ErrNoSuchCall)
	wantErr(t, h.p.Retrieve(bg, x), pbx.ErrNoSuchCall)
	wantErr(t, h.p.ClearConnection(bg, x), pbx.ErrNoSuchCall)
	wantErr(t, h.p.ClearCall(bg, x), pbx.ErrNoSuchCall)
	wantErr(t, h.p.SingleStepTransfer(bg, x, "1002"), pbx.ErrNoSuchCall)
	wantErr(t, h.p.TagCall(bg, x, 1), pbx.ErrNoSuchCall)
	wantErr(t, h.p.SendDTMF(bg, x, "1"), pbx.ErrNoSuchCall)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	wantErr(t, h.p.Answer(ctx, x), context.Canceled)
	h.quiet()
}
