package pbxtest

import "time"

// SweepRows: a bridge that is stopped while its calls go on leaves them to
// the PBX; when a party hangs up meanwhile, nothing of the call may be
// left on the PBX within sweepWithin of the bridge's start (issue 20): on
// Asterisk the dialplan's hangup handler ends the other side at once where
// it is installed, and the returning bridge sweeps what is left (the
// other side, the Local channels of a transfer, the mixing bridges). The
// PBX's channels and bridges are logged before the start and checked
// after it.
var SweepRows = []Scenario{
	{
		Name:  "routed call, the answering phone hangs up while the bridge is stopped: nothing left after the start",
		Needs: []Need{NeedRestartTakeover, NeedSweep},
		Steps: []Step{
			Dial(B, A),
			URLs(A, "incoming:a1"),
			URLs(B, "offhook", "outgoing:b1"),
			PickUp(A),
			URLs(A, "offhook", "connected:a1"),
			URLs(B, "connected:b1"),
			BridgeStops(),
			HangUp(A),
			Shows(A, Idle),
			PBXBeforeStart(A),
			BridgeStarts(),
			NothingLeftWithin(sweepWithin),
			Shows(B, Idle),
			URLs(A, "disconnected:a1", "onhook"),
			URLs(B, "disconnected:b1", "onhook"),
		},
	},
	{
		// On Asterisk the far party held by the bridge is outside the
		// bridge, where the hangup handler does not reach it: the sweep
		// ends it.
		Name:  "call held by HoldCall, the extension hangs up while the bridge is stopped: nothing left after the start",
		Needs: []Need{NeedRestartTakeover, NeedSweep},
		Steps: []Step{
			Dial(B, A),
			URLs(A, "incoming:a1"),
			URLs(B, "offhook", "outgoing:b1"),
			PickUp(A),
			URLs(A, "offhook", "connected:a1"),
			URLs(B, "connected:b1"),
			Req(A, "HoldCall", Conn("callToBeHeld", "a1")),
			URLs(A, "hold:a1"),
			BridgeStops(),
			HangUp(A),
			Shows(A, Idle),
			PBXBeforeStart(A),
			BridgeStarts(),
			NothingLeftWithin(sweepWithin),
			Shows(B, Idle),
			URLs(A, "disconnected:a1", "onhook"),
			URLs(B, "disconnected:b1", "onhook"),
		},
	},
	sweepAfterTransfer("the transferred caller", B, C),
	sweepAfterTransfer("the transfer's target", C, B),
	{
		Name:  "MakeCall to another phone, the called phone hangs up while the bridge is stopped: nothing left after the start",
		Needs: []Need{NeedDialplan, NeedRestartTakeover, NeedSweep},
		Steps: []Step{
			Req(A, "MakeCall", Text("callingDevice", ""), Number("calledDirectoryNumber", B)).Binds("a1"),
			URLs(A, "offhook", "outgoing:a1"),
			URLs(B, "incoming:b1"),
			PickUp(B),
			URLs(B, "offhook", "connected:b1"),
			URLs(A, "connected:a1"),
			BridgeStops(),
			HangUp(B),
			Shows(B, Idle),
			PBXBeforeStart(B),
			BridgeStarts(),
			NothingLeftWithin(sweepWithin),
			Shows(A, Idle),
			URLs(A, "disconnected:a1", "onhook"),
			URLs(B, "disconnected:b1", "onhook"),
		},
	},
}

// sweepWithin is the promise: nothing of an ended call is left on
// the PBX this long after the bridge is ready again.
const sweepWithin = 5 * time.Second

// sweepAfterTransfer: A transfers its caller B to C (a mapped extension,
// so on Asterisk C's side is a Local channel through the route), the
// bridge stops, and `gone` hangs up; `left` is idle and nothing is left
// on the PBX within sweepWithin of the start.
func sweepAfterTransfer(who string, gone, left Role) Scenario {
	label := map[Role]string{B: "b1", C: "c1"}
	return Scenario{
		Name:  "TransferCall to a mapped extension, " + who + " hangs up while the bridge is stopped: nothing left after the start",
		Needs: []Need{NeedDialplan, NeedRestartTakeover, NeedSweep},
		Steps: []Step{
			Dial(B, A),
			URLs(A, "incoming:a1"),
			URLs(B, "offhook", "outgoing:b1"),
			PickUp(A),
			URLs(A, "offhook", "connected:a1"),
			URLs(B, "connected:b1"),
			Req(A, "HoldCall", Conn("callToBeHeld", "a1")),
			URLs(A, "hold:a1"),
			Req(A, "MakeCall", Text("callingDevice", ""), Number("calledDirectoryNumber", C)).Binds("a2"),
			URLs(A, "outgoing:a2"),
			URLs(C, "incoming:c1"),
			PickUp(C),
			URLs(C, "offhook", "connected:c1"),
			URLs(A, "connected:a2"),
			Req(A, "TransferCall", Conn("heldCall", "a1"), Conn("activeCall", "a2")),
			URLsAnyOrder(A, "transfer:a1", "attended_transfer:a1", "disconnected:a1",
				"transfer:a2", "attended_transfer:a2", "disconnected:a2"),
			URLs(A, "onhook"),
			Shows(B, Connected),
			Shows(C, Connected),
			BridgeStops(),
			HangUp(gone),
			Shows(gone, Idle),
			PBXBeforeStart(gone),
			BridgeStarts(),
			NothingLeftWithin(sweepWithin),
			Shows(left, Idle),
			URLs(gone, "disconnected:"+label[gone], "onhook"),
			URLs(left, "disconnected:"+label[left], "onhook"),
		},
	}
}
