package ari

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// startFakeSweepRig is the table's fake Asterisk rig on a fake whose
// dialplan has no hangup handler: what a call leaves while the bridge is
// stopped stays until the returning bridge sweeps it.
func startFakeSweepRig(t *testing.T) (*fakeAsteriskRig, *fakeari.Server) {
	t.Helper()
	exts := [3]string{"1001", "1002", "1003"}
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: []string{"PJSIP/1001", "PJSIP/1002", "PJSIP/1003"}, Route: true})
	t.Cleanup(f.Close)
	fo := f.Options()
	b := pbxtest.StartBridge(t, pbxtest.BridgeSetup{
		PBX: fmt.Sprintf("  type: ari\n  ari: {url: %q, username: %q, password: %q, application: %q, context: from-internal}\n",
			f.URL, fo.User, fo.Pass, fo.App),
		Exts: map[string]string{"1001": "PJSIP/1001", "1002": "PJSIP/1002", "1003": "PJSIP/1003"}, Domain: "pbx.test",
		Wait: waitLimit,
		NewPBX: func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
			return New(Options{URL: cfg.PBX.ARI.URL, Username: cfg.PBX.ARI.Username, Password: cfg.PBX.ARI.Password,
				Application: cfg.PBX.ARI.Application, Context: cfg.PBX.ARI.Context, Logger: log,
				RequestTimeout: 3 * time.Second, AnswerTimeout: 2 * time.Second}) // a loaded CI machine answers late
		},
	})
	rig := &fakeAsteriskRig{f: f, b: b, exts: exts, ignore: map[string]bool{}, held: map[string]bool{}, picked: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rig.autoAnswer(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return rig, f
}

// TestSweepFakeAsteriskWithoutHandler plays the sweep rows (issue 20) on
// a dialplan without [csta-bridge-hangup]: the returning bridge alone
// removes the other side, the Local channels and the bridges.
func TestSweepFakeAsteriskWithoutHandler(t *testing.T) {
	rig, _ := startFakeSweepRig(t)
	pbxtest.RunTable(t, rig, pbxtest.SweepRows)
}

// TestSweepCountedInMetrics: the caller left alone by a routed call whose
// callee hung up while the bridge was stopped is hung up by the started
// bridge with normal clearing, its bridge is destroyed, both show in
// /metrics, and the CTI software hears of both ends once.
func TestSweepCountedInMetrics(t *testing.T) {
	rig, f := startFakeSweepRig(t)
	b := rig.b
	caller := f.PhoneDials("PJSIP/1002", "1001")
	callee := waitChannel(t, f, func(c fakeari.Channel) bool { return c.Endpoint == "PJSIP/1001" && c.State == "Ringing" })
	if err := f.Answer(callee.ID); err != nil {
		t.Fatal(err)
	}
	b.Sink.Expect(t, "1001", "incoming", "offhook", "connected")
	b.Sink.Expect(t, "1002", "offhook", "outgoing", "connected")
	b.Stop()
	if err := f.Hangup(callee.ID, 16); err != nil {
		t.Fatal(err)
	}
	if f.Channel(caller) == nil || len(f.Bridges()) != 1 {
		t.Fatalf("before the start: caller %+v, bridges %v; want the caller alone in its bridge", f.Channel(caller), f.Bridges())
	}
	b.Start()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for f.Leftovers() != "" {
		changed := f.Changed()
		if f.Leftovers() == "" {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("after the start: %s", f.Leftovers())
		}
	}
	r, ok := lastRequest(f, "DELETE", "/channels/"+caller)
	if !ok || r.Params["reason"] != "normal" {
		t.Errorf("caller's hang-up %+v, want reason normal", r)
	}
	if got := b.Metric(`csta_bridge_pbx_swept_total{what="channel"}`); got != 1 {
		t.Errorf("swept channels %v, want 1", got)
	}
	if got := b.Metric(`csta_bridge_pbx_swept_total{what="bridge"}`); got != 1 {
		t.Errorf("swept bridges %v, want 1", got)
	}
	b.Sink.Expect(t, "1002", "disconnected", "onhook")
	b.Sink.Expect(t, "1001", "disconnected", "onhook")
}

// waitChannel waits for a channel of the fake that ok accepts.
func waitChannel(t *testing.T, f *fakeari.Server, ok func(fakeari.Channel) bool) fakeari.Channel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for {
		changed := f.Changed()
		for _, c := range f.Channels() {
			if ok(c) {
				return c
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("no such channel among %+v", f.Channels())
		}
	}
}

// TestSweepLeavesOtherApplications: a channel of another bridge's
// application on the same Asterisk, alone in its call by the variables
// both bridges write, is neither taken over nor swept by a starting bridge.
func TestSweepLeavesOtherApplications(t *testing.T) {
	rig, f := startFakeSweepRig(t)
	other := f.OtherAppChannel("PJSIP/carrier", "csta-other", map[string]string{varCall: "csta-call-1-1", varLeg: "x,in"})
	n := len(f.Requests())
	rig.b.Stop()
	rig.b.Start()
	if f.Channel(other) == nil {
		t.Fatal("the other application's channel was hung up")
	}
	for _, r := range f.Requests()[n:] {
		if strings.Contains(r.Path, other) && r.Method != "GET" {
			t.Errorf("request on the other application's channel: %s %v", r, r.Params)
		}
	}
	_ = f.Hangup(other, 16)
}
