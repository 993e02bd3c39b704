package ari

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

const waitLimit = 5 * time.Second

var testExts = []pbx.Extension{
	{Name: "1001", Endpoint: "PJSIP/1001", Domain: "pbx.test", AutoAnswerHeaders: []string{"Call-Info: <sip:pbx>;answer-after=0", "Alert-Info: <http://pbx>;info=alert-autoanswer;delay=0"}},
	{Name: "1002", Endpoint: "PJSIP/1002", Domain: "pbx.test", AutoAnswerHeaders: []string{"Call-Info: <sip:pbx>;answer-after=0"}},
	{Name: "1003", Endpoint: "PJSIP/1003", Domain: "pbx.test"},
}

type harness struct {
	t      *testing.T
	fake   *fakeari.Server
	a      *Adapter
	events chan pbx.Event
	cancel context.CancelFunc
	done   chan error
}

func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	// Registered first, so it runs last: the adapter's own clean-up still
	// logs to the test.
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter hands log lines to the test until its clean-up has run. A
// goroutine the adapter started (a request still under way when the test
// returned) may log after that; t.Log then would race with the test's end
// (seen under -race in TestTransferWhenHeldCallEndsMeanwhile), so such
// lines are dropped.
type testWriter struct {
	t      *testing.T
	mu     sync.Mutex
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Helper()
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func testOptions(t *testing.T, f *fakeari.Server) Options {
	o := f.Options()
	return Options{
		URL: f.URL, Username: o.User, Password: o.Pass, Application: o.App, Context: "from-internal",
		Logger: testLogger(t),
		// Generous: the test machine is shared, and a starved fake must not
		// look like a timeout.
		RequestTimeout: 3 * time.Second,
		AnswerTimeout:  2 * time.Second,
		MinBackoff:     10 * time.Millisecond,
		MaxBackoff:     80 * time.Millisecond,
	}
}

// newHarness starts a fake Asterisk and an adapter connected to it, and
// waits for the first Link up and Sync.
func newHarness(t *testing.T, tweak ...func(*Options)) *harness {
	t.Helper()
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: []string{"PJSIP/1001", "PJSIP/1002", "PJSIP/1003"}})
	t.Cleanup(f.Close)
	o := testOptions(t, f)
	for _, fn := range tweak {
		fn(&o)
	}
	h := startAdapter(t, f, o)
	h.expectKind(pbx.EventSync)
	h.expectKind(pbx.EventLink)
	// The fake's websocket handler may start a little after the client's
	// handshake returned; events sent before it runs would go nowhere.
	waitFake(t, f, "websocket registered", f.Connected)
	return h
}

func startAdapter(t *testing.T, f *fakeari.Server, o Options) *harness { // f may be nil
	t.Helper()
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	a.SetExtensions(testExts)
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, fake: f, a: a, events: make(chan pbx.Event, 1000), cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- a.Run(ctx, h.events) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != context.Canceled {
			h.t.Errorf("Run returned %v, want context.Canceled", err)
		}
		h.done <- err
	case <-time.After(waitLimit):
		h.t.Error("Run did not return after cancel")
	}
}

// next returns the next event, skipping device events.
func (h *harness) next() pbx.Event {
	h.t.Helper()
	return h.waitEvent("event", func(ev pbx.Event) bool { return ev.Kind != pbx.EventDevice })
}

func (h *harness) expectKind(k pbx.EventKind) pbx.Event {
	h.t.Helper()
	ev := h.next()
	if ev.Kind != k {
		h.t.Fatalf("got event %s %s (%+v), want %s", ev.Kind, ev.Call, ev, k)
	}
	return ev
}

// waitEvent skips events until one matches.
func (h *harness) waitEvent(desc string, match func(pbx.Event) bool) pbx.Event {
	h.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		select {
		case ev := <-h.events:
			if match(ev) {
				return ev
			}
		case <-timer.C:
			h.t.Fatalf("no %s within %s", desc, waitLimit)
		}
	}
}

func (h *harness) waitKind(ext string, k pbx.EventKind) pbx.Event {
	h.t.Helper()
	return h.waitEvent(fmt.Sprintf("%s for %s", k, ext), func(ev pbx.Event) bool { return ev.Kind == k && ev.Call.Ext == ext })
}

// collect gathers events per extension until done says stop.
func (h *harness) collect(done func(map[string][]pbx.Event) bool) map[string][]pbx.Event {
	h.t.Helper()
	got := map[string][]pbx.Event{}
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for !done(got) {
		select {
		case ev := <-h.events:
			if ev.Kind == pbx.EventDevice {
				continue
			}
			got[ev.Call.Ext] = append(got[ev.Call.Ext], ev)
		case <-timer.C:
			h.t.Fatalf("events so far: %s", describe(got))
		}
	}
	return got
}

func clearedAll(exts ...string) func(map[string][]pbx.Event) bool {
	return func(m map[string][]pbx.Event) bool {
		for _, e := range exts {
			l := m[e]
			if len(l) == 0 || l[len(l)-1].Kind != pbx.EventCleared {
				return false
			}
		}
		return true
	}
}

func describe(m map[string][]pbx.Event) string {
	var b strings.Builder
	for ext, evs := range m {
		fmt.Fprintf(&b, "\n%s:", ext)
		for _, e := range evs {
			fmt.Fprintf(&b, " %s", kindOf(e))
		}
	}
	return b.String()
}

func kindOf(e pbx.Event) string {
	switch e.Kind {
	case pbx.EventCleared:
		return "cleared(" + e.Cause.String() + ")"
	case pbx.EventTransferred:
		if e.Transfer == pbx.TransferAttended {
			return "transferred(attended)"
		}
		return "transferred(blind)"
	}
	return e.Kind.String()
}

func kinds(evs []pbx.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, kindOf(e))
	}
	return strings.Join(s, " ")
}

// loadEvents reads a testdata file of captured events.
func loadEvents(t *testing.T, name string) []json.RawMessage {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []json.RawMessage
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, json.RawMessage(append([]byte(nil), sc.Bytes()...)))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFake waits until cond holds on the fake's state.
func waitFake(t *testing.T, f *fakeari.Server, desc string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		ch := f.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("fake Asterisk: %s did not happen", desc)
		}
	}
}

func lastRequest(f *fakeari.Server, method, pathContains string) (fakeari.Request, bool) {
	reqs := f.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == method && strings.Contains(reqs[i].Path, pathContains) {
			return reqs[i], true
		}
	}
	return fakeari.Request{}, false
}

// lastOriginate returns the most recent POST /channels.
func lastOriginate(f *fakeari.Server) (fakeari.Request, bool) {
	reqs := f.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == "POST" && reqs[i].Path == "/channels" {
			return reqs[i], true
		}
	}
	return fakeari.Request{}, false
}
