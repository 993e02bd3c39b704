package pbxtest

import "fmt"

// AppTransfer is a kind of dialplan application (Rig.Application) that
// answers its caller, plays a prompt and transfers the caller to the
// extension whose number is dialled after its own: an IVR or a queue
// handing a caller to an agent. Its number is that prefix.
const AppTransfer = "application that answers and transfers to the extension dialled after it"

// destinationRows: where the bridge sends calls besides phones — a
// transfer to a phone that still rings (issue 18), dialplan applications
// as MakeCall and transfer destinations, and an application as the
// caller (issue 16).
var destinationRows = []Scenario{
	transferWhileRinging("the far party answers", []Step{
		PickUp(C),
		URLs(C, "offhook", "connected:c1"),
		Shows(B, Connected),
		Shows(C, Connected),
		HangUp(B),
		URLs(B, "disconnected:b1", "onhook"),
		URLs(C, "disconnected:c1", "onhook"),
		Shows(C, Idle),
	}),
	// A Snom leaves a refused transfer to the PBX; nobody may be left on
	// silent hold: the transferred caller's call ends (or goes where the
	// dialplan sends a refused call).
	transferWhileRinging("the far party refuses", []Step{
		HangUp(C),
		Shows(C, Idle),
		Unless(QuirkVoicemailOnReject, URLs(B, "disconnected:b1", "onhook"), Shows(B, Idle)),
		If(QuirkVoicemailOnReject, HangUp(B), URLs(B, "disconnected:b1", "onhook")),
	}),
	{
		// The extension sees the call the application hands over as any
		// other incoming call; the caller's call was connected when the
		// application answered it and stays one call through the transfer.
		Name: "an application answers a caller and transfers it to the extension: offered, answered, cleared once",
		Apps: []string{AppTransfer},
		Steps: []Step{
			DialThroughApp(B, AppTransfer, A),
			URLs(B, "offhook", "outgoing:b1", "connected:b1"),
			URLs(A, "incoming:a1"),
			Req(A, "AnswerCall", Conn("callToBeAnswered", "a1")),
			URLs(A, "offhook", "connected:a1"),
			Shows(A, Connected),
			Req(A, "HoldCall", Conn("callToBeHeld", "a1")),
			URLs(A, "hold:a1"),
			Req(A, "RetrieveCall", Conn("callToBeRetrieved", "a1")),
			URLs(A, "unhold:a1"),
			HangUp(B),
			URLs(A, "disconnected:a1", "onhook"),
			URLs(B, "disconnected:b1", "onhook"),
			Shows(A, Idle),
			Shows(B, Idle),
		},
	},
	makeCallToApp(AppEcho),
	makeCallToApp(AppMusic),
	makeCallToApp(AppConference),
	{
		Name: "SingleStepTransferCall to an application: the caller reaches it, the extension is free",
		Apps: []string{AppMusic},
		Steps: []Step{
			Dial(B, A),
			URLs(A, "incoming:a1"),
			URLs(B, "offhook", "outgoing:b1"),
			PickUp(A),
			URLs(A, "offhook", "connected:a1"),
			URLs(B, "connected:b1"),
			Req(A, "SingleStepTransferCall", Conn("activeCall", "a1"), AppNumber("transferredTo", AppMusic)),
			URLs(A, "transfer:a1", "blind_transfer:a1", "disconnected:a1", "onhook"),
			Shows(A, Idle),
			Shows(B, Connected),
			HangUp(B),
			URLs(B, "disconnected:b1", "onhook"),
		},
	},
}

// transferWhileRinging: TransferCall while the consultation call still
// rings at the far party (ECMA-269 allows it; attendants do it), then what
// follows.
func transferWhileRinging(then string, after []Step) Scenario {
	return Scenario{
		Name:  "TransferCall while the consultation still rings, then " + then,
		Needs: []Need{NeedDialplan},
		Steps: append([]Step{
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
			Shows(C, Ringing),
			Req(A, "TransferCall", Conn("heldCall", "a1"), Conn("activeCall", "a2")),
			// The consultation was never answered: no disconnected URL
			// for it, as for any placed call that did not connect.
			URLsAnyOrder(A, "transfer:a1", "attended_transfer:a1", "disconnected:a1",
				"transfer:a2", "attended_transfer:a2"),
			URLs(A, "onhook"),
			Shows(A, Idle),
		}, after...),
	}
}

// makeCallToApp: a MakeCall to a dialplan application is connected when
// the application answers, and disconnected after ClearCall.
func makeCallToApp(kind string) Scenario {
	return Scenario{
		Name: "MakeCall to the " + kind + ": connected when it answers, disconnected after ClearCall",
		Apps: []string{kind},
		Steps: []Step{
			Req(A, "MakeCall", Text("callingDevice", ""), AppNumber("calledDirectoryNumber", kind)).Binds("a1"),
			URLs(A, "offhook", "outgoing:a1", "connected:a1"),
			Req(A, "ClearCall", Conn("callToBeCleared", "a1")),
			URLs(A, "disconnected:a1", "onhook"),
			Shows(A, Idle),
		},
	}
}

// DialThroughApp: the phone of from calls the application of kind, which
// hands the call to to's extension (its number follows the application's).
func DialThroughApp(from Role, kind string, to Role) Step {
	return phoneStep{who: from, what: fmt.Sprintf("dials the %s for %s", kind, to), act: func(p *play, ph Phone) error {
		n := p.rig.Application(kind)
		if n == "" {
			return fmt.Errorf("the rig has no %s", kind)
		}
		return ph.Dial(p.ctx, n+p.rig.Ext(to))
	}}
}
