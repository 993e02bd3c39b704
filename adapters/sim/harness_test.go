package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// waitLimit bounds every wait for an event; nothing in this package should
// take anywhere near it.
const waitLimit = 5 * time.Second

var (
	alice = pbx.Extension{Name: "1001", Endpoint: "alice", Domain: "pbx.test", DisplayName: "Alice"}
	bob   = pbx.Extension{Name: "1002", Endpoint: "bob", Domain: "pbx.test", DisplayName: "Bob"}
	carol = pbx.Extension{Name: "1003", Endpoint: "carol", Domain: "pbx.test", DisplayName: "Carol"}

	aliceParty = pbx.Party{Number: "1001", Name: "Alice"}
	bobParty   = pbx.Party{Number: "1002", Name: "Bob"}
	carolParty = pbx.Party{Number: "1003", Name: "Carol"}
)

// fakeClock replaces time.AfterFunc so tests fire AnswerAfter timers at will.
type fakeClock struct {
	mu     sync.Mutex
	timers []*fakeTimer
}

type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped bool
	fired   bool
}

func (c *fakeClock) after(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{d: d, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped && !t.fired
		t.stopped = true
		return was
	}
}

// pending counts timers that have neither fired nor been stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

// fire runs every pending timer, as if their time had come.
func (c *fakeClock) fire() {
	c.mu.Lock()
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			t.fired = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

type harness struct {
	t      *testing.T
	p      *PBX
	clock  *fakeClock
	events chan pbx.Event
	cancel context.CancelFunc
	done   chan error
	srv    *httptest.Server
}

// newHarness starts a simulator with Alice, Bob and Carol, a fake clock and a
// control API server, and consumes the Link and Sync events of Run.
func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, p: New(opts), clock: &fakeClock{}, events: make(chan pbx.Event)}
	h.p.after = h.clock.after
	h.p.tagWait = waitLimit
	h.p.SetExtensions([]pbx.Extension{alice, bob, carol})
	h.srv = httptest.NewServer(h.p.Handler())
	t.Cleanup(h.srv.Close)
	h.start()
	t.Cleanup(h.stop)
	if ev := h.next(); ev.Kind != pbx.EventLink || !ev.Up {
		t.Fatalf("first event = %+v, want link up", ev)
	}
	if ev := h.next(); ev.Kind != pbx.EventSync || len(ev.Calls) != 0 {
		t.Fatalf("second event = %+v, want an empty sync", ev)
	}
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.p.Run(ctx, h.events) }()
}

// stop ends Run and checks that it returned ctx's error.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if !errors.Is(err, context.Canceled) {
			h.t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(waitLimit):
		h.t.Fatal("Run did not return after cancel")
	}
	h.cancel = nil
}

func (h *harness) next() pbx.Event {
	h.t.Helper()
	select {
	case ev := <-h.events:
		return ev
	case <-time.After(waitLimit):
		h.t.Fatal("no event arrived")
		return pbx.Event{}
	}
}

// marker is a test-only event pushed through the queue to prove that no
// other event came before it.
var marker = pbx.Event{Kind: pbx.EventDevice, Call: pbx.CallRef{Ext: "marker"}}

// quiet asserts that no event is queued: everything a command emits is
// queued before it returns, so a marker queued now must come next.
func (h *harness) quiet() {
	h.t.Helper()
	h.p.mu.Lock()
	h.p.emit(marker)
	h.p.mu.Unlock()
	if ev := h.next(); ev.Kind != marker.Kind || ev.Call != marker.Call {
		h.t.Fatalf("unexpected event %s", fmtEvent(ev))
	}
}

// expect reads len(want) events and compares the fields the contract fixes.
// SIPCallID and Headers are checked to be present on Offered and Originated.
func (h *harness) expect(want ...pbx.Event) []pbx.Event {
	h.t.Helper()
	got := make([]pbx.Event, 0, len(want))
	for i, w := range want {
		ev := h.next()
		got = append(got, ev)
		if w.Call.ID == "*" && w.Call.Ext == ev.Call.Ext && ev.Call.ID != "" {
			w.Call.ID = ev.Call.ID // a connection the simulator names
		}
		if fmtEvent(ev) != fmtEvent(w) {
			h.t.Fatalf("event %d:\n got %s\nwant %s", i, fmtEvent(ev), fmtEvent(w))
		}
		switch ev.Kind {
		case pbx.EventOffered:
			if ev.SIPCallID == "" || ev.Headers["X-Sim-Call"] == "" || ev.Headers["P-Asserted-Identity"] == "" {
				h.t.Fatalf("offered event without SIP details: %+v", ev)
			}
		case pbx.EventOriginated:
			if ev.SIPCallID == "" {
				h.t.Fatalf("originated event without Call-ID: %+v", ev)
			}
		}
	}
	h.quiet()
	return got
}

