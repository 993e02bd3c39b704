package ari

import (
	"context"
	"testing"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A RetrieveCall whose requests fail while the call goes on leaves the
// call held as it was: the far party outside the bridge on music on hold
// (not outside it in silence), the connection held, no "retrieved", and
// the CTI client gets the fault. A later RetrieveCall works.
func TestRetrieveFailureKeepsCallHeld(t *testing.T) {
	for _, c := range []struct {
		name string
		// fail arms the failure for the call's far party and bridge, and
		// returns the gate of a request held without an answer (nil if
		// Asterisk answers with an error instead).
		fail func(f *fakeari.Server, far, bridge string) *fakeari.Gate
		// The held request is lost (the connection breaks) rather than
		// given up on by the CTI client.
		drop bool
		// The retrieve's requests to Asterisk, its undo's included, in order.
		requests []string
	}{
		{"re-join refused", func(f *fakeari.Server, far, b string) *fakeari.Gate {
			f.Fail("POST", "/bridges/"+b+"/addChannel", 500, internalError, 1)
			return nil
		}, false, []string{"DELETE /channels/{far}/moh", "POST /bridges/{bridge}/addChannel", "POST /channels/{far}/moh"}},
		// Asterisk put the far party back in the bridge but its answer
		// never came: it is taken out again before the music restarts.
		{"re-join unanswered", func(f *fakeari.Server, far, b string) *fakeari.Gate {
			return f.HoldReply(request("POST", "/bridges/"+b+"/addChannel"))
		}, false, []string{"DELETE /channels/{far}/moh", "POST /bridges/{bridge}/addChannel",
			"POST /bridges/{bridge}/removeChannel", "POST /channels/{far}/moh"}},
		// The far party never re-joined: Asterisk refuses taking it out
		// (422 "Channel not in this bridge"), and the music restarts.
		{"re-join lost", func(f *fakeari.Server, far, b string) *fakeari.Gate {
			return f.HoldRequest(request("POST", "/bridges/"+b+"/addChannel"))
		}, true, []string{"DELETE /channels/{far}/moh", "POST /bridges/{bridge}/addChannel",
			"POST /bridges/{bridge}/removeChannel", "POST /channels/{far}/moh"}},
		// The music may have stopped: it is started again.
		{"stopping the music unanswered", func(f *fakeari.Server, far, b string) *fakeari.Gate {
			return f.HoldReply(request("DELETE", "/channels/"+far+"/moh"))
		}, false, []string{"DELETE /channels/{far}/moh", "POST /channels/{far}/moh"}},
		// The music still plays: starting it again is harmless (204).
		{"stopping the music lost", func(f *fakeari.Server, far, b string) *fakeari.Gate {
			return f.HoldRequest(request("DELETE", "/channels/"+far+"/moh"))
		}, true, []string{"DELETE /channels/{far}/moh", "POST /channels/{far}/moh"}},
		// Asterisk refused to stop the music: nothing to undo.
		{"stopping the music refused", func(f *fakeari.Server, far, b string) *fakeari.Gate {
			f.Fail("DELETE", "/channels/"+far+"/moh", 500, internalError, 1)
			return nil
		}, false, []string{"DELETE /channels/{far}/moh"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			far, ref := ownedConnected(t, h, "1001")
			ctx := ctxT(t)
			if err := h.a.Hold(ctx, ref); err != nil {
				t.Fatalf("Hold: %v", err)
			}
			h.waitKind("1002", pbx.EventHeld)
			bridges := h.fake.Bridges()
			if len(bridges) != 1 {
				t.Fatalf("bridges %v, want the call's one", bridges)
			}
			bridge := bridges[0]
			g := c.fail(h.fake, far, bridge)
			n := len(h.fake.Requests())

			var err error
			switch {
			case g == nil:
				err = h.a.Retrieve(ctx, ref)
			case c.drop:
				errc := run(func() error { return h.a.Retrieve(ctx, ref) })
				arrived(t, g, "retrieve's request")
				g.Drop()
				err = result(t, errc, "retrieve")
			default:
				// The CTI client gives up waiting for Asterisk's answer.
				t.Cleanup(g.Release)
				rctx, cancel := context.WithCancel(ctx)
				defer cancel()
				errc := run(func() error { return h.a.Retrieve(rctx, ref) })
				arrived(t, g, "retrieve's request")
				cancel()
				err = result(t, errc, "retrieve")
			}
			refused(t, err, pbx.ErrUnavailable, "retrieve", ref, "")

			if moh, in := farState(t, h.fake, far); !moh || in != "" {
				t.Errorf("far party: music on hold %v, in bridge %q; want music outside any bridge", moh, in)
			}
			expectRequests(t, h.fake, n, c.requests, far, bridge)
			h.a.mu.Lock()
			l := h.a.legs[ref]
			held := l != nil && l.state == pbx.StateHeld && l.heldBy
			h.a.mu.Unlock()
			if !held {
				t.Errorf("connection no longer held by the bridge: %+v", l)
			}
			for _, ev := range h.barrier() {
				if ev.Call == ref || ev.Call.ID == far {
					t.Errorf("%s %s after a failed retrieve", ev.Kind, ev.Call)
				}
			}

			if g != nil {
				g.Release()
			}
			if err := h.a.Retrieve(ctx, ref); err != nil {
				t.Fatalf("Retrieve after the failed one: %v", err)
			}
			h.waitKind("1002", pbx.EventRetrieved)
			if moh, in := farState(t, h.fake, far); moh || in != bridge {
				t.Errorf("far party: music on hold %v, in bridge %q; want no music, in %q", moh, in, bridge)
			}
		})
	}
}

// farState is whether a channel hears music on hold and the bridge it is
// in, as the fake Asterisk has them.
func farState(t *testing.T, f *fakeari.Server, id string) (moh bool, bridge string) {
	t.Helper()
	ch := f.Channel(id)
	if ch == nil {
		t.Fatalf("channel %s is gone", id)
	}
	return ch.MOH, ch.Bridge
}
