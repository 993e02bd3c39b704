package esl

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a log sink for tests.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// eventPathState is a call state with 1002 ringing (cancB) and a logger at
// the given level.
func eventPathState(t testing.TB, level slog.Level, w *lockedBuffer) (*callState, chEvent, chEvent) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	s := newCallState(log, newOutQueue())
	s.setExtensions(testExts)
	evs := loadEvents(t, "b_cancel")
	for _, e := range upTo(t, evs, "CHANNEL_CALLSTATE", cancB[:8]) {
		s.handle(decodeEvent(mimeOf(e.Headers), e.Body))
	}
	// A repeat of 1002's ringing state (changes nothing) and an event of a
	// channel that is nobody's.
	e := find(t, evs, "CHANNEL_CALLSTATE", cancB[:8])
	ours := decodeEvent(mimeOf(e.Headers), e.Body)
	other := ours
	other.UUID, other.Presence, other.ChanName, other.DialedUser = "f0000000-0000-4000-8000-000000000000", "1099@127.0.0.1", "loopback/1099-b", ""
	return s, ours, other
}

// With debug off, the event path logs nothing and allocates nothing for
// it: handling an event that changes nothing allocates nothing at all.
func TestEventPathNoAllocsWithoutDebug(t *testing.T) {
	var w lockedBuffer
	s, ours, other := eventPathState(t, slog.LevelInfo, &w)
	for _, ev := range []chEvent{ours, other} {
		if n := testing.AllocsPerRun(200, func() { s.handle(ev) }); n != 0 {
			t.Errorf("%s of %s: %v allocations per event with debug off, want 0", ev.Name, ev.ChanName, n)
		}
	}
	if w.String() != "" {
		t.Errorf("logged with debug off: %s", w.String())
	}
	// The same with debug on logs (and allocates): the check above can fail.
	var dw lockedBuffer
	s, ours, other = eventPathState(t, slog.LevelDebug, &dw)
	if n := testing.AllocsPerRun(20, func() { s.handle(ours) }); n == 0 {
		t.Error("no allocations with debug on: the event is not logged")
	}
	s.handle(other)
	log := dw.String()
	for _, want := range []string{
		"event=CHANNEL_CALLSTATE", "uuid=" + cancB, "channel=sofia/internal/1002@127.0.0.1:5182", "ext=1002", "conn=" + cancB,
		`leg="incoming device call"`, `channel=loopback/1099-b`, `ext="not ours"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("debug log lacks %s:\n%s", want, log)
		}
	}
}

func BenchmarkEventPathDebugOff(b *testing.B) {
	var w lockedBuffer
	s, ours, _ := eventPathState(b, slog.LevelInfo, &w)
	b.ReportAllocs()
	for b.Loop() {
		s.handle(ours)
	}
}

// Commands are logged with their reply and duration; credentials are not.
func TestCommandLogRedacts(t *testing.T) {
	for in, want := range map[string]string{
		"auth ClueCon": "auth [redacted]",
		"api originate {sip_auth_password=s3cret,origination_uuid=x}user/1001 &park()": "api originate {sip_auth_password=[redacted],origination_uuid=x}user/1001 &park()",
		"api uuid_kill abc": "api uuid_kill abc",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
	var w lockedBuffer
	h, sc := startScripted(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	sc.on("uuid_kill", body("+OK\n"))
	h.connectedCall()
	if err := h.a.ClearConnection(ctxT(t), ref("1002", basicB)); err != nil {
		t.Fatal(err)
	}
	log := w.String()
	for _, want := range []string{`msg="esl command"`, `cmd="api uuid_kill ` + basicB + `"`, "took=", "reply=+OK"} {
		if !strings.Contains(log, want) {
			t.Errorf("command log lacks %s", want)
		}
	}
}
