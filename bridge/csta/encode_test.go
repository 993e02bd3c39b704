package csta

import (
	"bytes"
	"strings"
	"testing"
)

// snomSuccess and snomFault are the sprintf formats of the C code on Snom's
// CSTA page, transcribed string by string, with the one change the bridge
// makes: the space between the two namespace declarations.
const (
	snomSuccess = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n" +
		"<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"" +
		" " +
		"xmlns:csta=\"http://www.ecma-international.org/standards/ecma-323/csta/ed4\">\r\n" +
		" <SOAP-ENV:Body>\r\n" +
		" <csta:%sResponse>\r\n" +
		" </csta:%sResponse>\r\n" +
		" </SOAP-ENV:Body>\r\n" +
		"</SOAP-ENV:Envelope>\r\n"
	snomFault = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n" +
		"<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"" +
		" " +
		"xmlns:csta=\"http://www.ecma-international.org/standards/ecma-323/csta/ed4\">\r\n" +
		" <SOAP-ENV:Body>\r\n" +
		" <SOAP-ENV:Fault>\r\n" +
		" <SOAP-ENV:faultcode>Client</SOAP-ENV:faultcode>\r\n" +
		" <SOAP-ENV:faultstring>CSTA Error</SOAP-ENV:faultstring>\r\n" +
		" <SOAP-ENV:detail>\r\n" +
		" <csta:CSTAErrorCode xmlns:csta=\"http://www.ecma-international.org/standards/ecma-323/csta/ed4\">\r\n" +
		" <csta:operation>%s</csta:operation>\r\n" +
		" </csta:CSTAErrorCode>\r\n" +
		" </SOAP-ENV:detail>\r\n" +
		" </SOAP-ENV:Fault>\r\n" +
		" </SOAP-ENV:Body>\r\n" +
		"</SOAP-ENV:Envelope>\r\n"
)

func TestEncodeMatchesSnomCode(t *testing.T) {
	for _, s := range []Service{AnswerCall, ClearCall, ClearConnection, HoldCall, RetrieveCall} {
		got := EncodeResponse(&Request{Service: s, Envelope: true}, Result{})
		want := strings.ReplaceAll(snomSuccess, "%s", string(s))
		if string(got) != want {
			t.Errorf("%s response:\n%q\nwant\n%q", s, got, want)
		}
	}
	got := EncodeFault(true, &Error{Code: InvalidConnectionID})
	want := strings.ReplaceAll(snomFault, "%s", "invalidConnectionID")
	if string(got) != want {
		t.Errorf("fault:\n%q\nwant\n%q", got, want)
	}
	// With a message, the comment is the only addition.
	got = EncodeFault(true, &Error{Code: Generic, Message: "x"})
	want = strings.Replace(strings.ReplaceAll(snomFault, "%s", "generic"),
		" </SOAP-ENV:detail>", " <!-- x -->\r\n </SOAP-ENV:detail>", 1)
	if string(got) != want {
		t.Errorf("fault with message:\n%q\nwant\n%q", got, want)
	}
}

func TestEncodeBare(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{string(EncodeResponse(&Request{Service: HoldCall}, Result{})),
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<HoldCallResponse xmlns=\"" + ed5 + "\"></HoldCallResponse>\r\n"},
		{string(EncodeResponse(&Request{Service: MakeCall}, Result{CallingDevice: &ConnectionID{CallID: "2", DeviceID: "sip:455455@ser.intern.snom.de"}})),
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<MakeCallResponse xmlns=\"" + ed5 + "\"><callingDevice><callID>2</callID><deviceID>sip:455455@ser.intern.snom.de</deviceID></callingDevice></MakeCallResponse>\r\n"},
		{string(EncodeResponse(&Request{Service: RequestSystemStatus}, Result{})),
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<RequestSystemStatusResponse xmlns=\"" + ed5 + "\"><systemStatus>normal</systemStatus></RequestSystemStatusResponse>\r\n"},
		{string(EncodeFault(false, &Error{Code: InvalidCallID})),
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<CSTAErrorCode xmlns=\"" + ed5 + "\"><operation>invalidCallID</operation></CSTAErrorCode>\r\n"},
		{string(EncodeFault(false, &Error{Code: InvalidCallID, Message: "no call 7"})),
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<CSTAErrorCode xmlns=\"" + ed5 + "\"><operation>invalidCallID</operation><!-- no call 7 --></CSTAErrorCode>\r\n"},
		{string(EncodeFault(false, nil)),
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<CSTAErrorCode xmlns=\"" + ed5 + "\"><operation>generic</operation></CSTAErrorCode>\r\n"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got\n%q\nwant\n%q", tt.got, tt.want)
		}
	}
}

