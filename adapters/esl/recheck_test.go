package esl

import (
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// manualClock hands out the recheck timers; the test fires them.
type manualClock struct{ timers chan *manualTimer }

type manualTimer struct {
	d       time.Duration
	c       chan time.Time
	stopped atomic.Bool
}

func newManualClock() *manualClock { return &manualClock{timers: make(chan *manualTimer, 16)} }

func (m *manualClock) newTimer(d time.Duration) (<-chan time.Time, func()) {
	t := &manualTimer{d: d, c: make(chan time.Time, 1)}
	m.timers <- t
	return t.c, func() { t.stopped.Store(true) }
}

// next waits for the adapter to start its next timer.
func (m *manualClock) next(t *testing.T) *manualTimer {
	t.Helper()
	select {
	case x := <-m.timers:
		return x
	case <-time.After(waitFor):
		t.Fatalf("no recheck timer started within %v", waitFor)
		return nil
	}
}

func (x *manualTimer) fire() {
	select {
	case x.c <- time.Now():
	default:
	}
}

// Channels of h_show_channels: 1001 calls 1003, answered.
const (
	showA = "444974ea-7104-4493-b00f-a123cfa1967c" // 1001, the phone that calls
	showB = "805aa4e4-31f0-4ab4-9b8b-2135f7149eca" // 1003, called
)

// showCapture returns the captured uuid_dump of showA and the rows of the
// captured `show channels as json`, by uuid.
func showCapture(t *testing.T) (dumpA string, rows map[string]map[string]json.RawMessage) {
	t.Helper()
	capture, err := fakeesl.LoadCapture("testdata/h_show_channels.filtered.rx.raw")
	if err != nil {
		t.Fatal(err)
	}
	rows = map[string]map[string]json.RawMessage{}
	for _, r := range capture.APIResponses() {
		switch {
		case strings.HasPrefix(r, `{"row_count":2,"rows":[{"uuid":"444974ea`) && len(rows) == 0:
			var list struct {
				Rows []map[string]json.RawMessage `json:"rows"`
			}
			if err := json.Unmarshal([]byte(r), &list); err != nil {
				t.Fatal(err)
			}
			for _, row := range list.Rows {
				var u string
				_ = json.Unmarshal(row["uuid"], &u)
				rows[u] = row
			}
		case strings.HasPrefix(r, `{"Event-Name":"CHANNEL_DATA"`) && dumpA == "":
			dumpA = r
		}
	}
	if dumpA == "" || len(rows) != 2 {
		t.Fatal("capture lacks show channels / uuid_dump replies")
	}
	return dumpA, rows
}

// listings answers `show channels as json` with the given replies in turn
// (the last one again after that).
func listings(replies ...string) func(string) fakeesl.Reply {
	var n atomic.Int32
	return func(string) fakeesl.Reply {
		i := int(n.Add(1)) - 1
		return fakeesl.Reply{Body: replies[min(i, len(replies)-1)]}
	}
}

func countCommands(srv *fakeesl.Server, prefix string) int {
	n := 0
	for _, c := range srv.Commands() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// flush rings 1003 on a new channel and returns every event before its
// Offered: all that the adapter made of what was sent before.
func (h *harness) flush() []pbx.Event {
	h.t.Helper()
	id := newUUID()
	basic := loadEvents(h.t, "a_basic_call")
	three := func(e fakeesl.Event) fakeesl.Event {
		return h.retag(e, id).With("Channel-Presence-ID", "1003@127.0.0.1").With("variable_dialed_user", "1003").
			With("Channel-Name", "sofia/internal/1003@127.0.0.1:5183").With("Other-Leg-Unique-ID", "")
	}
	h.srv.Emit(three(find(h.t, basic, "CHANNEL_CREATE", basicB[:8])),
		three(find(h.t, basic, "CHANNEL_PROGRESS", basicB[:8])).With("variable_sip_call_id", id+"@flush"))
	var out []pbx.Event
	for {
		e := h.next()
		if e.Kind == pbx.EventOffered && e.Call.ID == id {
			return out
		}
		out = append(out, e)
	}
}

// A channel created just before the connect is missing from the first
// `show channels`; the recheck finds it and reports it as the first events
// would have, and from then on it is tracked like any other.
func TestRecheckFindsChannelListedLate(t *testing.T) {
	dumpA, rows := showCapture(t)
	evs := loadEvents(t, "h_show_channels")
	sc := &script{}
	sc.on("show channels as json", listings("{\"row_count\": 0}\n",
		listingReply(t, []map[string]json.RawMessage{rows[showA], rows[showB]})))
	sc.on("uuid_dump "+showA+" json", body(dumpA))
	sc.on("uuid_dump "+showB+" json", body(dumpOf(t, upTo(t, evs, "CALL_UPDATE", showB[:8]), showB)))
	clk := newManualClock()
	h := start(t, func(o *Options, s *fakeesl.Server) {
		s.SetHandler(sc.handle)
		o.newTimer = clk.newTimer
	})
	if s := h.up(); len(s.Calls) != 0 {
		t.Fatalf("first sync %+v, want no calls", s.Calls)
	}
	tm := clk.next(t)
	if tm.d != time.Second {
		t.Errorf("recheck after %v, want the default 1s", tm.d)
	}
	tm.fire()
	connected := 0
	got := h.collect(func(e pbx.Event) bool {
		if e.Kind == pbx.EventConnected {
			connected++
		}
		return connected == 2
	})
	checkCalls(t, describe(got), map[pbx.CallRef][]string{
		ref("1001", showA): {"originated 1003", "connected 1003"},
		ref("1003", showB): {"offered 1001", "connected 1001"},
	})
	for _, e := range got {
		if e.Call == ref("1001", showA) && e.SIPCallID != "e1b9e335-9d91-4117-81d2-0d9dd5faafe4" {
			t.Errorf("%v %v: SIP Call-ID %q", e.Kind, e.Call, e.SIPCallID)
		}
	}
	// From here on both are tracked: the call's hang-up is reported.
	for i, e := range evs {
		if e.Name() == "CHANNEL_HANGUP" {
			h.srv.Emit(evs[i:]...)
			break
		}
	}
	cleared := 0
	got = h.collect(func(e pbx.Event) bool {
		if e.Kind == pbx.EventCleared {
			cleared++
		}
		return cleared == 2
	})
	checkCalls(t, describe(got), map[pbx.CallRef][]string{
		ref("1001", showA): {"cleared normal"},
		ref("1003", showB): {"cleared normal"},
	})
	if n := countCommands(h.srv, "api show channels as json"); n != 2 {
		t.Errorf("%d channel listings, want 2", n)
	}
}

// The recheck's listing may still show channels that have ended since (the
// database lags deletes too), and shows channels that are known already:
// neither is reported again, nor even dumped.
func TestRecheckIgnoresEndedAndKnown(t *testing.T) {
	dumpA, rows := showCapture(t)
	evs := loadEvents(t, "h_show_channels")
	basic := loadEvents(t, "a_basic_call")
	ringing := upTo(t, basic, "CHANNEL_ANSWER", basicB[:8])
	rowNew := listingRow(rowTemplate(t), fieldsOf(t, ringing, basicB))

	sc := &script{}
	sc.on("show channels as json", listings(
		listingReply(t, []map[string]json.RawMessage{rows[showA]}),
		// showA ended, showB ended before anybody saw it, basicB is new.
		listingReply(t, []map[string]json.RawMessage{rows[showA], rows[showB], rowNew})))
	sc.on("uuid_dump "+showA+" json", body(dumpA))
	sc.on("uuid_dump "+showB+" json", body(dumpOf(t, upTo(t, evs, "CALL_UPDATE", showB[:8]), showB)))
	sc.on("uuid_dump "+basicB+" json", body(dumpOf(t, ringing, basicB)))
	clk := newManualClock()
	h := start(t, func(o *Options, s *fakeesl.Server) {
		s.SetHandler(sc.handle)
		o.newTimer = clk.newTimer
	})
	if s := h.up(); len(s.Calls) != 1 || s.Calls[0].Call != ref("1001", showA) {
		t.Fatalf("first sync %+v, want 1001's call only", s.Calls)
	}
	tm := clk.next(t)

	// The call hangs up: 1001's known connection is cleared; 1003's
	// channel, never tracked, ends unseen.
	for i, e := range evs {
		if e.Name() == "CHANNEL_HANGUP" {
			h.srv.Emit(evs[i:]...)
			break
		}
	}
	checkCalls(t, describe(h.flush()), map[pbx.CallRef][]string{ref("1001", showA): {"cleared normal"}})

	tm.fire()
	got := h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventConnected })
	got = append(got, h.flush()...)
	checkCalls(t, describe(got), map[pbx.CallRef][]string{ref("1002", basicB): {"offered 1001", "connected 1001"}})
	for uuid, want := range map[string]int{showA: 1, showB: 0, basicB: 1} {
		if n := countCommands(h.srv, "api uuid_dump "+uuid); n != want {
			t.Errorf("uuid_dump %s… asked %d times, want %d", uuid[:8], n, want)
		}
	}
}

