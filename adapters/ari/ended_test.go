package ari

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A call can end while a command's requests to Asterisk are under way: the
// hangup arrives as events, which the adapter handles meanwhile. Each test
// holds one request of a command in the fake, hangs up, then lets the
// request go on. The connection has been reported cleared by then, so the
// command must not report it changed, and nothing may be reported about it
// after its Cleared.

// request matches a REST request by method and exact path.
func request(method, path string) func(fakeari.Request) bool {
	return func(r fakeari.Request) bool { return r.Method == method && r.Path == path }
}

// run starts a command and returns where its error will arrive.
func run(cmd func() error) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- cmd() }()
	return errc
}

func arrived(t *testing.T, g *fakeari.Gate, desc string) {
	t.Helper()
	select {
	case <-g.Arrived():
	case <-time.After(waitLimit):
		t.Fatalf("%s never reached the fake Asterisk", desc)
	}
}

func result(t *testing.T, errc <-chan error, desc string) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("%s did not return", desc)
		return nil
	}
}

// cleared waits for the Cleared of every one of refs, in any order, and
// returns them in the order of refs.
func (h *harness) cleared(refs ...pbx.CallRef) []pbx.Event {
	h.t.Helper()
	got := map[pbx.CallRef]pbx.Event{}
	h.waitEvent("cleared", func(ev pbx.Event) bool {
		if ev.Kind == pbx.EventCleared && slices.Contains(refs, ev.Call) {
			got[ev.Call] = ev
		}
		return len(got) == len(refs)
	})
	out := make([]pbx.Event, len(refs))
	for i, r := range refs {
		out[i] = got[r]
	}
	return out
}

// barrier returns every event up to a device event the test provokes, so
// all events queued before the call are in the list.
func (h *harness) barrier() []pbx.Event {
	h.t.Helper()
	h.fake.SetRegistered("PJSIP/1003", false)
	var evs []pbx.Event
	h.waitEvent("barrier", func(ev pbx.Event) bool {
		if ev.Kind == pbx.EventDevice && ev.Call.Ext == "1003" && !ev.Registered {
			return true
		}
		evs = append(evs, ev)
		return false
	})
	return evs
}

// nothingAbout fails for any event about one of refs.
func nothingAbout(t *testing.T, evs []pbx.Event, refs ...pbx.CallRef) {
	t.Helper()
	for _, ev := range evs {
		if slices.Contains(refs, ev.Call) {
			t.Errorf("%s %s after the connection was cleared", ev.Kind, ev.Call)
		}
	}
}

func noChannelsLeft(t *testing.T, f *fakeari.Server) {
	t.Helper()
	waitFake(t, f, "every channel hung up", func() bool { return len(f.Channels()) == 0 })
}

func endedErr(t *testing.T, err error, op string, ref pbx.CallRef) {
	t.Helper()
	refused(t, err, pbx.ErrNoSuchCall, op, ref, "the call ended while the request was under way")
}

