package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

const stressHelp = `bench stress drives the whole bridge (in-process) on a real Asterisk (-pbx ari)
or FreeSWITCH (-pbx esl) the way a busy CTI application does: -phones loops
in parallel, each with its own registered test phone, each playing -cycles
calls back to back, and checks every reply, every call's action URLs (sent
by the bridge to the bench's sink) and the phones. Half the calls are placed
by the PBX from a channel that is no phone (ARI: a Local channel into 602@tests
playing music; ESL: a loopback channel playing a tone), half by a caller test
phone that dials the subject (callers are not configured in the bridge).

  -mix basic     AnswerCall, HoldCall, RetrieveCall, ClearConnection, each sent
                 as soon as the previous reply and its action URL arrived.
  -mix transfer  alternately: AnswerCall + SingleStepTransferCall to the loop's
                 target phone (answered by hand, ClearConnection there); and
                 AnswerCall, HoldCall, MakeCall to the target, TransferCall,
                 the far parties hang up. Needs two phones per loop.

Afterwards it lists what the PBX still has of the run's extensions (ARI:
/channels and /bridges; ESL: show channels), waits 10s for it to go, reports
it and hangs it up. The exit status is 1 when a cycle failed or something was
left. A failed cycle is printed with its steps (requests, replies, action URLs
with times); the loop then hangs up what is left of its calls and goes on.
The test phones negotiate media but send no RTP, so audio is not checked.

Run it alone on the PBX: Asterisk gives a Stasis application to one ARI
client at a time (an integration test's bridge and this one would take it
from each other), and calls of other tests to the same extensions fork to
their phones too. It refuses to start while the PBX has channels of its
extensions (-clear-first hangs them up).

Connection defaults come from the integration tests' variables
(CSTA_TEST_ARI_URL, _USER, _PASS, _APP, _CONTEXT, _SIP, _SIP_PASS;
CSTA_TEST_ESL_ADDR, _PASS, _SIP, _SIP_PASS, _CONTEXT), else the /opt/pbx test
bed's values. In -sip-pass, {ext} stands for the extension. Every address must
be on loopback.

  go run ./bench stress -pbx ari -phones 10 -cycles 100 -mix basic
  go run ./bench stress -pbx esl -phones 5 -cycles 200 -mix transfer

Flags:
`

