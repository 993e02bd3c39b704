package pbxtest

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// SIPRig plays the table on a real PBX: the bridge runs on it, and test
// phones registered with it are the extensions' desk phones. The PBX
// specifics are three functions.
type SIPRig struct {
	B      *Bridge
	Exts   [3]string
	Phones [3]*testphone.Phone
	// Outside has the PBX call ext from a channel that is no phone; nil
	// when the rig cannot.
	Outside func(ctx context.Context, ext string) error
	// Leftovers describes what the PBX still has (channels, bridges);
	// "" when nothing.
	Leftovers func(ctx context.Context) (string, error)
	// Clear ends everything the PBX still has, after the phones hung up.
	Clear func(ctx context.Context) error
	// Lacking names rows the rig cannot play, and why.
	Lacking map[Need]string
	// Quirks are the PBX's.
	Quirks []Quirk
	// Apps are the numbers of the dialplan applications, by kind.
	Apps map[string]string
}

var _ Rig = (*SIPRig)(nil)

// Ext is a role's extension.
func (r *SIPRig) Ext(x Role) string { return r.Exts[x] }

// Phone is the test phone of a role's extension.
func (r *SIPRig) Phone(x Role) Phone { return SIPPhone{P: r.Phones[x]} }

// Bridge is the client of the bridge's listeners.
func (r *SIPRig) Bridge() *BridgeClient { return r.B.BridgeClient }

// Sink is the bridge's CTI server.
func (r *SIPRig) Sink() *ActionSink { return r.B.Sink }

// Process is the bridge.
func (r *SIPRig) Process() *Bridge { return r.B }

// Application is the number of a dialplan application of kind.
func (r *SIPRig) Application(kind string) string { return r.Apps[kind] }

// Lacks: test phones can do everything; calls from outside need Outside.
func (r *SIPRig) Lacks(n Need) string {
	if why := r.Lacking[n]; why != "" {
		return why
	}
	if n == NeedOutsideCaller && r.Outside == nil {
		return "the rig has no way to make the PBX call by itself"
	}
	if n == NeedSweep && r.Leftovers == nil {
		return "the rig cannot list what the PBX keeps"
	}
	return ""
}

// PBXLeftovers is what the PBX still has (Leftovers).
func (r *SIPRig) PBXLeftovers(ctx context.Context) (string, error) {
	if r.Leftovers == nil {
		return "", errors.New("the rig cannot list what the PBX keeps")
	}
	return r.Leftovers(ctx)
}

// Has says whether the PBX has quirk q.
func (r *SIPRig) Has(q Quirk) bool { return slices.Contains(r.Quirks, q) }

// SetIgnoreAutoAnswer switches the test phone's auto-answer policy.
func (r *SIPRig) SetIgnoreAutoAnswer(x Role, ignore bool) {
	r.Phones[x].SetIgnoreAutoAnswerHeaders(ignore)
}

// OutsideCall has the PBX call ext.
func (r *SIPRig) OutsideCall(ctx context.Context, ext string) error {
	if r.Outside == nil {
		return errors.New("no outside calls on this rig")
	}
	return r.Outside(ctx, ext)
}

// Settle hangs up the phones, then waits until the PBX has nothing left;
// what is still there after a grace period is cleared and reported.
func (r *SIPRig) Settle(t testing.TB, ctx context.Context) {
	for i, p := range r.Phones {
		r.Phones[i].SetIgnoreAutoAnswerHeaders(false)
		if err := (SIPPhone{P: p}).HangupAll(ctx); err != nil {
			t.Errorf("settle: %v", err)
		}
	}
	// A real PBX takes a moment to tear down what the phones' BYEs ended;
	// its REST and event socket have no "nothing left" notification, so
	// this is the one wait that looks again and again.
	grace, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	left, err := r.waitEmpty(grace)
	if left == "" && err == nil {
		return
	}
	t.Errorf("settle: the PBX still has %s (%v) after the phones hung up", left, err)
	if r.Clear != nil {
		if err := r.Clear(ctx); err != nil {
			t.Errorf("settle: clearing: %v", err)
		}
		if left, err := r.waitEmpty(ctx); left != "" || err != nil {
			t.Errorf("settle: still %s (%v) after clearing", left, err)
		}
	}
}

func (r *SIPRig) waitEmpty(ctx context.Context) (string, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		left, err := r.Leftovers(ctx)
		if left == "" && err == nil {
			return "", nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return left, err
		}
	}
}

// StartPhones registers a test phone for each extension with the PBX's
// SIP registrar; they are closed when the test ends. In password,
// "{ext}" stands for the extension (endpoints whose password is their
// number).
func StartPhones(t testing.TB, exts [3]string, registrar, password string) [3]*testphone.Phone {
	t.Helper()
	var out [3]*testphone.Phone
	for i, ext := range exts {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		p, err := testphone.Start(ctx, testphone.Options{User: ext, Password: strings.ReplaceAll(password, "{ext}", ext), Registrar: registrar,
			Logger: TestLogger(t).With("phone", ext)})
		cancel()
		if err != nil {
			t.Fatalf("test phone %s: %v", ext, err)
		}
		t.Cleanup(func() { _ = p.Close() })
		out[i] = p
	}
	return out
}

// RealSetup is a bridge on a real PBX with test phones for three
// extensions.
type RealSetup struct {
	Exts                [3]string
	Registrar, Password string // the phones' (see StartPhones)
	EndpointPrefix      string // "PJSIP/", "user/"
	Bridge              BridgeSetup
}

// StartReal registers the phones, then starts the bridge with the three
// extensions mapped to EndpointPrefix + number.
func StartReal(t testing.TB, s RealSetup) (*Bridge, [3]*testphone.Phone) {
	t.Helper()
	phones := StartPhones(t, s.Exts, s.Registrar, s.Password)
	for _, p := range phones {
		claimIncoming(t, p)
	}
	s.Bridge.Exts = map[string]string{}
	for _, e := range s.Exts {
		s.Bridge.Exts[e] = s.EndpointPrefix + e
	}
	if s.Bridge.Wait == 0 {
		s.Bridge.Wait = RealWait
	}
	return StartBridge(t, s.Bridge), phones
}

// EnvExtensions reads three comma-separated extensions from the
// environment variable name, or returns the default 1001, 1002, 1003.
func EnvExtensions(t testing.TB, name string) [3]string {
	t.Helper()
	exts := [3]string{"1001", "1002", "1003"}
	v := os.Getenv(name)
	if v == "" {
		return exts
	}
	names := strings.Split(v, ",")
	if len(names) != 3 {
		t.Fatalf("%s=%q: want three extensions, e.g. 1001,1002,1003", name, v)
	}
	for i, n := range names {
		exts[i] = strings.TrimSpace(n)
	}
	return exts
}

// claimIncoming takes every incoming call off the phone's queue as it
// arrives: rows find calls by state (Calls), and a test phone rejects
// calls with 486 once 32 are left unclaimed.
func claimIncoming(t testing.TB, p *testphone.Phone) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := p.Incoming(ctx); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}