// The bug this file started from: RetrieveCall reported "retrieved" after
// the connection's "cleared" when the call ended while the retrieve ran.
// HoldCall has the same shape and is checked the same way.
func TestHoldRetrieveWhenCallEndsMeanwhile(t *testing.T) {
	for _, c := range []struct {
		name    string
		held    bool   // the command is Retrieve (the call is held first)
		hangup  string // "ext" (the extension's phone) or "far" (the other party)
		reply   bool   // hold the reply (the request took effect) rather than the request
		request func(far, bridge string) func(fakeari.Request) bool
	}{
		// The last request took effect; the hangup comes before its reply.
		{"retrieve, extension hangs up, last reply held", true, "ext", true,
			func(far, b string) func(fakeari.Request) bool { return request("POST", "/bridges/"+b+"/addChannel") }},
		{"retrieve, far party hangs up, last reply held", true, "far", true,
			func(far, b string) func(fakeari.Request) bool { return request("POST", "/bridges/"+b+"/addChannel") }},
		// The hangup comes first: Asterisk refuses the next request
		// (400 channel not found), which is not what went wrong.
		{"retrieve, extension hangs up, first request held", true, "ext", false,
			func(far, b string) func(fakeari.Request) bool { return request("DELETE", "/channels/"+far+"/moh") }},
		{"hold, extension hangs up, last reply held", false, "ext", true,
			func(far, b string) func(fakeari.Request) bool { return request("POST", "/channels/"+far+"/moh") }},
		{"hold, far party hangs up, first request held", false, "far", false,
			func(far, b string) func(fakeari.Request) bool { return request("POST", "/bridges/"+b+"/removeChannel") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			aID, ref := ownedConnected(t, h, "1001")
			caller := pbx.CallRef{Ext: "1001", ID: aID}
			ctx := ctxT(t)
			op, cmd := "hold", h.a.Hold
			if c.held {
				if err := h.a.Hold(ctx, ref); err != nil {
					t.Fatalf("Hold: %v", err)
				}
				h.waitKind("1002", pbx.EventHeld)
				op, cmd = "retrieve", h.a.Retrieve
			}
			bridges := h.fake.Bridges()
			if len(bridges) != 1 {
				t.Fatalf("bridges %v, want the call's one", bridges)
			}
			match := c.request(aID, bridges[0])
			hold := h.fake.HoldRequest
			if c.reply {
				hold = h.fake.HoldReply
			}
			g := hold(match)
			t.Cleanup(g.Release)
			errc := run(func() error { return cmd(ctx, ref) })
			arrived(t, g, op+"'s request")

			gone := ref.ID
			if c.hangup == "far" {
				gone = aID
			}
			if err := h.fake.Hangup(gone, 16); err != nil {
				t.Fatal(err)
			}
			h.cleared(ref, caller)
			// Both channels gone before the request goes on: what Asterisk
			// then answers is the consequence of the hangup.
			noChannelsLeft(t, h.fake)
			g.Release()

			endedErr(t, result(t, errc, op), op, ref)
			nothingAbout(t, h.barrier(), ref, caller)
		})
	}
}

// A single step transfer whose Continue took effect is done, even if the
// extension hung up meanwhile: the far party is on its way to the
// destination. But the leg was cleared first and gets no "transferred".
func TestSingleStepTransferWhenExtensionHangsUpMeanwhile(t *testing.T) {
	h := newHarness(t)
	aID, ref := ownedConnected(t, h, "1001")
	caller := pbx.CallRef{Ext: "1001", ID: aID}
	ctx := ctxT(t)
	g := h.fake.HoldReply(request("POST", "/channels/"+aID+"/continue"))
	t.Cleanup(g.Release)
	errc := run(func() error { return h.a.SingleStepTransfer(ctx, ref, "1003") })
	arrived(t, g, "continue")
	if err := h.fake.Hangup(ref.ID, 16); err != nil {
		t.Fatal(err)
	}
	if c := h.cleared(ref)[0]; c.Cause != pbx.CauseNormal {
		t.Errorf("cleared with %s, want normal (the phone hung up)", c.Cause)
	}
	g.Release()
	if err := result(t, errc, "single step transfer"); err != nil {
		t.Fatalf("SingleStepTransfer = %v, want nil: the far party was transferred", err)
	}
	nothingAbout(t, h.barrier(), ref, caller)
	if c := h.fake.Channel(aID); c == nil || c.InStasis || c.Exten != "1003" {
		t.Errorf("the far party should be in the dialplan at 1003: %+v", c)
	}
}

// The far party hangs up before Asterisk sees the Continue. While the
// transfer had it released, the two-party rule left the extension's leg
// up; the failed transfer must end it, not leave it talking to no one.
func TestSingleStepTransferWhenFarPartyHangsUpMeanwhile(t *testing.T) {
	h := newHarness(t)
	aID, ref := ownedConnected(t, h, "1001")
	ctx := ctxT(t)
	g := h.fake.HoldRequest(request("POST", "/channels/"+aID+"/continue"))
	t.Cleanup(g.Release)
	errc := run(func() error { return h.a.SingleStepTransfer(ctx, ref, "1003") })
	arrived(t, g, "continue")
	if err := h.fake.Hangup(aID, 16); err != nil {
		t.Fatal(err)
	}
	h.cleared(pbx.CallRef{Ext: "1001", ID: aID})
	g.Release()
	endedErr(t, result(t, errc, "single step transfer"), "single step transfer", ref)
	if c := h.cleared(ref)[0]; c.Cause != pbx.CauseNormal {
		t.Errorf("extension's leg cleared with %s, want normal", c.Cause)
	}
	nothingAbout(t, h.barrier(), ref)
	noChannelsLeft(t, h.fake)
}

