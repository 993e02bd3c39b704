package pbxtest

import (
	"context"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// AdapterEnv runs one adapter alone against a real PBX with test phones,
// for the scenarios only an adapter's own test can check (its REST or API
// calls, a second instance of it, its events' details). Everything a CTI
// client can see is a row of the table instead.
type AdapterEnv struct {
	// T is the running scenario's test (Scenario swaps it).
	T      *testing.T
	Log    *EventLog
	Exts   []pbx.Extension
	Phones map[string]*testphone.Phone
	Wait   time.Duration
	// Leftovers describes what the PBX still has ("" when nothing).
	Leftovers func(ctx context.Context) (string, error)
}

// RealWait bounds each wait of a test on a real PBX, which on a shared
// machine is slower than the fakes.
const RealWait = 15 * time.Second

// NewAdapterEnv is an env for test t whose phones are still to start.
func NewAdapterEnv(t *testing.T) *AdapterEnv {
	return &AdapterEnv{T: t, Phones: map[string]*testphone.Phone{}, Wait: RealWait}
}

// Names are the extensions' numbers.
func (e *AdapterEnv) Names() (a1, a2, a3 string) {
	return e.Exts[0].Name, e.Exts[1].Name, e.Exts[2].Name
}

// StartAdapter runs p with its events in the env's log, waits for the
// link and the first sync, and stops p when the test ends.
func (e *AdapterEnv) StartAdapter(p pbx.PBX) {
	t := e.T
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan pbx.Event, 1000)
	done := make(chan error, 1)
	e.Log = NewEventLog(t, events, e.Wait)
	go func() { done <- p.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(e.Wait):
			t.Error("Run did not return after cancel")
		}
	})
	e.Log.Wait(t, "link up", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && ev.Up })
	e.Log.Wait(t, "sync", func(ev pbx.Event) bool { return ev.Kind == pbx.EventSync })
}

// WaitRegistered waits until the adapter reported each extension's
// device registered.
func (e *AdapterEnv) WaitRegistered(exts ...string) {
	for _, n := range exts {
		e.Log.Wait(e.T, "device "+n+" registered", func(ev pbx.Event) bool {
			return ev.Kind == pbx.EventDevice && ev.Call.Ext == n && ev.Registered
		})
	}
}

// On waits for an event of kind k on ref.
func (e *AdapterEnv) On(ref pbx.CallRef, k pbx.EventKind) pbx.Event {
	e.T.Helper()
	return e.Log.On(e.T, ref, k)
}

// OfferedFor waits for the offer of ext that is the phone's call c.
func (e *AdapterEnv) OfferedFor(ext string, c *testphone.Call) pbx.Event {
	e.T.Helper()
	return e.Log.OfferedFor(e.T, ext, c)
}

// DialAndOffer has from's phone call to and waits for both connections.
func (e *AdapterEnv) DialAndOffer(ctx context.Context, from, to string) (out, in *testphone.Call, orig, offered pbx.Event) {
	e.T.Helper()
	return e.Log.DialAndOffer(e.T, ctx, e.Phones, from, to)
}

// Ctx bounds one scenario.
func (e *AdapterEnv) Ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*e.Wait)
	t.Cleanup(cancel)
	return ctx
}

// Scenario runs fn as a subtest, then hangs up what it left and waits
// until the PBX has nothing left, so the next one starts clean.
func (e *AdapterEnv) Scenario(name string, fn func(t *testing.T)) {
	parent := e.T
	parent.Run(name, func(t *testing.T) {
		e.T = t
		defer func() { e.T = parent }()
		defer e.settle(t)
		fn(t)
	})
}

func (e *AdapterEnv) settle(t *testing.T) {
	t.Logf("events (* = checked by the scenario):\n%s", e.Log.Dump())
	ctx, cancel := context.WithTimeout(context.Background(), e.Wait)
	defer cancel()
	for _, p := range e.Phones {
		if err := (SIPPhone{P: p}).HangupAll(ctx); err != nil {
			t.Errorf("settle: %v", err)
		}
	}
	// As in SIPRig.Settle: the PBX has no "nothing left" notification.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		left, err := e.Leftovers(ctx)
		if err == nil && left == "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Errorf("the PBX still has %s after the scenario (%v)", left, err)
			return
		case <-tick.C:
		}
	}
	// Events of this scenario that arrive late must not satisfy the next
	// one's waits.
	e.Log.TakeAll()
}

// AnswerThenHoldAtOnce is issue 15's "Answer then Hold at once", runs
// times on the real PBX: the third extension's phone calls the second,
// Answer replaces the ringing call with an auto-answered one, Hold is sent
// the moment Answer returned, then Retrieve, and the caller hangs up.
func (e *AdapterEnv) AnswerThenHoldAtOnce(a pbx.PBX, runs int) {
	_, a2, a3 := e.Names()
	passed := 0
	for i := range runs {
		e.Scenario("run", func(t *testing.T) {
			ctx := e.Ctx(t)
			out, in, _, offered := e.DialAndOffer(ctx, a3, a2)
			ref := offered.Call
			if err := a.Answer(ctx, ref); err != nil {
				t.Fatalf("run %d: Answer: %v", i, err)
			}
			if err := a.Hold(ctx, ref); err != nil {
				t.Fatalf("run %d: Hold sent as Answer returned: %v", i, err)
			}
			PhoneState(t, ctx, in, testphone.StateEnded) // replaced by the auto-answered call
			repl, err := e.Phones[a2].Incoming(ctx)
			if err != nil {
				t.Fatal(err)
			}
			PhoneState(t, ctx, out, testphone.StateConnected)
			e.On(ref, pbx.EventConnected)
			e.On(ref, pbx.EventHeld)
			if err := a.Retrieve(ctx, ref); err != nil {
				t.Fatalf("run %d: Retrieve: %v", i, err)
			}
			e.On(ref, pbx.EventRetrieved)
			if err := out.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			PhoneState(t, ctx, repl, testphone.StateEnded)
			e.On(ref, pbx.EventCleared)
			passed++
		})
	}
	e.T.Logf("Answer then Hold at once: %d of %d runs passed", passed, runs)
}
