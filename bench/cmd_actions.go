package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// cmdActions is goal 2: PBX events on many extensions at a steady rate,
// each turned into action URL GETs to a loopback sink. With the sink
// healthy: latency from the event to the GET's arrival, loss, per-extension
// order. With the sink slow, then down: /csta latency next to it, the queue
// length, the drops.
func cmdActions(ctx context.Context, c *common, args []string) (int, error) {
	fs, parse := c.flags("actions")
	nExt := fs.Int("exts", 1000, "extensions that receive PBX events")
	rate := fs.Float64("rate", 1000, "PBX events per second, over all extensions")
	cycles := fs.Int("cycles", 2, "call cycles per extension and phase (offered, connected, held, retrieved, cleared: 5 events, 7 GETs)")
	cstaExts := fs.Int("csta-exts", 50, "other extensions that carry /csta load meanwhile")
	cstaRate := fs.Float64("csta-rate", 200, "/csta requests per second meanwhile (open loop)")
	cstaConns := fs.Int("csta-conns", 8, "/csta keep-alive connections")
	slow := fs.Duration("slow", 500*time.Millisecond, "how long the slow sink takes to answer")
	only := fs.String("phases", "healthy,slow,overload,down", "phases to run, comma-separated; they always run in the order healthy, slow, overload, down")
	hot := fs.Int("overload-exts", 10, "extensions of the overload phase: the same event rate on a few extensions while the sink is slow, so that their queues overflow")
	goalP99 := fs.Duration("goal-p99", 2*time.Millisecond, "goal: p99 from event to GET received")
	goalCSTA := fs.Float64("goal-csta-ratio", 2, "goal: /csta p99 with the sink slow or down at most this multiple of the healthy phase")
	if err := parse(args); err != nil {
		return 2, err
	}
	if *hot < 1 || *hot > *nExt || *nExt < 1 || *rate <= 0 || *cycles < 1 || *cstaExts < 1 || *cstaRate <= 0 || *cstaConns < 1 || *slow <= 0 {
		return 2, usageError{errors.New("every count, rate and duration must be positive")}
	}
	c.header("actions")
	c.printf("command: go run ./bench actions %s\n", joinArgs(args))

	dir, err := os.MkdirTemp("", "csta-bench-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	sk, err := newSink()
	if err != nil {
		return 1, err
	}
	sinkUp := true
	defer func() {
		if sinkUp {
			sk.close()
		}
	}()
	evExts := extNames(20000, *nExt)
	probeExts := extNames(1000, *cstaExts)
	o := envOptions{Dir: dir, Exts: append(append([]string(nil), probeExts...), evExts...), SinkURL: sk.url, Logger: c.log}
	e, err := startEnv(ctx, o, nil)
	if err != nil {
		return 1, err
	}
	defer e.stop()
	if err := e.waitQueueEmpty(ctx, 30*time.Second); err != nil { // the start-up's action_setup_url GETs
		return 1, err
	}
	sessions := newSessions(probeExts, scenarios, &simCtl{h: e.pbx.Handler()})
	perPhase := time.Duration(float64(*cycles*5**nExt) / *rate * float64(time.Second))
	c.printf("%d event extensions, %.0f events/s, %d cycles per phase (%s each); /csta meanwhile: %d extensions, %.0f req/s, %d conns\n",
		*nExt, *rate, *cycles, perPhase.Round(time.Millisecond), *cstaExts, *cstaRate, *cstaConns)
	c.printf("phases: healthy sink; slow sink (%s per GET); overload: slow sink, the same event rate on %d extensions; sink down (port closed)\n\n",
		*slow, *hot)

	probe := func(name string) loadResult {
		return runLoad(ctx, loadSpec{Name: name, Base: e.base, Conns: *cstaConns, Rate: *cstaRate, Duration: perPhase}, sessions)
	}
	runLoad(ctx, loadSpec{Name: "warm-up", Base: e.base, Conns: *cstaConns, Rate: *cstaRate, Duration: time.Second}, sessions)
	quiet := probe("/csta alone (no events)")
	c.printf("%s\n", quiet)
	aloneP99 := summarize(quiet.Svc).P99

	correct := true
	healthyP99, baseName := aloneP99, "alone" // replaced by the healthy phase's when it runs
	var cstaErrs int
	// Per phase: which extensions get events, and how many calls each.
	overloadCycles := (256*2)/7 + 1 // > 512 GETs per extension: more than its queue holds, even with the sink draining
	type phaseSpec struct {
		mode   string
		exts   []string
		cycles int
	}
	phases := []phaseSpec{{"healthy", evExts, *cycles}, {"slow", evExts, *cycles},
		{"overload", evExts[:*hot], overloadCycles}, {"down", evExts, *cycles}}
	want := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		want[strings.TrimSpace(p)] = true
	}
	for _, ph := range phases {
		delete(want, ph.mode)
	}
	if len(want) > 0 {
		return 2, usageError{fmt.Errorf("-phases: unknown phase in %q", *only)}
	}
	played := make(map[string]int) // calls already played per extension
	for _, ph := range phases {
		if !strings.Contains(","+*only+",", ","+ph.mode+",") {
			continue
		}
		if ctx.Err() != nil {
			return 1, ctx.Err()
		}
		mode := ph.mode
		callBase := played[ph.exts[0]]
		for _, x := range ph.exts {
			played[x] += ph.cycles
		}
		phaseLen := time.Duration(float64(ph.cycles*5*len(ph.exts)) / *rate * float64(time.Second))
		switch mode {
		case "slow", "overload":
			sk.delay.Store(int64(*slow))
		case "down":
			sk.delay.Store(0)
			sk.close()
			sinkUp = false
		}
		var tr *tracker
		if mode == "healthy" {
			tr = newTracker(ph.exts, ph.cycles, callBase)
			sk.setHook(tr.hit)
		}
		before, err := e.adminGet(ctx, "/metrics")
		if err != nil {
			return 1, err
		}
		var wg sync.WaitGroup
		var cres loadResult
		wg.Add(1)
		go func() {
			defer wg.Done()
			cres = runLoad(ctx, loadSpec{Name: "/csta, sink " + mode, Base: e.base, Conns: *cstaConns, Rate: *cstaRate,
				Duration: phaseLen}, sessions)
		}()
		var maxQueued atomic.Int64
		stopSampling := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			if mode == "healthy" {
				return // nothing queues with a healthy sink
			}
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					if n, err := e.queued(ctx); err == nil && int64(n) > maxQueued.Load() {
						maxQueued.Store(int64(n))
					}
				case <-stopSampling:
					return
				}
			}
		}()
		em := emit(ctx, func(string) *benchPBX { return e.pbx }, ph.exts, *rate, ph.cycles, callBase, tr)
		wg.Wait()
		close(stopSampling)
		<-sampled
		cstaErrs += cres.Errors + cres.Unsent
		if em.err != nil {
			return 1, em.err
		}
		c.printf("phase %q: %d events on %d extensions in %s (emitter max lag %s)\n", mode, em.n, len(ph.exts),
			em.took.Round(time.Millisecond), ms(em.maxLag))
		c.printf("  %s\n", cres)
		// Service time: the generator's own timer lateness (part of the
		// scheduled-time latency) is not the bridge's.
		cs := summarize(cres.Svc)
		if mode == "healthy" {
			healthyP99, baseName = cs.P99, "healthy"
			waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := tr.wait(waitCtx)
			cancel()
			sk.setHook(nil)
			lat, got, want, bad, first := tr.result()
			s := summarize(lat)
			c.printf("  action URLs: %d of %d received, %d out of order, event → GET received: %s\n", got, want, bad, s)
			if first != "" {
				c.printf("  first order violation: %s\n", first)
			}
			c.goal(fmt.Sprintf("2 event→GET p99 ≤ %s", ms(*goalP99)), s.P99 <= *goalP99,
				fmt.Sprintf("p99 %s, ratio to goal %.2f", ms(s.P99), float64(s.P99)/float64(*goalP99)))
			c.goal("2 zero lost, order kept per extension", err == nil && got == want && bad == 0,
				fmt.Sprintf("lost %d, out of order %d", want-got, bad))
			if got != want || bad != 0 {
				correct = false
			}
			continue
		}
		after, err := e.adminGet(ctx, "/metrics")
		if err != nil {
			return 1, err
		}
		delta := func(name string, match ...string) float64 {
			return metric(after, name, match...) - metric(before, name, match...)
		}
		c.printf("  action URLs: %.0f ok, %.0f failed, %.0f dropped (queue-full %.0f); queue max %d (bound %d = 256 per extension with traffic)\n",
			delta("csta_bridge_action_url_requests_total", `result="ok"`),
			delta("csta_bridge_action_url_requests_total", `result="error"`)+delta("csta_bridge_action_url_requests_total", `result="http-`),
			delta("csta_bridge_action_url_dropped_total"), delta("csta_bridge_action_url_dropped_total", `reason="queue-full"`),
			maxQueued.Load(), 256*(len(ph.exts)+len(probeExts)))
		ratio := float64(cs.P99) / float64(max(healthyP99, time.Microsecond))
		c.goal(fmt.Sprintf("2 /csta p99 with sink %s ≤ %.1f× %s", mode, *goalCSTA, baseName), ratio <= *goalCSTA,
			fmt.Sprintf("service-time p99 %s vs %s (no events: %s), ratio %.2f", ms(cs.P99), ms(healthyP99), ms(aloneP99), ratio))
		c.goal(fmt.Sprintf("2 queue bounded with sink %s", mode), maxQueued.Load() <= int64(256*(len(ph.exts)+len(probeExts))),
			fmt.Sprintf("max %d", maxQueued.Load()))
		if mode == "overload" {
			c.goal("2 drops counted when a queue overflows", delta("csta_bridge_action_url_dropped_total", `reason="queue-full"`) > 0,
				fmt.Sprintf("%.0f dropped as queue-full", delta("csta_bridge_action_url_dropped_total", `reason="queue-full"`)))
		}
		if mode == "slow" || mode == "overload" {
			// Let the queue drain so that the next phase starts empty.
			sk.delay.Store(0)
			if err := e.waitQueueEmpty(ctx, 60*time.Second); err != nil {
				return 1, err
			}
		}
	}
	if cstaErrs > 0 {
		return 1, fmt.Errorf("%d /csta requests failed or were not sent", cstaErrs)
	}
	if !correct {
		return 1, errors.New("action URLs were lost or reordered")
	}
	return 0, nil
}

