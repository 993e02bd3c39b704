package bridge

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func (h *harness) rewriteConfig(f func(string) string) {
	h.t.Helper()
	path := filepath.Join(h.dir, "config.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(f(string(b))), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func TestReload(t *testing.T) {
	h := start(t, nil)
	h.offer("1003", "old", "555")
	h.sink.expect(t, "1003", "incoming:-1")
	h.offer("1001", "live", "555")
	h.sink.expect(t, "1001", "incoming:-1")
	h.ok("1001", "AnswerCall", conn("callToBeAnswered", -1))
	h.sink.expect(t, "1001", "offhook", "connected:-1")

	// A broken file keeps the old configuration, and is counted.
	h.rewriteConfig(func(s string) string { return s + "bogus_key: 1\n" })
	if err := h.app.Reload(); err == nil || !strings.Contains(err.Error(), "bogus_key") {
		t.Fatalf("bad reload: %v", err)
	}
	if got := testutil.ToFloat64(h.app.m.reloadFailures); got != 1 {
		t.Errorf("reload failures = %v", got)
	}
	if got := testutil.ToFloat64(h.app.m.reloadOK); got != 0 {
		t.Errorf("last_reload_successful = %v", got)
	}

	// Add 1004, drop 1003: the live call on 1001 keeps its csta_id.
	h.rewriteConfig(func(s string) string {
		s = strings.TrimSuffix(s, "bogus_key: 1\n")
		i := strings.Index(s, "  \"1003\":")
		return s[:i] + "  \"1004\":\n    display_name: Dave\n"
	})
	if err := h.app.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(h.app.m.reloadOK); got != 1 {
		t.Errorf("last_reload_successful = %v", got)
	}
	h.sink.expect(t, "1004", "setup")
	if code, _ := h.post("/1003/csta", soap("AnswerCall", conn("callToBeAnswered", -1)), nil); code != http.StatusNotFound {
		t.Errorf("removed extension answers %d", code)
	}
	h.ok("1001", "HoldCall", conn("callToBeHeld", -1))
	h.sink.expect(t, "1001", "hold:-1")
	names := map[string]bool{}
	h.pbx.mu.Lock()
	for _, e := range h.pbx.exts {
		names[e.Name] = true
	}
	h.pbx.mu.Unlock()
	if !names["1004"] || names["1003"] {
		t.Errorf("adapter extensions after reload: %v", names)
	}

	// 1003 comes back: its ids go on where they stopped, never reused.
	h.rewriteConfig(func(s string) string { return s + "  \"1003\":\n    display_name: Carol\n" })
	if err := h.app.Reload(); err != nil {
		t.Fatal(err)
	}
	h.offer("1003", "new", "556")
	h.sink.next(t, "1003", "incoming")
	var ids []int
	h.app.sb.do(context.Background(), func() {
		for id := range h.app.sb.phones["1003"].calls {
			ids = append(ids, id)
		}
	})
	if len(ids) != 1 || ids[0] != -2 {
		t.Errorf("1003's calls after coming back: %v, want [-2]", ids)
	}
}

func TestSyncAfterReconnect(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "stay", "555")
	h.offer("1001", "gone", "556")
	h.sink.expect(t, "1001", "incoming:-1", "incoming:-2")
	h.pbx.emit(pbx.Event{Kind: pbx.EventLink, Up: false, Reason: "test"})
	h.flush()
	if h.app.Ready() {
		t.Fatal("ready while the PBX link is down")
	}
	// After the reconnect: "stay" was answered meanwhile, "gone" vanished, and
	// "restored" carries a csta_id a previous bridge run gave it.
	h.pbx.emit(pbx.Event{Kind: pbx.EventLink, Up: true})
	h.pbx.emit(pbx.Event{Kind: pbx.EventSync, Calls: []pbx.CallInfo{
		{Call: pbx.CallRef{Ext: "1001", ID: "stay"}, State: pbx.StateConnected, Direction: pbx.Incoming},
		{Call: pbx.CallRef{Ext: "1001", ID: "restored"}, State: pbx.StateConnected, Direction: pbx.Incoming, CSTAID: -7},
		{Call: pbx.CallRef{Ext: "1001", ID: "new"}, State: pbx.StateAlerting, Direction: pbx.Incoming},
	}})
	h.sink.expect(t, "1001", "offhook", "connected:-1", "incoming:-8", "missed:-2")
	h.waitReady()
	if got := testutil.ToFloat64(h.app.m.pbxReconnects); got != 1 {
		t.Errorf("reconnects = %v", got)
	}
	// The restored call answers to its old id.
	h.ok("1001", "HoldCall", conn("callToBeHeld", -7))
	h.sink.expect(t, "1001", "hold:-7")
}

