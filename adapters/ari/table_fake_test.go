package ari

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// TestTableFakeAsterisk plays the scenario table on the fake Asterisk,
// through the whole bridge: what CI checks of the rows the real Asterisk
// plays (TestTableRealAsterisk).
func TestTableFakeAsterisk(t *testing.T) {
	exts := [3]string{"1001", "1002", "1003"}
	// The dialplan has the snippet's hangup handler (issue 20); the sweep
	// without it is played by TestSweepFakeAsteriskWithoutHandler.
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: []string{"PJSIP/1001", "PJSIP/1002", "PJSIP/1003", "PJSIP/carrier"},
		HangupContext: "csta-bridge-hangup", Route: true, Apps: fakeAsteriskApps})
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
	pbxtest.RunTable(t, rig, pbxtest.Scenarios)
}

// fakeAsteriskApps: the numbers of the real test dialplan
// (README.md, "Integration test against a real Asterisk"; realAsteriskApps).
var fakeAsteriskApps = map[string]fakeari.AppKind{"600": fakeari.AppEcho, "602": fakeari.AppMusic,
	"604": fakeari.AppConference, "78": fakeari.AppTransfer}

// fakeAppKinds names the fake's applications as the scenario table does.
var fakeAppKinds = map[fakeari.AppKind]string{fakeari.AppEcho: pbxtest.AppEcho, fakeari.AppMusic: pbxtest.AppMusic,
	fakeari.AppConference: pbxtest.AppConference, fakeari.AppTransfer: pbxtest.AppTransfer}

// fakeAsteriskRig plays the phones on the fake Asterisk: the fake's
// device events (dial, answer, hang up, hold) stand for what a phone
// does, and a watcher answers the calls whose INVITE asks for auto-answer,
// as the desk phones do.
type fakeAsteriskRig struct {
	f    *fakeari.Server
	b    *pbxtest.Bridge
	exts [3]string

	// proxied: an ari-proxy holds the application's websocket, so a
	// stopped bridge leaves the application registered.
	proxied bool

	mu     sync.Mutex
	ignore map[string]bool // endpoint → rings despite auto-answer headers
	held   map[string]bool // channel id → the phone holds it
	picked map[string]bool // channel ids the watcher answered
}

var _ pbxtest.Rig = (*fakeAsteriskRig)(nil)

func (r *fakeAsteriskRig) Ext(x pbxtest.Role) string     { return r.exts[x] }
func (r *fakeAsteriskRig) Bridge() *pbxtest.BridgeClient { return r.b.BridgeClient }
func (r *fakeAsteriskRig) Sink() *pbxtest.ActionSink     { return r.b.Sink }
func (r *fakeAsteriskRig) Process() *pbxtest.Bridge      { return r.b }
func (r *fakeAsteriskRig) Application(kind string) string {
	for n, k := range fakeAsteriskApps {
		if fakeAppKinds[k] == kind {
			return n
		}
	}
	return ""
}
func (r *fakeAsteriskRig) Has(q pbxtest.Quirk) bool {
	return r.proxied && q == pbxtest.QuirkStasisWhileAway
}
func (r *fakeAsteriskRig) Phone(x pbxtest.Role) pbxtest.Phone {
	return fakePhone{r, "PJSIP/" + r.exts[x]}
}

func (r *fakeAsteriskRig) SetIgnoreAutoAnswer(x pbxtest.Role, ignore bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ignore["PJSIP/"+r.exts[x]] = ignore
}

// Lacks: nothing. The fake's dialplan is the route: a Local channel the
// adapter dials to a mapped extension reaches it (fakeari/leftovers.go),
// and the test dialplan's applications answer (fakeari/apps.go).
func (r *fakeAsteriskRig) Lacks(pbxtest.Need) string { return "" }

// PBXLeftovers lists the fake's channels and bridges.
func (r *fakeAsteriskRig) PBXLeftovers(context.Context) (string, error) { return r.f.Leftovers(), nil }

// OutsideCall: a trunk's channel enters the bridge's route for ext.
func (r *fakeAsteriskRig) OutsideCall(_ context.Context, ext string) error {
	r.f.PhoneDials("PJSIP/carrier", ext)
	return nil
}