func fmtEvent(ev pbx.Event) string {
	s := fmt.Sprintf("%s %s", ev.Kind, ev.Call)
	switch ev.Kind {
	case pbx.EventOffered, pbx.EventOriginated, pbx.EventConnected, pbx.EventPartyChanged:
		s += fmt.Sprintf(" remote=%q/%q csta=%d", ev.Remote.Number, ev.Remote.Name, ev.CSTAID)
	case pbx.EventCleared:
		s += " cause=" + ev.Cause.String()
	case pbx.EventTransferred:
		s += fmt.Sprintf(" transfer=%d by_phone=%v", ev.Transfer, ev.ByPhone)
	case pbx.EventHeld, pbx.EventRetrieved:
		s += fmt.Sprintf(" by_phone=%v", ev.ByPhone)
	case pbx.EventLink:
		s += fmt.Sprintf(" up=%v", ev.Up)
	}
	return s
}

// newRef stands for a connection of ext that the simulator names.
func newRef(ext string) pbx.CallRef { return pbx.CallRef{Ext: ext, ID: "*"} }

// Event constructors keep the expected sequences readable.
func offered(c pbx.CallRef, r pbx.Party) pbx.Event {
	return pbx.Event{Kind: pbx.EventOffered, Call: c, Remote: r}
}
func originated(c pbx.CallRef, r pbx.Party, cstaID int) pbx.Event {
	return pbx.Event{Kind: pbx.EventOriginated, Call: c, Remote: r, CSTAID: cstaID}
}
func connected(c pbx.CallRef, r pbx.Party) pbx.Event {
	return pbx.Event{Kind: pbx.EventConnected, Call: c, Remote: r}
}
func cleared(c pbx.CallRef, cause pbx.Cause) pbx.Event {
	return pbx.Event{Kind: pbx.EventCleared, Call: c, Cause: cause}
}
func held(c pbx.CallRef, byPhone bool) pbx.Event {
	return pbx.Event{Kind: pbx.EventHeld, Call: c, ByPhone: byPhone}
}
func retrieved(c pbx.CallRef, byPhone bool) pbx.Event {
	return pbx.Event{Kind: pbx.EventRetrieved, Call: c, ByPhone: byPhone}
}
func transferred(c pbx.CallRef, k pbx.TransferKind) pbx.Event {
	return pbx.Event{Kind: pbx.EventTransferred, Call: c, Transfer: k}
}
func partyChanged(c pbx.CallRef, r pbx.Party) pbx.Event {
	return pbx.Event{Kind: pbx.EventPartyChanged, Call: c, Remote: r}
}

// call performs a control API request and decodes the JSON reply into out
// (when not nil). It returns the status code.
func (h *harness) call(method, path string, body string, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// mustCall is call that fails the test on an unexpected status.
func (h *harness) mustCall(method, path, body string, want int, out any) {
	h.t.Helper()
	if got := h.call(method, path, body, out); got != want {
		h.t.Fatalf("%s %s: status %d, want %d", method, path, got, want)
	}
}

// incoming rings ext from an outside number through the control API, acting
// as the core: it tags the Offered connection with cstaID (0: no tag). It
// returns the call as the 201 reply showed it and the new connection.
func (h *harness) incoming(from, to string, cstaID int) (callView, pbx.CallRef) {
	h.t.Helper()
	type reply struct {
		status int
		view   callView
	}
	res := make(chan reply, 1)
	go func() {
		var v callView
		st := h.call(http.MethodPost, "/sim/calls", fmt.Sprintf(`{"from":%q,"to":%q}`, from, to), &v)
		res <- reply{st, v}
	}()
	ev := h.next()
	if ev.Kind != pbx.EventOffered {
		h.t.Fatalf("got %s, want offered", fmtEvent(ev))
	}
	if cstaID != 0 {
		if err := h.p.TagCall(context.Background(), ev.Call, cstaID); err != nil {
			h.t.Fatal(err)
		}
	}
	var r reply
	select {
	case r = <-res:
	case <-time.After(waitLimit):
		h.t.Fatal("POST /sim/calls did not answer")
	}
	if r.status != http.StatusCreated {
		h.t.Fatalf("POST /sim/calls: status %d", r.status)
	}
	h.quiet()
	return r.view, ev.Call
}

var bg = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}