// AnswerCall's new call to the device is being placed when the call ends.
// The answer fails with "no such call", and nothing of the call is left:
// no new call ringing the device for a caller that has gone, no caller
// waiting for a device that rejected it.
func TestAnswerWhenCallEndsMeanwhile(t *testing.T) {
	for _, c := range []struct {
		name   string
		hangup string // "ext" rejects the ringing call, "far" gives up
		reply  bool   // the new call exists when the hangup comes
		cause  pbx.Cause
	}{
		{"device rejects the ringing call", "ext", false, pbx.CauseRejected},
		{"caller gives up before the new call exists", "far", false, pbx.CauseCancelled},
		{"caller gives up after the new call exists", "far", true, pbx.CauseCancelled},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			aID, ref := ownedRinging(t, h, "1001")
			caller := pbx.CallRef{Ext: "1001", ID: aID}
			ctx := ctxT(t)
			match := request("POST", "/channels")
			hold := h.fake.HoldRequest
			if c.reply {
				hold = h.fake.HoldReply
			}
			g := hold(match)
			t.Cleanup(g.Release)
			errc := run(func() error { return h.a.Answer(ctx, ref) })
			arrived(t, g, "the auto-answer call")

			gone, cause := ref.ID, 21
			if c.hangup == "far" {
				gone, cause = aID, 127
			}
			if err := h.fake.Hangup(gone, cause); err != nil {
				t.Fatal(err)
			}
			// The one that hung up is cleared now; the other one is only
			// when the answer gives up.
			first := h.cleared(map[string]pbx.CallRef{"ext": ref, "far": caller}[c.hangup])[0]
			g.Release()

			endedErr(t, result(t, errc, "answer"), "answer", ref)
			got := first
			if c.hangup == "far" {
				got = h.cleared(ref)[0]
			} else {
				h.cleared(caller)
			}
			if got.Cause != c.cause {
				t.Errorf("ringing connection cleared with %s, want %s", got.Cause, c.cause)
			}
			nothingAbout(t, h.barrier(), ref, caller)
			noChannelsLeft(t, h.fake)
		})
	}
}

// TransferCall is joining the two far parties when the held call's far
// party hangs up. The transfer cannot be done; the consultation call goes
// on as it was, and neither connection is reported transferred.
func TestTransferWhenHeldCallEndsMeanwhile(t *testing.T) {
	h := newHarness(t)
	a1, ref1 := ownedConnected(t, h, "1001")
	a3, ref3 := ownedConnected(t, h, "1003")
	ctx := ctxT(t)
	if err := h.a.Hold(ctx, ref1); err != nil {
		t.Fatal(err)
	}
	h.waitKind("1002", pbx.EventHeld)
	consultBridge := h.fake.Channel(a3).Bridge
	g := h.fake.HoldReply(func(r fakeari.Request) bool {
		return r.Method == "POST" && strings.HasSuffix(r.Path, "/addChannel") && r.Params["channel"] == a3
	})
	t.Cleanup(g.Release)
	errc := run(func() error { return h.a.Transfer(ctx, ref1, ref3) })
	arrived(t, g, "the consultation party joining the new bridge")
	if err := h.fake.Hangup(a1, 16); err != nil {
		t.Fatal(err)
	}
	h.cleared(ref1)
	g.Release()

	endedErr(t, result(t, errc, "transfer"), "transfer", ref1)
	waitFake(t, h.fake, "consultation call bridged again, transfer bridge gone", func() bool {
		ch := h.fake.BridgeChannels(consultBridge)
		return len(h.fake.Bridges()) == 1 && slices.Contains(ch, a3) && slices.Contains(ch, ref3.ID)
	})
	for _, ev := range h.barrier() {
		if ev.Call == ref1 || ev.Kind == pbx.EventTransferred || ev.Kind == pbx.EventPartyChanged ||
			(ev.Kind == pbx.EventCleared && (ev.Call == ref3 || ev.Call.ID == a3)) {
			t.Errorf("%s %s after a transfer that could not be done", ev.Kind, ev.Call)
		}
	}
	// The consultation call is intact: it can be held and hung up.
	if err := h.a.Hold(ctx, ref3); err != nil {
		t.Fatalf("Hold of the consultation call: %v", err)
	}
	h.waitKind("1002", pbx.EventHeld)
	if err := h.a.ClearCall(ctx, ref3); err != nil {
		t.Fatal(err)
	}
	h.cleared(ref3)
	noChannelsLeft(t, h.fake)
}