// stressOptions configure a stress run; the command and its test share them.
type stressOptions struct {
	PBX                                          string // ari or esl
	ARIURL, ARIUser, ARIPass, ARIApp, ARIContext string
	ARIOutside                                   string // exten@context for originated Local channels
	ESLAddr, ESLPass, ESLContext                 string
	SIP, SIPPass                                 string
	Exts                                         []string
	Mix                                          string
	Phones, Cycles                               int
	StepTimeout, Timeout                         time.Duration
	Reports                                      int // failed cycles printed in full
	ClearFirst                                   bool
	Trace                                        bool // print every cycle's steps, passed ones too
	Log                                          *slog.Logger
	Out                                          io.Writer
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func cmdStress(ctx context.Context, c *common, args []string) (int, error) {
	fs, parse := c.flags("stress")
	fs.Usage = func() { fmt.Fprint(fs.Output(), stressHelp); fs.PrintDefaults() }
	var o stressOptions
	var exts string
	fs.StringVar(&o.PBX, "pbx", "ari", "ari (Asterisk) or esl (FreeSWITCH)")
	fs.StringVar(&o.Mix, "mix", "basic", "basic or transfer")
	fs.IntVar(&o.Phones, "phones", 2, "parallel loops, each with its own phone (two in the transfer mix)")
	fs.IntVar(&o.Cycles, "cycles", 5, "calls each loop plays")
	fs.StringVar(&exts, "exts", "", "extensions to use, e.g. 1001-1012 or 1004,1005,1011 (default: ari 1001-1012, esl 1000-1014; keep clear of the phones of other tests on the same PBX); the first -phones are the subjects, then the transfer targets, then caller phones")
	fs.DurationVar(&o.StepTimeout, "step-timeout", 15*time.Second, "longest wait for one reply, action URL or phone state")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "the whole run stops after this")
	fs.IntVar(&o.Reports, "reports", 10, "failed cycles printed in full (all are counted)")
	fs.BoolVar(&o.Trace, "trace", false, "print the steps of every cycle, passed ones too")
	fs.BoolVar(&o.ClearFirst, "clear-first", false, "hang up what the PBX already has of these extensions before starting (default: refuse to start)")
	fs.StringVar(&o.ARIURL, "ari-url", envOr("CSTA_TEST_ARI_URL", "http://127.0.0.1:8088/ari"), "ARI root")
	fs.StringVar(&o.ARIUser, "ari-user", envOr("CSTA_TEST_ARI_USER", "bridge"), "ARI user")
	fs.StringVar(&o.ARIPass, "ari-pass", envOr("CSTA_TEST_ARI_PASS", "bridge"), "ARI password")
	fs.StringVar(&o.ARIApp, "ari-app", envOr("CSTA_TEST_ARI_APP", "csta-bridge"), "Stasis application of the dialplan snippet")
	fs.StringVar(&o.ARIContext, "ari-context", envOr("CSTA_TEST_ARI_CONTEXT", "phones"), "context the snippet is included in")
	fs.StringVar(&o.ARIOutside, "ari-outside", envOr("CSTA_TEST_ARI_OUTSIDE", "602@tests"), "exten@context the far half of an originated Local channel runs")
	fs.StringVar(&o.ESLAddr, "esl-addr", envOr("CSTA_TEST_ESL_ADDR", "127.0.0.1:8021"), "FreeSWITCH event socket")
	fs.StringVar(&o.ESLPass, "esl-pass", envOr("CSTA_TEST_ESL_PASS", "ClueCon"), "event socket password")
	fs.StringVar(&o.ESLContext, "esl-context", envOr("CSTA_TEST_ESL_CONTEXT", "default"), "dialplan context for MakeCall, transfers and loopback calls")
	sip := fs.String("sip", "", "SIP UDP host:port the phones register with (default: CSTA_TEST_ARI_SIP or 127.0.0.1:5060; CSTA_TEST_ESL_SIP or 127.0.0.1:5070)")
	sipPass := fs.String("sip-pass", "", "phones' digest password (default: CSTA_TEST_ARI_SIP_PASS or {ext}; CSTA_TEST_ESL_SIP_PASS or 1234)")
	if err := parse(args); err != nil {
		return 2, err
	}
	o.SIP, o.SIPPass = *sip, *sipPass
	switch o.PBX {
	case "ari":
		o.SIP = firstSet(o.SIP, os.Getenv("CSTA_TEST_ARI_SIP"), "127.0.0.1:5060")
		o.SIPPass = firstSet(o.SIPPass, os.Getenv("CSTA_TEST_ARI_SIP_PASS"), "{ext}")
		exts = firstSet(exts, "1001-1012")
	case "esl":
		o.SIP = firstSet(o.SIP, os.Getenv("CSTA_TEST_ESL_SIP"), "127.0.0.1:5070")
		o.SIPPass = firstSet(o.SIPPass, os.Getenv("CSTA_TEST_ESL_SIP_PASS"), "1234")
		exts = firstSet(exts, "1000-1014")
	default:
		return 2, usageError{fmt.Errorf("-pbx %q: want ari or esl", o.PBX)}
	}
	var err error
	if o.Exts, err = parseExts(exts); err != nil {
		return 2, usageError{fmt.Errorf("-exts: %w", err)}
	}
	o.Log, o.Out = c.log, c.out
	if err := o.check(); err != nil {
		return 2, usageError{err}
	}
	c.header("stress")
	res, err := stress(ctx, o)
	if res != nil {
		for _, line := range res.summaryLines() {
			c.printf("%s\n", line)
		}
	}
	if err != nil {
		return 1, err
	}
	if !res.Pass() {
		return 1, nil
	}
	return 0, nil
}

func firstSet(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// check rejects what cannot work: unknown mix, too few extensions, and
// any address off loopback (the bench never sends traffic elsewhere).
func (o *stressOptions) check() error {
	if o.Mix != "basic" && o.Mix != "transfer" {
		return fmt.Errorf("-mix %q: want basic or transfer", o.Mix)
	}
	if o.Cycles < 1 || o.Cycles > 100000 {
		return fmt.Errorf("-cycles %d: want 1 to 100000", o.Cycles)
	}
	if o.StepTimeout <= 0 || o.Timeout <= 0 {
		return errors.New("-step-timeout and -timeout must be positive")
	}
	if _, err := planExts(o.Exts, o.Mix, o.Phones); err != nil {
		return err
	}
	addrs := map[string]string{"-sip": o.SIP}
	if o.PBX == "ari" {
		u, err := url.Parse(o.ARIURL)
		if err != nil || u.Host == "" || u.User != nil {
			return fmt.Errorf("-ari-url %q: want http://host:port/ari without credentials", o.ARIURL)
		}
		addrs["-ari-url"] = u.Host
		if _, _, ok := strings.Cut(o.ARIOutside, "@"); !ok {
			return fmt.Errorf("-ari-outside %q: want exten@context", o.ARIOutside)
		}
	} else {
		addrs["-esl-addr"] = o.ESLAddr
	}
	for flag, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			if flag != "-ari-url" {
				return fmt.Errorf("%s %q: want host:port", flag, a)
			}
			host = a
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("%s %q: the bench only talks to loopback", flag, a)
		}
	}
	return nil
}

