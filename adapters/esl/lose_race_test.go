package esl

import (
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// The losing legs of a ring-all end with LOSE_RACE: answered elsewhere,
// not missed; a caller who gives up still leaves a missed call (issue 13).
func TestLoseRaceIsAnsweredElsewhere(t *testing.T) {
	if got := hangupCause(&leg{dir: pbx.Incoming}, "LOSE_RACE"); got != pbx.CauseAnsweredElsewhere {
		t.Errorf("ringing leg, LOSE_RACE: %s", got)
	}
	if got := hangupCause(&leg{dir: pbx.Incoming}, "ORIGINATOR_CANCEL"); got != pbx.CauseCancelled {
		t.Errorf("ringing leg, ORIGINATOR_CANCEL: %s", got)
	}
}
