//go:build !linux

package main

import (
	"context"
	"time"
)

// pace: elsewhere the scheduler uses Go timers (see pacer_linux.go for why
// Linux does not).
func pace() (sleepUntil func(ctx context.Context, at time.Time) bool) {
	return func(ctx context.Context, at time.Time) bool {
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
}