// stressRun is one run's shared state.
type stressRun struct {
	o      stressOptions
	p      stressPBX
	br     *stressBridge
	urls   *urlLogs
	outMu  sync.Mutex
	mu     sync.Mutex
	res    *stressResult
	shown  int
	phones map[string]*stressPhone
}

func (r *stressRun) request(service string, rep cstaReply, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.res.Requests[service] = append(r.res.Requests[service], rep.Took)
	} else {
		r.res.RequestFails[service]++
	}
}

func (r *stressRun) cleaned(n int) {
	r.mu.Lock()
	r.res.Cleaned += n
	r.mu.Unlock()
}

// report records a failed cycle and prints the first few in full.
func (r *stressRun) report(c *cycle, f failure, after string) {
	r.mu.Lock()
	r.res.Failures = append(r.res.Failures, f)
	show := r.shown < r.o.Reports
	r.shown++
	r.mu.Unlock()
	r.outMu.Lock()
	defer r.outMu.Unlock()
	who := "the PBX"
	if c.origin != "pbx" {
		who = "phone " + c.origin
	}
	fmt.Fprintf(r.o.Out, "FAIL loop %d cycle %d (%s, subject %s, call placed by %s): %s: %s\n", c.l.n, c.n, c.kind,
		c.l.subject.ext, who, f.Step, f.Msg)
	if !show {
		return
	}
	fmt.Fprintf(r.o.Out, "  csta_ids: %v\n", map[string]string(c.ids))
	for _, s := range c.steps {
		fmt.Fprintf(r.o.Out, "  %s\n", s)
	}
	fmt.Fprintf(r.o.Out, "  after the failure:\n    %s\n", after)
}

// trace prints a passed cycle's steps (-trace).
func (r *stressRun) trace(c *cycle) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.o.Out, "ok loop %d cycle %d (%s, subject %s, placed by %s) in %s\n", c.l.n, c.n, c.kind, c.l.subject.ext,
		c.origin, time.Since(c.start).Round(time.Millisecond))
	for _, s := range c.steps {
		fmt.Fprintf(r.o.Out, "  %s\n", s)
	}
}

func (r *stressRun) printf(format string, args ...any) {
	r.outMu.Lock()
	fmt.Fprintf(r.o.Out, format, args...)
	r.outMu.Unlock()
}