// Only the content that belongs to the service is written.
func TestEncodeResponseContentPerService(t *testing.T) {
	res := Result{
		CallingDevice:   &ConnectionID{CallID: "1"},
		TransferredCall: &ConnectionID{CallID: "2"},
		SystemStatus:    "disabled",
		InitiatedCall:   &ConnectionID{CallID: "3"},
		ConferenceCall:  &ConnectionID{CallID: "-3|4"},
		Connections:     []SnapshotEntry{{Conn: ConnectionID{CallID: "5"}, Device: "1001", State: "connected"}},
		Devices:         []string{"sip:1001@pbx"},
	}
	for s, want := range map[Service]string{
		AnswerCall:             "<AnswerCallResponse xmlns=\"" + ed5 + "\"></AnswerCallResponse>",
		MakeCall:               "<callingDevice><callID>1</callID></callingDevice></MakeCallResponse>",
		SingleStepTransferCall: "<transferredCall><callID>2</callID></transferredCall></SingleStepTransferCallResponse>",
		TransferCall:           "<transferredCall><callID>2</callID></transferredCall></TransferCallResponse>",
		RequestSystemStatus:    "<systemStatus>disabled</systemStatus></RequestSystemStatusResponse>",
		ConsultationCall:       "<initiatedCall><callID>3</callID></initiatedCall></ConsultationCallResponse>",
		ConferenceCall:         "<conferenceCall><callID>-3|4</callID></conferenceCall></ConferenceCallResponse>",
		SnapshotDevice: "<SnapshotDeviceResponse xmlns=\"" + ed5 + "\"><crossRefIDorSnapshotData><snapshotData><snapshotDeviceResponseInfo>" +
			"<connectionIdentifier><callID>5</callID></connectionIdentifier><localCallState><compoundCallState><localConnectionState>connected</localConnectionState>" +
			"</compoundCallState></localCallState></snapshotDeviceResponseInfo></snapshotData></crossRefIDorSnapshotData></SnapshotDeviceResponse>",
		SnapshotCall: "<SnapshotCallResponse xmlns=\"" + ed5 + "\"><crossRefIDorSnapshotData><snapshotData><snapshotCallResponseInfo>" +
			"<deviceOnCall><deviceIdentifier>1001</deviceIdentifier></deviceOnCall><callIdentifier><callID>5</callID></callIdentifier>" +
			"<localConnectionState>connected</localConnectionState></snapshotCallResponseInfo></snapshotData></crossRefIDorSnapshotData></SnapshotCallResponse>",
		GetSwitchingFunctionDevices: "<serviceCrossRefID>1</serviceCrossRefID><deviceList><device><deviceID>sip:1001@pbx</deviceID>" +
			"<deviceCategory>station</deviceCategory></device></deviceList></GetSwitchingFunctionDevicesResponse>",
		AlternateCall:  "<AlternateCallResponse xmlns=\"" + ed5 + "\"></AlternateCallResponse>",
		ReconnectCall:  "<ReconnectCallResponse xmlns=\"" + ed5 + "\"></ReconnectCallResponse>",
		DeflectCall:    "<DeflectCallResponse xmlns=\"" + ed5 + "\"></DeflectCallResponse>",
		GenerateDigits: "<GenerateDigitsResponse xmlns=\"" + ed5 + "\"></GenerateDigitsResponse>",
	} {
		if got := EncodeResponse(&Request{Service: s}, res); !bytes.Contains(got, []byte(want)) {
			t.Errorf("%s: %s\nwant it to contain %s", s, got, want)
		}
	}
}

