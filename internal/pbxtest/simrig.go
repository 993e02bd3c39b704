package pbxtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// SimRig plays the table on the built-in simulator through its control
// API (what /sim/ on the admin listener serves, called in-process so that
// the phones work on while the bridge is stopped). The simulator's state
// changes only on requests, so a phone shows what it shows as soon as the
// request that changed it answered: Wait looks once.
type SimRig struct {
	B       *Bridge
	Exts    [3]string
	control http.Handler
}

// NewSimRig wraps a bridge started on the simulator with the three
// extensions; control is the simulator's control API handler. The
// bridge's NewPBX must hand every bridge it starts the same simulator.
func NewSimRig(b *Bridge, exts [3]string, control http.Handler) *SimRig {
	return &SimRig{B: b, Exts: exts, control: control}
}

var _ Rig = (*SimRig)(nil)

// Ext is a role's extension.
func (r *SimRig) Ext(x Role) string { return r.Exts[x] }

// Phone is the simulated device of a role's extension.
func (r *SimRig) Phone(x Role) Phone { return simPhone{rig: r, ext: r.Exts[x]} }

// Bridge is the client of the bridge's listeners.
func (r *SimRig) Bridge() *BridgeClient { return r.B.BridgeClient }

// Sink is the bridge's CTI server.
func (r *SimRig) Sink() *ActionSink { return r.B.Sink }

// Process is the bridge.
func (r *SimRig) Process() *Bridge { return r.B }

// Application: on the simulator any outside number answers (after
// sim.answer_after), as an application does.
func (r *SimRig) Application(kind string) string {
	return map[string]string{AppEcho: "+4930999001", AppMusic: "+4930999002", AppConference: "+4930999003"}[kind]
}

// Lacks: the simulator's devices always answer when the bridge asks.
func (r *SimRig) Lacks(n Need) string {
	if n == NeedIgnoreAutoAnswer {
		return "the simulator's devices answer whenever the bridge asks"
	}
	return ""
}

// PBXLeftovers lists the simulator's calls.
func (r *SimRig) PBXLeftovers(ctx context.Context) (string, error) {
	calls, err := r.calls(ctx)
	if err != nil || len(calls) == 0 {
		return "", err
	}
	return fmt.Sprintf("calls %+v", calls), nil
}

// Has: the simulator is a bare PBX.
func (r *SimRig) Has(Quirk) bool { return false }

// SetIgnoreAutoAnswer is not possible on the simulator (see Lacks).
func (r *SimRig) SetIgnoreAutoAnswer(Role, bool) {}

// OutsideCall rings ext from an outside number.
func (r *SimRig) OutsideCall(ctx context.Context, ext string) error {
	return r.do(ctx, http.MethodPost, "/sim/calls", map[string]string{"from": "+4930123456", "to": ext}, nil)
}

// Settle hangs up every call and checks the simulator has none left.
func (r *SimRig) Settle(t testing.TB, ctx context.Context) {
	calls, err := r.calls(ctx)
	if err != nil {
		t.Errorf("settle: %v", err)
		return
	}
	for _, c := range calls {
		if err := r.do(ctx, http.MethodPost, "/sim/calls/"+c.ID+"/hangup", nil, nil); err != nil {
			t.Errorf("settle: %v", err)
		}
	}
	if calls, err = r.calls(ctx); err != nil || len(calls) > 0 {
		t.Errorf("settle: the simulator still has calls %+v (%v)", calls, err)
	}
}

// simCall and simLeg are the parts of the control API's call view rows
// look at.
type simCall struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Legs    []simLeg  `json:"legs"`
}

type simLeg struct {
	Ext   string `json:"ext"`
	State string `json:"state"`
}

func (r *SimRig) calls(ctx context.Context) ([]simCall, error) {
	var out []simCall
	err := r.do(ctx, http.MethodGet, "/sim/calls", nil, &out)
	return out, err
}

// do calls the control API; a status above 299 is an error with the body.
func (r *SimRig) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req := httptest.NewRequestWithContext(ctx, method, path, body)
	rec := httptest.NewRecorder()
	r.control.ServeHTTP(rec, req)
	b := rec.Body.Bytes()
	if rec.Code > 299 {
		return fmt.Errorf("%s %s: %d %s", method, path, rec.Code, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// simPhone is an extension's device on the simulator.
type simPhone struct {
	rig *SimRig
	ext string
}

// simShowing maps the state of the extension's connection to what its
// phone shows. A hold by the bridge shows as held on the simulator too:
// rows look for Held only after the phone's own hold.
var simShowing = map[string]Showing{
	"alerting": Ringing, "initiated": Dialing, "connected": Connected, "held": Held,
}

// mine is the newest call in which the extension's connection is in one
// of states (any live state when none is given).
func (p simPhone) mine(ctx context.Context, states ...string) (simCall, error) {
	calls, err := p.rig.calls(ctx)
	if err != nil {
		return simCall{}, err
	}
	slices.SortFunc(calls, func(a, b simCall) int { return b.Created.Compare(a.Created) })
	for _, c := range calls {
		for _, l := range c.Legs {
			if l.Ext != p.ext || l.State == "cleared" {
				continue
			}
			if len(states) == 0 || slices.Contains(states, l.State) {
				return c, nil
			}
		}
	}
	return simCall{}, fmt.Errorf("extension %s has no call %v: %+v", p.ext, states, calls)
}

func (p simPhone) Dial(ctx context.Context, number string) error {
	return p.rig.do(ctx, http.MethodPost, "/sim/calls", map[string]string{"from": p.ext, "to": number}, nil)
}

func (p simPhone) Answer(ctx context.Context) error {
	c, err := p.mine(ctx, "alerting")
	if err != nil {
		return err
	}
	return p.rig.do(ctx, http.MethodPost, "/sim/calls/"+c.ID+"/answer", nil, nil)
}

func (p simPhone) Hangup(ctx context.Context) error {
	c, err := p.mine(ctx)
	if err != nil {
		return err
	}
	return p.rig.do(ctx, http.MethodPost, "/sim/calls/"+c.ID+"/hangup", map[string]string{"party": p.ext}, nil)
}

func (p simPhone) Hold(ctx context.Context) error   { return p.holdAction(ctx, "connected", "hold") }
func (p simPhone) Unhold(ctx context.Context) error { return p.holdAction(ctx, "held", "unhold") }

func (p simPhone) holdAction(ctx context.Context, state, action string) error {
	c, err := p.mine(ctx, state)
	if err != nil {
		return err
	}
	return p.rig.do(ctx, http.MethodPost, "/sim/calls/"+c.ID+"/"+action, map[string]string{"party": p.ext}, nil)
}

func (p simPhone) Wait(ctx context.Context, want Showing) error {
	calls, err := p.rig.calls(ctx)
	if err != nil {
		return err
	}
	var shown []string
	for _, c := range calls {
		for _, l := range c.Legs {
			if l.Ext != p.ext || l.State == "cleared" {
				continue
			}
			if simShowing[l.State] == want && want != Idle {
				return nil
			}
			shown = append(shown, l.State)
		}
	}
	if want == Idle && len(shown) == 0 {
		return nil
	}
	return fmt.Errorf("extension %s shows %v, not %s", p.ext, shown, want)
}
