package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestSoakShort is the CI version of `bench soak`: a short mixed load, then
// goroutines and live heap at a quiet point must be back where they were
// after the warm-up. Those are resource assertions; nothing here is timed.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	c := &common{out: &out, log: slog.New(slog.DiscardHandler)}
	rep := soak(ctx, soakOptions{
		Duration: 10 * time.Second, Warmup: 3 * time.Second, Exts: 40, Rate: 100, Conns: 4,
		ReloadEvery: 3 * time.Second, MaxGoroutineGrowth: 5, MaxHeapGrowth: 0.25, HeapSlack: 2 << 20,
	}, c)
	t.Logf("start %s", rep.Start)
	t.Logf("end   %s", rep.End)
	t.Logf("%d requests, %d errors, %.0f action URLs, %d reloads", rep.Requests, rep.Errors, rep.ActionRequests, rep.Reloads)
	if rep.Err != nil {
		if rep.Goroutines != "" {
			t.Logf("goroutines at the end:\n%s", rep.Goroutines)
		}
		t.Fatal(rep.Err)
	}
	if rep.Requests == 0 || rep.ActionRequests == 0 || rep.Reloads == 0 {
		t.Fatalf("the soak did not exercise the bridge: %d requests, %.0f action URLs, %d reloads",
			rep.Requests, rep.ActionRequests, rep.Reloads)
	}
}

// TestCommandLine checks the command's usage handling without running load.
func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: go run ./bench"},
		{[]string{"-help"}, 0, "commands:"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"csta", "-help"}, 0, "-conns"},
		{[]string{"csta", "-mix", "bogus"}, 2, "want calls, snom87, status or faults"},
		{[]string{"soak", "-duration", "0s"}, 2, "must be positive"},
		{[]string{"scale", "-calls", "20", "-exts", "10"}, 2, "-calls"},
		{[]string{"actions", "extra"}, 2, "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		all := out.String() + errOut.String()
		if code != tc.code || !strings.Contains(all, tc.want) {
			t.Errorf("run(%q) = %d, output %q; want %d and %q", tc.args, code, all, tc.code, tc.want)
		}
	}
}

// TestPercentiles pins the quantile definition the reports use.
func TestPercentiles(t *testing.T) {
	var l latencies
	for i := 1000; i >= 1; i-- {
		l = append(l, time.Duration(i)*time.Microsecond)
	}
	s := summarize(l)
	if s.P50 != 500*time.Microsecond || s.P99 != 990*time.Microsecond || s.P999 != 999*time.Microsecond ||
		s.Max != 1000*time.Microsecond || s.N != 1000 {
		t.Fatalf("summary %+v", s)
	}
	if (latencies{}).pct(0.99) != 0 || summarize(nil).N != 0 {
		t.Fatal("empty samples")
	}
}

// TestMetricParsing reads Prometheus text the way the bench does.
func TestMetricParsing(t *testing.T) {
	const text = `# HELP csta_bridge_action_url_dropped_total x
csta_bridge_action_url_dropped_total{reason="queue-full"} 12
csta_bridge_action_url_dropped_total{reason="shutdown"} 3
csta_bridge_action_url_dropped_total_other 100
csta_bridge_calls{state="connected"} 2
csta_bridge_calls{state="held"} 1
`
	if got := metric(text, "csta_bridge_action_url_dropped_total"); got != 15 {
		t.Errorf("dropped total %v", got)
	}
	if got := metric(text, "csta_bridge_action_url_dropped_total", `reason="queue-full"`); got != 12 {
		t.Errorf("queue-full %v", got)
	}
	if got := metric(text, "csta_bridge_calls"); got != 3 {
		t.Errorf("calls %v", got)
	}
}