// Whatever the caller puts in, the output is well-formed and says what was
// put in.
func TestEncodeEscapes(t *testing.T) {
	hostile := "a&b<c>d]]>e\r\n\x00\x01\xff\"'--->\uFFFE"
	for _, env := range []bool{true, false} {
		for _, s := range []Service{MakeCall, SingleStepTransferCall, RequestSystemStatus, ConsultationCall, ConferenceCall,
			SnapshotDevice, SnapshotCall, GetSwitchingFunctionDevices, "", "Bad Name<", Service(hostile)} {
			c := &ConnectionID{CallID: hostile, DeviceID: hostile}
			out := EncodeResponse(&Request{Service: s, Envelope: env}, Result{CallingDevice: c, TransferredCall: c, SystemStatus: hostile,
				InitiatedCall: c, ConferenceCall: c, Devices: []string{hostile, ""},
				Connections: []SnapshotEntry{{Conn: *c, Device: hostile, State: hostile}, {}}})
			if err := wellFormed(out); err != nil {
				t.Errorf("response for %q (envelope %v) not well-formed: %v\n%s", s, env, err, out)
			}
		}
		out := EncodeFault(env, &Error{Code: ErrorCode(hostile), Message: hostile})
		if err := wellFormed(out); err != nil {
			t.Errorf("fault (envelope %v) not well-formed: %v\n%s", env, err, out)
		}
		if !bytes.Contains(out, []byte("a&amp;b&lt;c&gt;d]]&gt;e&#xD;\n\uFFFD\uFFFD\uFFFD\"'---&gt;\uFFFD")) {
			t.Errorf("code not escaped as expected:\n%q", out)
		}
	}
	if out := EncodeResponse(nil, Result{}); wellFormed(out) != nil {
		t.Errorf("nil request: %s", out)
	}
}

// Snom documents one SnapshotDevice answer (research/ecma.md §5); an
// alerting call must come out as exactly that.
func TestSnapshotDeviceIsSnoms(t *testing.T) {
	got := EncodeResponse(&Request{Service: SnapshotDevice}, Result{Connections: []SnapshotEntry{
		{Conn: ConnectionID{CallID: "-12", DeviceID: "sip:455455@ser.intern.snom.de"}, State: "alerting"},
	}})
	want := "<crossRefIDorSnapshotData><snapshotData><snapshotDeviceResponseInfo><connectionIdentifier><callID>-12</callID>" +
		"<deviceID>sip:455455@ser.intern.snom.de</deviceID></connectionIdentifier><localCallState><compoundCallState>" +
		"<localConnectionState>alerting</localConnectionState></compoundCallState></localCallState>" +
		"</snapshotDeviceResponseInfo></snapshotData></crossRefIDorSnapshotData>"
	if !bytes.Contains(got, []byte(want)) {
		t.Errorf("got\n%s\nwant it to contain\n%s", got, want)
	}
	// A state the core did not know is the CallState choice unknown, not
	// an empty localConnectionState.
	got = EncodeResponse(&Request{Service: SnapshotDevice}, Result{Connections: []SnapshotEntry{{Conn: ConnectionID{CallID: "1"}}}})
	if !bytes.Contains(got, []byte("<localCallState><unknown/></localCallState>")) {
		t.Errorf("entry without a state: %s", got)
	}
}