// A transfer refused by Asterisk half way (the second far party cannot
// join) puts the first one back where it was, rather than in a bridge that
// is then deleted: held by the bridge, out of any bridge on music on hold;
// held by the phone, in its call's bridge.
func TestTransferFailureRestoresFarParties(t *testing.T) {
	for _, byPhone := range []bool{false, true} {
		name := "held by the bridge"
		if byPhone {
			name = "held by the phone"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			a1, ref1 := ownedConnected(t, h, "1001")
			a3, ref3 := ownedConnected(t, h, "1003")
			ctx := ctxT(t)
			heldBridge := h.fake.Channel(a1).Bridge
			if byPhone {
				if err := h.fake.PhoneHold(ref1.ID, true); err != nil {
					t.Fatal(err)
				}
			} else if err := h.a.Hold(ctx, ref1); err != nil {
				t.Fatal(err)
			}
			h.waitKind("1002", pbx.EventHeld)
			consultBridge := h.fake.Channel(a3).Bridge
			// The held party has joined the new bridge; then the
			// consultation party's request fails.
			g := h.fake.HoldReply(func(r fakeari.Request) bool {
				return r.Method == "POST" && strings.HasSuffix(r.Path, "/addChannel") && r.Params["channel"] == a1
			})
			t.Cleanup(g.Release)
			errc := run(func() error { return h.a.Transfer(ctx, ref1, ref3) })
			arrived(t, g, "the held party joining the new bridge")
			h.fake.Fail("POST", "/addChannel", 500, `{"message":"Internal Server Error"}`, 1)
			g.Release()
			if err := result(t, errc, "transfer"); !errors.Is(err, pbx.ErrUnavailable) {
				t.Fatalf("Transfer = %v, want ErrUnavailable", err)
			}
			wantBridge := heldBridge
			if !byPhone {
				wantBridge = ""
			}
			waitFake(t, h.fake, "held party back where it was, transfer bridge gone", func() bool {
				c := h.fake.Channel(a1)
				return c != nil && c.Bridge == wantBridge && len(h.fake.Bridges()) == 2
			})
			if ch := h.fake.BridgeChannels(consultBridge); !slices.Contains(ch, a3) {
				t.Errorf("consultation party left its bridge: %v", ch)
			}
			// The bridge's own hold is started again: harmless on Asterisk
			// 22, which keeps the music playing across bridges.
			mohStarts := 0
			for _, r := range h.fake.Requests() {
				if r.Method == "POST" && r.Path == "/channels/"+a1+"/moh" {
					mohStarts++
				}
			}
			if want := map[bool]int{false: 2, true: 0}[byPhone]; mohStarts != want {
				t.Errorf("music on hold started %d times for the held party, want %d", mohStarts, want)
			}
			if byPhone {
				return
			}
			// Both calls go on: the held one can be retrieved.
			if err := h.a.Retrieve(ctx, ref1); err != nil {
				t.Fatalf("Retrieve after the failed transfer: %v", err)
			}
			h.waitKind("1002", pbx.EventRetrieved)
		})
	}
}
