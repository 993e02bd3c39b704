package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

// soakOptions configure a soak; the command and the CI test share them.
type soakOptions struct {
	Duration    time.Duration // main load phase
	Warmup      time.Duration
	Exts        int
	Rate        float64 // /csta requests/s, open loop
	Conns       int
	ReloadEvery time.Duration // 0: never
	// Tolerances: the end may exceed the start by this many goroutines, and
	// its live heap by this fraction of the start or HeapSlack, whichever
	// is larger (small heaps move by a few hundred KiB on their own).
	MaxGoroutineGrowth int
	MaxHeapGrowth      float64
	HeapSlack          uint64
}

// soakReport is what a soak measured; Err is set when it failed.
type soakReport struct {
	Start, End     memSnapshot
	Requests       int
	Errors         int
	Reloads        int
	ActionRequests float64
	Lat            summary
	Err            error
	// Goroutines is a goroutine dump (stacks grouped) taken when the count
	// grew beyond the tolerance.
	Goroutines string
}

// soak runs the mixed load (every CSTA service on live calls, every call's
// action URLs, reloads, status page and metrics scrapes) and compares
// goroutines and live heap at quiet points after the warm-up and at the end.
func soak(ctx context.Context, o soakOptions, c *common) soakReport {
	var rep soakReport
	fail := func(err error) soakReport { rep.Err = err; return rep }
	dir, err := os.MkdirTemp("", "csta-soak-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	sk, err := newSink()
	if err != nil {
		return fail(err)
	}
	defer sk.close()
	eo := envOptions{Dir: dir, Exts: extNames(1000, o.Exts), SinkURL: sk.url, Logger: c.log}
	e, err := startEnv(ctx, eo, nil)
	if err != nil {
		return fail(err)
	}
	defer e.stop()
	sim := &simCtl{h: e.pbx.Handler()}
	sessions := newSessions(eo.Exts, scenarios, sim)

	phase := func(d time.Duration) (loadResult, error) {
		stop := make(chan struct{})
		side := make(chan error, 1)
		go func() { side <- sideLoad(ctx, e, &eo, o.ReloadEvery, stop, &rep.Reloads) }()
		res := runLoad(ctx, loadSpec{Name: "soak", Base: e.base, Conns: o.Conns, Rate: o.Rate, Duration: d}, sessions)
		close(stop)
		err := <-side
		if err == nil && res.Errors+res.Unsent > 0 {
			err = fmt.Errorf("%d /csta requests failed (first: %v)", res.Errors+res.Unsent, res.FirstErrs)
		}
		return res, err
	}
	quiet := func(limit int) (memSnapshot, error) {
		if err := e.waitQueueEmpty(ctx, 30*time.Second); err != nil {
			return memSnapshot{}, err
		}
		if n, err := sim.live(ctx); err != nil || n != 0 {
			return memSnapshot{}, fmt.Errorf("%d simulator calls still live after the load (%v)", n, err)
		}
		if err := e.waitCalls(ctx, 0); err != nil {
			return memSnapshot{}, err
		}
		// Idle keep-alive connections (bridge → sink, the scrapes' client →
		// admin listener) are not leaks; close them, again on every poll, as
		// a connection that was finishing a response is not idle yet.
		return settle(ctx, limit, func() {
			sk.closeIdle()
			http.DefaultClient.CloseIdleConnections()
		}), nil
	}

	if _, err := phase(o.Warmup); err != nil {
		return fail(fmt.Errorf("warm-up: %w", err))
	}
	if rep.Start, err = quiet(-1); err != nil {
		return fail(fmt.Errorf("after warm-up: %w", err))
	}

	before, _ := e.adminGet(ctx, "/metrics")
	res, err := phase(o.Duration)
	rep.Requests, rep.Errors, rep.Lat = res.OK, res.Errors+res.Unsent, summarize(res.Lat)
	if err != nil {
		return fail(err)
	}
	after, _ := e.adminGet(ctx, "/metrics")
	rep.ActionRequests = metric(after, "csta_bridge_action_url_requests_total") - metric(before, "csta_bridge_action_url_requests_total")
	if rep.End, err = quiet(rep.Start.Goroutines + o.MaxGoroutineGrowth); err != nil {
		return fail(fmt.Errorf("after the load: %w", err))
	}
	var problems []error
	if g := rep.End.Goroutines - rep.Start.Goroutines; g > o.MaxGoroutineGrowth {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		rep.Goroutines = b.String()
		problems = append(problems, fmt.Errorf("goroutines grew by %d (%d → %d), tolerance %d",
			g, rep.Start.Goroutines, rep.End.Goroutines, o.MaxGoroutineGrowth))
	}
	allowed := max(uint64(float64(rep.Start.HeapAlloc)*o.MaxHeapGrowth), o.HeapSlack)
	if rep.End.HeapAlloc > rep.Start.HeapAlloc+allowed {
		problems = append(problems, fmt.Errorf("live heap grew by %s (%s → %s), tolerance %s",
			mib(rep.End.HeapAlloc-rep.Start.HeapAlloc), mib(rep.Start.HeapAlloc), mib(rep.End.HeapAlloc), mib(allowed)))
	}
	rep.Err = errors.Join(problems...)
	return rep
}

// sideLoad is the rest of the mixed load: a reload every so often (each
// renames every extension) and status page and metrics scrapes.
func sideLoad(ctx context.Context, e *env, eo *envOptions, every time.Duration, stop <-chan struct{}, reloads *int) error {
	scrape := time.NewTicker(time.Second)
	defer scrape.Stop()
	var reload <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		reload = t.C
	}
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-scrape.C:
			if _, err := e.adminGet(ctx, "/metrics"); err != nil {
				return err
			}
			if _, err := e.adminGet(ctx, "/"); err != nil {
				return err
			}
		case <-reload:
			*reloads++
			eo.Display = fmt.Sprintf(" r%d", *reloads)
			if _, err := writeConfig(*eo); err != nil {
				return err
			}
			if err := e.app.Reload(); err != nil {
				return fmt.Errorf("reload %d: %w", *reloads, err)
			}
		}
	}
}