// emitResult is what the event generator did.
type emitResult struct {
	n      int
	took   time.Duration
	maxLag time.Duration
	err    error
}

// callEvents is one call's life at an extension, one event per step.
var callEvents = []pbx.EventKind{pbx.EventOffered, pbx.EventConnected, pbx.EventHeld, pbx.EventRetrieved, pbx.EventCleared}

// emit plays cycles calls on every extension, round-robin over the
// extensions at rate events/s (open loop: the timetable does not wait for
// the core). via names the simulator whose adapter delivers an extension's
// events (a cluster's node). callBase numbers the calls already played per
// extension. tr, when set, learns each event's hand-over time.
func emit(ctx context.Context, via func(ext string) *benchPBX, exts []string, rate float64, cycles, callBase int, tr *tracker) emitResult {
	n := cycles * len(callEvents) * len(exts)
	interval := time.Duration(float64(time.Second) / rate)
	t0 := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	var res emitResult
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				res.err = ctx.Err()
				return res
			}
		}
		res.maxLag = max(res.maxLag, time.Since(at))
		x, round := i%len(exts), i/len(exts)
		step, call := round%len(callEvents), callBase+round/len(callEvents)+1
		ext := exts[x]
		ev := pbx.Event{Kind: callEvents[step], Call: pbx.CallRef{Ext: ext, ID: fmt.Sprintf("ev-%d", call)}}
		switch ev.Kind {
		case pbx.EventOffered:
			ev.Remote = pbx.Party{Number: fmt.Sprintf("+4930%d", call), Name: "Caller"}
			ev.SIPCallID = fmt.Sprintf("ev-%s-%d@bench.test", ext, call)
		case pbx.EventHeld, pbx.EventRetrieved:
			// The phone's own hold: the core does not apply a report of
			// the bridge's (893cb21), which would send no action URL.
			ev.ByPhone = true
		}
		if tr != nil {
			tr.stamp(i)
		}
		if err := via(ext).inject(ctx, ev); err != nil {
			res.err = err
			return res
		}
		res.n++
	}
	res.took = time.Since(t0)
	return res
}

