package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cmdCSTA is goal 1: the same /csta load against the bridge and against a
// bare net/http server, in alternating rounds of one run, first as fast as
// the clients go (throughput), then open loop at -rate (latency).
func cmdCSTA(ctx context.Context, c *common, args []string) (int, error) {
	fs, parse := c.flags("csta")
	conns := fs.Int("conns", 32, "keep-alive client connections (one worker each)")
	rate := fs.Float64("rate", 1000, "open-loop request rate for the latency phases, requests/s")
	dur := fs.Duration("duration", 10*time.Second, "length of each phase")
	rounds := fs.Int("rounds", 3, "rounds of bare/bridge phases; throughput ratios are per round, latencies pooled")
	nExt := fs.Int("exts", 200, "extensions under load (each runs its own call scenarios)")
	mixName := fs.String("mix", "calls", "calls: all nine CSTA services on live simulator calls; snom87: the Snom 8.7 services (snapshots, consultation, reconnect, conference, deflect, digits); status: RequestSystemStatus only; faults: requests the bridge refuses (bad XML, unknown service, unknown calls), compared with the status mix's good path in fault-good-good-fault phases per round, with the bridge logging at Info")
	noActions := fs.Bool("no-action-urls", false, "configure no action URLs (by default every call event is reported to a loopback sink)")
	only := fs.String("only", "", "run only the bridge (or only the bare) phases, e.g. to profile one side: bridge or bare")
	maxP99 := fs.Duration("goal-p99", time.Millisecond, "goal: bridge p99 at -rate")
	minRatio := fs.Float64("goal-ratio", 0.5, "goal: bridge throughput / bare throughput")
	minFaultRatio := fs.Float64("goal-fault-ratio", 0.8, "goal with -mix faults: fault path throughput / good path (status mix) throughput")
	if err := parse(args); err != nil {
		return 2, err
	}
	if *conns < 1 || *rate <= 0 || *dur <= 0 || *rounds < 1 || *nExt < 1 {
		return 2, usageError{errors.New("-conns, -rate, -duration, -rounds and -exts must be positive")}
	}
	if *only != "" && *only != "bridge" && *only != "bare" {
		return 2, usageError{fmt.Errorf("-only %q: want bridge or bare", *only)}
	}
	mix, err := mixByName(*mixName)
	if err != nil {
		return 2, usageError{err}
	}
	c.header("csta")
	c.printf("command: go run ./bench csta %s\n", joinArgs(args))

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
	o := envOptions{Dir: dir, Exts: extNames(1000, *nExt), Logger: c.log}
	var logLines func() (int, error)
	if *mixName == "faults" && c.log.Handler() == slog.DiscardHandler {
		// Logging is what the fault path is about: the bridge logs at Info
		// as it would to journald, to a file counted at the end.
		f, err := os.Create(filepath.Join(dir, "bridge.log"))
		if err != nil {
			return 1, err
		}
		defer f.Close()
		o.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
		logLines = func() (int, error) {
			b, err := os.ReadFile(f.Name())
			return bytes.Count(b, []byte("\n")), err
		}
	}
	if !*noActions {
		o.SinkURL = sk.url
	}
	e, err := startEnv(ctx, o, nil)
	if err != nil {
		return 1, err
	}
	defer e.stop()
	bare, err := startBare()
	if err != nil {
		return 1, err
	}
	defer bare.close()

	sim := &simCtl{h: e.pbx.Handler()}
	bridgeSessions := newSessions(o.Exts, mix, sim)
	bareSessions := newSessions(o.Exts, mix, nil)
	var goodSessions []*session // -mix faults: the good path to compare with
	if *mixName == "faults" {
		goodSessions = newSessions(o.Exts, statusOnly, sim)
	}
	c.printf("bridge: %d extensions, mix %q, action URLs %v; bare: net/http, reads the body, fixed %s response\n",
		*nExt, *mixName, !*noActions, "AnswerCallResponse")

	// Warm-up: connections, caches, the heap's first growth.
	for _, w := range []struct {
		base string
		s    []*session
	}{{bare.url, bareSessions}, {e.base, bridgeSessions}, {e.base, goodSessions}} {
		if len(w.s) == 0 {
			continue
		}
		runLoad(ctx, loadSpec{Name: "warm-up", Base: w.base, Conns: *conns, Duration: 2 * time.Second}, w.s)
	}

	var ratios, exchRatios, faultRatios, cpuRatios, cpuBareRatios []float64
	var bareLat, bridgeLat, bareSvc, bridgeSvc latencies
	bridgeBySvc := map[string]latencies{}
	var bridgeErrs int
	var firstErrs []string
	for r := 1; r <= *rounds && ctx.Err() == nil; r++ {
		c.printf("\nround %d\n", r)
		closed := func(name, base string, s []*session) loadResult {
			if skip(*only, name) {
				return loadResult{}
			}
			res := runLoad(ctx, loadSpec{Name: name, Base: base, Conns: *conns, Duration: *dur}, s)
			c.printf("  %s\n", res)
			return res
		}
		open := func(name, base string, s []*session) loadResult {
			if skip(*only, name) {
				return loadResult{}
			}
			res := runLoad(ctx, loadSpec{Name: name, Base: base, Conns: *conns, Rate: *rate, Duration: *dur}, s)
			c.printf("  %s\n", res)
			return res
		}
		cpuB0, cpuBareOK := cpuTime()
		bm := closed("bare max", bare.url, bareSessions)
		cpuB1, _ := cpuTime()
		hits0 := sk.hits.Load()
		cpu0, _ := cpuTime()
		gm := closed("bridge max", e.base, bridgeSessions)
		cpuFault, _ := cpuTime()
		cpuFault -= cpu0
		// The same at equal CPU: the process's CPU time per request of
		// each side (server and load generator), which other load on a
		// shared machine moves far less than throughput.
		if cpuBareOK && bm.OK > 0 && gm.OK > 0 && cpuFault > 0 && goodSessions == nil {
			perBare, perBridge := (cpuB1-cpuB0)/time.Duration(bm.OK), cpuFault/time.Duration(gm.OK)
			cpuBareRatios = append(cpuBareRatios, float64(perBare)/float64(perBridge))
			c.printf("  CPU per request: bare %s, bridge %s; at equal CPU bridge / bare %.3f\n",
				perBare.Round(100*time.Nanosecond), perBridge.Round(100*time.Nanosecond), float64(perBare)/float64(perBridge))
		}
		if gets := float64(sk.hits.Load() - hits0); gets > 0 && gm.OK > 0 && bm.Throughput() > 0 {
			// With action URLs every /csta request costs the machine more HTTP
			// exchanges (the GETs and the sink serving them) than the bare
			// server's one: this shows how much of the gap that is.
			perReq := gets / float64(gm.OK)
			exch := gm.Throughput() * (1 + perReq)
			exchRatios = append(exchRatios, exch/bm.Throughput())
			c.printf("  action URL GETs during bridge max: %.0f (%.2f per /csta request); HTTP exchanges %.0f/s, %.3f× the bare server's\n",
				gets, perReq, exch, exch/bm.Throughput())
		}
		if goodSessions != nil && !skip(*only, "bridge") {
			// Fault, good, good, fault: on a shared machine the load drifts
			// within a round, and the mirrored order cancels a steady drift
			// that would favour whichever side ran first.
			c0, cpuOK := cpuTime()
			good := closed("bridge good path max", e.base, goodSessions)
			good2 := closed("bridge good path max", e.base, goodSessions)
			c1, _ := cpuTime()
			gm2 := closed("bridge max", e.base, bridgeSessions)
			c2, _ := cpuTime()
			cpuFault += c2 - c1
			if good.Throughput()+good2.Throughput() > 0 {
				r := (gm.Throughput() + gm2.Throughput()) / (good.Throughput() + good2.Throughput())
				faultRatios = append(faultRatios, r)
				c.printf("  fault path / good path (status mix) throughput, fault-good-good-fault: %.3f\n", r)
			}
			// The process's CPU time per request (bridge and load
			// generator): unlike throughput, hardly moved by what else
			// the machine runs. Good per request / fault per request is
			// the throughput ratio the two would have at equal CPU.
			if okF, okG := gm.OK+gm2.OK, good.OK+good2.OK; cpuOK && okF > 0 && okG > 0 && cpuFault > 0 {
				perF := cpuFault / time.Duration(okF)
				perG := (c1 - c0) / time.Duration(okG)
				cpuRatios = append(cpuRatios, float64(perG)/float64(perF))
				c.printf("  CPU per request: fault path %s, good path %s; at equal CPU fault / good %.3f\n",
					perF.Round(100*time.Nanosecond), perG.Round(100*time.Nanosecond), float64(perG)/float64(perF))
			}
			for _, res := range []loadResult{good, good2, gm2} {
				bridgeErrs += res.Errors
				firstErrs = append(firstErrs, res.FirstErrs...)
			}
		}
		br := open("bare at rate", bare.url, bareSessions)
		gr := open("bridge at rate", e.base, bridgeSessions)
		if bm.Throughput() > 0 {
			ratios = append(ratios, gm.Throughput()/bm.Throughput())
			c.printf("  throughput ratio bridge/bare: %.3f\n", gm.Throughput()/bm.Throughput())
		}
		bareLat = append(bareLat, br.Lat...)
		bridgeLat = append(bridgeLat, gr.Lat...)
		bareSvc = append(bareSvc, br.Svc...)
		bridgeSvc = append(bridgeSvc, gr.Svc...)
		for k, v := range gr.BySvc {
			bridgeBySvc[k] = append(bridgeBySvc[k], v...)
		}
		for _, res := range []loadResult{gm, gr} {
			bridgeErrs += res.Errors + res.Unsent
			firstErrs = append(firstErrs, res.FirstErrs...)
		}
		if bm.Errors+br.Errors > 0 {
			return 1, fmt.Errorf("the bare server failed requests: %v %v", bm.FirstErrs, br.FirstErrs)
		}
	}
	if ctx.Err() != nil {
		return 1, ctx.Err()
	}
	bs, gs := summarize(bareLat), summarize(bridgeLat)
	bv, gv := summarize(bareSvc), summarize(bridgeSvc)
	c.printf("\npooled over %d rounds at %.0f/s, from the scheduled send time:\n  bare   %s\n  bridge %s\n", *rounds, *rate, bs, gs)
	c.printf("service time (from the actual send):\n  bare   %s\n  bridge %s\n", bv, gv)
	if len(bridgeBySvc) > 1 {
		c.printf("bridge service time by request:\n")
		for _, name := range slices.Sorted(maps.Keys(bridgeBySvc)) {
			c.printf("  %-24s %s\n", name, summarize(bridgeBySvc[name]))
		}
	}
	ratio := median(ratios)
	c.printf("\n")
	if *only != "" {
		c.printf("-only %s: no comparison, no goals\n", *only)
		return 0, nil
	}
	if len(faultRatios) > 0 {
		fr := median(faultRatios)
		c.goal(fmt.Sprintf("fault path throughput ≥ %.2f× the good path (median of rounds)", *minFaultRatio), fr >= *minFaultRatio,
			fmt.Sprintf("ratio %.3f (rounds %s)", fr, floats(faultRatios)))
	}
	if len(cpuRatios) > 0 {
		c.printf("fault path / good path at equal CPU (CPU time per request, median of rounds): %.3f (rounds %s)\n",
			median(cpuRatios), floats(cpuRatios))
	}
	if logLines != nil {
		n, err := logLines()
		if err != nil {
			return 1, err
		}
		c.printf("bridge log at Info: %d lines in the whole run (every bad request would be one)\n", n)
	}
	c.goal(fmt.Sprintf("1 throughput ≥ %.2f× bare (median of rounds)", *minRatio), ratio >= *minRatio,
		fmt.Sprintf("ratio %.3f (rounds %s)", ratio, floats(ratios)))
	if len(cpuBareRatios) > 0 {
		c.printf("bridge / bare at equal CPU (CPU time per request, median of rounds): %.3f (rounds %s)\n",
			median(cpuBareRatios), floats(cpuBareRatios))
	}
	if len(exchRatios) > 0 {
		c.printf("(with action URLs, HTTP exchanges per second, /csta and GETs together, against the bare server: %.3f, rounds %s)\n",
			median(exchRatios), floats(exchRatios))
	}
	c.goal(fmt.Sprintf("1 p99 ≤ %s at %.0f req/s", ms(*maxP99), *rate), gs.P99 <= *maxP99,
		fmt.Sprintf("bridge p99 %s (bare %s; service time: bridge %s, bare %s), ratio to goal %.2f",
			ms(gs.P99), ms(bs.P99), ms(gv.P99), ms(bv.P99), float64(gs.P99)/float64(*maxP99)))
	if bridgeErrs > 0 {
		c.printf("bridge errors: %d, first: %v\n", bridgeErrs, firstErrs)
		return 1, fmt.Errorf("%d /csta requests failed or were not sent", bridgeErrs)
	}
	if *mixName == "faults" {
		c.printf("correctness: every bridge response was the expected CSTA fault (or, on the good path, the positive response)\n")
	} else {
		c.printf("correctness: every bridge response was the expected positive CSTA response\n")
	}
	return 0, nil
}

// skip tells whether -only excludes the phase called name.
func skip(only, name string) bool {
	return only != "" && !strings.HasPrefix(name, only)
}

func mixByName(name string) ([]scenario, error) {
	switch name {
	case "calls":
		return scenarios, nil
	case "status":
		return statusOnly, nil
	case "snom87":
		return snom87, nil
	case "faults":
		return faults, nil
	}
	return nil, fmt.Errorf("-mix %q: want calls, snom87, status or faults", name)
}

func floats(v []float64) string {
	s := ""
	for i, f := range v {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.3f", f)
	}
	return s
}

func joinArgs(args []string) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}
