package bridge

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// lockedBuffer is a log destination shared by the HTTP goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the log lines containing s.
func (l *lockedBuffer) lines(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestFaultLog(t *testing.T) (*faultLog, *lockedBuffer, *fakeClock, *metrics) {
	var buf lockedBuffer
	m := newMetrics(prometheus.NewRegistry())
	f := newFaultLog(slog.New(slog.NewTextHandler(&buf, nil)), m)
	clk := &fakeClock{t: time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)}
	f.now = clk.now
	t.Cleanup(f.close)
	return f, &buf, clk, m
}

func TestFaultLogPerSource(t *testing.T) {
	f, buf, clk, m := newTestFaultLog(t)
	allowed := func(remote string, n int) int {
		ok := 0
		for range n {
			if f.allow(remote, "1001", "invalidConnectionID") {
				ok++
			}
		}
		return ok
	}
	if got := allowed("127.0.0.1:40000", faultLogBurst+15); got != faultLogBurst {
		t.Errorf("first window: %d refusals may be logged, want %d", got, faultLogBurst)
	}
	// Another source (and the same one over IPv4-mapped IPv6 is the same).
	if got := allowed("127.0.0.2:40000", 3); got != 3 {
		t.Errorf("second source: %d of 3 may be logged", got)
	}
	if got := allowed("[::ffff:127.0.0.1]:40001", 1); got != 0 {
		t.Errorf("IPv4-mapped form of a source over its allowance: %d may be logged", got)
	}
	if got := testutil.ToFloat64(m.faultsUnlogged); got != 16 {
		t.Errorf("refusals_unlogged_total = %v, want 16", got)
	}
	// Before the window ends nothing is summarized.
	clk.add(faultLogWindow / 2)
	f.sweep()
	if l := buf.lines("without a log line"); len(l) != 0 {
		t.Fatalf("summary before the window ended: %q", l)
	}
	clk.add(faultLogWindow / 2)
	f.sweep()
	l := buf.lines("without a log line")
	if len(l) != 1 || !strings.Contains(l[0], "source=127.0.0.1 ") || !strings.Contains(l[0], "count=16") ||
		!strings.Contains(l[0], "logged=10") || !strings.Contains(l[0], "last_code=invalidConnectionID") {
		t.Fatalf("one summary for 127.0.0.1 with count=16, got %q", l)
	}
	// A new window: logged again.
	if got := allowed("127.0.0.1:40000", 1); got != 1 {
		t.Error("the source was not given a new allowance after its window")
	}
}

// A window that ended before the timer ran is summarized by the source's
// next refusal, and close reports what is still open.
func TestFaultLogSummaryWithoutTimer(t *testing.T) {
	f, buf, clk, _ := newTestFaultLog(t)
	for range faultLogBurst + 2 {
		f.allow("10.1.2.3:1", "1002", "invalidObjectState")
	}
	clk.add(faultLogWindow)
	if !f.allow("10.1.2.3:1", "1002", "invalidObjectState") {
		t.Error("first refusal of a new window not logged")
	}
	if l := buf.lines("without a log line"); len(l) != 1 || !strings.Contains(l[0], "count=2") {
		t.Fatalf("summary of the ended window: %q", l)
	}
	for range faultLogBurst + 5 { // with the one above: 6 over the allowance
		f.allow("10.1.2.3:1", "1002", "invalidObjectState")
	}
	f.close()
	if l := buf.lines("without a log line"); len(l) != 2 || !strings.Contains(l[1], "count=6") {
		t.Fatalf("close did not report the open window: %q", l)
	}
}

// Past faultLogSources sources, new ones share one allowance.
func TestFaultLogBoundedSources(t *testing.T) {
	f, _, _, _ := newTestFaultLog(t)
	for i := range faultLogSources {
		f.allow(fmt.Sprintf("10.0.%d.%d:5", i/256, i%256), "1001", "x")
	}
	logged := 0
	for i := range faultLogBurst + 10 {
		if f.allow(fmt.Sprintf("10.1.0.%d:5", i), "1001", "x") {
			logged++
		}
	}
	if logged != faultLogBurst {
		t.Errorf("new sources past the bound: %d logged, want the shared allowance %d", logged, faultLogBurst)
	}
	f.mu.Lock()
	n := len(f.bySrc)
	f.mu.Unlock()
	if n > faultLogSources+1 {
		t.Errorf("%d sources tracked, bound %d", n, faultLogSources)
	}
}

// A client hammering /csta with bad requests gets faults, each counted; the
// log has the first faultLogBurst of them, not one line per request.
func TestFaultLogHammer(t *testing.T) {
	var buf lockedBuffer
	h := startLogged(t, nil, slog.New(slog.NewTextHandler(&buf, nil)))
	const n = 3 * faultLogBurst
	for i := range n {
		body := "<garbage" // not XML
		if i%2 == 1 {      // well-formed, but no such call
			body = soap("AnswerCall", conn("callToBeAnswered", -99))
		}
		code, _ := h.post("/1001/csta", body, nil)
		if code != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d, want 500", i, code)
		}
	}
	logged := len(buf.lines("CSTA request refused")) + len(buf.lines("CSTA request failed"))
	if logged != faultLogBurst {
		t.Errorf("%d refusals logged, want %d of %d", logged, faultLogBurst, n)
	}
	if got := testutil.ToFloat64(h.app.m.faultsUnlogged); got != n-faultLogBurst {
		t.Errorf("refusals_unlogged_total = %v, want %d", got, n-faultLogBurst)
	}
	if got := testutil.ToFloat64(h.app.m.cstaRequests.WithLabelValues("AnswerCall", "invalidConnectionID")); got != n/2 {
		t.Errorf("AnswerCall invalidConnectionID counted %v times, want %d", got, n/2)
	}
	// Stopping reports what was left out.
	if err := h.app.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l := buf.lines("without a log line"); len(l) != 1 || !strings.Contains(l[0], "source=127.0.0.1 ") {
		t.Errorf("summary at stop: %q", l)
	}
}
