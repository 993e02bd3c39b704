package ari

import (
	"errors"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A ringing routed call deflected to 1003: the caller continues in the
// dialplan at 1003 (which routes it back into the application as a new
// call), the ringing device channel is cancelled as answered elsewhere, and
// 1002's connection ends as deflected, not missed.
func TestDeflectRingingCall(t *testing.T) {
	h := newHarness(t)
	aID, ref := ownedRinging(t, h, "1001")
	caller := pbx.CallRef{Ext: "1001", ID: aID}
	if err := h.a.Deflect(ctxT(t), ref, "sip:1003@pbx.test"); err != nil {
		t.Fatalf("Deflect: %v", err)
	}
	if ev := h.cleared(ref)[0]; ev.Cause != pbx.CauseDeflected {
		t.Errorf("1002 cleared %s, want deflected", ev.Cause)
	}
	r, ok := lastRequest(h.fake, "POST", "/channels/"+aID+"/continue")
	if !ok || r.Params["context"] != "from-internal" || r.Params["extension"] != "1003" || r.Params["priority"] != "1" {
		t.Errorf("continue request %+v", r)
	}
	if r, ok := lastRequest(h.fake, "DELETE", "/channels/"+ref.ID); !ok || r.Params["reason"] != "answered_elsewhere" {
		t.Errorf("ringing channel hang-up %+v", r)
	}
	if c := h.fake.Channel(aID); c == nil || c.InStasis {
		t.Fatalf("the caller should live on in the dialplan: %+v", c)
	}
	noBridgesLeft(t, h.fake)

	// The dialplan snippet brings the caller back to ring 1003.
	if err := h.fake.Reenter(aID); err != nil {
		t.Fatal(err)
	}
	off := h.waitKind("1003", pbx.EventOffered)
	if off.Remote.Number != "1001" {
		t.Errorf("1003 offered %+v", off)
	}
	if err := h.fake.Answer(off.Call.ID); err != nil {
		t.Fatal(err)
	}
	h.waitBothConnected(off.Call, caller)
	if err := h.fake.Hangup(aID, 16); err != nil {
		t.Fatal(err)
	}
	h.cleared(off.Call, caller)
	noChannelsLeft(t, h.fake)
	noBridgesLeft(t, h.fake)
}

// Only a ringing call the adapter dials to the device can be deflected;
// a bad destination is refused before anything is done.
func TestDeflectRefusals(t *testing.T) {
	h := newHarness(t)
	ctx := ctxT(t)
	_, talking := ownedConnected(t, h, "1001")
	refused(t, h.a.Deflect(ctx, talking, "1003"), pbx.ErrInvalidState, "deflect", talking, "state connected")
	_, ringing := ownedRinging(t, h, "1003")
	if err := h.a.Deflect(ctx, ringing, "10 03"); !errors.Is(err, pbx.ErrInvalidDestination) {
		t.Errorf("bad destination = %v", err)
	}
	a, b := h.fake.PlainDial("PJSIP/1001", "PJSIP/1003")
	observed := h.waitKind("1003", pbx.EventOffered).Call
	if observed.ID != b {
		t.Fatalf("offered %s, want %s (caller %s)", observed, b, a)
	}
	refused(t, h.a.Deflect(ctx, observed, "1002"), pbx.ErrNotSupported, "deflect", observed, "not under the bridge's Stasis application")
	if r, ok := lastRequest(h.fake, "POST", "/continue"); ok {
		t.Errorf("a refused deflect asked Asterisk %s", r)
	}
}

// A deflect whose continue Asterisk refuses leaves the call ringing as it
// was: answered afterwards, it connects as usual.
func TestDeflectRefusedByAsterisk(t *testing.T) {
	h := newHarness(t)
	aID, ref := ownedRinging(t, h, "1001")
	h.fake.Fail("POST", "/channels/"+aID+"/continue", 500, internalError, 1)
	if err := h.a.Deflect(ctxT(t), ref, "1003"); err == nil {
		t.Fatal("Deflect succeeded")
	}
	if c := h.fake.Channel(ref.ID); c == nil || c.State != "Ringing" {
		t.Fatalf("the device channel should still ring: %+v", c)
	}
	if err := h.fake.Answer(ref.ID); err != nil {
		t.Fatal(err)
	}
	h.waitBothConnected(ref, pbx.CallRef{Ext: "1001", ID: aID})
	if err := h.fake.Hangup(ref.ID, 16); err != nil {
		t.Fatal(err)
	}
	for _, ev := range h.cleared(ref, pbx.CallRef{Ext: "1001", ID: aID}) {
		if ev.Cause != pbx.CauseNormal {
			t.Errorf("%s cleared %s", ev.Call, ev.Cause)
		}
	}
	noChannelsLeft(t, h.fake)
}
