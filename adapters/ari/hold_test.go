package ari

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A HoldCall whose requests fail while the call goes on leaves the call
// connected as it was: the far party in the call's bridge without music
// (not outside it in silence, nor back in it with music), the connection
// connected, no "held", and the CTI client gets the fault. A later
// HoldCall works.
func TestHoldFailureKeepsCallConnected(t *testing.T) {
	for _, c := range []struct {
		name string
		// request is the failing one, given the far party and the bridge.
		request func(far, bridge string) (method, path string)
		how     lostHow // see transfer_test.go
		// The hold's requests to Asterisk, its undo's included, in order.
		requests []string
	}{
		// Asterisk took the far party out of the bridge but its answer
		// never came: the party is put back.
		{"taking out unanswered", removal, replyHeld,
			[]string{"POST /bridges/{bridge}/removeChannel", "POST /bridges/{bridge}/addChannel"}},
		// The party never left: adding it to the bridge it is in is
		// harmless (Asterisk answers 204, it leaves and re-enters).
		{"taking out lost", removal, dropped,
			[]string{"POST /bridges/{bridge}/removeChannel", "POST /bridges/{bridge}/addChannel"}},
		{"taking out refused", removal, refusedWith500,
			[]string{"POST /bridges/{bridge}/removeChannel"}},
		// The music started: it is stopped, or it would go on playing to
		// the party back in the bridge.
		{"music unanswered", music, replyHeld,
			[]string{"POST /bridges/{bridge}/removeChannel", "POST /channels/{far}/moh",
				"DELETE /channels/{far}/moh", "POST /bridges/{bridge}/addChannel"}},
		// Stopping music that never started is harmless (204).
		{"music lost", music, dropped,
			[]string{"POST /bridges/{bridge}/removeChannel", "POST /channels/{far}/moh",
				"DELETE /channels/{far}/moh", "POST /bridges/{bridge}/addChannel"}},
		{"music refused", music, refusedWith500,
			[]string{"POST /bridges/{bridge}/removeChannel", "POST /channels/{far}/moh", "POST /bridges/{bridge}/addChannel"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			far, ref := ownedConnected(t, h, "1001")
			ctx := ctxT(t)
			bridges := h.fake.Bridges()
			if len(bridges) != 1 {
				t.Fatalf("bridges %v, want the call's one", bridges)
			}
			bridge := bridges[0]
			method, path := c.request(far, bridge)
			n := len(h.fake.Requests())

			var err error
			switch c.how {
			case refusedWith500:
				h.fake.Fail(method, path, 500, internalError, 1)
				err = h.a.Hold(ctx, ref)
			case replyHeld:
				g := h.fake.HoldReply(request(method, path))
				t.Cleanup(g.Release)
				hctx, cancel := context.WithCancel(ctx)
				defer cancel()
				errc := run(func() error { return h.a.Hold(hctx, ref) })
				arrived(t, g, "hold's request")
				cancel()
				err = result(t, errc, "hold")
				g.Release()
			case dropped:
				g := h.fake.HoldRequest(request(method, path))
				errc := run(func() error { return h.a.Hold(ctx, ref) })
				arrived(t, g, "hold's request")
				g.Drop()
				err = result(t, errc, "hold")
			}
			refused(t, err, pbx.ErrUnavailable, "hold", ref, "")

			if moh, in := farState(t, h.fake, far); moh || in != bridge {
				t.Errorf("far party: music on hold %v, in bridge %q; want no music, in %q", moh, in, bridge)
			}
			expectRequests(t, h.fake, n, c.requests, far, bridge)
			h.a.mu.Lock()
			l := h.a.legs[ref]
			connected := l != nil && l.state == pbx.StateConnected && !l.heldBy
			h.a.mu.Unlock()
			if !connected {
				t.Errorf("connection no longer connected: %+v", l)
			}
			for _, ev := range h.barrier() {
				if ev.Call == ref || ev.Call.ID == far {
					t.Errorf("%s %s after a failed hold", ev.Kind, ev.Call)
				}
			}

			if err := h.a.Hold(ctx, ref); err != nil {
				t.Fatalf("Hold after the failed one: %v", err)
			}
			h.waitKind("1002", pbx.EventHeld)
			if moh, in := farState(t, h.fake, far); !moh || in != "" {
				t.Errorf("far party: music on hold %v, in bridge %q; want music outside any bridge", moh, in)
			}
		})
	}
}

