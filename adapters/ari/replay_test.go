package ari

import (
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// The replay tests send events captured from a real Asterisk, verbatim, and
// check what the adapter reports for each extension.

func replay(t *testing.T, name string) *harness {
	h := newHarness(t)
	if err := h.fake.Replay(loadEvents(t, name)); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestReplayPlainDialAnswered(t *testing.T) {
	h := replay(t, "a_plain_dial_answered")
	got := h.collect(clearedAll("1001", "1002"))
	if k := kinds(got["1001"]); k != "originated connected cleared(normal)" {
		t.Errorf("1001: %s", k)
	}
	if k := kinds(got["1002"]); k != "offered connected cleared(normal)" {
		t.Errorf("1002: %s", k)
	}
	o := got["1001"][0]
	if o.Remote.Number != "1002" || o.Call.ID != "1795639458.100" {
		t.Errorf("originated: %+v", o)
	}
	off := got["1002"][0]
	if off.Remote.Number != "1001" || off.Remote.Name != "Phone 1001" {
		t.Errorf("offered remote: %+v", off.Remote)
	}
	if off.SIPCallID != "35db848e-2d91-49c2-9ebc-7b4ee9584c33" {
		t.Errorf("offered call-id %q", off.SIPCallID)
	}
	if c := got["1001"][1]; c.Remote.Number != "1002" || c.SIPCallID != "02b8f9bd-360b-44c2-aff6-50e5910ebd7a" {
		t.Errorf("1001 connected remote %+v", c.Remote)
	}
}

func TestReplayMissedCallCancelled(t *testing.T) {
	h := replay(t, "b_missed_call_caller_cancel")
	got := h.collect(clearedAll("1001", "1002"))
	if k := kinds(got["1002"]); k != "offered cleared(cancelled)" {
		t.Errorf("1002: %s", k)
	}
	if k := kinds(got["1001"]); k != "originated cleared(normal)" {
		t.Errorf("1001: %s", k)
	}
}

func TestReplayBusyReject(t *testing.T) {
	h := replay(t, "b2_busy_reject")
	got := h.collect(clearedAll("1001", "1002"))
	if k := kinds(got["1002"]); k != "offered cleared(rejected)" {
		t.Errorf("1002: %s", k)
	}
	if k := kinds(got["1001"]); k != "originated cleared(busy)" {
		t.Errorf("1001: %s", k)
	}
}

func TestReplayNoAnswer(t *testing.T) {
	h := replay(t, "b3_no_answer_timeout")
	got := h.collect(clearedAll("1001", "1002"))
	if k := kinds(got["1002"]); k != "offered cleared(no-answer)" {
		t.Errorf("1002: %s", k)
	}
	if k := kinds(got["1001"]); k != "originated cleared(no-answer)" {
		t.Errorf("1001: %s", k)
	}
}

func TestReplayBlindTransferByPhone(t *testing.T) {
	h := replay(t, "e1_blind_transfer_by_phone")
	got := h.collect(clearedAll("1001", "1002", "1003"))
	if k := kinds(got["1002"]); k != "offered connected transferred(blind) cleared(transferred)" {
		t.Errorf("1002: %s", k)
	}
	if !got["1002"][2].ByPhone {
		t.Error("transfer not marked ByPhone")
	}
	if k := kinds(got["1001"]); k != "originated connected party-changed cleared(normal)" {
		t.Errorf("1001: %s", k)
	}
	if pc := got["1001"][2]; pc.Remote.Number != "1003" {
		t.Errorf("party changed to %+v", pc.Remote)
	}
	if k := kinds(got["1003"]); k != "offered connected cleared(normal)" {
		t.Errorf("1003: %s", k)
	}
}

func TestReplayAttendedTransferByPhone(t *testing.T) {
	h := replay(t, "e2_attended_transfer_by_phone")
	got := h.collect(clearedAll("1001", "1003"))
	// 1002: the first call (held by the phone), then the consultation call.
	var first, second []string
	for _, e := range got["1002"] {
		if e.Call.ID == "1795639597.120" {
			first = append(first, kindOf(e))
		} else {
			second = append(second, kindOf(e))
		}
	}
	// The phone takes the held call back just before it sends the REFER.
	if k := strings.Join(first, " "); k != "offered connected held retrieved transferred(attended) cleared(transferred)" {
		t.Errorf("1002 first call: %s", k)
	}
	if k := strings.Join(second, " "); k != "originated connected transferred(attended) cleared(transferred)" {
		t.Errorf("1002 consultation: %s", k)
	}
	if k := kinds(got["1001"]); k != "originated connected party-changed cleared(normal)" {
		t.Errorf("1001: %s", k)
	}
	if k := kinds(got["1003"]); k != "offered connected party-changed cleared(normal)" {
		t.Errorf("1003: %s", k)
	}
}

func TestReplayEndpointSubscriptionOnly(t *testing.T) {
	// Only 1001 is subscribed in this capture: its calls are seen, 1002's
	// and 1003's are not (their events never arrive).
	h := replay(t, "f_subscription_endpoint_1001")
	got := h.collect(func(m map[string][]pbx.Event) bool {
		n := 0
		for _, e := range m["1001"] {
			if e.Kind == pbx.EventCleared {
				n++
			}
		}
		return n == 2
	})
	if k := kinds(got["1001"]); k != "originated connected cleared(normal) offered connected cleared(normal)" {
		t.Errorf("1001: %s", k)
	}
	if len(got["1002"])+len(got["1003"]) != 0 {
		t.Errorf("unexpected events: %s", describe(got))
	}
}

func TestReplayRegistration(t *testing.T) {
	h := replay(t, "h_unregister_register_1003")
	var regs []bool
	timer := h.waitEvent("device registered", func(ev pbx.Event) bool {
		if ev.Kind == pbx.EventDevice && ev.Call.Ext == "1003" {
			regs = append(regs, ev.Registered)
			return ev.Registered
		}
		return false
	})
	_ = timer
	if len(regs) != 2 || regs[0] || !regs[1] {
		t.Errorf("registration events %v, want [false true]", regs)
	}
}