// tracker knows which GETs each extension must receive, in which order, and
// when the event behind each was handed to the core.
type tracker struct {
	idx    map[string]int
	stamps []atomic.Int64 // per event index: UnixNano of the hand-over
	done   chan struct{}

	mu       sync.Mutex
	expected [][]expGET
	pos      []int
	got      int
	want     int
	bad      int
	first    string
	lat      latencies
	closed   bool
}

type expGET struct {
	event, id string
	ev        int // event index
}

func newTracker(exts []string, cycles, callBase int) *tracker {
	n := cycles * len(callEvents) * len(exts)
	t := &tracker{idx: make(map[string]int, len(exts)), stamps: make([]atomic.Int64, n), done: make(chan struct{}),
		expected: make([][]expGET, len(exts)), pos: make([]int, len(exts)), lat: make(latencies, 0, n*7/5)}
	for i, e := range exts {
		t.idx[e] = i
	}
	for i := 0; i < n; i++ {
		x, round := i%len(exts), i/len(exts)
		step, call := round%len(callEvents), callBase+round/len(callEvents)+1
		id := fmt.Sprint(-call) // incoming calls count down from -1 per phone
		var gets []expGET
		switch callEvents[step] {
		case pbx.EventOffered:
			gets = []expGET{{"incoming", id, i}}
		case pbx.EventConnected:
			gets = []expGET{{"offhook", "", i}, {"connected", id, i}}
		case pbx.EventHeld:
			gets = []expGET{{"hold", id, i}}
		case pbx.EventRetrieved:
			gets = []expGET{{"unhold", id, i}}
		case pbx.EventCleared:
			gets = []expGET{{"disconnected", id, i}, {"onhook", "", i}}
		}
		t.expected[x] = append(t.expected[x], gets...)
		t.want += len(gets)
	}
	return t
}

