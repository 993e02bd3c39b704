package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

const waitFor = 5 * time.Second

// slowWait bounds the waits of tests that run many calls at once: on a
// loaded CI machine (2 cores, every package's tests at once, -race) they
// take far longer than usual, and the bound only has to catch a hang.
const slowWait = 2 * time.Minute

// reorderSlack is the reorder window of tests whose events must reach the
// state machine in order although a loaded machine runs eslgo's
// per-event goroutines late: a fake that numbers its events without gaps
// costs nothing for it (see reorderer), replayed captures one window.
const reorderSlack = time.Second

// testLogger sends the adapter's log to the test log.
type testWriter struct {
	mu sync.Mutex
	t  testing.TB
	ok bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ok {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

type harness struct {
	t      *testing.T
	srv    *fakeesl.Server
	a      *Adapter
	events chan pbx.Event
	ctx    context.Context
	stop   context.CancelFunc // stops Run, as the core does when it stops
}

var testExts = []pbx.Extension{
	{Name: "1001", Endpoint: "user/1001", Domain: "127.0.0.1", AutoAnswerHeaders: []string{
		"Call-Info: <sip:127.0.0.1>;answer-after=0", "Alert-Info: <http://pbx>;info=alert-autoanswer;delay=0"}},
	{Name: "1002", Endpoint: "user/1002", Domain: "127.0.0.1", AutoAnswerHeaders: []string{
		"Call-Info: <sip:127.0.0.1>;answer-after=0", "X-Test: a,b"}},
	{Name: "1003", Endpoint: "user/1003", Domain: "127.0.0.1"},
}

func testOptions(addr string) Options {
	return Options{
		Address: addr, Password: "ClueCon", Context: "default",
		// Tests of what a slow or silent FreeSWITCH does set a short
		// CommandTimeout (and PingInterval) themselves; elsewhere a
		// reply slowed by a loaded machine must not end the session.
		CommandTimeout: 3 * time.Second,
		PingInterval:   time.Hour,
		MinBackoff:     5 * time.Millisecond,
		MaxBackoff:     40 * time.Millisecond,
		ReorderWindow:  15 * time.Millisecond,
		ConfirmTimeout: 300 * time.Millisecond,
		AnswerTimeout:  time.Second,
	}
}

// start runs an adapter against a fresh fake and waits for link up + sync
// unless the options say otherwise.
func start(t *testing.T, mod func(*Options, *fakeesl.Server)) *harness {
	t.Helper()
	srv, err := fakeesl.New()
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, srv, mod)
}

// startOn runs an adapter against a fake event socket (a fake
// FreeSWITCH's), as start does.
func startOn(t *testing.T, srv *fakeesl.Server, mod func(*Options, *fakeesl.Server)) *harness {
	t.Helper()
	opts := testOptions(srv.Addr())
	tw := &testWriter{t: t, ok: true}
	opts.Logger = slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if mod != nil {
		mod(&opts, srv)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	a.SetExtensions(testExts)
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, srv: srv, a: a, events: make(chan pbx.Event, 256), ctx: ctx, stop: cancel}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, h.events) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Run did not return after cancel")
		}
		srv.Close()
		tw.mu.Lock()
		tw.ok = false
		tw.mu.Unlock()
	})
	return h
}

// up waits for the Sync of a connect and the Link up that follows it
// (the core is told of the calls before it is told that it may take
// requests), and returns the Sync.
func (h *harness) up() pbx.Event {
	h.t.Helper()
	sync := h.want(pbx.EventSync, nil)
	if e := h.next(); e.Kind != pbx.EventLink || !e.Up {
		h.t.Fatalf("after the sync: %v (up=%v), want the link up", e.Kind, e.Up)
	}
	return sync
}

// next returns the next event.
func (h *harness) next() pbx.Event {
	h.t.Helper()
	select {
	case e := <-h.events:
		return e
	case <-time.After(waitFor):
		h.t.Fatalf("no event within %v", waitFor)
		return pbx.Event{}
	}
}

// want skips events until one of kind (matching ok, when given) arrives.
func (h *harness) want(kind pbx.EventKind, ok func(pbx.Event) bool) pbx.Event {
	h.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case e := <-h.events:
			if e.Kind == kind && (ok == nil || ok(e)) {
				return e
			}
		case <-deadline:
			h.t.Fatalf("no %v event within %v", kind, waitFor)
			return pbx.Event{}
		}
	}
}

// callEvents reads events until `until` returns true for one, and returns
// the call events as compact strings per CallRef ("offered 1001", …).
func (h *harness) collect(until func(pbx.Event) bool) []pbx.Event {
	h.t.Helper()
	var out []pbx.Event
	for {
		e := h.next()
		out = append(out, e)
		if until(e) {
			return out
		}
	}
}

// describe renders call events as "kind/detail" per connection.
func describe(evs []pbx.Event) map[pbx.CallRef][]string {
	m := map[pbx.CallRef][]string{}
	for _, e := range evs {
		var d string
		switch e.Kind {
		case pbx.EventOffered, pbx.EventOriginated, pbx.EventConnected, pbx.EventPartyChanged:
			d = e.Kind.String() + " " + e.Remote.Number
		case pbx.EventCleared:
			d = e.Kind.String() + " " + e.Cause.String()
		case pbx.EventTransferred:
			kind := "blind"
			if e.Transfer == pbx.TransferAttended {
				kind = "attended"
			}
			d = fmt.Sprintf("%v %s byPhone=%v", e.Kind, kind, e.ByPhone)
		case pbx.EventHeld, pbx.EventRetrieved:
			d = fmt.Sprintf("%v byPhone=%v", e.Kind, e.ByPhone)
		default:
			continue
		}
		m[e.Call] = append(m[e.Call], d)
	}
	return m
}

func loadEvents(t testing.TB, name string) []fakeesl.Event {
	t.Helper()
	c, err := fakeesl.LoadCapture(filepath.Join("testdata", name+".filtered.rx.raw"))
	if err != nil {
		t.Fatal(err)
	}
	return c.Events()
}

// upTo returns the events up to and including the first one with the given
// name and Unique-ID prefix.
func upTo(t testing.TB, evs []fakeesl.Event, name, uuidPrefix string) []fakeesl.Event {
	t.Helper()
	for i, e := range evs {
		if e.Name() == name && strings.HasPrefix(e.Get("Unique-ID"), uuidPrefix) {
			return evs[:i+1]
		}
	}
	t.Fatalf("no %s of %s in capture", name, uuidPrefix)
	return nil
}

// find returns the first event with the given name and Unique-ID prefix.
func find(t testing.TB, evs []fakeesl.Event, name, uuidPrefix string) fakeesl.Event {
	t.Helper()
	seg := upTo(t, evs, name, uuidPrefix)
	return seg[len(seg)-1]
}

func ref(ext, uuid string) pbx.CallRef { return pbx.CallRef{Ext: ext, ID: uuid} }

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func checkCalls(t *testing.T, got map[pbx.CallRef][]string, want map[pbx.CallRef][]string) {
	t.Helper()
	for c, w := range want {
		if !equal(got[c], w) {
			t.Errorf("%v:\n got  %q\n want %q", c, got[c], w)
		}
	}
	for c, g := range got {
		if _, ok := want[c]; !ok {
			t.Errorf("unexpected events for %v: %q", c, g)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}
