package bridge

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// TestStopWaitsForCSTAIDStore: a call numbered just before the stop keeps
// its csta_id on the PBX: Stop lets the store finish before it stops the
// adapter, or the next bridge reports the call again as new (issue 19).
func TestStopWaitsForCSTAIDStore(t *testing.T) {
	waiting := make(chan struct{})
	h := startLogged(t, nil, slog.New(&signalHandler{msg: "waiting for the csta_id stores", hit: waiting}))
	gate := make(chan struct{})
	h.pbx.mu.Lock()
	h.pbx.tagGate = gate
	h.pbx.mu.Unlock()
	h.offer("1001", "c1", "555")

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- h.app.Stop(ctx)
	}()
	select {
	case <-waiting:
	case <-h.pbx.stopped:
		t.Fatal("the adapter was stopped while the csta_id store was under way")
	case <-time.After(waitFor):
		t.Fatal("Stop never waited for the csta_id store")
	}
	close(gate)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	h.pbx.mu.Lock()
	id, ok := h.pbx.tags[pbx.CallRef{Ext: "1001", ID: "c1"}]
	h.pbx.mu.Unlock()
	if !ok || id != -1 {
		t.Fatalf("csta_id on the PBX channel: %d (stored %v), want -1", id, ok)
	}
}

// signalHandler closes hit at the first record whose message starts with msg.
type signalHandler struct {
	msg  string
	hit  chan struct{}
	once sync.Once
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.msg) {
		h.once.Do(func() { close(h.hit) })
	}
	return nil
}
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *signalHandler) WithGroup(string) slog.Handler      { return h }
