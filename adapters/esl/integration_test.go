package esl

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// The integration test drives a real FreeSWITCH with SIP test phones. See
// README.md ("Integration test") for the set-up; without
// CSTA_TEST_ESL_ADDR it is skipped.

// itWait bounds each wait of the integration test: a real PBX on a shared
// machine is slower than the fake.
const itWait = 15 * time.Second

type itEnv struct {
	t      *testing.T
	a      *Adapter
	log    *pbxtest.EventLog
	exts   []pbx.Extension
	phones map[string]*testphone.Phone
}

// itLogger logs to the test log until the test ends: eslgo's reader
// goroutines may still log (a late "+OK bye") after Run returned.
func itLogger(t *testing.T) *slog.Logger {
	tw := &testWriter{t: t, ok: true}
	t.Cleanup(func() {
		tw.mu.Lock()
		tw.ok = false
		tw.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func integrationEnv(t *testing.T) *itEnv {
	t.Helper()
	addr, pass := os.Getenv("CSTA_TEST_ESL_ADDR"), os.Getenv("CSTA_TEST_ESL_PASS")
	if addr == "" {
		t.Skip("CSTA_TEST_ESL_ADDR not set: no FreeSWITCH to test against")
	}
	if pass == "" {
		t.Fatal("CSTA_TEST_ESL_PASS must hold the event socket password")
	}
	sipAddr := os.Getenv("CSTA_TEST_ESL_SIP")
	if sipAddr == "" {
		t.Fatal("CSTA_TEST_ESL_SIP must name the SIP profile (UDP host:port) the test phones register with")
	}
	sipHost, _, err := net.SplitHostPort(sipAddr)
	if err != nil {
		t.Fatalf("CSTA_TEST_ESL_SIP=%q: %v", sipAddr, err)
	}
	domain := os.Getenv("CSTA_TEST_ESL_DOMAIN")
	if domain == "" {
		domain = sipHost
	}
	names := []string{"1001", "1002", "1003"}
	if v := os.Getenv("CSTA_TEST_ESL_EXTENSIONS"); v != "" {
		names = strings.Split(v, ",")
	}
	if len(names) != 3 {
		t.Fatalf("CSTA_TEST_ESL_EXTENSIONS=%q: want three extensions, e.g. 1001,1002,1003", os.Getenv("CSTA_TEST_ESL_EXTENSIONS"))
	}
	ctxName := os.Getenv("CSTA_TEST_ESL_CONTEXT")
	if ctxName == "" {
		ctxName = "default"
	}
	log := itLogger(t) // first: its Cleanup, run last, silences it
	env := &itEnv{t: t, phones: map[string]*testphone.Phone{}}
	for i, n := range names {
		n = strings.TrimSpace(n)
		names[i] = n
		env.exts = append(env.exts, pbx.Extension{Name: n, Endpoint: "user/" + n, Domain: domain, AutoAnswerHeaders: []string{
			"Call-Info: <sip:" + domain + ">;answer-after=0", "Alert-Info: <http://pbx>;info=alert-autoanswer;delay=0"}})
	}
	a, err := New(Options{
		Address: addr, Password: pass, Context: ctxName, Logger: log,
		AnswerTimeout: 4 * time.Second, // the "phone ignores auto-answer" scenario waits for it
	})
	if err != nil {
		t.Fatal(err)
	}
	a.SetExtensions(env.exts)
	env.a = a
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan pbx.Event, 1000)
	done := make(chan error, 1)
	env.log = pbxtest.NewEventLog(t, events, itWait)
	go func() { done <- a.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(itWait):
			t.Error("Run did not return after cancel")
		}
	})
	env.log.Wait(t, "link up", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && ev.Up })
	env.log.Wait(t, "sync", func(ev pbx.Event) bool { return ev.Kind == pbx.EventSync })

	// The phones register after the adapter is up, so their registration
	// must arrive as sofia::register events.
	for _, n := range names {
		sctx, scancel := context.WithTimeout(context.Background(), itWait)
		p, err := testphone.Start(sctx, testphone.Options{
			User: n, Password: os.Getenv("CSTA_TEST_ESL_SIP_PASS"), Registrar: sipAddr,
			Logger: log.With("side", "phone"),
		})
		scancel()
		if err != nil {
			t.Fatalf("test phone %s: %v", n, err)
		}
		t.Cleanup(func() { _ = p.Close() })
		env.phones[n] = p
	}
	for _, n := range names {
		env.log.Wait(t, "device "+n+" registered", func(ev pbx.Event) bool {
			return ev.Kind == pbx.EventDevice && ev.Call.Ext == n && ev.Registered
		})
	}
	return env
}

