package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"
)

// scaleOptions are the flags of bench scale.
type scaleOptions struct {
	exts, calls, reloads int
	nodes, unpinned      int
	evExts, evCycles     int
	evRate               float64
	memProfile           string
	goalRSS              int
	goalStart, goalLoad  time.Duration
	goalEvent            time.Duration
}

// cmdScale is goal 3: many extensions and live calls. It measures start-up
// (bridge.New to ready), memory with every call live, event → action URL
// latency with every call live, reload, and a restart that takes the live
// calls over from the PBX. With -nodes the PBX is a cluster of simulators
// behind adapters/cluster (issue 14).
func cmdScale(ctx context.Context, c *common, args []string) (int, error) {
	fs, parse := c.flags("scale")
	var so scaleOptions
	fs.IntVar(&so.exts, "exts", 10000, "extensions")
	fs.IntVar(&so.calls, "calls", 2000, "live calls (each rung and answered through /csta, on distinct extensions)")
	fs.IntVar(&so.reloads, "reloads", 5, "reloads to time (each rewrites every extension's display name)")
	fs.IntVar(&so.nodes, "nodes", 0, "0: one simulator (the one-node run); N ≥ 1: a cluster (adapters/cluster) of N simulators, configured as pbx.esl.nodes, extension i pinned to node i mod N and its call rung there")
	fs.IntVar(&so.unpinned, "unpinned", 0, "with -nodes: percent of the extensions without node: (every node may serve them; each call still rings on node i mod N)")
	fs.IntVar(&so.evExts, "event-exts", 1000, "idle extensions (the last ones, so spread over the nodes) that get PBX events while every call is live; 0 skips the event phase")
	fs.Float64Var(&so.evRate, "event-rate", 1000, "PBX events per second over the event extensions, open loop")
	fs.IntVar(&so.evCycles, "event-cycles", 2, "call cycles per event extension (offered, connected, held, retrieved, cleared: 5 events, 7 action URLs)")
	fs.StringVar(&so.memProfile, "memprofile", "", "write a heap profile taken with every call live to this file (go tool pprof)")
	fs.IntVar(&so.goalRSS, "goal-rss-mib", 150, "goal: VmRSS with every call live, MiB")
	fs.DurationVar(&so.goalStart, "goal-startup", time.Second, "goal: start-up")
	fs.DurationVar(&so.goalLoad, "goal-reload", 200*time.Millisecond, "goal: reload")
	fs.DurationVar(&so.goalEvent, "goal-event-p99", 2*time.Millisecond, "goal: event → action URL GET p99 with every call live")
	if err := parse(args); err != nil {
		return 2, err
	}
	evSet := false
	fs.Visit(func(f *flag.Flag) { evSet = evSet || f.Name == "event-exts" })
	if !evSet {
		so.evExts = max(0, min(so.evExts, so.exts-so.calls)) // small runs keep working without the flag
	}
	switch {
	case so.exts < 1 || so.calls < 0 || so.calls > so.exts || so.reloads < 1:
		return 2, usageError{errors.New("want -exts ≥ 1, 0 ≤ -calls ≤ -exts, -reloads ≥ 1")}
	case so.nodes < 0 || so.unpinned < 0 || so.unpinned > 100 || (so.unpinned > 0 && so.nodes == 0):
		return 2, usageError{errors.New("want -nodes ≥ 0 and 0 ≤ -unpinned ≤ 100, -unpinned only with -nodes")}
	case so.evExts < 0 || so.calls+so.evExts > so.exts:
		return 2, usageError{errors.New("want 0 ≤ -event-exts ≤ -exts − -calls (the event extensions carry no live call)")}
	case so.evExts > 0 && (so.evRate <= 0 || so.evCycles < 1):
		return 2, usageError{errors.New("want -event-rate > 0 and -event-cycles ≥ 1")}
	}
	c.header("scale")
	c.printf("command: go run ./bench scale %s\n", joinArgs(args))
	return scale(ctx, c, so)
}

