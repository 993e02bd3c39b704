package ari

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// How a request a test makes fail goes wrong.
type lostHow int

const (
	refusedWith500 lostHow = iota
	replyHeld              // carried out, the CTI client gives up waiting for the answer
	dropped                // never carried out, the connection breaks
)

func (h lostHow) String() string {
	return [...]string{"refused", "unanswered", "lost"}[h]
}

const internalError = `{"message":"Internal Server Error"}`

// failOnce makes the request match picks go wrong as how says, runs cmd
// and returns its error once the request has gone wrong. The gate of a
// held request (nil if none) is released at the end of the test at the
// latest.
func failOnce(t *testing.T, h *harness, how lostHow, match func(fakeari.Request) bool, cmd func(context.Context) error) (error, *fakeari.Gate) {
	t.Helper()
	ctx := ctxT(t)
	switch how {
	case refusedWith500:
		h.fake.FailRequest(match, 500, internalError, 1)
		return cmd(ctx), nil
	case replyHeld:
		g := h.fake.HoldReply(match)
		t.Cleanup(g.Release)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errc := run(func() error { return cmd(cctx) })
		arrived(t, g, "the request")
		cancel()
		return result(t, errc, "the command"), g
	default:
		g := h.fake.HoldRequest(match)
		t.Cleanup(g.Release)
		errc := run(func() error { return cmd(ctx) })
		arrived(t, g, "the request")
		g.Drop()
		return result(t, errc, "the command"), g
	}
}

// requestsSince lists the fake's requests from the n-th on, with the
// channel parameter of addChannel and removeChannel, and with ids
// replaced by names.
func requestsSince(f *fakeari.Server, n int, names *strings.Replacer) []string {
	var out []string
	for _, r := range f.Requests()[n:] {
		s := r.String()
		if ch := r.Params["channel"]; ch != "" {
			s += " " + ch
		}
		out = append(out, names.Replace(s))
	}
	return out
}