func TestComment(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"plain", "<!-- plain -->"},
		{"a--b", "<!-- a- -b -->"},
		{"---", "<!-- - - - -->"},
		{"ends-", "<!-- ends- -->"},
		{"-->", "<!-- - -> -->"},
		{"two\r\nlines\tand tab", "<!-- two  lines and tab -->"},
		{"bad \xff \x00 \u0085", "<!-- bad \uFFFD \uFFFD \uFFFD -->"},
		{strings.Repeat("é", 200), "<!-- " + strings.Repeat("é", 128) + "… -->"},
	}
	for _, tt := range tests {
		if got := string(appendComment(nil, tt.msg)); got != tt.want {
			t.Errorf("appendComment(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}

func TestErrorString(t *testing.T) {
	if got := (&Error{Code: InvalidConnectionID, Message: "missing element callToBeAnswered"}).Error(); got != "csta: invalidConnectionID: missing element callToBeAnswered" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{Code: Generic}).Error(); got != "csta: generic" {
		t.Errorf("Error() = %q", got)
	}
}

// ecmaValues are the enumerations of ECMA-323's OperationErrors,
// StateIncompatibilityErrors and SystemResourceAvailabilityErrors as the
// XSD spells them (research/ecma.md §3.1).
const ecmaValues = `
generic atLeastOneConditionalParameterNotProvided featureAlreadySet invalidMsgID invalidParameterValue
invalidAccountCode invalidAgentGroup invalidAgentIdentifier invalidAgentPassword invalidAgentState
invalidAlertTime invalidAllocationState invalidAuthCode invalidAutoAnswer invalidBitRate
invalidButtonIdentifier invalidCallType invalidConnectionRate invalidConsultPurpose invalidCorrelatorData
invalidCrossRefID invalidDelayTolerance invalidDestination invalidDestinationDetect invalidDoNotDisturb
invalidEscapeCrossRefID invalidFeature invalidFile invalidFlowDirection invalidForwardingDestination
invalidForwardingFlag invalidForwardingType invalidHookswitchType invalidHookswitchComponent invalidLampMode
invalidLampID invalidMessageWaitingSetting invalidMicrophoneGain invalidMicrophoneMute
invalidMonitorCrossRefID invalidMonitorFilter invalidMonitorObject invalidMonitorType
invalidNumberOFChannels invalidParticipationType invalidRemainRetry invalidRingCount invalidRingPattern
invalidRingVolume invalidRouteingAlgorithm invalidRouteingCrossRefID invalidRouteRegistrationCrossRefID
invalidSpeakerVolume invalidSpeakerMute invalidSwitchingSubdomainCharsType invalidObjectType
invalidActiveCallObject invalidCalledDeviceObjectType invalidCallingDeviceObjectType
invalidCallToBePickedUpObjectType invalidCallToDivertObjectType invalidCallToParkObjectType
invalidDestinationDeviceObject invalidHeldCallObject invalidMonitorObjectType invalidParkToObjectType
messageIDRequired notDifferentDevices notSameDevice objectNotKnown invalidCallID invalidActiveCallID
invalidHeldCallID invalidConnectionID invalidActiveConnectionID invalidHeldConnectionID invalidDeviceID
invalidActiveDeviceID invalidCalledDeviceID invalidCallingDeviceID invalidCallToParkDeviceID
invalidDestinationDeviceID invalidDivertingDeviceID invalidHeldDeviceID invalidParkToDeviceID
invalidPickUpDeviceID parameterNotSupported requestIncompatibleWithObject serviceNotSupported
securityViolation valueOutOfRange
invalidObjectState invalidDeviceState connectedCallExists invalidActiveDeviceState invalidCalledDeviceState
invalidCallingDeviceState invalidConnectionState invalidActiveConnectionState
invalidConnectionIDForActiveCall invalidHeldConnectionState noActiveCall noCallToAnswer noCallToClear
noCallToComplete noConnectionToClear noHeldCall
resourceBusy internalResourceBusy networkBusy resourceOutOfService deviceOutOfService
activeDeviceOutOfService calledDeviceOutOfService callingDeviceOutOfService networkOutOfService
otherResourceOutOfService resourceLimitExceeded
`

func TestErrorCodesAreECMASpellings(t *testing.T) {
	known := map[string]bool{}
	for _, v := range strings.Fields(ecmaValues) {
		known[v] = true
	}
	for _, c := range []ErrorCode{
		Generic, InvalidParameterValue, InvalidConnectionID, InvalidCallID, InvalidDeviceID,
		InvalidCallingDeviceID, InvalidCalledDeviceID, InvalidDestination, InvalidHeldCallID,
		InvalidActiveCallID, InvalidHeldConnectionID, InvalidActiveConnectionID, ObjectNotKnown,
		NotDifferentDevices, RequestIncompatibleWithObject, ServiceNotSupported, ParameterNotSupported,
		ValueOutOfRange, InvalidObjectState, InvalidDeviceState, InvalidConnectionState,
		InvalidActiveConnectionState, InvalidHeldConnectionState, ConnectedCallExists, NoActiveCall,
		NoHeldCall, NoCallToAnswer, NoCallToClear, NoConnectionToClear, ResourceBusy,
		ResourceOutOfService, NetworkBusy, NetworkOutOfService, DeviceOutOfService,
		CallingDeviceOutOfService, CalledDeviceOutOfService,
	} {
		if !known[string(c)] {
			t.Errorf("%q is not an ECMA-323 error value", c)
		}
	}
}
