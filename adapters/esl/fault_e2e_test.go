package esl

// End-to-end fault injection: the whole bridge (bridge.App with this
// adapter) against the fake FreeSWITCH (fsModel on internal/fakeesl), a CTI
// server receiving the action URLs, and CSTA requests over real HTTP. The
// adapter's own tests check the pbx.Event stream; these check what a CTI
// client sees when FreeSWITCH drops the connection, restarts, answers
// slowly or answers with an error. Every call is a captured one
// (testdata/*.rx.raw) under fresh channel uuids. The adapter runs with its
// production settings (reconnect backoff 0.5 s doubling to 4 s with jitter,
// liveness probe every 10 s, recheck 1 s after a resync) unless a scenario
// says otherwise.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// reconnectBound is the promise: back within 5 s of FreeSWITCH
// being reachable again. A correctness bound, generous for a shared machine.
const reconnectBound = 5 * time.Second

// cstaDeadline is how long a CTI client waits for any /csta answer here; a
// request made during an outage must be answered well within it.
const cstaDeadline = 3 * time.Second

// Channels of the captures the scenarios play.
const (
	holdA = "fe0f41bc" // d_hold: 1001 calls 1002 …
	holdB = "330b58b6" // … and 1002 answers; both are held and retrieved later
	ringB = "cb1d83e5" // b_cancel: 1002 rings until the caller gives up
	showC = "805aa4e4" // h_show_channels: 1003 is called and answers
)

type e2e struct {
	t    *testing.T
	srv  *fakeesl.Server
	fs   *fsModel
	app  *bridge.App
	sink *pbxtest.ActionSink
	*pbxtest.BridgeClient
}

