package ari

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A SingleStepTransfer whose request fails is undone where it can be: the
// call goes on as it was, the far party in the call's bridge (or, held by
// the bridge, outside it on music on hold), the connection in its state,
// nothing reported, and the CTI client gets the fault. A later
// SingleStepTransfer works. A Continue Asterisk did not answer but carried
// out cannot be undone (the far party is in the dialplan): the transfer
// is then done, as if Asterisk had answered.
func TestSingleStepTransferFailure(t *testing.T) {
	for _, c := range []struct {
		held    bool   // the call is held by the bridge first
		failing string // "continue", or "music" (stopping the music on hold)
		how     lostHow
		done    bool // the transfer is done after all
		// The transfer's requests to Asterisk, its undo's included.
		requests []string
	}{
		{false, "continue", refusedWith500, false, []string{"POST /channels/{far}/continue"}},
		// Asterisk continued the far party: where it is in the dialplan
		// tells, and the extension's leg, told it has no partner any more
		// (its hangup handler would end the party sent on), is hung up.
		{false, "continue", replyHeld, true, []string{"POST /channels/{far}/continue", "GET /channels/{far}",
			"POST /channels/{leg}/variable", "DELETE /channels/{leg}"}},
		// The far party is still where it entered the application.
		{false, "continue", dropped, false, []string{"POST /channels/{far}/continue", "GET /channels/{far}"}},
		// The music was stopped: it is started again.
		{true, "continue", refusedWith500, false, []string{"DELETE /channels/{far}/moh", "POST /channels/{far}/continue",
			"POST /channels/{far}/moh"}},
		{true, "continue", replyHeld, true, []string{"DELETE /channels/{far}/moh", "POST /channels/{far}/continue",
			"GET /channels/{far}", "POST /channels/{leg}/variable", "DELETE /channels/{leg}"}},
		{true, "continue", dropped, false, []string{"DELETE /channels/{far}/moh", "POST /channels/{far}/continue",
			"GET /channels/{far}", "POST /channels/{far}/moh"}},
		// Music that may still play would follow the far party into its
		// new call: no transfer. Music that may have stopped is started
		// again (harmless when it plays: 204).
		{true, "music", refusedWith500, false, []string{"DELETE /channels/{far}/moh"}},
		{true, "music", replyHeld, false, []string{"DELETE /channels/{far}/moh", "POST /channels/{far}/moh"}},
		{true, "music", dropped, false, []string{"DELETE /channels/{far}/moh", "POST /channels/{far}/moh"}},
	} {
		name := "connected, "
		if c.held {
			name = "held, "
		}
		t.Run(name+c.failing+" "+c.how.String(), func(t *testing.T) {
			logs := &warnings{}
			h := newHarness(t, func(o *Options) { o.Logger = slog.New(logs) })
			far, ref := ownedConnected(t, h, "1001")
			ctx := ctxT(t)
			bridge := h.fake.Channel(far).Bridge
			state, wantMOH, wantBridge := pbx.StateConnected, false, bridge
			if c.held {
				if err := h.a.Hold(ctx, ref); err != nil {
					t.Fatal(err)
				}
				h.waitKind("1002", pbx.EventHeld)
				state, wantMOH, wantBridge = pbx.StateHeld, true, ""
			}
			match := request("POST", "/channels/"+far+"/continue")
			if c.failing == "music" {
				match = request("DELETE", "/channels/"+far+"/moh")
			}
			n := len(h.fake.Requests())

			err, g := failOnce(t, h, c.how, match, func(ctx context.Context) error {
				return h.a.SingleStepTransfer(ctx, ref, "1003")
			})
			names := strings.NewReplacer(far, "{far}", ref.ID, "{leg}")
			got := requestsSince(h.fake, n, names)
			if c.done {
				if err != nil {
					t.Fatalf("SingleStepTransfer = %v, want nil: Asterisk transferred the far party", err)
				}
				// The leg's end makes the adapter delete the call's bridge.
				for len(got) > len(c.requests) && strings.HasPrefix(got[len(got)-1], "DELETE /bridges/") {
					got = got[:len(got)-1]
				}
				if !slices.Equal(got, c.requests) {
					t.Errorf("requests\n%q\nwant\n%q", got, c.requests)
				}
				evs := h.collect(clearedAll("1002"))
				if k := kinds(evs["1002"]); !strings.HasSuffix(k, "transferred(blind) cleared(transferred)") {
					t.Errorf("1002: %s", k)
				}
				if ch := h.fake.Channel(far); ch == nil || ch.InStasis || ch.Exten != "1003" || ch.MOH {
					t.Errorf("far party should be in the dialplan at 1003 without music: %+v", ch)
				}
				return
			}
			refused(t, err, pbx.ErrUnavailable, "single step transfer", ref, "")
			if !slices.Equal(got, c.requests) {
				t.Errorf("requests\n%q\nwant\n%q", got, c.requests)
			}
			if w := logs.messages(); len(w) > 0 {
				t.Errorf("warnings %q", w)
			}
			if ch := h.fake.Channel(far); ch == nil || !ch.InStasis || ch.MOH != wantMOH || ch.Bridge != wantBridge {
				t.Errorf("far party %+v; want in the application, music on hold %v, in bridge %q", ch, wantMOH, wantBridge)
			}
			h.a.mu.Lock()
			l := h.a.legs[ref]
			asBefore := l != nil && l.state == state && l.heldBy == c.held && !l.transferred
			fch := h.a.chans[far]
			inCall := fch != nil && !fch.released && h.a.callOf[far] == l.call
			h.a.mu.Unlock()
			if !asBefore || !inCall {
				t.Errorf("connection %+v (want %s), far party in its call %v", l, state, inCall)
			}
			for _, ev := range h.barrier() {
				if ev.Call == ref || ev.Call.ID == far {
					t.Errorf("%s %s after a failed transfer", ev.Kind, ev.Call)
				}
			}

			if g != nil {
				g.Release()
			}
			if err := h.a.SingleStepTransfer(ctx, ref, "1003"); err != nil {
				t.Fatalf("SingleStepTransfer after the failed one: %v", err)
			}
			if k := kinds(h.collect(clearedAll("1002"))["1002"]); k != "transferred(blind) cleared(transferred)" {
				t.Errorf("1002: %s", k)
			}
			if ch := h.fake.Channel(far); ch == nil || ch.InStasis || ch.Exten != "1003" || ch.MOH {
				t.Errorf("far party should be in the dialplan at 1003 without music: %+v", ch)
			}
		})
	}
}

// A transfer whose Continue got no answer, and whose far party's position
// cannot be read either, is taken as not done (the far party may still be
// in the call), and the operator is told.
func TestSingleStepTransferUnknownOutcomeLogged(t *testing.T) {
	logs := &warnings{}
	h := newHarness(t, func(o *Options) { o.Logger = slog.New(logs) })
	far, ref := ownedConnected(t, h, "1001")
	h.fake.Fail("GET", "/channels/"+far, 500, internalError, 1)
	err, _ := failOnce(t, h, dropped, request("POST", "/channels/"+far+"/continue"), func(ctx context.Context) error {
		return h.a.SingleStepTransfer(ctx, ref, "1003")
	})
	refused(t, err, pbx.ErrUnavailable, "single step transfer", ref, "")
	w := logs.messages()
	if len(w) != 1 || !strings.Contains(w[0], "cannot be told") || !strings.Contains(w[0], "channel="+far) {
		t.Errorf("warnings %q, want one saying the outcome cannot be told, naming %s", w, far)
	}
	h.a.mu.Lock()
	fch := h.a.chans[far]
	released := fch == nil || fch.released
	h.a.mu.Unlock()
	if released {
		t.Error("far party left released: the two-party rule would no longer apply to it")
	}
}