func (e *itEnv) on(ref pbx.CallRef, k pbx.EventKind) pbx.Event {
	e.t.Helper()
	return e.log.On(e.t, ref, k)
}

func (e *itEnv) offeredFor(ext string, c *testphone.Call) pbx.Event {
	e.t.Helper()
	return e.log.OfferedFor(e.t, ext, c)
}

func itCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*itWait)
	t.Cleanup(cancel)
	return ctx
}

func (e *itEnv) dialAndOffer(ctx context.Context, from, to string) (out, in *testphone.Call, orig, offered pbx.Event) {
	e.t.Helper()
	return e.log.DialAndOffer(e.t, ctx, e.phones, from, to)
}

// liveChannels is FreeSWITCH's channel count.
func (e *itEnv) liveChannels(ctx context.Context) (string, error) {
	s, err := e.a.session()
	if err != nil {
		return "", err
	}
	body, err := s.api(ctx, "show", "channels count")
	return strings.TrimSpace(body), err
}

// secondAdapterSync starts another adapter on the same FreeSWITCH, as a
// restarted bridge would, once `show channels` lists the given channels,
// and returns the connections of its first sync.
func (e *itEnv) secondAdapterSync(t *testing.T, ctx context.Context, uuids ...string) map[pbx.CallRef]pbx.CallInfo {
	t.Helper()
	// `show channels` reads FreeSWITCH's core database, which its SQL
	// thread fills a little after the channel exists.
	for listed := false; !listed; {
		s, err := e.a.session()
		if err != nil {
			t.Fatal(err)
		}
		body, err := s.api(ctx, "show", "channels as json")
		if err != nil {
			t.Fatal(err)
		}
		listed = true
		for _, u := range uuids {
			listed = listed && strings.Contains(body, u)
		}
		if listed {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("show channels does not list %v: %s", uuids, body)
		case <-time.After(100 * time.Millisecond):
		}
	}
	b, err := New(Options{Address: os.Getenv("CSTA_TEST_ESL_ADDR"), Password: os.Getenv("CSTA_TEST_ESL_PASS"),
		Context: e.a.opts.Context, Logger: itLogger(t).With("adapter", "second")})
	if err != nil {
		t.Fatal(err)
	}
	b.SetExtensions(e.exts)
	bctx, cancel := context.WithCancel(ctx)
	events := make(chan pbx.Event, 100)
	done := make(chan error, 1)
	go func() { done <- b.Run(bctx, events) }()
	defer func() {
		cancel()
		<-done
	}()
	var sync pbx.Event
	for sync.Kind != pbx.EventSync {
		select {
		case sync = <-events:
		case <-ctx.Done():
			t.Fatal("no sync from the second adapter")
		}
	}
	found := map[pbx.CallRef]pbx.CallInfo{}
	for _, c := range sync.Calls {
		found[c.Call] = c
	}
	return found
}

