package bridge

import (
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A ringing call another phone of a queue or ring group took is no missed
// call: a Snom lists a call "completed elsewhere" nowhere and fires no URL
// (issue 13). A call the caller gave up on still is.
func TestAnsweredElsewhereIsNotMissed(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "c1", "555")
	h.sink.expect(t, "1001", "incoming:-1")
	h.pbx.emit(pbx.Event{Kind: pbx.EventCleared, Call: pbx.CallRef{Ext: "1001", ID: "c1"}, Cause: pbx.CauseAnsweredElsewhere})
	h.offer("1001", "c2", "555")
	h.sink.expect(t, "1001", "incoming:-2")
	h.pbx.emit(pbx.Event{Kind: pbx.EventCleared, Call: pbx.CallRef{Ext: "1001", ID: "c2"}, Cause: pbx.CauseCancelled})
	h.sink.expect(t, "1001", "missed:-2")
	if got := pbx.CauseAnsweredElsewhere.String(); got != "answered-elsewhere" {
		t.Errorf("cause name %q", got)
	}
}
