package lease

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/sim"
	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// standbyBridge starts one of two bridges with the same config (each on
// its own "host": its own state file) on the shared simulated PBX.
func standbyBridge(t *testing.T, p *sim.PBX, sink *pbxtest.ActionSink, l bridge.Lease) *bridge.App {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("pbx:\n  type: sim\nhttp: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\n"+
		"state_file: %s\ndefaults:\n  domain: example.test\n  settings:\n%sextensions:\n  \"201\": {}\n  \"202\": {}\n",
		filepath.Join(dir, "state.json"), sink.Config("    "))
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := bridge.New(bridge.Options{ConfigPath: path, Logger: pbxtest.TestLogger(t), Notify: func(string) {},
		Lease: l, NewPBX: func(*config.Config, *slog.Logger) (pbx.PBX, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	return app
}

func ready(t *testing.T, app *bridge.App) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + app.AdminAddr() + "/-/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// waitReady polls /-/ready (it has no change notification) until it
// answers want and its body contains part, within d.
func waitReady(t *testing.T, app *bridge.App, want int, part string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body := ready(t, app)
		if code == want && strings.Contains(body, part) {
			return time.Since(start)
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("/-/ready answers %d %q, want %d with %q within %s", code, body, want, part, d)
		}
	}
}

func simPost(t *testing.T, base, path, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %d %v", path, resp.StatusCode, v)
	}
	return v
}

// TestStandbyBridgeTakesOver: of two bridges with the same config only the
// lease holder answers ready and talks to the PBX; when it dies the other
// is active within 5 s, takes the live call over by its csta_id and fires
// no action URL twice.
func TestStandbyBridgeTakesOver(t *testing.T) {
	n := startNATS(t)
	p := sim.New(sim.Options{NeverAnswer: true})
	simSrv := httptest.NewServer(p.Handler())
	defer simSrv.Close()
	sink := pbxtest.NewActionSink(t, 15*time.Second)
	la, _ := newLease(t, n.url(), "bridge-a")
	lb, _ := newLease(t, n.url(), "bridge-b")

	a := standbyBridge(t, p, sink, la)
	waitReady(t, a, http.StatusOK, "OK", 15*time.Second)
	sink.Expect(t, "201", "setup")
	sink.Expect(t, "202", "setup")
	b := standbyBridge(t, p, sink, lb)
	waitReady(t, b, http.StatusServiceUnavailable, `standby: the active bridge is "bridge-a"`, 15*time.Second)
	if got := activeMetric(t, a) + "/" + activeMetric(t, b); got != "1/0" {
		t.Errorf("csta_bridge_active of active/standby = %s, want 1/0", got)
	}

	call := simPost(t, simSrv.URL, "/sim/calls", `{"from":"0301234567","to":"201"}`)
	id, _ := call["id"].(string)
	sink.Expect(t, "201", "incoming:-1") // the bridge numbers incoming calls -1, -2, ...
	simPost(t, simSrv.URL, "/sim/calls/"+id+"/answer", `{}`)
	sink.Expect(t, "201", "offhook", "connected:-1")

	la.Abandon()                                         // the active bridge's host dies: no lease release...
	if err := a.Stop(context.Background()); err != nil { // ...and nothing talks to the PBX for it
		t.Logf("stopping the dead bridge: %v", err)
	}
	took := waitReady(t, b, http.StatusOK, "OK", takeover)
	t.Logf("standby ready %s after the active bridge died", took)
	if got := activeMetric(t, b); got != "1" {
		t.Errorf("csta_bridge_active of the new active bridge = %s, want 1", got)
	}

	sink.Expect(t, "201", "setup") // the standby's phones boot as after a restart
	sink.Expect(t, "202", "setup")
	simPost(t, simSrv.URL, "/sim/calls/"+id+"/hangup", `{}`)
	sink.Expect(t, "201", "disconnected:-1", "onhook") // the same call, taken over by its stored csta_id
	if err := b.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"201", "202"} {
		if extra := sink.Drain(ext); len(extra) > 0 {
			t.Errorf("ext %s: action URLs beyond the expected ones: %v", ext, extra)
		}
	}
}

// activeMetric reads csta_bridge_active from the bridge's /metrics.
func activeMetric(t *testing.T, app *bridge.App) string {
	t.Helper()
	resp, err := http.Get("http://" + app.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "csta_bridge_active "); ok {
			return v
		}
	}
	return "missing"
}
