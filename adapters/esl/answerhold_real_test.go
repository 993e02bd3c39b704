package esl

import "testing"

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
	e.AnswerThenHoldAtOnce(e.a, 100)
}