// A TransferCall whose request to add a far party to the new bridge fails
// (refused, unanswered though Asterisk did it, or lost) leaves both calls
// as they were: the held call's far party outside any bridge on music on
// hold, the consultation call's far party in its call's bridge without
// music, the new bridge gone, both connections in their states, nothing
// reported, and the CTI client gets the fault. A later TransferCall works.
func TestTransferFailureKeepsBothCalls(t *testing.T) {
	for _, c := range []struct {
		failing string // "held" (added first) or "consult" (added second)
		how     lostHow
		// The transfer's requests to Asterisk, its undo's included.
		requests []string
	}{
		{"held", refusedWith500, []string{"POST /bridges/{new}",
			"POST /bridges/{new}/addChannel {held}",
			"DELETE /bridges/{new}"}},
		// Asterisk added the party: it is taken out again, its music
		// started again (Asterisk 22 kept it playing: no change).
		{"held", replyHeld, []string{"POST /bridges/{new}",
			"POST /bridges/{new}/addChannel {held}",
			"POST /bridges/{new}/removeChannel {held}", "POST /channels/{held}/moh",
			"DELETE /bridges/{new}"}},
		// The party never joined: Asterisk refuses taking it out (422),
		// which is where it should be.
		{"held", dropped, []string{"POST /bridges/{new}",
			"POST /bridges/{new}/addChannel {held}",
			"POST /bridges/{new}/removeChannel {held}", "POST /channels/{held}/moh",
			"DELETE /bridges/{new}"}},
		{"consult", refusedWith500, []string{"POST /bridges/{new}",
			"POST /bridges/{new}/addChannel {held}", "POST /bridges/{new}/addChannel {consult}",
			"POST /bridges/{new}/removeChannel {held}", "POST /channels/{held}/moh",
			"DELETE /bridges/{new}"}},
		// Asterisk moved the party: it goes back to its call's bridge.
		{"consult", replyHeld, []string{"POST /bridges/{new}",
			"POST /bridges/{new}/addChannel {held}", "POST /bridges/{new}/addChannel {consult}",
			"POST /bridges/{new}/removeChannel {held}", "POST /channels/{held}/moh",
			"POST /bridges/{consultBridge}/addChannel {consult}",
			"DELETE /bridges/{new}"}},
		// The party never left: adding it to the bridge it is in is
		// harmless (204, it leaves and re-enters).
		{"consult", dropped, []string{"POST /bridges/{new}",
			"POST /bridges/{new}/addChannel {held}", "POST /bridges/{new}/addChannel {consult}",
			"POST /bridges/{new}/removeChannel {held}", "POST /channels/{held}/moh",
			"POST /bridges/{consultBridge}/addChannel {consult}",
			"DELETE /bridges/{new}"}},
	} {
		t.Run(c.failing+" party's move "+c.how.String(), func(t *testing.T) {
			logs := &warnings{}
			h := newHarness(t, func(o *Options) { o.Logger = slog.New(logs) })
			a1, ref1 := ownedConnected(t, h, "1001")
			a3, ref3 := ownedConnected(t, h, "1003")
			ctx := ctxT(t)
			if err := h.a.Hold(ctx, ref1); err != nil {
				t.Fatal(err)
			}
			h.waitKind("1002", pbx.EventHeld)
			heldBridge, consultBridge := h.fake.Channel(ref1.ID).Bridge, h.fake.Channel(a3).Bridge
			failing := map[string]string{"held": a1, "consult": a3}[c.failing]
			n := len(h.fake.Requests())

			err, g := failOnce(t, h, c.how, func(r fakeari.Request) bool {
				return r.Method == "POST" && strings.HasSuffix(r.Path, "/addChannel") && r.Params["channel"] == failing
			}, func(ctx context.Context) error { return h.a.Transfer(ctx, ref1, ref3) })
			refused(t, err, pbx.ErrUnavailable, "transfer", ref1, "")

			if moh, in := farState(t, h.fake, a1); !moh || in != "" {
				t.Errorf("held call's far party: music on hold %v, in bridge %q; want music outside any bridge", moh, in)
			}
			if moh, in := farState(t, h.fake, a3); moh || in != consultBridge {
				t.Errorf("consultation's far party: music on hold %v, in bridge %q; want no music, in %q", moh, in, consultBridge)
			}
			if got := h.fake.Bridges(); !slices.Equal(got, slices.Sorted(slices.Values([]string{heldBridge, consultBridge}))) {
				t.Errorf("bridges %v, want the two calls' ones %s and %s only", got, heldBridge, consultBridge)
			}
			var newBridge string
			for _, r := range h.fake.Requests()[n:] {
				if b, ok := strings.CutSuffix(r.Path, "/addChannel"); ok {
					newBridge = strings.TrimPrefix(b, "/bridges/")
					break
				}
			}
			names := strings.NewReplacer(a1, "{held}", a3, "{consult}", consultBridge, "{consultBridge}", "/"+newBridge, "/{new}")
			if got := requestsSince(h.fake, n, names); !slices.Equal(got, c.requests) {
				t.Errorf("requests\n%q\nwant\n%q", got, c.requests)
			}
			// Asterisk's 422 to taking out a party that never joined is
			// where the party should be, not a failed undo.
			if w := logs.messages(); len(w) > 0 {
				t.Errorf("warnings %q", w)
			}
			h.a.mu.Lock()
			l1, l3 := h.a.legs[ref1], h.a.legs[ref3]
			asBefore := l1 != nil && l1.state == pbx.StateHeld && l1.heldBy && !l1.transferred &&
				l3 != nil && l3.state == pbx.StateConnected && !l3.heldBy && !l3.transferred
			h.a.mu.Unlock()
			if !asBefore {
				t.Errorf("connections changed: held %+v, consultation %+v", l1, l3)
			}
			for _, ev := range h.barrier() {
				about := ev.Call == ref1 || ev.Call == ref3 || ev.Call.ID == a1 || ev.Call.ID == a3
				switch ev.Kind {
				case pbx.EventTransferred, pbx.EventPartyChanged:
					t.Errorf("%s %s after a failed transfer", ev.Kind, ev.Call)
				case pbx.EventCleared, pbx.EventHeld, pbx.EventRetrieved:
					if about {
						t.Errorf("%s %s after a failed transfer", ev.Kind, ev.Call)
					}
				}
			}

			if g != nil {
				g.Release()
			}
			if err := h.a.Transfer(ctx, ref1, ref3); err != nil {
				t.Fatalf("Transfer after the failed one: %v", err)
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
			if k := kinds(got["1002"]); k != "transferred(attended) transferred(attended) cleared(transferred) cleared(transferred)" {
				t.Errorf("1002: %s", k)
			}
			waitFake(t, h.fake, "far parties bridged together", func() bool {
				c1, c3 := h.fake.Channel(a1), h.fake.Channel(a3)
				return c1 != nil && c3 != nil && c1.Bridge != "" && c1.Bridge == c3.Bridge && !c1.MOH && !c3.MOH
			})
		})
	}
}