// startBridge runs a bridge.App configured for ESL against a fresh fake
// FreeSWITCH, with extensions 1001..1003 on user/1001..1003, and waits
// until it is ready.
func startBridge(t *testing.T, tweak func(*Options)) *e2e {
	t.Helper()
	tw := &testWriter{t: t, ok: true}
	t.Cleanup(func() { // runs last: nothing logs to t after the test
		tw.mu.Lock()
		tw.ok = false
		tw.mu.Unlock()
	})
	srv, err := fakeesl.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e := &e2e{t: t, srv: srv, fs: newFSModel(t, srv), sink: pbxtest.NewActionSink(t, waitFor)}
	var b strings.Builder
	fmt.Fprintf(&b, "pbx:\n  type: esl\n  esl: {address: %q, password: %q, context: default}\n", srv.Addr(), srv.Password)
	b.WriteString("http: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\nstate_file: state.json\n")
	b.WriteString("defaults:\n  domain: pbx.test\n  settings:\n")
	b.WriteString(e.sink.Config("    "))
	b.WriteString("extensions:\n")
	for _, ext := range []string{"1001", "1002", "1003"} {
		fmt.Fprintf(&b, "  %q:\n    endpoint: user/%s\n", ext, ext)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	newPBX := func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
		o := Options{Address: cfg.PBX.ESL.Address, Password: cfg.PBX.ESL.Password, Context: cfg.PBX.ESL.Context,
			Logger: log}
		if tweak != nil {
			tweak(&o)
		}
		return New(o)
	}
	log := slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	app, err := bridge.New(bridge.Options{ConfigPath: path, Logger: log, NewPBX: newPBX, Notify: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	e.app = app
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.BridgeClient = pbxtest.NewBridgeClient(t, app.SharedAddr(), app.AdminAddr(), cstaDeadline, reconnectBound)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := app.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	for _, ext := range []string{"1001", "1002", "1003"} {
		e.sink.Expect(t, ext, "setup")
	}
	e.WaitReady(http.StatusOK)
	return e
}

func makeCallTo(from, to string) string {
	return "<csta:callingDevice>" + from + "</csta:callingDevice><csta:calledDirectoryNumber>" + to +
		"</csta:calledDirectoryNumber>"
}

// connectedCall plays d_hold up to the bridge: 1001 calls 1002 and 1002
// answers. Both phones were idle; their connections get csta_ids out and in.
func (e *e2e) connectedCall(out, in int) *fsCall {
	e.t.Helper()
	c := e.fs.newCall("d_hold")
	e.fs.play(c.until("CALL_UPDATE", holdA)...)
	e.sink.Expect(e.t, "1001", "offhook", fmt.Sprintf("outgoing:%d", out), fmt.Sprintf("connected:%d", out))
	e.sink.Expect(e.t, "1002", fmt.Sprintf("incoming:%d", in), "offhook", fmt.Sprintf("connected:%d", in))
	return c
}

// ringingCall plays 1002's channel of b_cancel up to its ringing.
func (e *e2e) ringingCall() *fsCall {
	e.t.Helper()
	c := e.fs.newCall("b_cancel")
	e.fs.play(c.leg(ringB, c.until("CHANNEL_CALLSTATE", ringB))...)
	return c
}

// outage closes FreeSWITCH's door: the connections drop, new ones are
// refused. It returns a function that waits until a reconnect attempt met
// the closed door, then opens it again and returns when that was.
func (e *e2e) outage() (reopen func() time.Time) {
	e.t.Helper()
	accepted := e.srv.Accepted()
	e.srv.Refuse(true)
	e.srv.DropAll()
	return func() time.Time {
		e.t.Helper()
		if err := e.srv.WaitAccepted(ctxT(e.t), accepted+1); err != nil {
			e.t.Fatal(err)
		}
		e.srv.Refuse(false)
		return time.Now()
	}
}

// Scenario 1: the connections drop mid-call and FreeSWITCH stays out of
// reach for a while; one call ends meanwhile and another starts just
// before FreeSWITCH is back.
func TestE2EConnectionDroppedMidCall(t *testing.T) {
	e := startBridge(t, nil)
	call := e.connectedCall(1, -1)
	ring := e.ringingCall()
	e.sink.Expect(t, "1002", "incoming:-2")
	// 1003 takes a call too (only its own channel is played).
	gone := e.fs.newCall("h_show_channels")
	e.fs.play(gone.leg(showC, gone.until("CALL_UPDATE", showC))...)
	e.sink.Expect(t, "1003", "incoming:-1", "offhook", "connected:-1")

	dropped := time.Now()
	reopen := e.outage()
	noticed := e.WaitReady(http.StatusServiceUnavailable)
	t.Logf("drop noticed: /-/ready 503 after %s", noticed)

	// A request during the outage gets a fault at once, not a hang.
	took := e.Fault("1002", "HoldCall", pbxtest.ConnID("callToBeHeld", -1), "resourceOutOfService")
	t.Logf("HoldCall during the outage answered in %s", took)
	if took > time.Second {
		t.Errorf("HoldCall during the outage took %s", took)
	}

	// The ringing call and 1003's call end while nobody listens, and
	// another starts ringing just before FreeSWITCH is back: its events
	// are lost and its channel is listed only a moment after the reconnect.
	e.fs.vanish(ring)
	e.fs.vanish(gone)
	late := e.ringingCall()
	e.fs.lagOnce(late)

	back := reopen()
	ready := e.WaitReady(http.StatusOK)
	e.WaitReconnects(1)
	t.Logf("reconnect: /-/ready 200 %s after FreeSWITCH accepted connections again (%s after the drop)",
		ready, time.Since(dropped))
	if d := time.Since(back); d > reconnectBound {
		t.Errorf("reconnected %s after the outage ended, want ≤ %s", d, reconnectBound)
	}

	// The vanished calls: 1003's was answered, so it is disconnected; the
	// ringing one was never answered, so it is a missed call. Nothing about
	// the surviving call comes first (no re-announce). The resync reads the
	// listing again until it has the channels `status` counts, so it finds
	// the late call (a new id), which the sync announces before it clears
	// the vanished calls.
	e.sink.Expect(t, "1003", "disconnected:-1", "onhook")
	e.sink.Expect(t, "1002", "incoming:-3", "missed:-2")
	// The surviving call kept its csta_id and is still the bridge's to control.
	e.OK("1002", "HoldCall", pbxtest.ConnID("callToBeHeld", -1))
	e.sink.Expect(t, "1002", "hold:-1")
	// The late call is tracked like any other: its caller gives up.
	e.fs.play(late.leg(ringB, late.hangup())...)
	e.sink.Expect(t, "1002", "missed:-3")
	// 1001 heard nothing of all this: its next action URL is its own hold.
	e.OK("1001", "HoldCall", pbxtest.ConnID("callToBeHeld", 1))
	e.sink.Expect(t, "1001", "hold:1")
	if !e.fs.live(call.id(holdA)) || !e.fs.live(call.id(holdB)) {
		t.Error("the surviving call's channels are gone")
	}
	if n := e.Reconnects(); n != 1 {
		t.Errorf("%d reconnects, want 1", n)
	}
}

// Scenario 1b: a bare drop, FreeSWITCH reachable throughout, measured from
// the drop (first retry after 0.25..0.5 s).
func TestE2EConnectionDropReconnectTime(t *testing.T) {
	e := startBridge(t, nil)
	e.connectedCall(1, -1)
	accepted := e.srv.Accepted()
	start := time.Now()
	e.srv.DropAll()
	e.WaitReconnects(1)
	took := time.Since(start)
	if e.Ready() != http.StatusOK {
		t.Error("/-/ready not 200 after the reconnect")
	}
	if e.srv.Accepted() <= accepted {
		t.Error("no new connection")
	}
	t.Logf("reconnect after a dropped connection: %s", took)
	if took > reconnectBound {
		t.Errorf("reconnected after %s, want ≤ %s", took, reconnectBound)
	}
	e.OK("1002", "HoldCall", pbxtest.ConnID("callToBeHeld", -1))
	e.sink.Expect(t, "1002", "hold:-1")
}

// Scenario 2: FreeSWITCH restarts: every call is gone, new calls have new
// channel uuids.
func TestE2EFreeSWITCHRestart(t *testing.T) {
	e := startBridge(t, nil)
	e.connectedCall(1, -1)
	e.ringingCall()
	e.sink.Expect(t, "1002", "incoming:-2")

	restarted := time.Now()
	reopen := e.outage()
	e.fs.restart()
	back := reopen()

	e.sink.Expect(t, "1001", "disconnected:1", "onhook")
	e.sink.Expect(t, "1002", "disconnected:-1", "onhook", "missed:-2")
	e.WaitReconnects(1)
	e.WaitReady(http.StatusOK)
	t.Logf("restart: calls cleared, reconnected and /-/ready 200 %s after FreeSWITCH accepted connections again (%s after it went down)",
		time.Since(back), time.Since(restarted))
	if d := time.Since(back); d > reconnectBound {
		t.Errorf("back %s after FreeSWITCH was, want ≤ %s", d, reconnectBound)
	}

	// New calls get csta_ids never used before, and work.
	e.connectedCall(2, -3)
	e.OK("1002", "HoldCall", pbxtest.ConnID("callToBeHeld", -3))
	e.sink.Expect(t, "1002", "hold:-3")
	// The old ids are gone for good.
	e.Fault("1002", "RetrieveCall", pbxtest.ConnID("callToBeRetrieved", -1), "invalidConnectionID")
}

// Scenario 3: FreeSWITCH answers late.
func TestE2ESlowReplies(t *testing.T) {
	const commandTimeout = 300 * time.Millisecond
	e := startBridge(t, func(o *Options) { o.CommandTimeout = commandTimeout })
	e.connectedCall(1, -1)

	// Late, but within the command timeout: answered.
	e.fs.delay("uuid_hold", commandTimeout/3)
	took := e.OK("1002", "HoldCall", pbxtest.ConnID("callToBeHeld", -1))
	e.sink.Expect(t, "1002", "hold:-1")
	t.Logf("HoldCall with uuid_hold answered %s late: %s", commandTimeout/3, took)
	if took < commandTimeout/3 {
		t.Errorf("HoldCall took %s, less than the reply's delay", took)
	}
	if n := e.Reconnects(); n != 0 {
		t.Errorf("a reply within the timeout cost the connection: %d reconnects", n)
	}

	// Later than the timeout: a fault from the timeout, long before
	// FreeSWITCH would answer. The late reply would be taken for the next
	// command's, so the session is rebuilt.
	e.fs.delay("uuid_exists", 10*commandTimeout)
	took = e.Fault("1002", "RetrieveCall", pbxtest.ConnID("callToBeRetrieved", -1), "resourceOutOfService")
	t.Logf("RetrieveCall with uuid_exists answered %s late: fault after %s", 10*commandTimeout, took)
	if took < commandTimeout || took > 2*time.Second {
		t.Errorf("fault after %s, want it from the %s command timeout", took, commandTimeout)
	}
	rebuilt := e.WaitReconnects(1)
	t.Logf("session rebuilt %s after the fault", rebuilt)
	// The call survived without a word: the next action URL is the retrieve's.
	e.OK("1002", "RetrieveCall", pbxtest.ConnID("callToBeRetrieved", -1))
	e.sink.Expect(t, "1002", "unhold:-1")

	// A bgapi whose job result is late: MakeCall gives up after the
	// timeout, and the connection is not at fault (its reply came at once).
	e.fs.fail("originate", fakeesl.Reply{Body: "-ERR NORMAL_TEMPORARY_FAILURE\n", Delay: 10 * commandTimeout})
	took = e.Fault("1001", "MakeCall", makeCallTo("1001", "1003"), "resourceOutOfService")
	t.Logf("MakeCall with the originate job %s late: fault after %s", 10*commandTimeout, took)
	if took < commandTimeout || took > 2*time.Second {
		t.Errorf("fault after %s, want it from the %s command timeout", took, commandTimeout)
	}
	// Later requests are fine. The failed MakeCall used up id 2, and put
	// 1001's connected call on hold first, as a Snom does (it stays held).
	e.OK("1001", "MakeCall", makeCallTo("1001", "1003"))
	e.sink.Expect(t, "1001", "hold:1", "outgoing:3")
	if n := e.Reconnects(); n != 1 {
		t.Errorf("%d reconnects, want 1 (for the uuid_exists timeout only)", n)
	}
}

// Scenario 4: FreeSWITCH answers a command with an error (texts as in
// traces/freeswitch/g_errors.log).
func TestE2EErrorReplies(t *testing.T) {
	e := startBridge(t, nil)
	call := e.connectedCall(1, -1)

	cases := []struct {
		name, ext, service, inner string
		prefix, reply, code       string
	}{
		{"hold, uuid_hold fails", "1002", "HoldCall", pbxtest.ConnID("callToBeHeld", -1),
			"uuid_hold", "-ERR Operation failed\n", "requestIncompatibleWithObject"},
		{"clear connection, channel unknown", "1002", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", -1),
			"uuid_kill", "-ERR No such channel!\n", "invalidConnectionID"},
		{"single step transfer refused", "1002", "SingleStepTransferCall",
			pbxtest.ConnID("activeCall", -1) + "<csta:transferredTo>1003</csta:transferredTo>",
			"uuid_transfer", "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n", "requestIncompatibleWithObject"},
		{"make call, phone not registered", "1003", "MakeCall", makeCallTo("1003", "1001"),
			"originate", "-ERR USER_NOT_REGISTERED\n", "invalidCallingDeviceID"},
		{"make call, temporary failure", "1003", "MakeCall", makeCallTo("1003", "1001"),
			"originate", "-ERR NORMAL_TEMPORARY_FAILURE\n", "resourceOutOfService"},
	}
	for _, c := range cases {
		n := len(e.srv.Commands())
		e.fs.fail(c.prefix, fakeesl.Reply{Body: c.reply})
		e.Fault(c.ext, c.service, c.inner, c.code)
		hit := false
		for _, cmd := range e.srv.Commands()[n:] {
			hit = hit || strings.HasPrefix(cmd, "api "+c.prefix) || strings.HasPrefix(cmd, "bgapi "+c.prefix)
		}
		if !hit {
			t.Fatalf("%s: the failing command was never sent", c.name)
		}
		// FreeSWITCH's side is as before.
		if !e.fs.live(call.id(holdA)) || !e.fs.live(call.id(holdB)) {
			t.Fatalf("%s: the call's channels are gone", c.name)
		}
	}
	// The bridge's side too: no reconnect, -1 still connected (HoldCall
	// accepts only a connected call), and no action URL for the failures.
	if n := e.Reconnects(); n != 0 {
		t.Errorf("error replies cost the connection: %d reconnects", n)
	}
	e.OK("1002", "HoldCall", pbxtest.ConnID("callToBeHeld", -1))
	e.sink.Expect(t, "1002", "hold:-1")
	e.OK("1002", "RetrieveCall", pbxtest.ConnID("callToBeRetrieved", -1))
	e.sink.Expect(t, "1002", "unhold:-1")
	e.OK("1002", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", -1))
	e.sink.Expect(t, "1002", "disconnected:-1", "onhook")
	e.sink.Expect(t, "1001", "disconnected:1", "onhook")
}
