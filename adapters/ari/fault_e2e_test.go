package ari

// End-to-end fault injection: the whole bridge (bridge.App with this
// adapter) against the fake Asterisk, a CTI server receiving the action
// URLs, and CSTA requests over real HTTP. The adapter's own tests check the
// pbx.Event stream; these check what a CTI client sees when Asterisk drops
// the connection, restarts, answers slowly or answers with an error.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// reconnectBound is the promise: back within 5 s of the PBX being
// reachable again. A correctness bound, generous for a shared machine.
const reconnectBound = 5 * time.Second

// cstaDeadline is how long a CTI client waits for any /csta answer here; a
// request made during an outage must be answered well within it.
const cstaDeadline = 3 * time.Second

type e2e struct {
	t    *testing.T
	fake *fakeari.Server
	app  *bridge.App
	sink *pbxtest.ActionSink
	*pbxtest.BridgeClient
}

// startBridge runs a bridge.App configured for ARI against a fresh fake
// Asterisk, with extensions 1001..1003 on PJSIP/1001..1003, and waits until
// it is ready.
func startBridge(t *testing.T, tweak func(*Options)) *e2e {
	t.Helper()
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: []string{"PJSIP/1001", "PJSIP/1002", "PJSIP/1003"}})
	t.Cleanup(f.Close)
	e := &e2e{t: t, fake: f, sink: pbxtest.NewActionSink(t, waitLimit)}
	fo := f.Options()
	var b strings.Builder
	fmt.Fprintf(&b, "pbx:\n  type: ari\n  ari:\n    url: %q\n    username: %q\n    password: %q\n    application: %q\n    context: from-internal\n",
		f.URL, fo.User, fo.Pass, fo.App)
	b.WriteString("http: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\nstate_file: state.json\n")
	b.WriteString("defaults:\n  domain: pbx.test\n  settings:\n")
	b.WriteString(e.sink.Config("    "))
	b.WriteString("extensions:\n")
	for _, ext := range []string{"1001", "1002", "1003"} {
		fmt.Fprintf(&b, "  %q:\n    endpoint: PJSIP/%s\n", ext, ext)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	newPBX := func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
		o := Options{URL: cfg.PBX.ARI.URL, Username: cfg.PBX.ARI.Username, Password: cfg.PBX.ARI.Password,
			Application: cfg.PBX.ARI.Application, Context: cfg.PBX.ARI.Context, Logger: log,
			RequestTimeout: 3 * time.Second, AnswerTimeout: 2 * time.Second,
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}
		if tweak != nil {
			tweak(&o)
		}
		return New(o)
	}
	app, err := bridge.New(bridge.Options{ConfigPath: path, Logger: testLogger(t), NewPBX: newPBX,
		Notify: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	e.app = app
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.BridgeClient = pbxtest.NewBridgeClient(t, app.SharedAddr(), app.AdminAddr(), cstaDeadline, reconnectBound)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := app.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	for _, ext := range []string{"1001", "1002", "1003"} {
		e.sink.Expect(t, ext, "setup")
	}
	e.WaitReady(http.StatusOK)
	waitFake(t, f, "websocket registered", f.Connected)
	return e
}

// ring has the device of `from` dial ext 1001 through the Stasis dialplan
// snippet, waits for 1001's incoming action URL with wantID, and returns
// the caller's channel and 1001's new channel.
func (e *e2e) ring(from string, wantID int) (caller, callee string) {
	e.t.Helper()
	before := map[string]bool{}
	for _, c := range e.fake.Channels() {
		before[c.ID] = true
	}
	caller = e.fake.PhoneDials("PJSIP/"+from, "1001")
	e.sink.Expect(e.t, "1001", fmt.Sprintf("incoming:%d", wantID))
	waitFake(e.t, e.fake, "1001 ringing", func() bool {
		for _, c := range e.fake.Channels() {
			if c.Endpoint == "PJSIP/1001" && !before[c.ID] && c.State == "Ringing" {
				callee = c.ID
				return true
			}
		}
		return false
	})
	return caller, callee
}

// answered has 1001's phone pick up callee and waits until Asterisk has
// bridged it with caller.
func (e *e2e) answered(caller, callee string) {
	e.t.Helper()
	if err := e.fake.Answer(callee); err != nil {
		e.t.Fatal(err)
	}
	e.waitBridged(caller, callee)
}

func (e *e2e) waitBridged(x, y string) {
	e.t.Helper()
	waitFake(e.t, e.fake, x+" and "+y+" bridged", func() bool {
		for _, id := range e.fake.Bridges() {
			if ch := e.fake.BridgeChannels(id); slices.Contains(ch, x) && slices.Contains(ch, y) {
				return true
			}
		}
		return false
	})
}

// hangupIfThere hangs up a channel unless it is already gone.
func (e *e2e) hangupIfThere(id string, cause int) {
	e.t.Helper()
	if e.fake.Channel(id) == nil {
		return
	}
	if err := e.fake.Hangup(id, cause); err != nil {
		e.t.Fatal(err)
	}
}

// Scenario 1: the event connection drops mid-call and Asterisk stays out of
// reach for a while; one call ends meanwhile.
func TestE2EConnectionDroppedMidCall(t *testing.T) {
	e := startBridge(t, nil)
	a1, leg1 := e.ring("1002", -1)
	a2, leg2 := e.ring("1003", -2)
	e.answered(a1, leg1)
	e.sink.Expect(t, "1001", "offhook", "connected:-1")

	// Asterisk out of reach: the websocket drops and every reconnect
	// attempt's first request fails until the outage ends.
	conns := e.fake.Connections()
	e.fake.Fail("GET", "/asterisk/info", 503, `{"message":"Service Unavailable"}`, 1<<30)
	e.fake.DropWebsocket()
	e.WaitReady(http.StatusServiceUnavailable)

	// A request during the outage gets a fault at once, not a hang.
	took := e.Fault("1001", "HoldCall", pbxtest.ConnID("callToBeHeld", -1), "resourceOutOfService")
	t.Logf("HoldCall during the outage answered in %s", took)

	// The unanswered call ends while the bridge cannot see it: the caller
	// gives up and 1001 stops ringing.
	e.hangupIfThere(a2, 16)
	e.hangupIfThere(leg2, 16)

	e.fake.ClearFaults()
	back := e.WaitReady(http.StatusOK)
	e.WaitReconnects(1)
	t.Logf("reconnect: /-/ready 200 %s after Asterisk became reachable", back)
	if back > reconnectBound {
		t.Errorf("ready %s after the outage ended, want ≤ %s", back, reconnectBound)
	}
	waitFake(t, e.fake, "websocket registered", e.fake.Connected)
	if e.fake.Connections() <= conns {
		t.Error("no new websocket connection")
	}
	// The vanished call was never answered: a missed call, with its own id.
	// Nothing about the surviving call comes first (no re-announce).
	e.sink.Expect(t, "1001", "missed:-2")
	// The caller's side of it: an outgoing call that never connected ends
	// with on-hook only, as on a Snom.
	e.sink.Expect(t, "1003", "offhook", "outgoing:1", "onhook")
	// The surviving call kept its csta_id and is still the bridge's to control.
	e.OK("1001", "HoldCall", pbxtest.ConnID("callToBeHeld", -1))
	e.sink.Expect(t, "1001", "hold:-1")
	if e.fake.Channel(a1) == nil || e.fake.Channel(leg1) == nil {
		t.Error("the surviving call's channels are gone")
	}
}

// Scenario 1b: a bare drop, Asterisk reachable throughout, measured from
// the drop, with the production backoff (first retry after 0.25..0.5 s).
func TestE2EWebsocketDropReconnectTime(t *testing.T) {
	e := startBridge(t, func(o *Options) { o.MinBackoff, o.MaxBackoff = 0, 0 })
	a1, leg1 := e.ring("1002", -1)
	e.answered(a1, leg1)
	e.sink.Expect(t, "1001", "offhook", "connected:-1")
	conns := e.fake.Connections()
	start := time.Now()
	e.fake.DropWebsocket()
	e.WaitReconnects(1)
	took := time.Since(start)
	if e.Ready() != http.StatusOK {
		t.Error("/-/ready not 200 after the reconnect")
	}
	if e.fake.Connections() <= conns {
		t.Error("no new websocket connection")
	}
	t.Logf("reconnect after a websocket drop: %s", took)
	if took > reconnectBound {
		t.Errorf("reconnected after %s, want ≤ %s", took, reconnectBound)
	}
	e.OK("1001", "HoldCall", pbxtest.ConnID("callToBeHeld", -1))
	e.sink.Expect(t, "1001", "hold:-1")
}

// Scenario 2: Asterisk restarts with new ids; every call is gone.
func TestE2EAsteriskRestart(t *testing.T) {
	e := startBridge(t, nil)
	a1, leg1 := e.ring("1002", -1)
	e.ring("1003", -2)
	e.answered(a1, leg1)
	e.sink.Expect(t, "1001", "offhook", "connected:-1")

	start := time.Now()
	e.fake.Restart()
	got := e.sink.CollectUntil(t, "1001", "disconnected:-1", "missed:-2")
	for _, g := range got {
		if g != "disconnected:-1" && g != "missed:-2" && !strings.HasPrefix(g, "onhook:") {
			t.Errorf("unexpected action URL %s after the restart (all: %v)", g, got)
		}
	}
	e.sink.Expect(t, "1002", "offhook", "outgoing:1", "connected:1", "disconnected:1", "onhook")
	e.sink.Expect(t, "1003", "offhook", "outgoing:1", "onhook")
	e.WaitReconnects(1)
	e.WaitReady(http.StatusOK)
	t.Logf("restart: calls cleared, reconnected and /-/ready 200 %s after the restart", time.Since(start))
	if d := time.Since(start); d > reconnectBound {
		t.Errorf("back %s after the restart, want ≤ %s", d, reconnectBound)
	}
	waitFake(t, e.fake, "websocket registered", e.fake.Connected)

	// A new call works end to end on the restarted Asterisk.
	e.ring("1002", -3)
	// The phone accepts the bridge's auto-answer call that replaces the ringing one.
	e.fake.SetAutoAnswer("PJSIP/1001", true)
	e.OK("1001", "AnswerCall", pbxtest.ConnID("callToBeAnswered", -3))
	e.sink.Expect(t, "1001", "offhook", "connected:-3")
}

// Scenario 3: Asterisk answers REST requests later than RequestTimeout.
func TestE2ESlowREST(t *testing.T) {
	const requestTimeout = 300 * time.Millisecond
	e := startBridge(t, func(o *Options) { o.RequestTimeout = requestTimeout })
	a1, leg1 := e.ring("1002", -1)
	e.answered(a1, leg1)
	e.sink.Expect(t, "1001", "offhook", "connected:-1")

	// Asterisk would answer after 5 s; the fault must come from the
	// adapter's RequestTimeout, long before that and before cstaDeadline.
	e.fake.SetDelay(5 * time.Second)
	took := e.Fault("1001", "HoldCall", pbxtest.ConnID("callToBeHeld", -1), "resourceOutOfService")
	t.Logf("HoldCall on a slow Asterisk answered in %s (RequestTimeout %s)", took, requestTimeout)
	if took < requestTimeout || took > 2*time.Second {
		t.Errorf("fault after %s, want it from RequestTimeout %s", took, requestTimeout)
	}
	e.fake.SetDelay(0)
	if n := e.Reconnects(); n != 0 {
		t.Errorf("a slow reply cost the connection: %d reconnects", n)
	}

	// Nothing changed: the call is still connected and bridged, and the
	// next action URL is the one of the hold that now succeeds.
	e.waitBridged(a1, leg1)
	e.WaitReady(http.StatusOK)
	e.OK("1001", "HoldCall", pbxtest.ConnID("callToBeHeld", -1))
	e.sink.Expect(t, "1001", "hold:-1")
	e.OK("1001", "RetrieveCall", pbxtest.ConnID("callToBeRetrieved", -1))
	e.sink.Expect(t, "1001", "unhold:-1")
}

// Scenario 4: Asterisk answers a command with an error.
func TestE2EErrorReplies(t *testing.T) {
	e := startBridge(t, nil)
	a1, leg1 := e.ring("1002", -1)
	e.answered(a1, leg1)
	e.sink.Expect(t, "1001", "offhook", "connected:-1")

	cases := []struct {
		name, service, inner string
		method, path         string
		status               int
		body, code           string
	}{
		// HoldCall's first step (take the far party out of the bridge) refused.
		{"hold, 409 on the first step", "HoldCall", pbxtest.ConnID("callToBeHeld", -1), "POST", "/removeChannel",
			409, `{"message":"Channel not in Stasis application"}`, "requestIncompatibleWithObject"},
		{"hold, 500 on the first step", "HoldCall", pbxtest.ConnID("callToBeHeld", -1), "POST", "/removeChannel",
			500, `{"error":"Internal Server Error"}`, "resourceOutOfService"},
		// The second step (music on hold) refused: the first is undone.
		{"hold, 409 on the second step", "HoldCall", pbxtest.ConnID("callToBeHeld", -1), "POST", "/moh",
			409, `{"message":"Channel not in Stasis application"}`, "requestIncompatibleWithObject"},
		{"hold, 500 on the second step", "HoldCall", pbxtest.ConnID("callToBeHeld", -1), "POST", "/moh",
			500, `{"error":"Internal Server Error"}`, "resourceOutOfService"},
		{"clear, 409", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", -1), "DELETE", "/channels/",
			409, `{"message":"Channel not in Stasis application"}`, "requestIncompatibleWithObject"},
		{"clear, 500", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", -1), "DELETE", "/channels/",
			500, `{"error":"Internal Server Error"}`, "resourceOutOfService"},
	}
	for _, c := range cases {
		n := len(e.fake.Requests())
		e.fake.Fail(c.method, c.path, c.status, c.body, 1)
		e.Fault("1001", c.service, c.inner, c.code)
		hit := false
		for _, r := range e.fake.Requests()[n:] {
			hit = hit || (r.Method == c.method && strings.Contains(r.Path, c.path))
		}
		if !hit {
			t.Fatalf("%s: the failing request was never made", c.name)
		}
		// Asterisk's side is as before: both parties still bridged.
		e.waitBridged(a1, leg1)
	}
	// The bridge's side too: -1 is still connected (HoldCall accepts only a
	// connected call), and no action URL was sent for the failures.
	e.OK("1001", "HoldCall", pbxtest.ConnID("callToBeHeld", -1))
	e.sink.Expect(t, "1001", "hold:-1")
	e.OK("1001", "RetrieveCall", pbxtest.ConnID("callToBeRetrieved", -1))
	e.sink.Expect(t, "1001", "unhold:-1")
}

// Scenario 4b: Asterisk refuses RetrieveCall's second step (the far party
// re-joining the call's bridge). The CTI client gets the fault, the call
// stays held (the far party hears music on hold outside the bridge, not
// silence) and no unhold action URL is sent; a later RetrieveCall works.
func TestE2ERetrieveRefused(t *testing.T) {
	e := startBridge(t, nil)
	a1, leg1 := e.ring("1002", -1)
	e.answered(a1, leg1)
	e.sink.Expect(t, "1001", "offhook", "connected:-1")
	e.OK("1001", "HoldCall", pbxtest.ConnID("callToBeHeld", -1))
	e.sink.Expect(t, "1001", "hold:-1")
	bridge := e.fake.Channel(leg1).Bridge

	e.fake.Fail("POST", "/bridges/"+bridge+"/addChannel", 500, `{"error":"Internal Server Error"}`, 1)
	e.Fault("1001", "RetrieveCall", pbxtest.ConnID("callToBeRetrieved", -1), "resourceOutOfService")
	if moh, in := farState(t, e.fake, a1); !moh || in != "" {
		t.Fatalf("far party after the refused retrieve: music on hold %v, in bridge %q; want music outside any bridge", moh, in)
	}
	// Still held for the bridge too: a second hold is refused.
	e.Fault("1001", "HoldCall", pbxtest.ConnID("callToBeHeld", -1), "invalidObjectState")

	e.OK("1001", "RetrieveCall", pbxtest.ConnID("callToBeRetrieved", -1))
	e.waitBridged(a1, leg1)
	if moh, _ := farState(t, e.fake, a1); moh {
		t.Error("far party still on music on hold after the retrieve")
	}
	// The refused retrieve sent nothing: the next action URLs are the
	// successful retrieve's and the hold's after it.
	e.OK("1001", "HoldCall", pbxtest.ConnID("callToBeHeld", -1))
	e.sink.Expect(t, "1001", "unhold:-1", "hold:-1")
}