// stress runs the loops and checks the PBX afterwards. The result is nil
// only when the run could not start; err is set for what stopped the run
// itself (not for failed cycles, which the result counts).
func stress(ctx context.Context, o stressOptions) (*stressResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	plan, _ := planExts(o.Exts, o.Mix, o.Phones)
	var p stressPBX
	if o.PBX == "ari" {
		p = &ariStress{url: o.ARIURL, user: o.ARIUser, pass: o.ARIPass, app: o.ARIApp, context: o.ARIContext,
			outside: o.ARIOutside, http: &http.Client{Timeout: pbxTimeout}}
	} else {
		p = &eslStress{addr: o.ESLAddr, pass: o.ESLPass, context: o.ESLContext}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	mapped := slices.Concat(plan.Subjects, plan.Targets)
	all := slices.Concat(mapped, plan.Callers)

	chans, bridges, _, err := p.Left(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("asking the PBX what it has: %w", err)
	}
	if len(chans)+len(bridges) > 0 {
		if !o.ClearFirst {
			return nil, fmt.Errorf("the PBX already has %d channels and %d bridges of extensions %v (another test running? -clear-first hangs them up): %s",
				len(chans), len(bridges), all, strings.Join(slices.Concat(chans, bridges), "; "))
		}
		if _, err := p.Clear(ctx, all, true); err != nil {
			return nil, err
		}
	}

	r := &stressRun{o: o, p: p, urls: newURLLogs(), res: &stressResult{PBX: o.PBX, Mix: o.Mix, Phones: o.Phones,
		Cycles: o.Cycles, Exts: all, Requests: map[string]latencies{}, RequestFails: map[string]int{},
		RTP: "not checked: internal/testphone negotiates PCMU/PCMA but neither sends nor receives RTP"}}
	sk, err := newSink()
	if err != nil {
		return nil, err
	}
	defer sk.close()
	sk.setHook(r.urls.add)

	phoneLife, stopTaking := context.WithCancel(context.Background())
	defer stopTaking()
	r.phones, err = startPhones(ctx, all, o.SIP, o.SIPPass, o.Log)
	if err != nil {
		return nil, err
	}
	defer closePhones(r.phones)
	for _, sp := range r.phones {
		go sp.take(phoneLife)
	}

	dir, err := os.MkdirTemp("", "csta-stress-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r.br, err = startStressBridge(ctx, dir, p, mapped, sk.url, o.Log)
	if err != nil {
		return nil, err
	}
	defer r.br.stop()
	if err := r.waitSetup(ctx, mapped); err != nil {
		return nil, err
	}
	r.printf("# %s: %d loops × %d cycles, mix %s; subjects %v, targets %v, callers %v (not in the bridge)\n",
		p.Name(), o.Phones, o.Cycles, o.Mix, plan.Subjects, plan.Targets, plan.Callers)

	start := time.Now()
	var wg sync.WaitGroup
	for i := range o.Phones {
		l := &stressLoop{run: r, n: i, subject: r.phones[plan.Subjects[i]], caller: r.phones[plan.Callers[i%len(plan.Callers)]],
			cursor: map[string]int{}}
		if plan.Targets != nil {
			l.target = r.phones[plan.Targets[i]]
		}
		for _, sp := range l.own() {
			l.cursor[sp.ext] = r.urls.count(sp.ext)
		}
		wg.Go(func() {
			for n := range o.Cycles {
				if ctx.Err() != nil {
					r.mu.Lock()
					r.res.NotRun += o.Cycles - n
					r.mu.Unlock()
					return
				}
				err := l.runCycle(ctx, n)
				r.mu.Lock()
				if err == nil {
					r.res.OK++
				} else {
					r.res.Failed++
				}
				r.mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.res.Elapsed = time.Since(start)

	// What is left: the PBX takes a moment to tear down the last calls,
	// and neither ARI nor the event socket says "nothing left", so this
	// looks again until it is empty or 10 s passed.
	after, cancelAfter := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelAfter()
	grace := time.Now().Add(10 * time.Second)
	for {
		r.res.LeftChannels, r.res.LeftBridges, r.res.LeftOther, err = p.Left(after, all)
		r.res.LeftErr = ""
		if err != nil {
			r.res.LeftErr = err.Error()
		}
		metrics, merr := r.br.metrics(after)
		if merr != nil {
			r.res.LeftErr = firstSet(r.res.LeftErr, "bridge /metrics: "+merr.Error())
		}
		r.res.BridgeCalls = metric(metrics, "csta_bridge_calls")
		r.res.BridgeQueued = metric(metrics, "csta_bridge_action_url_queue_length")
		done := len(r.res.LeftChannels)+len(r.res.LeftBridges) == 0 && r.res.BridgeCalls == 0 && r.res.BridgeQueued == 0
		if done || time.Now().After(grace) {
			break
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-after.Done():
		}
	}
	if len(r.res.LeftChannels)+len(r.res.LeftBridges) > 0 {
		if n, err := p.Clear(after, all, true); err != nil {
			r.printf("# clearing what was left: %v\n", err)
		} else {
			r.printf("# hung up the %d channels left on the PBX\n", n)
		}
	}
	return r.res, nil
}

// waitSetup waits for every mapped extension's action_setup_url: then the
// bridge has the extensions and sends their URLs.
func (r *stressRun) waitSetup(ctx context.Context, exts []string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		_, signal := r.urls.from("", 0)
		var missing []string
		for _, e := range exts {
			hits, _ := r.urls.from(e, 0)
			if !slices.ContainsFunc(hits, func(h urlHit) bool { return h.Event == "setup" }) {
				missing = append(missing, e)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return fmt.Errorf("no action_setup_url from %v within 20s", missing)
		}
	}
}