func removal(far, bridge string) (string, string) {
	return "POST", "/bridges/" + bridge + "/removeChannel"
}

func music(far, bridge string) (string, string) { return "POST", "/channels/" + far + "/moh" }

// An undo that fails too is logged at Warn: the far party may be left
// outside the call, and only the log can tell the operator.
func TestHoldUndoFailureLogged(t *testing.T) {
	logs := &warnings{}
	h := newHarness(t, func(o *Options) { o.Logger = slog.New(logs) })
	far, ref := ownedConnected(t, h, "1001")
	bridge := h.fake.Bridges()[0]
	ctx := ctxT(t)

	g := h.fake.HoldReply(request("POST", "/bridges/"+bridge+"/removeChannel"))
	t.Cleanup(g.Release)
	h.fake.Fail("POST", "/bridges/"+bridge+"/addChannel", 500, `{"message":"Internal Server Error"}`, 1)
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := run(func() error { return h.a.Hold(hctx, ref) })
	arrived(t, g, "hold's removal")
	cancel()
	refused(t, result(t, errc, "hold"), pbx.ErrUnavailable, "hold", ref, "")

	var undo []string
	for _, m := range logs.messages() {
		if strings.Contains(m, "could not be put back") {
			undo = append(undo, m)
		}
	}
	if len(undo) != 1 || !strings.Contains(undo[0], "channel="+far) || !strings.Contains(undo[0], "Internal Server Error") {
		t.Errorf("warnings %q, want one naming the far party %s and Asterisk's refusal", logs.messages(), far)
	}
}

// warnings is a slog handler keeping the Warn and Error records, with
// their attributes, as text.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	w.mu.Lock()
	w.msgs = append(w.msgs, b.String())
	w.mu.Unlock()
	return nil
}

func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) messages() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// Only a request that was sent and got no answer may have been carried
// out; one never sent for want of a connection was not, and is not undone.
func TestMayHaveRun(t *testing.T) {
	h := newHarness(t)
	ctx := ctxT(t)
	if mayHaveRun(pbx.ErrUnavailable) {
		t.Error("a request never sent may have run")
	}
	never := func(ari.Client) error { return nil }
	if err := h.a.restWith(ctx, nil, never); mayHaveRun(err) {
		t.Errorf("no connection (%v): the request may have run", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	block := make(chan struct{})
	defer close(block)
	if err := h.a.rest(cctx, func(ari.Client) error { <-block; return nil }); !mayHaveRun(err) {
		t.Errorf("given up waiting (%v): the request may not have run", err)
	}
	h.fake.Fail("DELETE", "/channels/nosuch", 500, `{"message":"Internal Server Error"}`, 1)
	if err := h.a.rest(ctx, func(x ari.Client) error { return x.Channel().Hangup(chanKey("nosuch"), "normal") }); err == nil || mayHaveRun(err) {
		t.Errorf("refused (%v): the request may have run", err)
	}
}

// expectRequests checks the fake's requests from the n-th on against want,
// in which {far} and {bridge} stand for those ids.
func expectRequests(t *testing.T, f *fakeari.Server, n int, want []string, far, bridge string) {
	t.Helper()
	var got []string
	for _, r := range f.Requests()[n:] {
		got = append(got, r.String())
	}
	ids := strings.NewReplacer("{far}", far, "{bridge}", bridge)
	var exp []string
	for _, w := range want {
		exp = append(exp, ids.Replace(w))
	}
	if !slices.Equal(got, exp) {
		t.Errorf("requests %v, want %v", got, exp)
	}
}
