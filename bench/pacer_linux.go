package main

import (
	"context"
	"runtime"
	"syscall"
	"time"
)

// pace returns a sleep function for the open-loop scheduler. Go's timers
// wake through the network poller, whose epoll wait has millisecond
// granularity: on an idle process a 1 ms slot is hit p50 0.5 ms and p99
// over 1 ms late, which would be charged to the server under test. Here
// the scheduler's goroutine keeps its own OS thread and sleeps with
// nanosleep(2), which the kernel wakes with high-resolution timers.
// Call it from the goroutine that will sleep. The thread is never
// unlocked: Go ends it with the goroutine, so its changed timer slack cannot
// leak to other goroutines.
func pace() (sleepUntil func(ctx context.Context, at time.Time) bool) {
	runtime.LockOSThread()
	// The kernel's default timer slack adds up to 50 µs to every wake-up;
	// this thread wants none.
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1, 0)
	return func(ctx context.Context, at time.Time) bool {
		for {
			if ctx.Err() != nil {
				return false
			}
			d := time.Until(at)
			if d <= 0 {
				return true
			}
			// Wake at least every 50 ms to notice cancellation.
			ts := syscall.NsecToTimespec(int64(min(d, 50*time.Millisecond)))
			_ = syscall.Nanosleep(&ts, nil) // EINTR: loop and sleep the rest
		}
	}
}

// prSetTimerSlack is PR_SET_TIMERSLACK from <linux/prctl.h>.
const prSetTimerSlack = 29
