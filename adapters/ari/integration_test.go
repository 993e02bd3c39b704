package ari

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// The integration test drives the adapter alone on a real Asterisk with
// SIP test phones, for what only the adapter can check; what a CTI client
// sees is the scenario table's (TestTableRealAsterisk). See README.md
// ("Integration test against a real Asterisk") for the set-up; without
// CSTA_TEST_ARI_URL it is skipped.

// itEnv is the adapter under test on the PBX.
type itEnv struct {
	*pbxtest.AdapterEnv
	a *Adapter
}

func integrationEnv(t *testing.T) *itEnv {
	t.Helper()
	real := realAsteriskEnv(t)
	env := &itEnv{AdapterEnv: pbxtest.NewAdapterEnv(t)}
	for i, p := range pbxtest.StartPhones(t, real.exts, real.sip, real.sipPass) {
		n := real.exts[i]
		env.Phones[n] = p
		env.Exts = append(env.Exts, pbx.Extension{Name: n, Endpoint: "PJSIP/" + n, AutoAnswerHeaders: []string{
			"Call-Info: <sip:pbx>;answer-after=0", "Alert-Info: <http://pbx>;info=alert-autoanswer;delay=0"}})
	}
	a, err := New(Options{URL: real.url, Username: real.user, Password: real.pass,
		Application: real.app, Context: real.context, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	a.SetExtensions(env.Exts)
	env.a = a
	rest := &ariREST{root: real.url, user: real.user, pass: real.pass, http: &http.Client{Timeout: 5 * time.Second}}
	env.Leftovers = func(ctx context.Context) (string, error) { return rest.leftovers(ctx, real.exts[:]...) }
	env.StartAdapter(a)
	env.WaitRegistered(real.exts[:]...)
	return env
}

func TestIntegrationRealAsterisk(t *testing.T) {
	e := integrationEnv(t)
	a1, a2, a3 := e.Names()

	// HoldCall's, RetrieveCall's and TransferCall's undos, after a request
	// Asterisk did not answer, repeat or reverse it without knowing whether
	// it was carried out. They rely on these answers when there is nothing
	// to undo.
	e.Scenario("requests the hold and retrieve undos rely on", func(t *testing.T) {
		ctx := e.Ctx(t)
		out, in, orig, offered := e.DialAndOffer(ctx, a2, a1)
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateConnected)
		ref := offered.Call
		e.On(ref, pbx.EventConnected)
		e.On(orig.Call, pbx.EventConnected)
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
		e.On(ref, pbx.EventHeld)
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
		e.On(ref, pbx.EventRetrieved)
		if !inBridge() {
			t.Error("the retrieved far party is not in the bridge")
		}
		// (The caller's connected line may still be settling: party
		// changes are not the requests' doing.)
		e.Log.None(e.T, "state change from the repeated requests", func(ev pbx.Event) bool {
			return (ev.Call == ref || ev.Call == orig.Call) && ev.Kind != pbx.EventPartyChanged
		})
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		e.On(ref, pbx.EventCleared)
		e.On(orig.Call, pbx.EventCleared)
	})

	e.Scenario("SingleStepTransfer: the far party's dialplan position tells a Continue carried out", func(t *testing.T) {
		ctx := e.Ctx(t)
		out, in, orig, offered := e.DialAndOffer(ctx, a2, a1)
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		e.On(offered.Call, pbx.EventConnected)
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
		e.On(offered.Call, pbx.EventTransferred)
		if c := e.On(offered.Call, pbx.EventCleared); c.Cause != pbx.CauseTransferred {
			t.Errorf("transferring leg cleared with %s, want transferred", c.Cause)
		}
		if done, err := e.a.continueDone(ctx, far, at); err != nil || !done {
			t.Errorf("far party %s after the transfer: continued %v (%v), want true", far, done, err)
		}
		pbxtest.PhoneState(t, ctx, in, testphone.StateEnded)
		target, err := e.Phones[a3].Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		off3 := e.OfferedFor(a3, target)
		if off3.Remote.Number != a2 {
			t.Errorf("transfer target sees %+v, want %s", off3.Remote, a2)
		}
		if err := target.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		e.On(off3.Call, pbx.EventConnected)
		if out.State() != testphone.StateConnected {
			t.Fatalf("transferred caller's call is %s", out.State())
		}
		e.Log.None(e.T, "clear of the transferred caller", func(ev pbx.Event) bool { return ev.Kind == pbx.EventCleared && ev.Call == orig.Call })
		if err := target.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		pbxtest.PhoneState(t, ctx, out, testphone.StateEnded)
		e.On(off3.Call, pbx.EventCleared)
		e.On(orig.Call, pbx.EventCleared)
	})

}
