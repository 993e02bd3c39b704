package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/actionurl"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/prometheus/client_golang/prometheus"
)

// Benchmarks of the core's hot paths. The codec's and the expander's own
// benchmarks live in bridge/csta and bridge/actionurl; docs/BENCHMARKS.md
// records all of them.

// benchSwitchboard is a switchboard with phones named p0…p(n-1), driven
// from the benchmark goroutine itself (run is not started: the benchmark is
// the owner goroutine). settings are every phone's Snom settings.
func benchSwitchboard(n int, notifier *actionurl.Notifier, settings map[string]string) *switchboard {
	log := slog.New(slog.DiscardHandler)
	m := newMetrics(prometheus.NewRegistry())
	if notifier == nil {
		notifier = actionurl.New(actionurl.Options{Logger: log})
	}
	as := &actionSender{log: log, notifier: notifier, metrics: m, recent: newActionLog(),
		hostIP: func() string { return "127.0.0.1" }}
	sb := newSwitchboard(log, as, m)
	exts := make([]config.Extension, n)
	for i := range exts {
		exts[i] = config.Extension{Name: fmt.Sprintf("p%d", i), Domain: "bench.test", Settings: settings}
	}
	sb.configure(exts)
	return sb
}

// callCycle plays one incoming call through every state: offered,
// connected, held, retrieved, cleared.
func callCycle(sb *switchboard, ext string, i int) {
	ref := pbx.CallRef{Ext: ext, ID: fmt.Sprintf("c%d", i)}
	sb.apply(pbx.Event{Kind: pbx.EventOffered, Call: ref, Remote: pbx.Party{Number: "+4930123456"}, SIPCallID: "sip-x"})
	sb.apply(pbx.Event{Kind: pbx.EventConnected, Call: ref})
	sb.apply(pbx.Event{Kind: pbx.EventHeld, Call: ref})
	sb.apply(pbx.Event{Kind: pbx.EventRetrieved, Call: ref})
	sb.apply(pbx.Event{Kind: pbx.EventCleared, Call: ref, Cause: pbx.CauseNormal})
}

// BenchmarkStateMachine: one op is a whole call cycle (5 events) through the
// switchboard, without action URLs, for switchboards of 1, 1,000 and 10,000
// phones: the cost per event should not depend on how many phones exist.
func BenchmarkStateMachine(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("phones=%d", n), func(b *testing.B) {
			sb := benchSwitchboard(n, nil, map[string]string{})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				callCycle(sb, "p0", i)
				i++
			}
		})
	}
}

// BenchmarkStateMachineWithActionURLs: the same call cycle with all seven of
// its action URLs expanded, queued and delivered to a loopback server. An op
// includes the delivery (the benchmark waits for every GET every 32 cycles,
// so the queue never overflows); allocations include the HTTP client's.
func BenchmarkStateMachineWithActionURLs(b *testing.B) {
	hits := make(chan struct{}, 1<<16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- struct{}{}
	}))
	defer srv.Close()
	settings := map[string]string{}
	for setting, ev := range actionEvents {
		if ev != "setup" {
			settings[setting] = srv.URL + "/" + ev + "?ext=$active_user&csta_id=$csta_id&remote=$remote&call=$call-id"
		}
	}
	n := actionurl.New(actionurl.Options{Logger: slog.New(slog.DiscardHandler), QueueSize: 1024})
	defer n.Close(context.Background())
	sb := benchSwitchboard(1, n, settings)
	const batch, perCycle = 32, 7 // incoming, offhook, connected, hold, unhold, disconnected, onhook
	wait := func(k int) {
		deadline := time.After(10 * time.Second)
		for range k * perCycle {
			select {
			case <-hits:
			case <-deadline:
				b.Fatalf("action URLs not delivered within 10s")
			}
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		callCycle(sb, "p0", i)
		i++
		if i%batch == 0 {
			wait(batch)
		}
	}
	wait(i % batch)
}

// startForBench runs an App with n extensions (no authentication, no action
// URLs) on a fake PBX.
func startForBench(tb testing.TB, n int) (*App, *fakePBX) {
	tb.Helper()
	dir := tb.TempDir()
	var cfg strings.Builder
	cfg.WriteString("pbx: {type: sim}\nhttp: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\n")
	cfg.WriteString("state_file: state.json\ndefaults: {domain: bench.test}\nextensions:\n")
	for i := range n {
		fmt.Fprintf(&cfg, "  \"%d\": {display_name: Bench}\n", 1000+i)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	fp := newFakePBX()
	app, err := New(Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler),
		NewPBX: func(*config.Config, *slog.Logger) (pbx.PBX, error) { return fp, nil }})
	if err != nil {
		tb.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		app.Stop(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for !app.Ready() {
		if err := app.sb.do(ctx, func() {}); err != nil {
			tb.Fatal("bridge never became ready")
		}
	}
	return app, fp
}

// BenchmarkCSTAHandler is the full /csta path in-process, without sockets:
// routing, body read, decode, the service on the switchboard, the fake
// PBX's command, encode, metrics.
func BenchmarkCSTAHandler(b *testing.B) {
	app, _ := startForBench(b, 1)
	h := app.phones.shared()
	do := func(body string) {
		req := httptest.NewRequest(http.MethodPost, "/1000/csta", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/xml")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.Run("RequestSystemStatus", func(b *testing.B) {
		body := soap("RequestSystemStatus", "")
		b.ReportAllocs()
		for b.Loop() {
			do(body)
		}
	})
	// One op: a call rings (applied on the switchboard), then AnswerCall,
	// HoldCall, RetrieveCall and ClearConnection: four requests.
	b.Run("Answer-Hold-Retrieve-Clear", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			ref := pbx.CallRef{Ext: "1000", ID: fmt.Sprintf("c%d", i)}
			if err := app.sb.do(ctx, func() {
				app.sb.apply(pbx.Event{Kind: pbx.EventOffered, Call: ref, Remote: pbx.Party{Number: "555"}})
			}); err != nil {
				b.Fatal(err)
			}
			id := -i // incoming calls count down from -1
			do(soap("AnswerCall", conn("callToBeAnswered", id)))
			do(soap("HoldCall", conn("callToBeHeld", id)))
			do(soap("RetrieveCall", conn("callToBeRetrieved", id)))
			do(soap("ClearConnection", conn("connectionToBeCleared", id)))
		}
	})
}