// The recheck's result is applied after events that came meanwhile: a
// channel whose end or first event the state machine has seen since the
// dump is not reported from the dump.
func TestApplyLateSkipsChannelsEventsSettled(t *testing.T) {
	evs := loadEvents(t, "b_cancel")
	decode := func(e fakeesl.Event) chEvent { return decodeEvent(mimeOf(e.Headers), e.Body) }
	ringOf := func(id string) ([]fakeesl.Event, chEvent) {
		var ring []fakeesl.Event
		for _, e := range upTo(t, evs, "CHANNEL_CALLSTATE", cancB[:8]) {
			if e.Get("Unique-ID") == cancB {
				ring = append(ring, e.With("Unique-ID", id))
			}
		}
		d, err := parseDump(dumpOf(t, ring, id))
		if err != nil {
			t.Fatal(err)
		}
		return ring, d
	}
	out := newOutQueue()
	st := newCallState(slog.New(slog.DiscardHandler), out)
	st.setExtensions(testExts)
	drain := func() []pbx.Event {
		out.mu.Lock()
		defer out.mu.Unlock()
		q := out.q
		out.q = nil
		return q
	}

	// Ended after its dump was taken: its end is the first the state
	// machine hears of it.
	_, dump := ringOf(newUUID())
	st.handle(decode(find(t, evs, "CHANNEL_HANGUP", cancB[:8]).With("Unique-ID", dump.UUID)))
	if n := st.applyLate([]chEvent{dump}); n != 0 {
		t.Errorf("a channel that ended was reported (%d)", n)
	}
	if q := drain(); len(q) != 0 {
		t.Errorf("events for a channel that ended unseen: %+v", q)
	}

	// Its first events came after the dump: it is known by now.
	ring, dump := ringOf(newUUID())
	for _, e := range ring {
		st.handle(decode(e))
	}
	if n := st.applyLate([]chEvent{dump}); n != 0 {
		t.Errorf("a known channel was reported again (%d)", n)
	}
	if q := drain(); len(q) != 1 || q[0].Kind != pbx.EventOffered || q[0].Call != ref("1002", dump.UUID) {
		t.Errorf("events %+v, want the one Offered of its own events", q)
	}

	// Nothing since the dump: reported from it.
	_, dump = ringOf(newUUID())
	if n := st.applyLate([]chEvent{dump}); n != 1 {
		t.Errorf("an unknown ringing channel: %d reported, want 1", n)
	}
	if q := drain(); len(q) != 1 || q[0].Kind != pbx.EventOffered || q[0].Call != ref("1002", dump.UUID) ||
		q[0].Remote.Number != "1001" || q[0].SIPCallID == "" {
		t.Errorf("events %+v, want one Offered from 1001 with the Call-ID", q)
	}
}

// The recheck belongs to its session: a session that ends stops its timer,
// and the next session runs its own.
func TestRecheckStopsWithSession(t *testing.T) {
	clk := newManualClock()
	h := start(t, func(o *Options, _ *fakeesl.Server) { o.newTimer = clk.newTimer })
	h.up()
	first := clk.next(t)
	h.srv.DropAll()
	h.want(pbx.EventLink, isDown)
	h.up()
	second := clk.next(t)
	if !first.stopped.Load() {
		t.Error("the ended session's recheck timer was not stopped")
	}
	first.fire() // nobody listens any more
	second.fire()
	if _, err := h.srv.WaitCommand(ctxT(t), "api show channels as json", 2); err != nil {
		t.Fatal(err)
	}
	h.flush()
	if n := countCommands(h.srv, "api show channels as json"); n != 3 {
		t.Errorf("%d channel listings, want 3 (two resyncs, one recheck)", n)
	}
}
