package ari

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// TestTableFakeAsteriskProxy plays the scenario table through the whole
// bridge on a fake Asterisk behind ari-proxy over NATS (pbx.ari.nats): every
// service through the cluster adapter's proxy transport, with the
// configuration an Asterisk cluster has.
func TestTableFakeAsteriskProxy(t *testing.T) {
	exts := [3]string{"1001", "1002", "1003"}
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: []string{"PJSIP/1001", "PJSIP/1002", "PJSIP/1003", "PJSIP/carrier"},
		HangupContext: "csta-bridge-hangup", Route: true, Apps: fakeAsteriskApps, EntityID: "ast1"})
	t.Cleanup(f.Close)
	n := startTestNATS(t)
	startTestProxy(t, f, n.url())
	b := pbxtest.StartBridge(t, pbxtest.BridgeSetup{
		PBX:  fmt.Sprintf("  type: ari\n  ari: {nats: {url: %q}, nodes: [ast1], application: csta-bridge, context: from-internal}\n", n.url()),
		Exts: map[string]string{"1001": "PJSIP/1001", "1002": "PJSIP/1002", "1003": "PJSIP/1003"}, Domain: "pbx.test",
		Wait: waitLimit,
		NewPBX: func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
			return NewProxyCluster(ProxyOptions{
				Options: Options{Application: cfg.PBX.ARI.Application, Context: cfg.PBX.ARI.Context, Logger: log,
					RequestTimeout: 3 * time.Second, AnswerTimeout: 2 * time.Second},
				NATSURL: cfg.PBX.ARI.NATS.URL, Nodes: cfg.PBX.ARI.Nodes})
		},
	})
	rig := &fakeAsteriskRig{f: f, b: b, exts: exts, proxied: true, ignore: map[string]bool{}, held: map[string]bool{},
		picked: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rig.autoAnswer(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	pbxtest.RunTable(t, rig, pbxtest.Scenarios)
}
