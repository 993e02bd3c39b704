package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// The integration test drives the adapter alone on a real FreeSWITCH with
// SIP test phones, for what only the adapter can check; what a CTI client
// sees is the scenario table's (TestTableRealFreeSWITCH). See README.md
// ("Integration test") for the set-up; without CSTA_TEST_ESL_ADDR it is
// skipped.

// itEnv is the adapter under test on the PBX.
type itEnv struct {
	*pbxtest.AdapterEnv
	a *Adapter
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
	real := realFreeSWITCHEnv(t)
	log := itLogger(t) // first: its Cleanup, run last, silences it
	env := &itEnv{AdapterEnv: pbxtest.NewAdapterEnv(t)}
	for _, n := range real.exts {
		env.Exts = append(env.Exts, pbx.Extension{Name: n, Endpoint: "user/" + n, Domain: real.domain, AutoAnswerHeaders: []string{
			"Call-Info: <sip:" + real.domain + ">;answer-after=0", "Alert-Info: <http://pbx>;info=alert-autoanswer;delay=0"}})
	}
	a, err := New(Options{Address: real.addr, Password: real.pass, Context: real.context, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	a.SetExtensions(env.Exts)
	env.a = a
	cli := &rawESL{addr: real.addr, pass: real.pass}
	env.Leftovers = func(ctx context.Context) (string, error) {
		chans, err := cli.channelsOf(ctx, real.exts)
		if err != nil || len(chans) == 0 {
			return "", err
		}
		return fmt.Sprint(chans), nil
	}
	env.StartAdapter(a)
	// The phones register after the adapter is up, so their registration
	// must arrive as sofia::register events.
	for i, p := range pbxtest.StartPhones(t, real.exts, real.sip, real.sipPass) {
		env.Phones[real.exts[i]] = p
	}
	env.WaitRegistered(real.exts[:]...)
	return env
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
	b.SetExtensions(e.Exts)
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

// TestIntegration runs against a real FreeSWITCH (see README.md). The
// first extension must have csta_allow_events=talk,hold in the directory
// (the test phone honours talk/hold NOTIFYs); the others must not, so that
// both ways of answering and holding are exercised.
func TestIntegration(t *testing.T) {
	e := integrationEnv(t)
	a1, a2, a3 := e.Names()

	e.Scenario("custom INVITE headers reach the offer ($sip_header)", func(t *testing.T) {
		ctx := e.Ctx(t)
		// 77<ext> routes to <ext> with sip_h_X-Customer and alert_info
		// exported to the called channel (see README.md); X-Caller-Ref is
		// sent by the calling phone and copied to the called channel by
		// mod_sofia (sip_copy_custom_headers).
		out, err := e.Phones[a3].Dial(ctx, "77"+a2, "X-Caller-Ref: ref 7")
		if err != nil {
			t.Fatal(err)
		}
		in, err := e.Phones[a2].Incoming(ctx)
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
		offered := e.OfferedFor(a2, in)
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
		orig := e.Log.Wait(t, "originated by "+a3, func(ev pbx.Event) bool {
			return ev.Kind == pbx.EventOriginated && ev.Call.Ext == a3 && ev.SIPCallID == out.CallID()
		})
		if orig.Headers != nil {
			t.Errorf("the calling phone's connection has headers %v: it received no INVITE", orig.Headers)
		}
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		e.On(offered.Call, pbx.EventCleared)
		e.On(orig.Call, pbx.EventCleared)
	})

	e.Scenario("AnswerCall by auto-answer swap survives a reconnect", func(t *testing.T) {
		ctx := e.Ctx(t)
		out, in, orig, offered := e.DialAndOffer(ctx, a3, a2)
		ref := offered.Call
		if err := e.a.Answer(ctx, ref); err != nil {
			t.Fatalf("Answer: %v", err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		repl, err := e.Phones[a2].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, repl, testphone.StateConnected)
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		e.On(ref, pbx.EventConnected)
		e.On(orig.Call, pbx.EventConnected)
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
		e.Log.Wait(t, "link down", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && !ev.Up })
		e.Log.Wait(t, "link up", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && ev.Up })
		sync := e.Log.Wait(t, "sync", func(ev pbx.Event) bool { return ev.Kind == pbx.EventSync })
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
		e.On(ref, pbx.EventHeld)
		if err := e.a.Retrieve(ctx, ref); err != nil {
			t.Fatalf("Retrieve after the reconnect: %v", err)
		}
		e.On(ref, pbx.EventRetrieved)
		if err := repl.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateEnded)
		if c := e.On(ref, pbx.EventCleared); c.Cause != pbx.CauseNormal {
			t.Errorf("answered call cleared with %s, want normal", c.Cause)
		}
		e.On(orig.Call, pbx.EventCleared)
	})

	e.Scenario("a second adapter finds the live calls (show channels, uuid_dump)", func(t *testing.T) {
		ctx := e.Ctx(t)
		out, in, orig, offered := e.DialAndOffer(ctx, a3, a2)
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		e.On(offered.Call, pbx.EventConnected)
		e.On(orig.Call, pbx.EventConnected)
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
		e.On(offered.Call, pbx.EventCleared)
		e.On(orig.Call, pbx.EventCleared)
	})

	e.Scenario("MakeCall to another phone, cleared by the far phone", func(t *testing.T) {
		ctx := e.Ctx(t)
		ref := pbx.CallRef{Ext: a1, ID: "itest-mc-" + newUUID()}
		if err := e.a.MakeCall(ctx, pbx.MakeCallRequest{Call: ref, CSTAID: 4711, Destination: a2, AutoAnswer: true}); err != nil {
			t.Fatalf("MakeCall: %v", err)
		}
		own, err := e.Phones[a1].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !own.AutoAnswerRequested() {
			t.Errorf("MakeCall's call to the device without auto-answer: Call-Info %q", own.Header("Call-Info"))
		}
		pbxtest.PhoneState(t, ctx, own, testphone.StateConnected)
		o := e.On(ref, pbx.EventOriginated)
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
		far, err := e.Phones[a2].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		offered := e.OfferedFor(a2, far)
		if offered.Remote.Number != a1 {
			t.Errorf("destination sees caller %+v, want %s", offered.Remote, a1)
		}
		if far.RemoteUser() != a1 {
			t.Errorf("destination phone sees caller %q, want %s", far.RemoteUser(), a1)
		}
		e.Log.None(e.T, "early connected", func(ev pbx.Event) bool { return ev.Kind == pbx.EventConnected && ev.Call == ref })
		if err := far.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		e.On(ref, pbx.EventConnected)
		e.On(offered.Call, pbx.EventConnected)
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
		e.On(ref, pbx.EventCleared)
		e.On(offered.Call, pbx.EventCleared)
	})

	e.Scenario("MakeCall the device refuses at once: no call at the extension", func(t *testing.T) {
		ctx := e.Ctx(t)
		ref := pbx.CallRef{Ext: a1, ID: "itest-mc-busy-" + newUUID()}
		errc := make(chan error, 1)
		go func() {
			errc <- e.a.MakeCall(ctx, pbx.MakeCallRequest{Call: ref, CSTAID: 4712, Destination: a2})
		}()
		own, err := e.Phones[a1].Incoming(ctx)
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
		out, _, orig, offered := e.DialAndOffer(ctx, a3, a2)
		e.Log.None(t, "event for the extension that refused the MakeCall", func(ev pbx.Event) bool {
			return ev.Call.Ext == a1 && ev.Kind != pbx.EventDevice && !(ev.Call == ref && ev.Kind == pbx.EventCleared)
		})
		if mcErr == nil {
			e.On(ref, pbx.EventCleared)
		}
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		e.On(offered.Call, pbx.EventCleared)
		e.On(orig.Call, pbx.EventCleared)
	})

}
