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

// TestTableFakeAsteriskQueues plays the queue and ring-group rows
// (pbxtest.QueueRows, issue 13) on the fake Asterisk, whose queue and ring
// group ring A and B through Local channels into the bridge's route as
// the real one does (fakeari/queue.go, from the captures in testdata).
func TestTableFakeAsteriskQueues(t *testing.T) {
	exts := [3]string{"1001", "1002", "1003"}
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: []string{"PJSIP/1001", "PJSIP/1002", "PJSIP/1003"},
		HangupContext: "csta-bridge-hangup", Route: true})
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
	rig := &fakeQueueRig{&fakeAsteriskRig{f: f, b: b, exts: exts, ignore: map[string]bool{}, held: map[string]bool{}, picked: map[string]bool{}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rig.autoAnswer(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	pbxtest.RunTable(t, rig, pbxtest.QueueRows)
}

// fakeQueueRig is the fake Asterisk rig with a dialplan of three numbers:
// 720 a queue and 730 a ring group of A and B, 740 a call to A with a SIP
// header set.
type fakeQueueRig struct{ *fakeAsteriskRig }

var fakeQueueApps = map[string]string{pbxtest.AppQueue: "720", pbxtest.AppRingGroup: "730", pbxtest.AppHeader: "740"}

func (r *fakeQueueRig) Application(kind string) string { return fakeQueueApps[kind] }

func (r *fakeQueueRig) Phone(x pbxtest.Role) pbxtest.Phone {
	return fakeQueuePhone{fakePhone{r.fakeAsteriskRig, "PJSIP/" + r.exts[x]}, r}
}

// fakeQueuePhone dials the rig's numbers as the dialplan would play them.
type fakeQueuePhone struct {
	fakePhone
	rig *fakeQueueRig
}

var _ pbxtest.HeaderPhone = fakeQueuePhone{}

func (p fakeQueuePhone) Dial(ctx context.Context, number string) error {
	a, b := p.rig.exts[pbxtest.A], p.rig.exts[pbxtest.B]
	switch number {
	case fakeQueueApps[pbxtest.AppQueue]:
		p.r.f.CallRingAll(p.endpoint, number, "Queue", a, b)
	case fakeQueueApps[pbxtest.AppRingGroup]:
		p.r.f.CallRingAll(p.endpoint, number, "Dial", a, b)
	case fakeQueueApps[pbxtest.AppHeader]:
		p.r.f.CallWithHeaders(p.endpoint, a, pbxtest.HeaderName+": "+pbxtest.HeaderValue)
	default:
		return p.fakePhone.Dial(ctx, number)
	}
	return nil
}

// RingingHeader is the header the bridge added to the ringing channel's
// INVITE (PJSIP_HEADER(add,…) set on it before the dial).
func (p fakeQueuePhone) RingingHeader(ctx context.Context, name string) (string, error) {
	c, err := p.channel(ctx, pbxtest.Ringing)
	if err != nil {
		return "", err
	}
	return c.Vars["PJSIP_HEADER(add,"+name+")"], nil
}
