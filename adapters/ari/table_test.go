package ari

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// TestTableRealAsterisk plays the scenario table (internal/pbxtest) on a
// real Asterisk with test phones, through the whole bridge. It runs when
// CSTA_TEST_ARI_URL is set (README.md, "Integration test against a real
// Asterisk"); CSTA_TEST_ARI_OUTSIDE names the dialplan extension@context
// a Local channel plays for calls from outside (default 602@tests, music).
func TestTableRealAsterisk(t *testing.T) {
	env := realAsteriskEnv(t)
	b, phones, rest := startRealBridge(t, env, nil)
	outside := os.Getenv("CSTA_TEST_ARI_OUTSIDE")
	if outside == "" {
		outside = "602@tests"
	}
	exten, octx, _ := strings.Cut(outside, "@")
	rig := &pbxtest.SIPRig{B: b, Exts: env.exts, Phones: phones,
		Outside: func(ctx context.Context, ext string) error {
			return rest.do(ctx, http.MethodPost, "/channels", url.Values{
				"endpoint": {"Local/" + ext + "@" + env.context}, "context": {octx}, "extension": {exten}, "priority": {"1"},
				"callerId": {"Outside <+4930123456>"}}, nil)
		},
		// The test dialplan's applications (tests context, reached from
		// the phones' context).
		Apps:      realAsteriskApps(),
		Lacking:   map[pbxtest.Need]string{},
		Leftovers: func(ctx context.Context) (string, error) { return rest.leftovers(ctx, env.exts[:]...) },
		Clear:     func(ctx context.Context) error { return rest.clear(ctx, env.exts[:]...) },
	}
	if env.nats != "" {
		rig.Quirks = append(rig.Quirks, pbxtest.QuirkStasisWhileAway)
	}
	pbxtest.RunTable(t, rig, pbxtest.Scenarios)
}

// startRealBridge starts the bridge on the real Asterisk env names, with a
// test phone registered for each extension; tune, if not nil, adjusts the
// adapter's options.
func startRealBridge(t *testing.T, env realAsterisk, tune func(*Options)) (*pbxtest.Bridge, [3]*testphone.Phone, *ariREST) {
	if env.nats != "" {
		return startRealProxyBridge(t, env, tune)
	}
	b, phones := pbxtest.StartReal(t, pbxtest.RealSetup{Exts: env.exts, Registrar: env.sip, Password: env.sipPass,
		EndpointPrefix: "PJSIP/", Bridge: pbxtest.BridgeSetup{
			PBX: fmt.Sprintf("  type: ari\n  ari: {url: %q, username: %q, password: %q, application: %q, context: %q}\n",
				env.url, env.user, env.pass, env.app, env.context),
			Domain: "127.0.0.1",
			NewPBX: func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
				o := Options{URL: cfg.PBX.ARI.URL, Username: cfg.PBX.ARI.Username, Password: cfg.PBX.ARI.Password,
					Application: cfg.PBX.ARI.Application, Context: cfg.PBX.ARI.Context, Logger: log,
					AnswerTimeout: 2 * time.Second} // the "phone ignores auto-answer" row waits for it
				if tune != nil {
					tune(&o)
				}
				return New(o)
			},
		}})
	return b, phones, &ariREST{root: env.url, user: env.user, pass: env.pass, http: &http.Client{Timeout: 5 * time.Second}}
}

// startRealProxyBridge is startRealBridge through the ari-proxy that relays
// the real Asterisk on the NATS CSTA_TEST_ARI_NATS names (a cluster of
// one: pbx.ari.nats).
func startRealProxyBridge(t *testing.T, env realAsterisk, tune func(*Options)) (*pbxtest.Bridge, [3]*testphone.Phone, *ariREST) {
	b, phones := pbxtest.StartReal(t, pbxtest.RealSetup{Exts: env.exts, Registrar: env.sip, Password: env.sipPass,
		EndpointPrefix: "PJSIP/", Bridge: pbxtest.BridgeSetup{
			PBX: fmt.Sprintf("  type: ari\n  ari: {nats: {url: %q}, application: %q, context: %q}\n",
				env.nats, env.app, env.context),
			Domain: "127.0.0.1",
			NewPBX: func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
				o := Options{Application: cfg.PBX.ARI.Application, Context: cfg.PBX.ARI.Context, Logger: log,
					AnswerTimeout: 2 * time.Second}
				if tune != nil {
					tune(&o)
				}
				return NewProxyCluster(ProxyOptions{Options: o, NATSURL: cfg.PBX.ARI.NATS.URL})
			},
		}})
	return b, phones, &ariREST{root: env.url, user: env.user, pass: env.pass, http: &http.Client{Timeout: 5 * time.Second}}
}

