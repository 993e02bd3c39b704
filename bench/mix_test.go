package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The faults mix against a real bridge: every request must come back as its
// CSTA fault (the run exits 1 otherwise), the good path is measured beside
// it, and the bridge's Info log stays short. Timing goals are only printed.
func TestFaultsMix(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the bridge under load for a few seconds")
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"csta", "-mix", "faults", "-rounds", "1", "-duration", "300ms",
		"-exts", "4", "-conns", "2", "-rate", "200"}, &out, &errOut)
	all := out.String() + errOut.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, all)
	}
	for _, want := range []string{"bridge good path max", "fault path / good path (status mix) throughput",
		"GOAL fault path throughput", "every bridge response was the expected CSTA fault"} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q:\n%s", want, all)
		}
	}
	// Thousands of refusals, from one source: the first few are logged.
	m := regexp.MustCompile(`bridge log at Info: (\d+) lines`).FindStringSubmatch(all)
	if m == nil {
		t.Fatalf("no log line count in:\n%s", all)
	}
	if n, _ := strconv.Atoi(m[1]); n > 40 {
		t.Errorf("the bridge logged %d lines for the fault path", n)
	}
}
