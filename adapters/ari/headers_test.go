package ari

import (
	"bytes"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func TestParseSIPHeaders(t *testing.T) {
	hs, bad := parseSIPHeaders(" x-customer: 4711 |X-Queue:sales||bad header: 1|novalue|X-A: b\r\nInjected: 1")
	want := map[string]string{"X-Customer": "4711", "X-Queue": "sales"}
	if !maps.Equal(hs, want) {
		t.Errorf("headers %v, want %v", hs, want)
	}
	if len(bad) != 3 {
		t.Errorf("bad entries %q, want the three malformed ones", bad)
	}
	if hs, bad := parseSIPHeaders(""); hs != nil || bad != nil {
		t.Errorf("empty: %v %v", hs, bad)
	}
}

// syncBuffer is a log sink the adapter's goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A call that reaches a mapped phone by a plain Dial(PJSIP/…) is reported
// as before and logged once at Info with the dialplan line that dialled it
// (issue 13 point 4); a routed call is not.
func TestBypassingCallLoggedOnce(t *testing.T) {
	var buf syncBuffer
	h := newHarness(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	_, b := h.fake.PlainDial("PJSIP/1002", "PJSIP/1001")
	if off := h.waitKind("1001", pbx.EventOffered); off.Call.ID != b {
		t.Fatalf("offered %s, want %s", off.Call, b)
	}
	if err := h.fake.Answer(b); err != nil {
		t.Fatal(err)
	}
	h.waitKind("1001", pbx.EventConnected)
	ownedRinging(t, h, "1003")
	log := buf.String()
	if n := strings.Count(log, "bypasses the bridge's Stasis application"); n != 1 {
		t.Fatalf("%d bypass lines, want 1:\n%s", n, log)
	}
	for _, want := range []string{"level=INFO", "ext=1001", "dialled_from=from-internal,1001", "caller=1002"} {
		if !strings.Contains(log, want) {
			t.Errorf("bypass line without %s:\n%s", want, log)
		}
	}
}
