package ari

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// The integration test drives a real Asterisk with SIP test phones. See
// README.md ("Integration test against a real Asterisk") for the set-up;
// without CSTA_TEST_ARI_URL it is skipped.

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

func integrationEnv(t *testing.T) *itEnv {
	t.Helper()
	url := os.Getenv("CSTA_TEST_ARI_URL")
	if url == "" {
		t.Skip("CSTA_TEST_ARI_URL not set: no Asterisk to test against")
	}
	sipAddr := os.Getenv("CSTA_TEST_ARI_SIP")
	if sipAddr == "" {
		t.Fatal("CSTA_TEST_ARI_SIP must name Asterisk's PJSIP UDP transport (host:port) the test phones register with")
	}
	if _, _, err := net.SplitHostPort(sipAddr); err != nil {
		t.Fatalf("CSTA_TEST_ARI_SIP=%q: %v", sipAddr, err)
	}
	names := []string{"1001", "1002", "1003"}
	if v := os.Getenv("CSTA_TEST_ARI_EXTENSIONS"); v != "" {
		names = strings.Split(v, ",")
	}
	if len(names) != 3 {
		t.Fatalf("CSTA_TEST_ARI_EXTENSIONS=%q: want three extensions, e.g. 1001,1002,1003", os.Getenv("CSTA_TEST_ARI_EXTENSIONS"))
	}
	ctxName := os.Getenv("CSTA_TEST_ARI_CONTEXT")
	if ctxName == "" {
		ctxName = "from-internal"
	}
	app := os.Getenv("CSTA_TEST_ARI_APP")
	if app == "" {
		app = "csta-bridge"
	}
	env := &itEnv{t: t, phones: map[string]*testphone.Phone{}}
	for _, n := range names {
		n = strings.TrimSpace(n)
		env.exts = append(env.exts, pbx.Extension{Name: n, Endpoint: "PJSIP/" + n, AutoAnswerHeaders: []string{
			"Call-Info: <sip:pbx>;answer-after=0", "Alert-Info: <http://pbx>;info=alert-autoanswer;delay=0"}})
		ctx, cancel := context.WithTimeout(context.Background(), itWait)
		p, err := testphone.Start(ctx, testphone.Options{
			User: n, Password: os.Getenv("CSTA_TEST_ARI_SIP_PASS"), Registrar: sipAddr, Logger: testLogger(t).With("side", "phone"),
		})
		cancel()
		if err != nil {
			t.Fatalf("test phone %s: %v", n, err)
		}
		t.Cleanup(func() { _ = p.Close() })
		env.phones[n] = p
	}
	a, err := New(Options{
		URL: url, Username: os.Getenv("CSTA_TEST_ARI_USER"), Password: os.Getenv("CSTA_TEST_ARI_PASS"),
		Application: app, Context: ctxName, Logger: testLogger(t),
		AnswerTimeout: 2 * time.Second, // the "phone ignores auto-answer" scenario waits for it
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
	env.log.Wait(t, "sync", func(ev pbx.Event) bool { return ev.Kind == pbx.EventSync })
	env.log.Wait(t, "link up", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && ev.Up })
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*itWait)
	t.Cleanup(cancel)
	return ctx
}

func (e *itEnv) dialAndOffer(ctx context.Context, from, to string) (out, in *testphone.Call, orig, offered pbx.Event) {
	e.t.Helper()
	return e.log.DialAndOffer(e.t, ctx, e.phones, from, to)
}

// settle hangs up whatever a scenario left behind and waits until
// Asterisk has no channels, so the next scenario starts clean.
func (e *itEnv) settle(t *testing.T) {
	t.Logf("events (* = checked by the scenario):\n%s", e.log.Dump())
	ctx, cancel := context.WithTimeout(context.Background(), itWait)
	defer cancel()
	for _, p := range e.phones {
		for _, c := range p.Calls() {
			_ = c.Hangup(ctx)
		}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var keys []*ari.Key
		err := e.a.rest(ctx, func(c ari.Client) (err error) { keys, err = c.Channel().List(nil); return })
		if err == nil && len(keys) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("Asterisk still has channels after the scenario: %v (%v)", keys, err)
			return
		case <-tick.C:
		}
	}
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