// settle hangs up whatever a scenario left behind and waits until
// FreeSWITCH has no channels, so the next scenario starts clean.
func (e *itEnv) settle(t *testing.T) {
	t.Logf("events (* = checked by the scenario):\n%s", e.log.Dump())
	ctx, cancel := context.WithTimeout(context.Background(), itWait)
	defer cancel()
	for _, p := range e.phones {
		for _, c := range p.Calls() {
			_ = c.Hangup(ctx)
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := e.liveChannels(ctx)
		if err == nil && n == "0 total." {
			break
		}
		select {
		case <-ctx.Done():
			t.Errorf("FreeSWITCH still has channels after the scenario: %q (%v)", n, err)
			return
		case <-tick.C:
		}
	}
	// Events of this scenario that arrive late must not satisfy the next
	// one's waits.
	e.log.TakeAll()
}

func (e *itEnv) run(name string, fn func(t *testing.T)) {
	parent := e.t
	e.t.Run(name, func(t *testing.T) {
		e.t = t
		defer func() { e.t = parent }()
		defer e.settle(t)
		fn(t)
	})
}

// TestIntegration runs against a real FreeSWITCH (see README.md). The
// first extension must have csta_allow_events=talk,hold in the directory
// (the test phone honours talk/hold NOTIFYs); the others must not, so that
// both ways of answering and holding are exercised.
func TestIntegration(t *testing.T) {
	e := integrationEnv(t)
	a1, a2, a3 := e.exts[0].Name, e.exts[1].Name, e.exts[2].Name

	e.run("routed call, answered on the phone, hung up by the caller", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		e.on(offered.Call, pbx.EventConnected)
		e.on(orig.Call, pbx.EventConnected)
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		if c := e.on(offered.Call, pbx.EventCleared); c.Cause != pbx.CauseNormal {
			t.Errorf("callee cleared with %s, want normal", c.Cause)
		}
		if c := e.on(orig.Call, pbx.EventCleared); c.Cause != pbx.CauseNormal {
			t.Errorf("caller cleared with %s, want normal", c.Cause)
		}
	})

	e.run("caller gives up: missed call", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		if c := e.on(offered.Call, pbx.EventCleared); c.Cause != pbx.CauseCancelled {
			t.Errorf("callee cleared with %s, want cancelled", c.Cause)
		}
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("custom INVITE headers reach the offer ($sip_header)", func(t *testing.T) {
		ctx := itCtx(t)
		// 77<ext> routes to <ext> with sip_h_X-Customer and alert_info
		// exported to the called channel (see README.md); X-Caller-Ref is
		// sent by the calling phone and copied to the called channel by
		// mod_sofia (sip_copy_custom_headers).
		out, err := e.phones[a3].Dial(ctx, "77"+a2, "X-Caller-Ref: ref 7")
		if err != nil {
			t.Fatal(err)
		}
		in, err := e.phones[a2].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"X-Customer":   "42",
			"Alert-Info":   "<http://127.0.0.1/ring.wav>;info=alert-external",
			"X-Caller-Ref": "ref 7",
		}
		for name, v := range want {
			if got := in.Header(name); got != v {
				t.Errorf("the phone's INVITE has %s %q, want %q", name, got, v)
			}
		}
		offered := e.offeredFor(a2, in)
		for name, v := range want {
			if got := offered.Headers[name]; got != v {
				t.Errorf("offered with %s %q, want %q (all: %v)", name, got, v, offered.Headers)
			}
		}
		for _, name := range []string{"Via", "From", "To", "Call-Id", "Contact", "Cseq"} {
			if v, ok := offered.Headers[name]; ok {
				t.Errorf("offered with dialog header %s %q", name, v)
			}
		}
		orig := e.log.Wait(t, "originated by "+a3, func(ev pbx.Event) bool {
			return ev.Kind == pbx.EventOriginated && ev.Call.Ext == a3 && ev.SIPCallID == out.CallID()
		})
		if orig.Headers != nil {
			t.Errorf("the calling phone's connection has headers %v: it received no INVITE", orig.Headers)
		}
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		e.on(offered.Call, pbx.EventCleared)
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("ClearConnection rejects a ringing call", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
		if err := e.a.ClearConnection(ctx, offered.Call); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		pbxtest.PhoneState(t, ctx, out, testphone.StateEnded)
		if c := e.on(offered.Call, pbx.EventCleared); c.Cause != pbx.CauseRejected {
			t.Errorf("callee cleared with %s, want rejected", c.Cause)
		}
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("AnswerCall, HoldCall, RetrieveCall by talk/hold NOTIFY", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
		ref := offered.Call
		if err := e.a.Answer(ctx, ref); err != nil {
			t.Fatalf("Answer: %v", err)
		}
		// The phone itself answered the ringing call.
		pbxtest.PhoneState(t, ctx, in, testphone.StateConnected)
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		e.on(ref, pbx.EventConnected)
		e.on(orig.Call, pbx.EventConnected)
		if err := e.a.Hold(ctx, ref); err != nil {
			t.Fatalf("Hold: %v", err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateHeld)
		e.on(ref, pbx.EventHeld)
		if err := e.a.Retrieve(ctx, ref); err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateConnected)
		e.on(ref, pbx.EventRetrieved)
		if err := e.a.ClearConnection(ctx, ref); err != nil {
			t.Fatalf("ClearConnection: %v", err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		pbxtest.PhoneState(t, ctx, out, testphone.StateEnded)
		e.on(ref, pbx.EventCleared)
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("AnswerCall by auto-answer swap, HoldCall, RetrieveCall on the PBX", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a3, a2)
		ref := offered.Call
		if err := e.a.Answer(ctx, ref); err != nil {
			t.Fatalf("Answer: %v", err)
		}
		// The ringing call is replaced by an auto-answered one.
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		repl, err := e.phones[a2].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !repl.AutoAnswerRequested() {
			t.Errorf("replacement call without auto-answer headers: Call-Info %q", repl.Header("Call-Info"))
		}
		pbxtest.PhoneState(t, ctx, repl, testphone.StateConnected)
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		e.on(ref, pbx.EventConnected)
		callerRef := orig.Call
		e.on(callerRef, pbx.EventConnected)
		e.log.None(e.t, "clear of the answered call", func(ev pbx.Event) bool { return ev.Kind == pbx.EventCleared && ev.Call == ref })

		if err := e.a.Hold(ctx, ref); err != nil {
			t.Fatalf("Hold: %v", err)
		}
		if h := e.on(ref, pbx.EventHeld); h.ByPhone {
			t.Error("bridge's hold reported as by phone")
		}
		if err := e.a.Retrieve(ctx, ref); err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		e.on(ref, pbx.EventRetrieved)
		e.log.None(e.t, "caller shown as its own far party", func(ev pbx.Event) bool {
			return ev.Call == callerRef && (ev.Kind == pbx.EventConnected || ev.Kind == pbx.EventPartyChanged) && ev.Remote.Number == a3
		})
		// The phone hangs up.
		if err := repl.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateEnded)
		if c := e.on(ref, pbx.EventCleared); c.Cause != pbx.CauseNormal {
			t.Errorf("answered call cleared with %s, want normal", c.Cause)
		}
		e.on(callerRef, pbx.EventCleared)
	})

	e.run("AnswerCall by auto-answer swap survives a reconnect", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a3, a2)
		ref := offered.Call
		if err := e.a.Answer(ctx, ref); err != nil {
			t.Fatalf("Answer: %v", err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		repl, err := e.phones[a2].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, repl, testphone.StateConnected)
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		e.on(ref, pbx.EventConnected)
		e.on(orig.Call, pbx.EventConnected)
		// What the resync goes by when a swap was under way: the dump of the
		// auto-answer channel names the caller's channel once it is bridged.
		l, err := e.a.state.lookup(ref)
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.a.session()
		if err != nil {
			t.Fatal(err)
		}
		body, err := s.api(ctx, "uuid_dump", l.uuid+" json")
		if err != nil {
			t.Fatal(err)
		}
		if d, err := parseDump(body); err != nil || d.Answer != "answered" || d.Other != orig.Call.ID {
			t.Errorf("uuid_dump of the auto-answer channel: answer %q, other %q (%v); want answered, %s", d.Answer, d.Other, err, orig.Call.ID)
		}

		s.fail(errors.New("integration test: connection dropped"))
		e.log.Wait(t, "link down", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && !ev.Up })
		e.log.Wait(t, "link up", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && ev.Up })
		sync := e.log.Wait(t, "sync", func(ev pbx.Event) bool { return ev.Kind == pbx.EventSync })
		var mine []pbx.CallInfo
		for _, c := range sync.Calls {
			if c.Call.Ext == a2 {
				mine = append(mine, c)
			}
		}
		if len(mine) != 1 || mine[0].Call != ref || mine[0].State != pbx.StateConnected || mine[0].Remote.Number != a3 {
			t.Errorf("%s's connections in the sync: %+v, want %s connected to %s", a2, mine, ref, a3)
		}
		if err := e.a.Hold(ctx, ref); err != nil {
			t.Fatalf("Hold after the reconnect: %v", err)
		}
		e.on(ref, pbx.EventHeld)
		if err := e.a.Retrieve(ctx, ref); err != nil {
			t.Fatalf("Retrieve after the reconnect: %v", err)
		}
		e.on(ref, pbx.EventRetrieved)
		if err := repl.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateEnded)
		if c := e.on(ref, pbx.EventCleared); c.Cause != pbx.CauseNormal {
			t.Errorf("answered call cleared with %s, want normal", c.Cause)
		}
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("a second adapter finds the live calls (show channels, uuid_dump)", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a3, a2)
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		e.on(offered.Call, pbx.EventConnected)
		e.on(orig.Call, pbx.EventConnected)
		found := e.secondAdapterSync(t, ctx, offered.Call.ID, orig.Call.ID)
		if c, ok := found[offered.Call]; !ok || c.State != pbx.StateConnected || c.SIPCallID != in.CallID() || c.Remote.Number != a3 || c.Direction != pbx.Incoming {
			t.Errorf("callee's connection in the sync: %+v (found %v), want connected, incoming, Call-ID %s, remote %s", c, ok, in.CallID(), a3)
		}
		if c, ok := found[orig.Call]; !ok || c.State != pbx.StateConnected || c.SIPCallID != out.CallID() || c.Remote.Number != a2 || c.Direction != pbx.Outgoing {
			t.Errorf("caller's connection in the sync: %+v (found %v), want connected, outgoing, Call-ID %s, remote %s", c, ok, out.CallID(), a2)
		}
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		e.on(offered.Call, pbx.EventCleared)
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("phone holds and resumes", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a3, a2)
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		e.on(offered.Call, pbx.EventConnected)
		if err := in.Hold(ctx); err != nil {
			t.Fatal(err)
		}
		if h := e.on(offered.Call, pbx.EventHeld); !h.ByPhone {
			t.Error("phone's hold not reported as by phone")
		}
		if err := in.Unhold(ctx); err != nil {
			t.Fatal(err)
		}
		e.on(offered.Call, pbx.EventRetrieved)
		if err := in.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateEnded)
		e.on(offered.Call, pbx.EventCleared)
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("MakeCall to another phone, cleared by the far phone", func(t *testing.T) {
		ctx := itCtx(t)
		ref := pbx.CallRef{Ext: a1, ID: "itest-mc-" + newUUID()}
		if err := e.a.MakeCall(ctx, pbx.MakeCallRequest{Call: ref, CSTAID: 4711, Destination: a2, AutoAnswer: true}); err != nil {
			t.Fatalf("MakeCall: %v", err)
		}
		own, err := e.phones[a1].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !own.AutoAnswerRequested() {
			t.Errorf("MakeCall's call to the device without auto-answer: Call-Info %q", own.Header("Call-Info"))
		}
		pbxtest.PhoneState(t, ctx, own, testphone.StateConnected)
		o := e.on(ref, pbx.EventOriginated)
		if o.Remote.Number != a2 || o.CSTAID != 4711 {
			t.Errorf("originated: remote %+v csta %d", o.Remote, o.CSTAID)
		}
		// $sip_header() of the device: the auto-answer headers its INVITE had.
		if v := o.Headers["Alert-Info"]; v == "" || v != own.Header("Alert-Info") {
			t.Errorf("originated with Alert-Info %q, the device's INVITE had %q", v, own.Header("Alert-Info"))
		}
		if o.Headers["Call-Info"] == "" {
			t.Errorf("originated without the Call-Info the device's INVITE had: %v", o.Headers)
		}
		far, err := e.phones[a2].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		offered := e.offeredFor(a2, far)
		if offered.Remote.Number != a1 {
			t.Errorf("destination sees caller %+v, want %s", offered.Remote, a1)
		}
		if far.RemoteUser() != a1 {
			t.Errorf("destination phone sees caller %q, want %s", far.RemoteUser(), a1)
		}
		e.log.None(e.t, "early connected", func(ev pbx.Event) bool { return ev.Kind == pbx.EventConnected && ev.Call == ref })
		if err := far.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		e.on(ref, pbx.EventConnected)
		e.on(offered.Call, pbx.EventConnected)
		// A restarted bridge finds it as the call the phone placed, with
		// its csta_id (the device's channel is one FreeSWITCH called).
		dev, err := e.a.state.lookup(ref)
		if err != nil {
			t.Fatal(err)
		}
		found := e.secondAdapterSync(t, ctx, dev.uuid, offered.Call.ID)
		if c, ok := found[pbx.CallRef{Ext: a1, ID: dev.uuid}]; !ok || c.State != pbx.StateConnected ||
			c.Direction != pbx.Outgoing || c.CSTAID != 4711 || c.Remote.Number != a2 {
			t.Errorf("MakeCall's connection in a second adapter's sync: %+v (found %v), want connected, outgoing, csta_id 4711, remote %s", c, ok, a2)
		}
		if err := far.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, own, testphone.StateEnded)
		e.on(ref, pbx.EventCleared)
		e.on(offered.Call, pbx.EventCleared)
	})

	e.run("MakeCall the device refuses at once: no call at the extension", func(t *testing.T) {
		ctx := itCtx(t)
		ref := pbx.CallRef{Ext: a1, ID: "itest-mc-busy-" + newUUID()}
		errc := make(chan error, 1)
		go func() {
			errc <- e.a.MakeCall(ctx, pbx.MakeCallRequest{Call: ref, CSTAID: 4712, Destination: a2})
		}()
		own, err := e.phones[a1].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := own.Reject(ctx, 486); err != nil {
			t.Fatal(err)
		}
		// The originate's -ERR USER_BUSY usually overtakes the channel's
		// events (held in the reorder window); if not, MakeCall has
		// returned on the channel's creation and its connection is cleared.
		mcErr := <-errc
		if mcErr != nil && !errors.Is(mcErr, pbx.ErrDeviceUnreachable) {
			t.Errorf("MakeCall: %v, want ErrDeviceUnreachable or nil", mcErr)
		}
		t.Logf("MakeCall answered %v", mcErr)
		// Everything FreeSWITCH reported about the refused call is in
		// once a later call is offered.
		out, _, orig, offered := e.dialAndOffer(ctx, a3, a2)
		e.log.None(t, "event for the extension that refused the MakeCall", func(ev pbx.Event) bool {
			return ev.Call.Ext == a1 && ev.Kind != pbx.EventDevice && !(ev.Call == ref && ev.Kind == pbx.EventCleared)
		})
		if mcErr == nil {
			e.on(ref, pbx.EventCleared)
		}
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		e.on(offered.Call, pbx.EventCleared)
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("SingleStepTransfer", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		e.on(offered.Call, pbx.EventConnected)
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		if err := e.a.SingleStepTransfer(ctx, offered.Call, a3); err != nil {
			t.Fatalf("SingleStepTransfer: %v", err)
		}
		e.on(offered.Call, pbx.EventTransferred)
		if c := e.on(offered.Call, pbx.EventCleared); c.Cause != pbx.CauseTransferred {
			t.Errorf("transferring leg cleared with %s, want transferred", c.Cause)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		target, err := e.phones[a3].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		off3 := e.offeredFor(a3, target)
		if off3.Remote.Number != a2 {
			t.Errorf("transfer target sees %+v, want %s", off3.Remote, a2)
		}
		if err := target.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		e.on(off3.Call, pbx.EventConnected)
		if out.State() != testphone.StateConnected {
			t.Fatalf("transferred caller's call is %s", out.State())
		}
		e.log.None(e.t, "clear of the transferred caller", func(ev pbx.Event) bool { return ev.Kind == pbx.EventCleared && ev.Call == orig.Call })
		if err := target.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateEnded)
		e.on(off3.Call, pbx.EventCleared)
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("TransferCall", func(t *testing.T) {
		ctx := itCtx(t)
		// First call: a2 calls a1, answered, held by the bridge.
		out2, in1, _, offered := e.dialAndOffer(ctx, a2, a1)
		if err := in1.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		held := offered.Call
		e.on(held, pbx.EventConnected)
		if err := e.a.Hold(ctx, held); err != nil {
			t.Fatalf("Hold: %v", err)
		}
		e.on(held, pbx.EventHeld)
		// Consultation: a1 calls a3 through MakeCall.
		active := pbx.CallRef{Ext: a1, ID: "itest-xfer-" + newUUID()}
		if err := e.a.MakeCall(ctx, pbx.MakeCallRequest{Call: active, Destination: a3, AutoAnswer: true}); err != nil {
			t.Fatalf("MakeCall: %v", err)
		}
		own, err := e.phones[a1].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		in3, err := e.phones[a3].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := in3.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		e.on(active, pbx.EventConnected)
		off3 := e.offeredFor(a3, in3)
		e.on(off3.Call, pbx.EventConnected)

		if err := e.a.Transfer(ctx, held, active); err != nil {
			t.Fatalf("Transfer: %v", err)
		}
		for _, r := range []pbx.CallRef{held, active} {
			e.on(r, pbx.EventTransferred)
			if c := e.on(r, pbx.EventCleared); c.Cause != pbx.CauseTransferred {
				t.Errorf("%s cleared with %s, want transferred", r, c.Cause)
			}
		}
		pbxtest.PhoneState(t, ctx, in1, testphone.StateEnded)
		pbxtest.PhoneState(t, ctx, own, testphone.StateEnded)
		if out2.State() != testphone.StateConnected || in3.State() != testphone.StateConnected {
			t.Fatalf("after transfer: %s's call %s, %s's call %s; want both connected", a2, out2.State(), a3, in3.State())
		}
		// The two remaining parties are one call now: one hangs up, the
		// other is cleared.
		if err := out2.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, in3, testphone.StateEnded)
		e.on(off3.Call, pbx.EventCleared)
	})
}
