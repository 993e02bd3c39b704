package pbxtest

import "fmt"

// dndRows are the phone's own features (issue 12): do-not-disturb and call
// forwarding, switched by CSTA, the keypad and settings, enforced on the
// real call by the bridge. Each row switches off what it switched on: the
// state file keeps features across rows.
var dndRows = []Scenario{
	{
		Name: "DND by CSTA: a new call is refused busy at once, the phone never rings",
		Steps: []Step{
			Req(A, "SetDoNotDisturb", Number("device", A), Text("doNotDisturbOn", "true")),
			URLs(A, "dnd_on"),
			Req(A, "GetDoNotDisturb", Number("device", A)).Has("<csta:doNotDisturbOn>true</csta:doNotDisturbOn>"),
			Req(A, "SetDoNotDisturb", Number("device", B), Text("doNotDisturbOn", "false")).Fault("invalidDeviceID"),
			Dial(B, A),
			URLs(B, "offhook", "outgoing:b1"),
			refusedBusy(B, "b1"),
			Shows(A, Idle),
			Req(A, "SetDoNotDisturb", Number("device", A), Text("doNotDisturbOn", "false")),
			URLs(A, "dnd_off"), // the refused call fired nothing at A: no incoming, no missed
			Dial(B, A),
			URLs(A, "incoming:a1"),
			URLs(B, "offhook", "outgoing:b2"),
			HangUp(B),
			URLs(A, "missed:a1"),
			URLs(B, "onhook"),
			Shows(A, Idle),
		},
	},
	{
		Name: "DND by the DND key and by the dnd_mode setting",
		Steps: []Step{
			Key(A, "DND"),
			URLs(A, "dnd_on"),
			Dial(B, A),
			URLs(B, "offhook", "outgoing:b1"),
			refusedBusy(B, "b1"),
			Setting(A, "dnd_mode=off"),
			URLs(A, "dnd_off"),
			Req(A, "GetDoNotDisturb", Number("device", A)).Has("<csta:doNotDisturbOn>false</csta:doNotDisturbOn>"),
			Setting(A, "dnd_mode=on"),
			URLs(A, "dnd_on"),
			Key(A, "DND"),
			URLs(A, "dnd_off"),
			Shows(A, Idle),
		},
	},
	{
		Name:  "Forward always by CSTA: the caller reaches the target, the phone never rings",
		Needs: []Need{NeedDialplan},
		Steps: []Step{
			Req(A, "SetForwarding", Number("device", A), Text("forwardingType", "forwardDND"), Number("forwardDN", C),
				Text("activateForward", "true")).Fault("invalidForwardingType"),
			Req(A, "SetForwarding", Number("device", A), Text("forwardingType", "forwardImmediate"), Text("forwardDN", ""),
				Text("activateForward", "true")).Fault("invalidForwardingDestination"),
			Req(A, "SetForwarding", Number("device", A), Text("forwardingType", "forwardImmediate"), Number("forwardDN", C),
				Text("activateForward", "true")),
			URLs(A, "redirection_on"),
			Req(A, "GetForwarding", Number("device", A)).
				Has("<csta:forwardingType>forwardImmediate</csta:forwardingType><csta:forwardStatus>true</csta:forwardStatus><csta:forwardDN>{C}</csta:forwardDN>"),
			Dial(B, A),
			URLs(B, "offhook", "outgoing:b1"),
			URLs(C, "incoming:c1"),
			PickUp(C),
			URLs(C, "offhook", "connected:c1"),
			URLs(B, "connected:b1"),
			Shows(A, Idle),
			HangUp(B),
			URLs(B, "disconnected:b1", "onhook"),
			URLs(C, "disconnected:c1", "onhook"),
			Req(A, "SetForwarding", Number("device", A), Text("forwardingType", "forwardImmediate"), Text("activateForward", "false")),
			URLs(A, "redirection_off"), // nothing else at A: the forwarded call never rang there
			Shows(C, Idle),
		},
	},
	{
		Name:  "Forward on busy by CSTA: a call goes to the target while the phone has a call",
		Needs: []Need{NeedDialplan},
		Apps:  []string{AppEcho},
		Steps: []Step{
			Req(A, "SetForwarding", Number("device", A), Text("forwardingType", "forwardBusy"), Number("forwardDN", C),
				Text("activateForward", "true")),
			URLs(A, "redirection_on"),
			Req(A, "MakeCall", Text("callingDevice", ""), AppNumber("calledDirectoryNumber", AppEcho)).Binds("a1"),
			URLs(A, "offhook", "outgoing:a1", "connected:a1"),
			Dial(B, A),
			URLs(B, "offhook", "outgoing:b1"),
			URLs(C, "incoming:c1"),
			PickUp(C),
			URLs(C, "offhook", "connected:c1"),
			URLs(B, "connected:b1"),
			HangUp(B),
			URLs(B, "disconnected:b1", "onhook"),
			URLs(C, "disconnected:c1", "onhook"),
			Req(A, "ClearCall", Conn("callToBeCleared", "a1")),
			URLs(A, "disconnected:a1", "onhook"), // and nothing of B's call at A
			Req(A, "SetForwarding", Number("device", A), Text("forwardingType", "forwardBusy"), Text("activateForward", "false")),
			URLs(A, "redirection_off"),
			Shows(A, Idle),
			Shows(C, Idle),
		},
	},
	{
		Name:  "Forward on no answer by settings: the call rings, then goes to the target (no missed call)",
		Needs: []Need{NeedDialplan},
		Steps: []Step{
			Setting(A, "redirect_event=time", "redirect_time_number={C}", "redirect_time=2"),
			URLs(A, "redirection_on"),
			Req(A, "GetForwarding", Number("device", A)).
				Has("<csta:forwardingType>forwardNoAns</csta:forwardingType><csta:forwardStatus>true</csta:forwardStatus><csta:forwardDN>{C}</csta:forwardDN><csta:ringCount>1</csta:ringCount>"),
			Dial(B, A),
			URLs(A, "incoming:a1"),
			URLs(B, "offhook", "outgoing:b1"),
			URLs(C, "incoming:c1"),
			Shows(A, Idle),
			PickUp(C),
			URLs(C, "offhook", "connected:c1"),
			URLs(B, "connected:b1"),
			HangUp(B),
			URLs(B, "disconnected:b1", "onhook"),
			URLs(C, "disconnected:c1", "onhook"),
			Setting(A, "redirect_event=none"),
			URLs(A, "redirection_off"),
			Shows(C, Idle),
		},
	},
}

// refusedBusy: the caller's call the phone refused ends, or where the
// dialplan sends refused calls to voicemail (FreeSWITCH's vanilla
// Local_Extension: a busy user's caller reaches voicemail), voicemail
// answers it and the caller hangs up.
func refusedBusy(caller Role, label string) Step {
	return stepList{
		If(QuirkVoicemailOnReject,
			URLs(caller, "connected:"+label),
			HangUp(caller),
			URLs(caller, "disconnected:"+label, "onhook")),
		Unless(QuirkVoicemailOnReject, URLs(caller, "onhook")),
		Shows(caller, Idle),
	}
}

// stepList plays steps in order as one step.
type stepList []Step

func (l stepList) String() string { return fmt.Sprintf("%d steps", len(l)) }
func (l stepList) do(p *play) {
	p.t.Helper()
	p.steps(l)
}
