package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestScaleSmall runs bench scale at a small size, on one simulator and on
// a cluster of simulators (pinned, and partly unpinned): every call must be
// rung, answered, kept over the reloads and taken over by the restarted
// bridge, and every event's action URLs must arrive in order. Nothing here
// is timed: the timing goals only print.
func TestScaleSmall(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"one simulator", []string{"-exts", "60", "-calls", "12", "-event-exts", "12", "-event-cycles", "1", "-reloads", "2"},
			[]string{"one simulator (pbx type sim)", "action URLs 84 of 84 received, 0 out of order",
				"12 calls rung and answered", "restart with 12 live calls"}},
		{"cluster, pinned", []string{"-nodes", "3", "-exts", "60", "-calls", "12", "-event-exts", "12", "-event-cycles", "1", "-reloads", "2"},
			[]string{"cluster: 3 simulators", "60 extensions pinned", "0 unpinned",
				"nodes: 3 of 3 up; extensions per node 20–20", "live connections per node 4–4",
				"action URLs 84 of 84 received, 0 out of order", "restart with 12 live calls"}},
		{"cluster, 50% unpinned", []string{"-nodes", "3", "-unpinned", "50", "-exts", "200", "-calls", "30", "-event-exts", "30", "-event-cycles", "1", "-reloads", "1"},
			[]string{"100 extensions pinned", "100 unpinned", "nodes: 3 of 3 up", "live connections per node 10–10",
				"action URLs 210 of 210 received, 0 out of order", "restart with 30 live calls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out, errOut bytes.Buffer
			code := run(ctx, append([]string{"scale"}, tc.args...), &out, &errOut)
			if code != 0 {
				t.Fatalf("exit %d: %s\n%s", code, errOut.String(), out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestScaleFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-unpinned", "10"},                                  // without -nodes
		{"-nodes", "2", "-unpinned", "101"},                  // not a percentage
		{"-nodes", "-1"},                                     // negative
		{"-exts", "10", "-calls", "5", "-event-exts", "6"},   // event extensions would carry calls
		{"-exts", "10", "-calls", "0", "-event-rate", "0"},   // no rate
		{"-exts", "10", "-calls", "0", "-event-cycles", "0"}, // no cycles
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"scale"}, args...), &out, &errOut); code != 2 {
			t.Errorf("scale %v: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}
