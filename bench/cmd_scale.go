package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"
)

// cmdScale is goal 3: many extensions and live calls. It measures start-up
// (bridge.New to ready), memory with every call live, reload, and a restart
// that takes the live calls over from the PBX.
func cmdScale(ctx context.Context, c *common, args []string) (int, error) {
	fs, parse := c.flags("scale")
	nExt := fs.Int("exts", 10000, "extensions")
	nCalls := fs.Int("calls", 2000, "live calls (each rung and answered through /csta, on distinct extensions)")
	reloads := fs.Int("reloads", 5, "reloads to time (each rewrites every extension's display name)")
	goalRSS := fs.Int("goal-rss-mib", 150, "goal: VmRSS with every call live, MiB")
	goalStart := fs.Duration("goal-startup", time.Second, "goal: start-up")
	goalReload := fs.Duration("goal-reload", 200*time.Millisecond, "goal: reload")
	if err := parse(args); err != nil {
		return 2, err
	}
	if *nExt < 1 || *nCalls < 0 || *nCalls > *nExt || *reloads < 1 {
		return 2, usageError{errors.New("want -exts ≥ 1, 0 ≤ -calls ≤ -exts, -reloads ≥ 1")}
	}
	c.header("scale")
	c.printf("command: go run ./bench scale %s\n", joinArgs(args))
	base := snapshot()
	c.printf("process before the bridge: %s\n", base)

	dir, err := os.MkdirTemp("", "csta-bench-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	sk, err := newSink()
	if err != nil {
		return 1, err
	}
	defer sk.close()
	o := envOptions{Dir: dir, Exts: extNames(100000, *nExt), SinkURL: sk.url, Logger: c.log}
	e, err := startEnv(ctx, o, nil)
	if err != nil {
		return 1, err
	}
	running := e
	defer func() {
		if running != nil {
			running.stop()
		}
	}()
	c.printf("start-up, %d extensions, no calls: %s (bridge.New reading the config → Start → ready)\n", *nExt, e.StartUp.Round(time.Microsecond))
	if err := e.waitQueueEmpty(ctx, 60*time.Second); err != nil { // action_setup_url of every phone
		return 1, err
	}
	idle := snapshot()
	c.printf("idle, %d extensions: %s\n", *nExt, idle)

	// Ring and answer the calls.
	sim := &simCtl{h: e.pbx.Handler()}
	client := newClient()
	defer client.CloseIdleConnections()
	t0 := time.Now()
	for i := 0; i < *nCalls; i++ {
		ext := o.Exts[i]
		_, id, err := sim.offer(ctx, "+4930200"+strconv.Itoa(i), ext)
		if err != nil {
			return 1, err
		}
		status, body, err := post(ctx, client, e.base+"/"+ext+"/csta", soapReq("AnswerCall", connID("callToBeAnswered", id)))
		if err != nil || status != 200 {
			return 1, fmt.Errorf("AnswerCall on %s: %d %s %v", ext, status, body, err)
		}
	}
	c.printf("%d calls rung and answered in %s\n", *nCalls, time.Since(t0).Round(time.Millisecond))
	if err := e.waitQueueEmpty(ctx, 60*time.Second); err != nil {
		return 1, err
	}
	if n, err := sim.live(ctx); err != nil || n != *nCalls {
		return 1, fmt.Errorf("simulator has %d live calls, want %d (%v)", n, *nCalls, err)
	}
	if err := e.waitCalls(ctx, *nCalls); err != nil {
		return 1, err
	}
	loaded := snapshot()
	c.printf("%d extensions, %d live calls: %s\n", *nExt, *nCalls, loaded)

	// Reload: every extension changes, the calls stay.
	var took []time.Duration
	for i := 0; i < *reloads; i++ {
		o.Display = fmt.Sprintf(" r%d", i+1)
		if _, err := writeConfig(o); err != nil {
			return 1, err
		}
		t := time.Now()
		if err := e.app.Reload(); err != nil {
			return 1, fmt.Errorf("reload: %w", err)
		}
		took = append(took, time.Since(t))
	}
	slices.Sort(took)
	c.printf("reload ×%d (config read, parsed, validated, %d extensions re-applied, %d calls kept): median %s, max %s\n",
		*reloads, *nExt, *nCalls, took[len(took)/2].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond))
	if err := e.waitCalls(ctx, *nCalls); err != nil {
		return 1, fmt.Errorf("after reload: %w", err)
	}

	// Restart: a new bridge on the same PBX takes the calls over (EventSync).
	running = nil
	if err := e.stop(); err != nil {
		return 1, fmt.Errorf("stop: %w", err)
	}
	coldStart, cfgPath, benchPBX := e.StartUp, e.cfgPath, e.pbx
	e = nil // let the stopped bridge be collected before the next snapshot
	t1 := time.Now()
	e2, err := startEnvAt(ctx, cfgPath, c.log, benchPBX)
	if err != nil {
		return 1, err
	}
	running = e2
	ready := e2.StartUp
	if err := e2.waitCalls(ctx, *nCalls); err != nil {
		return 1, fmt.Errorf("after restart: %w", err)
	}
	synced := time.Since(t1)
	c.printf("restart with %d live calls: ready in %s, every call taken over in %s\n", *nCalls,
		ready.Round(time.Microsecond), synced.Round(time.Microsecond))
	final := snapshot()
	c.printf("after restart (old bridge stopped, garbage collected): %s\n\n", final)

	startup := max(coldStart, synced)
	c.goal(fmt.Sprintf("3 RSS ≤ %d MiB (%d ext, %d calls)", *goalRSS, *nExt, *nCalls), loaded.VmRSS <= uint64(*goalRSS)<<20,
		fmt.Sprintf("VmRSS %s (whole bench process; VmHWM %s; Go heap live %s), ratio to goal %.2f",
			mib(loaded.VmRSS), mib(loaded.VmHWM), mib(loaded.HeapAlloc), float64(loaded.VmRSS)/float64(uint64(*goalRSS)<<20)))
	c.goal(fmt.Sprintf("3 start-up ≤ %s", *goalStart), startup <= *goalStart,
		fmt.Sprintf("cold %s, restart with calls taken over %s, ratio to goal %.2f", ms(coldStart), ms(synced),
			float64(startup)/float64(*goalStart)))
	c.goal(fmt.Sprintf("3 reload ≤ %s", *goalReload), took[len(took)-1] <= *goalReload,
		fmt.Sprintf("max %s, median %s, ratio to goal %.2f", ms(took[len(took)-1]), ms(took[len(took)/2]),
			float64(took[len(took)-1])/float64(*goalReload)))
	return 0, nil
}

// waitCalls waits until the bridge reports n live connections (its
// csta_bridge_calls gauge), i.e. every call is in its state machine.
func (e *env) waitCalls(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		m, err := e.adminGet(ctx, "/metrics")
		if err == nil && int(metric(m, "csta_bridge_calls")) == n {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("the bridge does not report %d live calls (last: %v, %v)", n, metric(m, "csta_bridge_calls"), err)
		}
	}
}