func TestIntegrationRealAsterisk(t *testing.T) {
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
		callerRef := orig.Call
		e.on(callerRef, pbx.EventConnected)
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		if c := e.on(offered.Call, pbx.EventCleared); c.Cause != pbx.CauseNormal {
			t.Errorf("callee cleared with %s, want normal", c.Cause)
		}
		if c := e.on(callerRef, pbx.EventCleared); c.Cause != pbx.CauseNormal {
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

	e.run("ClearConnection rejects a ringing call", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
		if err := e.a.ClearConnection(ctx, offered.Call); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		pbxtest.PhoneState(t, ctx, out, testphone.StateEnded)
		if out.Status() != 486 {
			t.Errorf("caller's call ended with status %d, want 486 busy", out.Status())
		}
		if c := e.on(offered.Call, pbx.EventCleared); c.Cause != pbx.CauseRejected {
			t.Errorf("callee cleared with %s, want rejected", c.Cause)
		}
		if c := e.on(orig.Call, pbx.EventCleared); c.Cause != pbx.CauseBusy {
			t.Errorf("caller cleared with %s, want busy", c.Cause)
		}
	})

	e.run("AnswerCall, HoldCall, RetrieveCall, ClearConnection", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
		ref := offered.Call
		if err := e.a.Answer(ctx, ref); err != nil {
			t.Fatalf("Answer: %v", err)
		}
		// The ringing call is replaced by an auto-answered one.
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		repl, err := e.phones[a1].Incoming(ctx)
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
		e.on(ref, pbx.EventHeld)
		if err := e.a.Retrieve(ctx, ref); err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		e.on(ref, pbx.EventRetrieved)
		// The replacement call carried the caller's identity to the phone;
		// the caller must still see the extension, not itself.
		e.log.None(e.t, "caller shown as its own far party", func(ev pbx.Event) bool {
			return ev.Call == callerRef && (ev.Kind == pbx.EventConnected || ev.Kind == pbx.EventPartyChanged) && ev.Remote.Number == a2
		})

		if err := e.a.ClearConnection(ctx, ref); err != nil {
			t.Fatalf("ClearConnection: %v", err)
		}
		pbxtest.PhoneState(t, ctx, repl, testphone.StateEnded)
		pbxtest.PhoneState(t, ctx, out, testphone.StateEnded)
		e.on(ref, pbx.EventCleared)
		e.on(callerRef, pbx.EventCleared)
	})

	// HoldCall's, RetrieveCall's and TransferCall's undos, after a request
	// Asterisk did not answer, repeat or reverse it without knowing whether
	// it was carried out. They rely on these answers when there is nothing
	// to undo.
	e.run("requests the hold and retrieve undos rely on", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		ref := offered.Call
		e.on(ref, pbx.EventConnected)
		e.on(orig.Call, pbx.EventConnected)
		e.a.mu.Lock()
		l := e.a.legs[ref]
		var far, bridge string
		if l != nil && l.call != nil {
			far, _ = e.a.farOf(l)
			bridge = l.call.bridge
		}
		e.a.mu.Unlock()
		if far == "" || bridge == "" {
			t.Fatalf("connection %s: far party %q, bridge %q; want an owned, bridged call", ref, far, bridge)
		}
		req := func(what string, fn func(ari.Client) error) int {
			t.Helper()
			err := e.a.rest(ctx, fn)
			if err != nil && httpStatus(err) == 0 {
				t.Fatalf("%s: %v", what, err)
			}
			t.Logf("%s: %d (%v)", what, httpStatus(err), err)
			return httpStatus(err)
		}
		inBridge := func() bool {
			t.Helper()
			var d *ari.BridgeData
			if err := e.a.rest(ctx, func(x ari.Client) (err error) { d, err = x.Bridge().Data(bridgeKey(bridge)); return }); err != nil {
				t.Fatalf("bridge %s: %v", bridge, err)
			}
			return slices.Contains(d.ChannelIDs, far)
		}
		addFar := func(x ari.Client) error { return x.Bridge().AddChannel(bridgeKey(bridge), far) }
		removeFar := func(x ari.Client) error { return x.Bridge().RemoveChannel(bridgeKey(bridge), far) }
		startMusic := func(x ari.Client) error { return x.Channel().MOH(chanKey(far), e.a.opts.MOHClass) }
		stopMusic := func(x ari.Client) error { return x.Channel().StopMOH(chanKey(far)) }

		// (1) The party is added to the bridge it is in: 204, it stays.
		if st := req("addChannel, already in the bridge", addFar); st != 0 {
			t.Errorf("addChannel for a channel in the bridge answered %d, want 204", st)
		}
		if !inBridge() {
			t.Error("the far party left the bridge it was added to again")
		}
		// (4) Music that does not play is stopped: 204.
		if st := req("stop music, none playing", stopMusic); st != 0 {
			t.Errorf("stopping music that does not play answered %d, want 204", st)
		}
		if err := e.a.Hold(ctx, ref); err != nil {
			t.Fatalf("Hold: %v", err)
		}
		e.on(ref, pbx.EventHeld)
		// (3) The music that plays is started again: 204.
		if st := req("start music, playing", startMusic); st != 0 {
			t.Errorf("starting music that plays answered %d, want 204", st)
		}
		// (2) The party is taken out of a bridge it is not in: 422.
		if st := req("removeChannel, not in the bridge", removeFar); st != http.StatusUnprocessableEntity {
			t.Errorf("removeChannel for a channel not in the bridge answered %d, want 422", st)
		}
		if inBridge() {
			t.Error("the held far party is in the bridge")
		}
		if err := e.a.Retrieve(ctx, ref); err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		e.on(ref, pbx.EventRetrieved)
		if !inBridge() {
			t.Error("the retrieved far party is not in the bridge")
		}
		// (The caller's connected line may still be settling: party
		// changes are not the requests' doing.)
		e.log.None(e.t, "state change from the repeated requests", func(ev pbx.Event) bool {
			return (ev.Call == ref || ev.Call == orig.Call) && ev.Kind != pbx.EventPartyChanged
		})
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		e.on(ref, pbx.EventCleared)
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("AnswerCall on a phone that ignores auto-answer", func(t *testing.T) {
		ctx := itCtx(t)
		e.phones[a1].SetIgnoreAutoAnswerHeaders(true)
		defer e.phones[a1].SetIgnoreAutoAnswerHeaders(false)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
		ref := offered.Call
		if err := e.a.Answer(ctx, ref); !errors.Is(err, pbx.ErrDeviceUnreachable) {
			t.Fatalf("Answer = %v, want device unreachable", err)
		}
		// The replacement call keeps ringing; picked up by hand, it is the
		// same connection for the CTI software.
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		repl, err := e.phones[a1].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if repl.State() != testphone.StateRinging || !repl.AutoAnswerRequested() {
			t.Fatalf("replacement call %s, auto-answer requested %v", repl.State(), repl.AutoAnswerRequested())
		}
		if err := repl.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		e.on(ref, pbx.EventConnected)
		e.on(orig.Call, pbx.EventConnected)
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, repl, testphone.StateEnded)
		e.on(ref, pbx.EventCleared)
		e.on(orig.Call, pbx.EventCleared)
	})

	e.run("phone holds and resumes", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
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
		if err := e.a.Retrieve(ctx, offered.Call); err == nil {
			t.Error("RetrieveCall took back the phone's own hold")
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
		ref := pbx.CallRef{Ext: a1, ID: "itest-mc-" + time.Now().Format("150405.000")}
		if err := e.a.MakeCall(ctx, pbx.MakeCallRequest{Call: ref, CSTAID: 4711, Destination: a2, AutoAnswer: true}); err != nil {
			t.Fatalf("MakeCall: %v", err)
		}
		own, err := e.phones[a1].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, own, testphone.StateConnected)
		if o := e.on(ref, pbx.EventOriginated); o.Remote.Number != a2 || o.CSTAID != 4711 {
			t.Errorf("originated: remote %+v csta %d", o.Remote, o.CSTAID)
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
		if err := far.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, own, testphone.StateEnded)
		e.on(ref, pbx.EventCleared)
		e.on(offered.Call, pbx.EventCleared)
	})

	e.run("SingleStepTransfer", func(t *testing.T) {
		ctx := itCtx(t)
		out, in, orig, offered := e.dialAndOffer(ctx, a2, a1)
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		e.on(offered.Call, pbx.EventConnected)
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		// A Continue Asterisk did not answer is told carried out or not by
		// the far party's dialplan position: where it entered the
		// application for as long as it is in it.
		e.a.mu.Lock()
		var far string
		var at dialplanPos
		if l := e.a.legs[offered.Call]; l != nil {
			far, _ = e.a.farOf(l)
			if ch := e.a.chans[far]; ch != nil {
				at = ch.stasisAt
			}
		}
		e.a.mu.Unlock()
		if done, err := e.a.continueDone(ctx, far, at); err != nil || done {
			t.Errorf("far party %s before the transfer: continued %v (%v), want false", far, done, err)
		}
		if err := e.a.SingleStepTransfer(ctx, offered.Call, "sip:"+a3+"@pbx"); err != nil {
			t.Fatalf("SingleStepTransfer: %v", err)
		}
		e.on(offered.Call, pbx.EventTransferred)
		if c := e.on(offered.Call, pbx.EventCleared); c.Cause != pbx.CauseTransferred {
			t.Errorf("transferring leg cleared with %s, want transferred", c.Cause)
		}
		if done, err := e.a.continueDone(ctx, far, at); err != nil || !done {
			t.Errorf("far party %s after the transfer: continued %v (%v), want true", far, done, err)
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
		active := pbx.CallRef{Ext: a1, ID: "itest-xfer-" + time.Now().Format("150405.000")}
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
