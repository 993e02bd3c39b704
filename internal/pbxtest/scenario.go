package pbxtest

// The scenario table: every behaviour the bridge promises a CTI client is
// a row (Scenarios, rows.go) that plays the same way on every PBX — the
// simulator, the fake Asterisk and fake FreeSWITCH in CI, a real Asterisk
// and FreeSWITCH with test phones when their variables are set. A row is a
// list of steps a CTI user and the phones' users would take (a phone
// dials, a CSTA request, the action URLs that must follow, the state a
// phone must reach); a Rig is one PBX with the bridge running on it and
// the three phones of extensions A, B and C.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Role names one of the three extensions a row uses; each rig maps them
// to its own extension numbers.
type Role int

// The three extensions of every row.
const (
	A Role = iota
	B
	C
)

var roleNames = [...]string{"A", "B", "C"}

func (r Role) String() string { return roleNames[r] }

// Showing is what a phone shows, as far as rows look at it.
type Showing int

// The phone states rows wait for.
const (
	Idle      Showing = iota // no call at all
	Ringing                  // a call rings
	Dialing                  // the phone placed a call the far end has not answered
	Connected                // a call is answered (on a PBX-side hold too: the phone does not know)
	Held                     // the phone itself holds a call
)

var showingNames = [...]string{"idle", "ringing", "dialing", "connected", "held"}

func (s Showing) String() string { return showingNames[s] }

// Phone is the desk phone of one extension, as its user works it (never
// through the bridge).
type Phone interface {
	// Dial places a call to number (an extension number).
	Dial(ctx context.Context, number string) error
	// Answer picks up the ringing call.
	Answer(ctx context.Context) error
	// Hangup ends the phone's newest call that is not over.
	Hangup(ctx context.Context) error
	// Hold and Unhold hold and resume the phone's connected call itself.
	Hold(ctx context.Context) error
	Unhold(ctx context.Context) error
	// Wait returns once the phone shows want: Idle when it has no call,
	// otherwise when one of its calls is in that state.
	Wait(ctx context.Context, want Showing) error
}

// Need is something a row needs that not every rig can play.
type Need string

// What rows may need.
const (
	// NeedIgnoreAutoAnswer: a phone that rings although the PBX asks it
	// to answer by itself (its auto-answer policy is off).
	NeedIgnoreAutoAnswer Need = "a phone that ignores auto-answer"
	// NeedOutsideCaller: the PBX itself places a call to an extension from
	// a party that is no mapped phone (an outside line, an IVR, a loopback
	// or Local channel).
	NeedOutsideCaller Need = "calls from a party that is no mapped phone"
	// NeedDialplan: a number the bridge dials (MakeCall, a transfer's
	// target) reaches the extension's phone through the PBX's dialplan.
	NeedDialplan Need = "numbers dialled by the bridge reach the phones through the dialplan"
	// NeedRestartTakeover: a restarted bridge finds the live calls with
	// their csta_ids and takes them over (issue 19).
	NeedRestartTakeover Need = "a restarted bridge takes live calls over with their csta_ids"
	// NeedSweep: the rig lists what the PBX keeps of the calls
	// (PBXLister), so rows can check that nothing of a call that ended
	// while the bridge was stopped is left after its start (issue 20).
	NeedSweep Need = "the PBX's leftovers of calls can be listed"
)

// Kinds of dialplan applications rows dial (Rig.Application).
const (
	AppEcho       = "echo"
	AppMusic      = "music on hold"
	AppConference = "conference room"
)

// Quirk is a way a PBX, as commonly configured, differs from a bare
// phone-to-phone call; rows branch on it with If and Unless.
type Quirk string

// The quirks rows know.
const (
	// QuirkVoicemailOnReject: the dialplan sends a call the phone refused
	// or did not answer to voicemail, which answers the caller
	// (FreeSWITCH's vanilla Local_Extension).
	QuirkVoicemailOnReject Quirk = "refused calls go to voicemail"
	// QuirkStasisWhileAway: the bridge's Stasis application stays
	// registered while the bridge is away (an ari-proxy holds it), so a
	// call routed meanwhile waits in Stasis, the phone not ringing, until
	// the returning bridge routes it.
	QuirkStasisWhileAway Quirk = "calls wait in Stasis while the bridge is away"
)

// Rig is one PBX with the bridge running on it.
type Rig interface {
	// Ext is the extension number of a role.
	Ext(r Role) string
	// Phone is the desk phone of a role's extension.
	Phone(r Role) Phone
	// Bridge talks to the bridge's /csta and admin listeners.
	Bridge() *BridgeClient
	// Sink receives the bridge's action URLs (configured with ConfigAll).
	Sink() *ActionSink
	// Lacks says why the rig cannot play rows that need n; "" when it can.
	Lacks(n Need) string
	// Has says whether the PBX behind the rig has quirk q.
	Has(q Quirk) bool
	// Application is the number of a dialplan application of kind (one of
	// the App constants) on the PBX, "" when the rig has none.
	Application(kind string) string
	// OutsideCall has the PBX call ext from a party that is no mapped
	// phone, which answers when the extension does and never hangs up by
	// itself (only for rigs without Lacks(NeedOutsideCaller)).
	OutsideCall(ctx context.Context, ext string) error
	// SetIgnoreAutoAnswer switches a phone's auto-answer policy off or on
	// (only for rigs without Lacks(NeedIgnoreAutoAnswer)).
	SetIgnoreAutoAnswer(r Role, ignore bool)
	// Bridge itself, to stop and start it as an admin restarts it.
	Process() *Bridge
	// Settle ends every call the row left (hanging up the phones and the
	// PBX's own parties) and returns once the PBX has nothing of them
	// left; it reports what would not go as a test error.
	Settle(t testing.TB, ctx context.Context)
}