// realAsteriskApps: the test dialplan's application numbers (README.md,
// "Integration test against a real Asterisk"); a conference room or an IVR
// that hands callers over is played only where its variable names one.
func realAsteriskApps() map[string]string {
	apps := map[string]string{pbxtest.AppEcho: "600", pbxtest.AppMusic: "602"}
	if n := os.Getenv("CSTA_TEST_ARI_CONFERENCE"); n != "" {
		apps[pbxtest.AppConference] = n
	}
	if n := os.Getenv("CSTA_TEST_ARI_IVR"); n != "" {
		apps[pbxtest.AppTransfer] = n
	}
	return apps
}

// realAsterisk is the integration tests' view of the environment.
type realAsterisk struct {
	url, user, pass, app, context, sip, sipPass string
	// nats, when set, is where an ari-proxy relays this Asterisk: the
	// bridge reaches it through the proxy (url still serves the rig's
	// own checks).
	nats string
	exts [3]string
}

func realAsteriskEnv(t *testing.T) realAsterisk {
	t.Helper()
	e := realAsterisk{url: os.Getenv("CSTA_TEST_ARI_URL"), user: os.Getenv("CSTA_TEST_ARI_USER"),
		pass: os.Getenv("CSTA_TEST_ARI_PASS"), app: os.Getenv("CSTA_TEST_ARI_APP"),
		context: os.Getenv("CSTA_TEST_ARI_CONTEXT"), sip: os.Getenv("CSTA_TEST_ARI_SIP"),
		sipPass: os.Getenv("CSTA_TEST_ARI_SIP_PASS"), exts: pbxtest.EnvExtensions(t, "CSTA_TEST_ARI_EXTENSIONS"),
		nats: os.Getenv("CSTA_TEST_ARI_NATS")}
	if e.url == "" {
		t.Skip("CSTA_TEST_ARI_URL not set: no Asterisk to test against")
	}
	if e.sip == "" {
		t.Fatal("CSTA_TEST_ARI_SIP must name Asterisk's PJSIP UDP transport (host:port) the test phones register with")
	}
	if e.app == "" {
		e.app = "csta-bridge"
	}
	if e.context == "" {
		e.context = "from-internal"
	}
	return e
}

// ariREST is plain HTTP to ARI for what the rig checks and does behind
// the bridge's back, independent of the adapter under test.
type ariREST struct {
	root, user, pass string
	http             *http.Client
}

func (r *ariREST) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := strings.TrimSuffix(r.root, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(r.user, r.pass)
	resp, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

type ariObject struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	ChannelIDs []string `json:"channels"`
	Caller     struct {
		Number string `json:"number"`
	} `json:"caller"`
}

func (o ariObject) String() string { return o.Name + "(" + o.ID + ")" }

// lists lists Asterisk's channels of the extensions (their phones', Local
// channels to them, calls from them) and the bridges those are in or that
// are empty: other calls on a shared Asterisk are none of the test's
// business. No extension given: everything.
func (r *ariREST) lists(ctx context.Context, exts ...string) (chans, bridges []ariObject, err error) {
	var allChans, allBridges []ariObject
	if err = r.do(ctx, http.MethodGet, "/channels", nil, &allChans); err != nil {
		return nil, nil, err
	}
	if err = r.do(ctx, http.MethodGet, "/bridges", nil, &allBridges); err != nil {
		return nil, nil, err
	}
	ours := map[string]bool{}
	for _, c := range allChans {
		if len(exts) == 0 || slices.ContainsFunc(exts, func(e string) bool {
			return strings.Contains(c.Name, "/"+e+"-") || strings.Contains(c.Name, "/"+e+"@") || c.Caller.Number == e
		}) {
			ours[c.ID] = true
			chans = append(chans, c)
		}
	}
	for _, b := range allBridges {
		if len(exts) == 0 || len(b.ChannelIDs) == 0 || slices.ContainsFunc(b.ChannelIDs, func(id string) bool { return ours[id] }) {
			bridges = append(bridges, b)
		}
	}
	return chans, bridges, nil
}

// leftovers lists what Asterisk has of the extensions ("" when nothing).
func (r *ariREST) leftovers(ctx context.Context, exts ...string) (string, error) {
	chans, bridges, err := r.lists(ctx, exts...)
	if err != nil || len(chans)+len(bridges) == 0 {
		return "", err
	}
	return fmt.Sprintf("channels %v, bridges %v", chans, bridges), nil
}

// clear hangs up the extensions' channels and destroys their bridges.
func (r *ariREST) clear(ctx context.Context, exts ...string) error {
	chans, bridges, err := r.lists(ctx, exts...)
	if err != nil {
		return err
	}
	for _, c := range chans {
		_ = r.do(ctx, http.MethodDelete, "/channels/"+c.ID, nil, nil)
	}
	for _, b := range bridges {
		_ = r.do(ctx, http.MethodDelete, "/bridges/"+b.ID, nil, nil)
	}
	return nil
}
