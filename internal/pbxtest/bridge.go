package pbxtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// BridgeSetup is what a rig's bridge runs with.
type BridgeSetup struct {
	// PBX is the body of the config's pbx: section, each line indented by
	// two spaces ("  type: sim\n").
	PBX string
	// Exts maps each extension number to its endpoint.
	Exts map[string]string
	// Domain is defaults.domain (the host part of $local and $remote).
	Domain string
	// NewPBX builds the adapter, as cmd/csta-bridge does.
	NewPBX func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error)
	// Wait bounds each wait of the client and the sink (default 15 s).
	Wait time.Duration
}

// Bridge is a bridge.App running for a test, with its CTI server (the
// sink) and a client for its listeners.
type Bridge struct {
	App  *bridge.App // nil while stopped (Stop)
	Sink *ActionSink
	*BridgeClient

	t     testing.TB
	setup BridgeSetup
	path  string // the configuration file, kept across restarts with its state file
}

// StartBridge writes the configuration, starts the bridge, waits until
// it is ready and every extension fired action_setup_url, and stops it
// when the test ends. The sink gets every action URL (ConfigAll).
func StartBridge(t testing.TB, s BridgeSetup) *Bridge {
	t.Helper()
	if s.Wait == 0 {
		s.Wait = 15 * time.Second
	}
	sink := NewActionSink(t, s.Wait)
	var b strings.Builder
	fmt.Fprintf(&b, "pbx:\n%s", s.PBX)
	b.WriteString("http: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\nstate_file: state.json\n")
	fmt.Fprintf(&b, "defaults:\n  domain: %s\n  settings:\n", s.Domain)
	b.WriteString(sink.ConfigAll("    "))
	b.WriteString("extensions:\n")
	for ext, endpoint := range s.Exts {
		fmt.Fprintf(&b, "  %q:\n    endpoint: %q\n", ext, endpoint)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	// state_file is relative to the working directory; the tests run in
	// the package's, so it is made absolute here.
	text := strings.Replace(b.String(), "state_file: state.json", "state_file: "+filepath.Join(dir, "state.json"), 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	br := &Bridge{Sink: sink, t: t, setup: s, path: path}
	br.Start()
	t.Cleanup(br.Stop)
	return br
}

// Start starts the bridge (again, after Stop: a restarted bridge on the
// same configuration and state file), waits until it is ready and every
// extension fired action_setup_url, as a Snom does when it boots.
func (b *Bridge) Start() {
	t := b.t
	t.Helper()
	if b.App != nil {
		t.Fatal("bridge already running")
	}
	app, err := bridge.New(bridge.Options{ConfigPath: b.path, Logger: TestLogger(t), NewPBX: b.setup.NewPBX, Notify: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.App = app
	b.BridgeClient = NewBridgeClient(t, app.SharedAddr(), app.AdminAddr(), b.setup.Wait, b.setup.Wait)
	b.WaitReady(http.StatusOK)
	for ext := range b.setup.Exts {
		b.Sink.Expect(t, ext, "setup")
	}
}

// Stop stops the bridge as SIGTERM does; Start starts it again.
func (b *Bridge) Stop() {
	if b.App == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.setup.Wait)
	defer cancel()
	if err := b.App.Stop(ctx); err != nil {
		b.t.Errorf("bridge Stop: %v", err)
	}
	b.App = nil
}

// TestLogger logs to the test's log at the level CSTA_TEST_LOG names
// (debug, info, warn, error; default warn), until the test ends: the
// adapters' reader goroutines may still log after Stop returned.
func TestLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if v := os.Getenv("CSTA_TEST_LOG"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			t.Fatalf("CSTA_TEST_LOG=%q: %v", v, err)
		}
	}
	w := &testWriter{t: t, ok: true}
	t.Cleanup(func() {
		w.mu.Lock()
		w.ok = false
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	t  testing.TB
	mu sync.Mutex
	ok bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ok {
		return io.Discard.Write(p)
	}
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