// Scenario is one row of the table.
type Scenario struct {
	Name  string
	Needs []Need
	// Apps are the kinds of dialplan application the row dials; a rig
	// without one of them skips the row.
	Apps []string
	// Repeat plays the steps this many times in a row on the same calls'
	// bridge (0 is once): races show on the second run, not the first.
	Repeat int
	Steps  []Step
}

// Step is one thing that happens in a row.
type Step interface {
	do(p *play)
	String() string
}

// play is one row being played on a rig.
type play struct {
	t   testing.TB
	ctx context.Context
	rig Rig
	// ids are the csta_ids the row has learned, by label ("a1"): a label
	// is bound by the first action URL or response that carries it and
	// checked against every later one.
	ids  map[string]bound
	step int
	// last is the action URL each extension's last URLWith took (Again).
	last map[Role]Hit
}

// bound is a label's csta_id and the extension it belongs to: ids are
// per extension, so two extensions may both have -1.
type bound struct {
	role Role
	id   string
}

// stepWait bounds one row: a real PBX on a shared machine is slow, and a
// hung step must fail rather than hang the suite.
const stepWait = 60 * time.Second

// RunTable plays every row on the rig, each as a subtest. A row the rig
// cannot play is skipped with the reason.
func RunTable(t *testing.T, rig Rig, rows []Scenario) {
	t.Helper()
	for _, sc := range rows {
		t.Run(sc.Name, func(t *testing.T) {
			for _, n := range sc.Needs {
				if why := lacks(rig, n); why != "" {
					t.Skipf("needs %s: %s", n, why)
				}
			}
			for _, kind := range sc.Apps {
				if rig.Application(kind) == "" {
					t.Skipf("needs a %s to dial: the rig names none", kind)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), stepWait)
			defer cancel()
			if sc.Repeat <= 1 {
				playRow(t, ctx, rig, sc.Steps)
				return
			}
			for i := range sc.Repeat {
				if !t.Run(fmt.Sprintf("run %d", i+1), func(t *testing.T) { playRow(t, ctx, rig, sc.Steps) }) {
					return
				}
			}
		})
	}
}

func playRow(t *testing.T, ctx context.Context, rig Rig, steps []Step) {
	p := &play{t: t, ctx: ctx, rig: rig, ids: map[string]bound{}, last: map[Role]Hit{}}
	defer settle(t, rig)
	defer startIfStopped(rig)
	p.steps(steps)
}

// startIfStopped starts the bridge again when a row ended while it was
// stopped (it failed between BridgeStops and BridgeStarts): left stopped,
// it would fail every row after it.
func startIfStopped(rig Rig) {
	if b := rig.Process(); b != nil && b.App == nil {
		b.Start()
	}
}

func (p *play) steps(steps []Step) {
	p.t.Helper()
	for _, s := range steps {
		p.step++
		s.do(p)
	}
}

// settle ends what the row left and checks that the bridge was quiet:
// once the PBX and the bridge have no calls and no action URL is queued,
// every URL the row caused has reached the sink, so one the row did not
// expect is an error (when the row passed; a failed row's leftovers are
// only logged).
func settle(t *testing.T, rig Rig) {
	ctx, cancel := context.WithTimeout(context.Background(), stepWait)
	defer cancel()
	rig.Settle(t, ctx)
	rig.Bridge().WaitQuiet()
	var extra []string
	for _, r := range []Role{A, B, C} {
		for _, h := range rig.Sink().Drain(rig.Ext(r)) {
			extra = append(extra, r.String()+" "+h.String())
		}
	}
	if len(extra) == 0 {
		return
	}
	if t.Failed() {
		t.Logf("action URLs after the failed row: %s", strings.Join(extra, ", "))
		return
	}
	t.Errorf("action URLs the row did not expect: %s", strings.Join(extra, ", "))
}

func (p *play) fatalf(format string, args ...any) {
	p.t.Helper()
	p.t.Fatalf("step %d: "+format, append([]any{p.step}, args...)...)
}

// bind learns or checks the csta_id of a label of role r's extension.
func (p *play) bind(r Role, label, id, what string) {
	p.t.Helper()
	if label == "" {
		return
	}
	if id == "" {
		p.fatalf("%s: no csta_id for %s", what, label)
	}
	if have, ok := p.ids[label]; ok {
		if have.role != r || have.id != id {
			p.fatalf("%s: %s csta_id %s, but %s was %s's %s", what, r, id, label, have.role, have.id)
		}
		return
	}
	for l, have := range p.ids {
		if have.role == r && have.id == id {
			p.fatalf("%s: %s csta_id %s for %s is already %s's", what, r, id, label, l)
		}
	}
	p.ids[label] = bound{role: r, id: id}
}

// id is the csta_id a label was bound to.
func (p *play) id(label string) string {
	p.t.Helper()
	b, ok := p.ids[label]
	if !ok {
		p.fatalf("csta_id %s used before any URL or response carried it", label)
	}
	return b.id
}
