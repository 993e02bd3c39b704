package esl

import (
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// TestAnswerThenHoldAtOnceRealFreeSWITCH is issue 15's "Answer then Hold
// at once" on a real FreeSWITCH, 100 times: the third extension's phone
// calls the second, whose phone takes no talk events (it is answered by
// the auto-answer swap), and HoldCall is sent the moment AnswerCall
// returned. Before the swap left the adapter's view connected on the new
// channel, HoldCall failed "call is alerting" every time. Set
// CSTA_TEST_ESL_EXTENSIONS so that the second one is a phone without
// csta_allow_events (e.g. 1011,1002,1003); skipped without
// CSTA_TEST_ESL_ADDR.
func TestAnswerThenHoldAtOnceRealFreeSWITCH(t *testing.T) {
	e := integrationEnv(t)
	_, a2, a3 := e.Names()
	const runs = 100
	passed := 0
	for i := range runs {
		e.Scenario("run", func(t *testing.T) {
			ctx := e.Ctx(t)
			out, in, _, offered := e.DialAndOffer(ctx, a3, a2)
			ref := offered.Call
			if err := e.a.Answer(ctx, ref); err != nil {
				t.Fatalf("run %d: Answer: %v", i, err)
			}
			if err := e.a.Hold(ctx, ref); err != nil {
				t.Fatalf("run %d: Hold sent as Answer returned: %v", i, err)
			}
			pbxtest.PhoneState(t, ctx, in, testphone.StateEnded) // replaced by the swap
			repl, err := e.Phones[a2].Incoming(ctx)
			if err != nil {
				t.Fatal(err)
			}
			e.On(ref, pbx.EventConnected)
			e.On(ref, pbx.EventHeld)
			if err := e.a.Retrieve(ctx, ref); err != nil {
				t.Fatalf("run %d: Retrieve: %v", i, err)
			}
			e.On(ref, pbx.EventRetrieved)
			if err := out.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			pbxtest.PhoneState(t, ctx, repl, testphone.StateEnded)
			e.On(ref, pbx.EventCleared)
			passed++
		})
	}
	t.Logf("Answer then Hold at once: %d of %d runs passed", passed, runs)
}