func (t *tracker) stamp(i int) { t.stamps[i].Store(time.Now().UnixNano()) }

func (t *tracker) hit(event, ext, id string, at time.Time) {
	x, ok := t.idx[ext]
	if !ok || event == "setup" {
		return // a /csta probe extension, or the start-up GET
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.pos[x]
	if k >= len(t.expected[x]) {
		t.bad++
		if t.first == "" {
			t.first = fmt.Sprintf("extension %s: unexpected extra GET %s id=%s", ext, event, id)
		}
		return
	}
	t.pos[x]++
	t.got++
	want := t.expected[x][k]
	if want.event != event || want.id != id {
		t.bad++
		if t.first == "" {
			t.first = fmt.Sprintf("extension %s GET #%d: got %s id=%q, want %s id=%q", ext, k+1, event, id, want.event, want.id)
		}
	} else {
		t.lat = append(t.lat, at.Sub(time.Unix(0, t.stamps[want.ev].Load())))
	}
	if t.got == t.want && !t.closed {
		t.closed = true
		close(t.done)
	}
}

// wait returns once every expected GET arrived, or ctx's error.
func (t *tracker) wait(ctx context.Context) error {
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *tracker) result() (lat latencies, got, want, bad int, first string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append(latencies(nil), t.lat...), t.got, t.want, t.bad, t.first
}