// settle calls tidy and waits until the goroutine count has stopped moving for 1.5 s
// (connections closed on the other side end their goroutines a moment
// later) and, when limit ≥ 0, is at most limit; after 15 s it gives up and
// snapshots anyway: a goroutine still there then is a leak, not a straggler.
func settle(ctx context.Context, limit int, tidy func()) memSnapshot {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	last, same := runtime.NumGoroutine(), 0
	for same < 30 || (limit >= 0 && last > limit) {
		select {
		case <-tick.C:
		case <-deadline.C:
			return snapshot()
		case <-ctx.Done():
			return snapshot()
		}
		tidy()
		if n := runtime.NumGoroutine(); n == last {
			same++
		} else {
			last, same = n, 0
		}
	}
	return snapshot()
}

func cmdSoak(ctx context.Context, c *common, args []string) (int, error) {
	fs, parse := c.flags("soak")
	o := soakOptions{}
	fs.DurationVar(&o.Duration, "duration", 2*time.Minute, "length of the measured load (the issue's soak is 30m)")
	fs.DurationVar(&o.Warmup, "warmup", 10*time.Second, "load before the first measurement")
	fs.IntVar(&o.Exts, "exts", 200, "extensions under load")
	fs.Float64Var(&o.Rate, "rate", 300, "/csta requests per second (open loop)")
	fs.IntVar(&o.Conns, "conns", 16, "keep-alive connections")
	fs.DurationVar(&o.ReloadEvery, "reload-every", 10*time.Second, "reload the configuration this often (0: never)")
	fs.IntVar(&o.MaxGoroutineGrowth, "max-goroutine-growth", 5, "fail when the goroutine count grew by more")
	fs.Float64Var(&o.MaxHeapGrowth, "max-heap-growth", 0.25, "fail when the live heap grew by more than this fraction…")
	slack := fs.Int("heap-slack-kib", 2048, "…and by more than this many KiB")
	if err := parse(args); err != nil {
		return 2, err
	}
	if o.Duration <= 0 || o.Warmup <= 0 || o.Exts < 1 || o.Rate <= 0 || o.Conns < 1 || *slack < 0 {
		return 2, usageError{errors.New("-duration, -warmup, -exts, -rate and -conns must be positive")}
	}
	o.HeapSlack = uint64(*slack) << 10
	c.header("soak")
	c.printf("command: go run ./bench soak %s\n", joinArgs(args))
	rep := soak(ctx, o, c)
	c.printf("start (after %s warm-up, quiet): %s\nend   (after %s of load, quiet):  %s\n", o.Warmup, rep.Start, o.Duration, rep.End)
	c.printf("load: %d /csta requests (%s), %d errors, %.0f action URL GETs, %d reloads\n",
		rep.Requests, rep.Lat, rep.Errors, rep.ActionRequests, rep.Reloads)
	if rep.Start.Goroutines == 0 {
		return 1, rep.Err
	}
	c.goal(fmt.Sprintf("4 goroutines end ≤ start + %d", o.MaxGoroutineGrowth),
		rep.End.Goroutines-rep.Start.Goroutines <= o.MaxGoroutineGrowth,
		fmt.Sprintf("%d → %d", rep.Start.Goroutines, rep.End.Goroutines))
	c.goal(fmt.Sprintf("4 live heap end ≤ start + max(%.0f%%, %s)", o.MaxHeapGrowth*100, mib(o.HeapSlack)),
		rep.End.HeapAlloc <= rep.Start.HeapAlloc+max(uint64(float64(rep.Start.HeapAlloc)*o.MaxHeapGrowth), o.HeapSlack),
		fmt.Sprintf("%s → %s", mib(rep.Start.HeapAlloc), mib(rep.End.HeapAlloc)))
	if rep.Goroutines != "" {
		c.printf("\ngoroutines at the end:\n%s", rep.Goroutines)
	}
	if rep.Err != nil {
		return 1, rep.Err
	}
	return 0, nil
}
