package bridge

import (
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// An adapter reports the bridge's own hold and retrieve too, and its report
// may reach the core after the next command's outcome: HoldCall, then
// RetrieveCall at once, then the adapter's "held". It must not put the
// talking connection on hold again (seen on the real Asterisk under load,
// issue 15: "hold" after "unhold", then "unhold" once more). A hold the
// phone did is still reported.
func TestLateHoldReportDoesNotUndoRetrieve(t *testing.T) {
	h := start(t, nil)
	ref := pbx.CallRef{Ext: "1001", ID: "c1"}
	h.offer("1001", "c1", "555")
	h.sink.expect(t, "1001", "incoming:-1")
	h.pbx.emit(pbx.Event{Kind: pbx.EventConnected, Call: ref})
	h.sink.expect(t, "1001", "offhook", "connected:-1")
	h.ok("1001", "HoldCall", conn("callToBeHeld", -1))
	h.sink.expect(t, "1001", "hold:-1")
	h.ok("1001", "RetrieveCall", conn("callToBeRetrieved", -1))
	h.sink.expect(t, "1001", "unhold:-1")
	h.pbx.emit(pbx.Event{Kind: pbx.EventHeld, Call: ref})
	h.pbx.emit(pbx.Event{Kind: pbx.EventRetrieved, Call: ref})
	h.sink.none(t, h, "1001")

	h2 := start(t, nil)
	h2.offer("1001", "c1", "555")
	h2.sink.expect(t, "1001", "incoming:-1")
	h2.pbx.emit(pbx.Event{Kind: pbx.EventConnected, Call: ref})
	h2.sink.expect(t, "1001", "offhook", "connected:-1")
	h2.pbx.emit(pbx.Event{Kind: pbx.EventHeld, Call: ref, ByPhone: true})
	h2.sink.expect(t, "1001", "hold:-1")
	h2.pbx.emit(pbx.Event{Kind: pbx.EventRetrieved, Call: ref, ByPhone: true})
	h2.sink.expect(t, "1001", "unhold:-1")
}