func TestMetricsLintAndStatusPage(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "c1", "030123")
	h.sink.expect(t, "1001", "incoming:-1")
	h.ok("1001", "AnswerCall", conn("callToBeAnswered", -1))
	h.sink.expect(t, "1001", "offhook", "connected:-1")

	resp, err := http.Get("http://" + h.app.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(resp.Body).Lint()
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if got := testutil.ToFloat64(h.app.m.cstaRequests.WithLabelValues("AnswerCall", "ok")); got != 1 {
		t.Errorf("AnswerCall ok = %v", got)
	}
	// The live-call gauges follow every transition (kept incrementally).
	h.ok("1001", "HoldCall", conn("callToBeHeld", -1))
	h.offer("1001", "c2", "030124")
	h.flush()
	for st, want := range map[string]float64{"alerting": 1, "held": 1, "connected": 0} {
		if got := testutil.ToFloat64(h.app.m.calls.WithLabelValues(st)); got != want {
			t.Errorf("calls{state=%q} = %v, want %v", st, got, want)
		}
	}
	h.ok("1001", "ClearConnection", conn("connectionToBeCleared", -1))
	h.flush()
	if got := testutil.ToFloat64(h.app.m.calls.WithLabelValues("held")); got != 0 {
		t.Errorf("calls{state=held} after clear = %v", got)
	}

	for path, want := range map[string]int{"/-/healthy": 200, "/-/ready": 200} {
		resp, err := http.Get("http://" + h.app.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s = %d", path, resp.StatusCode)
		}
	}
	resp, err = http.Get("http://" + h.app.AdminAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	for _, want := range []string{`<script src="/status.js">`, `1001</a></td><td>Alice</td>`, `<td>-2</td><td>alerting</td><td>in</td><td class="uri">sip:030124@pbx.test</td>`,
		"AnswerCall", "action_connected_url", "connected"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
}

// An extension with its own listen address is "the phone's IP": plain /csta
// there means that extension, and its action URLs leave from that IP.
func TestOwnListener(t *testing.T) {
	h := start(t, map[string]string{"1001": "    listen: \"127.0.0.2:0\"\n"})
	addr := h.app.ExtensionAddr("1001")
	if !strings.HasPrefix(addr, "127.0.0.2:") {
		t.Fatalf("own listener at %q", addr)
	}
	h.offer("1001", "c1", "555")
	hit := h.sink.expect(t, "1001", "incoming:-1")[0]
	if !strings.HasPrefix(hit.From, "127.0.0.2:") {
		t.Errorf("action URL came from %s, want 127.0.0.2", hit.From)
	}
	resp, err := http.Post("http://"+addr+"/csta", "text/xml", strings.NewReader(soap("AnswerCall", conn("callToBeAnswered", -1))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("AnswerCall on the own listener: %d", resp.StatusCode)
	}
	h.sink.expect(t, "1001", "offhook", "connected:-1")
	resp, err = http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("home page of the own listener: %d", resp.StatusCode)
	}
}

// Under systemd (Type=notify) the bridge reports READY=1 once its listeners
// are bound, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a reload.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	msgs := make(chan string, 32)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(prefix string) string {
		t.Helper()
		deadline := time.After(waitFor)
		for {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m, prefix) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %q notification", prefix)
			}
		}
	}
	h := start(t, nil)
	next("READY=1")
	if err := h.app.Reload(); err != nil {
		t.Fatal(err)
	}
	if m := next("RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("reload notification %q lacks MONOTONIC_USEC", m)
	}
	next("READY=1")
}