func scale(ctx context.Context, c *common, so scaleOptions) (int, error) {
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
	o := envOptions{Dir: dir, Exts: extNames(100000, so.exts), SinkURL: sk.url, Logger: c.log,
		Nodes: so.nodes, Unpinned: so.unpinned}
	// node is the simulator that rings extension number i.
	node := func(i int) int { return 0 }
	if so.nodes > 0 {
		node = o.nodeOf
		pinned := 0
		for i := range o.Exts {
			if o.pinned(i) {
				pinned++
			}
		}
		c.printf("cluster: %d simulators behind adapters/cluster (configured as pbx.esl.nodes); %d extensions pinned (node: sim<i mod %d + 1>), %d unpinned (every node serves them); calls and events of extension i on node i mod %d\n",
			so.nodes, pinned, so.nodes, so.exts-pinned, so.nodes)
	} else {
		c.printf("one simulator (pbx type sim)\n")
	}
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
	c.printf("start-up, %d extensions, no calls: %s (bridge.New reading the config → Start → ready)\n", so.exts, e.StartUp.Round(time.Microsecond))
	if err := e.waitQueueEmpty(ctx, 120*time.Second); err != nil { // action_setup_url of every phone
		return 1, err
	}
	idle := snapshot()
	c.printf("idle, %d extensions: %s\n", so.exts, idle)

	// Ring and answer the calls, each on its extension's node.
	sims := make([]*simCtl, len(e.nodes))
	for k, n := range e.nodes {
		sims[k] = &simCtl{h: n.Handler()}
	}
	client := newClient()
	defer client.CloseIdleConnections()
	t0 := time.Now()
	for i := 0; i < so.calls; i++ {
		ext := o.Exts[i]
		_, id, err := sims[node(i)].offer(ctx, "+4930200"+strconv.Itoa(i), ext)
		if err != nil {
			return 1, err
		}
		status, body, err := post(ctx, client, e.base+"/"+ext+"/csta", soapReq("AnswerCall", connID("callToBeAnswered", id)))
		if err != nil || status != 200 {
			return 1, fmt.Errorf("AnswerCall on %s: %d %s %v", ext, status, body, err)
		}
	}
	c.printf("%d calls rung and answered in %s\n", so.calls, time.Since(t0).Round(time.Millisecond))
	if err := e.waitQueueEmpty(ctx, 60*time.Second); err != nil {
		return 1, err
	}
	var perNode []int
	live := 0
	for _, s := range sims {
		n, err := s.live(ctx)
		if err != nil {
			return 1, err
		}
		perNode = append(perNode, n)
		live += n
	}
	if live != so.calls {
		return 1, fmt.Errorf("the simulators have %d live calls (%v), want %d", live, perNode, so.calls)
	}
	if err := e.waitCalls(ctx, so.calls); err != nil {
		return 1, err
	}
	if e.cluster != nil {
		c.printf("nodes: %s\n", nodeSummary(e))
	}
	loaded := snapshot()
	c.printf("%d extensions, %d live calls: %s\n", so.exts, so.calls, loaded)
	if so.memProfile != "" {
		if err := writeHeapProfile(so.memProfile); err != nil {
			return 1, err
		}
		c.printf("heap profile with every call live: %s\n", so.memProfile)
	}

	// PBX events on idle extensions, every call live.
	var evSum summary
	if so.evExts > 0 {
		first := so.exts - so.evExts
		exts := o.Exts[first:]
		via := make(map[string]*benchPBX, len(exts))
		for j, x := range exts {
			via[x] = e.nodes[node(first+j)]
		}
		tr := newTracker(exts, so.evCycles, 0)
		sk.setHook(tr.hit)
		em := emit(ctx, func(x string) *benchPBX { return via[x] }, exts, so.evRate, so.evCycles, 0, tr)
		if em.err != nil {
			sk.setHook(nil)
			return 1, em.err
		}
		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		werr := tr.wait(waitCtx)
		cancel()
		sk.setHook(nil)
		lat, got, want, bad, firstBad := tr.result()
		evSum = summarize(lat)
		c.printf("events: %d on %d idle extensions in %s (emitter max lag %s), each handed to the adapter that delivers it (its node's, in a cluster); action URLs %d of %d received, %d out of order; event → GET received: %s\n",
			em.n, len(exts), em.took.Round(time.Millisecond), ms(em.maxLag), got, want, bad, evSum)
		if firstBad != "" {
			c.printf("  first order violation: %s\n", firstBad)
		}
		if werr != nil || got != want || bad != 0 {
			return 1, fmt.Errorf("action URLs lost or reordered with every call live: %d of %d, %d out of order (%v)", got, want, bad, werr)
		}
		if err := e.waitCalls(ctx, so.calls); err != nil {
			return 1, fmt.Errorf("after the events: %w", err)
		}
	}

	// Reload: every extension changes, the calls stay.
	var took []time.Duration
	for i := 0; i < so.reloads; i++ {
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
		so.reloads, so.exts, so.calls, took[len(took)/2].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond))
	if err := e.waitCalls(ctx, so.calls); err != nil {
		return 1, fmt.Errorf("after reload: %w", err)
	}

	// Restart: a new bridge (a new cluster adapter) on the same PBX or
	// nodes takes the calls over (EventSync).
	running = nil
	if err := e.stop(); err != nil {
		return 1, fmt.Errorf("stop: %w", err)
	}
	coldStart, cfgPath, nodes := e.StartUp, e.cfgPath, e.nodes
	e = nil // let the stopped bridge be collected before the next snapshot
	t1 := time.Now()
	e2, err := startEnvAt(ctx, cfgPath, c.log, nodes)
	if err != nil {
		return 1, err
	}
	running = e2
	ready := e2.StartUp
	var probes []string // the last call of each node
	for i := so.calls - 1; i >= 0 && i >= so.calls-len(nodes); i-- {
		probes = append(probes, o.Exts[i])
	}
	at, err := e2.waitCallsAt(ctx, so.calls, probes)
	if err != nil {
		return 1, fmt.Errorf("after restart: %w", err)
	}
	synced := at.Sub(t1)
	c.printf("restart with %d live calls: ready in %s, every call taken over in %s\n", so.calls,
		ready.Round(time.Microsecond), synced.Round(time.Microsecond))
	final := snapshot()
	c.printf("after restart (old bridge stopped, garbage collected): %s\n\n", final)

	startup := max(coldStart, synced)
	c.goal(fmt.Sprintf("3 RSS ≤ %d MiB (%d ext, %d calls)", so.goalRSS, so.exts, so.calls), loaded.VmRSS <= uint64(so.goalRSS)<<20,
		fmt.Sprintf("VmRSS %s (whole bench process; VmHWM %s; Go heap live %s), ratio to goal %.2f",
			mib(loaded.VmRSS), mib(loaded.VmHWM), mib(loaded.HeapAlloc), float64(loaded.VmRSS)/float64(uint64(so.goalRSS)<<20)))
	c.goal(fmt.Sprintf("3 start-up ≤ %s", so.goalStart), startup <= so.goalStart,
		fmt.Sprintf("cold %s, restart with calls taken over %s, ratio to goal %.2f", ms(coldStart), ms(synced),
			float64(startup)/float64(so.goalStart)))
	c.goal(fmt.Sprintf("3 reload ≤ %s", so.goalLoad), took[len(took)-1] <= so.goalLoad,
		fmt.Sprintf("max %s, median %s, ratio to goal %.2f", ms(took[len(took)-1]), ms(took[len(took)/2]),
			float64(took[len(took)-1])/float64(so.goalLoad)))
	if so.evExts > 0 {
		c.goal(fmt.Sprintf("2 event→GET p99 ≤ %s, every call live", ms(so.goalEvent)), evSum.P99 <= so.goalEvent,
			fmt.Sprintf("p99 %s, p50 %s, ratio to goal %.2f", ms(evSum.P99), ms(evSum.P50), float64(evSum.P99)/float64(so.goalEvent)))
	}
	return 0, nil
}