// autoAnswer answers every ringing device channel whose originate asked
// for auto-answer (the PJSIP_HEADER variables answer.go sets), unless
// the phone ignores it.
func (r *fakeAsteriskRig) autoAnswer(ctx context.Context) {
	for {
		changed := r.f.Changed()
		for _, c := range r.f.Channels() {
			if c.State != "Ringing" || !autoAnswerAsked(c.Vars) {
				continue
			}
			r.mu.Lock()
			pick := !r.ignore[c.Endpoint] && !r.picked[c.ID]
			r.picked[c.ID] = true
			r.mu.Unlock()
			if pick {
				_ = r.f.Answer(c.ID) // gone meanwhile: nothing to answer
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

func autoAnswerAsked(vars map[string]string) bool {
	for k, v := range vars {
		if strings.HasPrefix(k, "PJSIP_HEADER(add,") && (strings.Contains(v, "answer-after") || strings.Contains(v, "autoanswer")) {
			return true
		}
	}
	return false
}

// Settle hangs up every channel left and waits until the fake has no
// channel and no bridge.
func (r *fakeAsteriskRig) Settle(t testing.TB, ctx context.Context) {
	r.mu.Lock()
	clear(r.ignore)
	r.mu.Unlock()
	for _, c := range r.f.Channels() {
		_ = r.f.Hangup(c.ID, 16)
	}
	for {
		changed := r.f.Changed()
		chans, bridges := r.f.Channels(), r.f.Bridges()
		if len(chans) == 0 && len(bridges) == 0 {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Errorf("settle: the fake Asterisk still has channels %+v, bridges %v", chans, bridges)
			return
		}
	}
}

// fakePhone is the device of one endpoint on the fake Asterisk.
type fakePhone struct {
	r        *fakeAsteriskRig
	endpoint string
}

// shows is what the phone shows for one of its channels.
func (p fakePhone) shows(c fakeari.Channel) pbxtest.Showing {
	switch c.State {
	case "Ring":
		return pbxtest.Dialing
	case "Ringing":
		return pbxtest.Ringing
	case "Up":
		p.r.mu.Lock()
		defer p.r.mu.Unlock()
		if p.r.held[c.ID] {
			return pbxtest.Held
		}
		return pbxtest.Connected
	}
	return pbxtest.Idle
}

// channel waits for a channel of the phone showing one of want, newest first.
func (p fakePhone) channel(ctx context.Context, want ...pbxtest.Showing) (fakeari.Channel, error) {
	for {
		changed := p.r.f.Changed()
		var mine []fakeari.Channel
		for _, c := range p.r.f.Channels() {
			if c.Endpoint == p.endpoint && slices.Contains(want, p.shows(c)) {
				mine = append(mine, c)
			}
		}
		if len(mine) > 0 {
			return mine[len(mine)-1], nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fakeari.Channel{}, fmt.Errorf("%s has no channel %v: %w", p.endpoint, want, ctx.Err())
		}
	}
}

func (p fakePhone) Dial(ctx context.Context, number string) error {
	// A stopped bridge's websocket may still be closing: the snippet's
	// fallback (a plain call) applies once Asterisk has noticed.
	for p.r.b.App == nil && !p.r.proxied {
		changed := p.r.f.Changed()
		if !p.r.f.Connected() {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("the fake Asterisk still has the stopped bridge's websocket: %w", ctx.Err())
		}
	}
	p.r.f.PhoneDials(p.endpoint, number)
	return nil
}

func (p fakePhone) Answer(ctx context.Context) error {
	c, err := p.channel(ctx, pbxtest.Ringing)
	if err != nil {
		return err
	}
	return p.r.f.Answer(c.ID)
}

func (p fakePhone) Hangup(ctx context.Context) error {
	c, err := p.channel(ctx, pbxtest.Connected, pbxtest.Held, pbxtest.Ringing, pbxtest.Dialing)
	if err != nil {
		return err
	}
	cause := 16
	if c.State == "Ringing" {
		cause = 17 // a phone refuses a ringing call with 486 Busy Here, as the test phones do
	}
	return p.r.f.Hangup(c.ID, cause)
}

func (p fakePhone) Hold(ctx context.Context) error { return p.hold(ctx, pbxtest.Connected, true) }

func (p fakePhone) Unhold(ctx context.Context) error { return p.hold(ctx, pbxtest.Held, false) }

func (p fakePhone) hold(ctx context.Context, from pbxtest.Showing, on bool) error {
	c, err := p.channel(ctx, from)
	if err != nil {
		return err
	}
	p.r.mu.Lock()
	p.r.held[c.ID] = on
	p.r.mu.Unlock()
	return p.r.f.PhoneHold(c.ID, on)
}

func (p fakePhone) Wait(ctx context.Context, want pbxtest.Showing) error {
	if want != pbxtest.Idle {
		_, err := p.channel(ctx, want)
		return err
	}
	for {
		changed := p.r.f.Changed()
		var left []string
		for _, c := range p.r.f.Channels() {
			if c.Endpoint == p.endpoint {
				left = append(left, c.State)
			}
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%s still has channels %v: %w", p.endpoint, left, ctx.Err())
		}
	}
}