// nodeSummary is what the cluster says of its nodes: how many are up and
// the spread of extensions and calls over them.
func nodeSummary(e *env) string {
	ns := e.cluster.Nodes()
	if len(ns) == 0 {
		return "none"
	}
	up := 0
	minX, maxX, minC, maxC := ns[0].Extensions, ns[0].Extensions, ns[0].Calls, ns[0].Calls
	for _, n := range ns {
		if n.Up {
			up++
		}
		minX, maxX = min(minX, n.Extensions), max(maxX, n.Extensions)
		minC, maxC = min(minC, n.Calls), max(maxC, n.Calls)
	}
	return fmt.Sprintf("%d of %d up; extensions per node %d–%d (pinned, plus unpinned ones registered there), live connections per node %d–%d",
		up, len(ns), minX, maxX, minC, maxC)
}

// writeHeapProfile writes the live heap (as of the last GC) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// waitCalls waits until the bridge reports n live connections (its
// csta_bridge_calls gauge), i.e. every call is in its state machine, and
// returns when it saw them.
func (e *env) waitCalls(ctx context.Context, n int) error {
	_, err := e.waitCallsAt(ctx, n, nil)
	return err
}

// waitCallsAt is waitCalls for a timed wait. With 100,000 extensions one
// /metrics request gathers several series per extension (hundreds of
// milliseconds of CPU), so polling it would slow the bridge it waits for:
// first each of probes (extensions whose calls come last) must show a
// call on its status page, which is cheap; then the gauge is read, with a
// pause as long as the last read between reads. The time returned is the
// start of the read that showed n.
func (e *env) waitCallsAt(ctx context.Context, n int, probes []string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, x := range probes {
		if err := e.waitPhoneBusy(ctx, x); err != nil {
			return time.Time{}, err
		}
	}
	for {
		at := time.Now()
		m, err := e.adminGet(ctx, "/metrics?name[]=csta_bridge_calls")
		if err == nil && int(metric(m, "csta_bridge_calls")) == n {
			return at, nil
		}
		t := time.NewTimer(max(5*time.Millisecond, time.Since(at)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return time.Time{}, fmt.Errorf("the bridge does not report %d live calls (last: %v, %v)", n, metric(m, "csta_bridge_calls"), err)
		}
	}
}

// waitPhoneBusy waits until the status API shows a call on ext.
func (e *env) waitPhoneBusy(ctx context.Context, ext string) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		body, err := e.adminGet(ctx, "/api/phones/"+ext)
		var v struct {
			Calls []json.RawMessage `json:"calls"`
		}
		if err == nil {
			err = json.Unmarshal([]byte(body), &v)
		}
		if err == nil && len(v.Calls) > 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("the status page shows no call on %s (%v)", ext, err)
		}
	}
}
