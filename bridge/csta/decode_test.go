package csta

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	soapOpen  = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:csta="` + nsED4 + `"><SOAP-ENV:Body>`
	soapClose = `</SOAP-ENV:Body></SOAP-ENV:Envelope>`
)

func soap(inner string) string { return soapOpen + inner + soapClose }
func bare(service, inner string) string {
	return `<` + service + ` xmlns="` + nsED5 + `">` + inner + `</` + service + `>`
}

func nested(n int) string {
	return strings.Repeat("<a>", n) + strings.Repeat("</a>", n)
}

// rejectCase is a body Decode must refuse with code, msg appearing in the
// message. The cases also seed FuzzDecode.
type rejectCase struct {
	name string
	body string
	code ErrorCode
	msg  string
}

func rejectCases() []rejectCase {
	long := strings.Repeat("7", maxValueLen+1)
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>` +
		bare("AnswerCall", `<callToBeAnswered>&lol3;</callToBeAnswered>`)
	return []rejectCase{
		{"empty", "", Generic, "empty"},
		{"whitespace", " \r\n\t", Generic, "empty"},
		{"not xml", "hello", Generic, "text outside"},
		{"json", `{"AnswerCall":{"callToBeAnswered":"-18"}}`, Generic, ""},
		{"truncated", soap(`<csta:AnswerCall><csta:callToBeAnswered>-18</csta:callTo`)[:120], Generic, "malformed"},
		{"cut off between tags", `<csta:AnswerCall><callToBeAnswered>`, Generic, "(line 1): unexpected EOF"},
		{"cut off after lines", "<?xml version=\"1.0\"?>\n<AnswerCall>\r\n <callToBeAnswered>7\n", Generic, "(line 4): unexpected EOF"},
		{"text before the document element", `garbage<HoldCall><callToBeHeld>1</callToBeHeld></HoldCall>`, Generic, "text outside"},
		{"unknown request cut off", `<MakeCoffee><strength>9</strength>`, Generic, "unexpected EOF"},
		{"unknown request, text after", `<MakeCoffee/>x`, Generic, "text outside"},
		{"truncated after root start", `<AnswerCall xmlns="x"><callToBeAnswered>-1</callToBeAnswered>`, Generic, "malformed"},
		{"mismatched end tag", bare("AnswerCall", `<callToBeAnswered>-18</callToBeCleared>`), Generic, "malformed"},
		{"unbalanced envelope", soapOpen + `<csta:HoldCall><csta:callToBeHeld>1</csta:callToBeHeld></csta:HoldCall>` + `</SOAP-ENV:Envelope>`, Generic, "malformed"},
		{"xml 1.1", `<?xml version="1.1"?>` + bare("HoldCall", `<callToBeHeld>1</callToBeHeld>`), Generic, ""},
		{"declaration not first", `<!-- c --><?xml version="1.0"?>` + bare("HoldCall", `<callToBeHeld>1</callToBeHeld>`), Generic, "declaration"},

		{"long element name in an error", bare("HoldCall", "<"+strings.Repeat("n", 5000)+"></x>"), Generic, "malformed"},
		{"unknown request", bare("FooCall", `<callToBeHeld>1</callToBeHeld>`), ServiceNotSupported, "FooCall"},
		{"unknown request in envelope", soap(`<csta:ParkCall><csta:parking>1</csta:parking></csta:ParkCall>`), ServiceNotSupported, "ParkCall"},
		{"response as request", bare("AnswerCallResponse", ""), ServiceNotSupported, "AnswerCallResponse"},
		{"fault as request", soap(`<SOAP-ENV:Fault><faultcode>Client</faultcode></SOAP-ENV:Fault>`), ServiceNotSupported, "Fault"},

		{"AnswerCall without callToBeAnswered", soap(`<csta:AnswerCall></csta:AnswerCall>`), InvalidConnectionID, "callToBeAnswered"},
		{"ClearCall without callToBeCleared", bare("ClearCall", `<reason>normal</reason>`), InvalidConnectionID, "callToBeCleared"},
		{"ClearConnection without connectionToBeCleared", bare("ClearConnection", ""), InvalidConnectionID, "connectionToBeCleared"},
		{"HoldCall without callToBeHeld", bare("HoldCall", `<connectionReservation>true</connectionReservation>`), InvalidConnectionID, "callToBeHeld"},
		{"RetrieveCall without callToBeRetrieved", bare("RetrieveCall", ""), InvalidConnectionID, "callToBeRetrieved"},
		{"SST without activeCall", bare("SingleStepTransferCall", `<transferredTo>1002</transferredTo>`), InvalidConnectionID, "activeCall"},
		{"TransferCall without heldCall", bare("TransferCall", `<activeCall>2</activeCall>`), InvalidConnectionID, "heldCall"},
		{"TransferCall without activeCall", bare("TransferCall", `<heldCall>1</heldCall>`), InvalidConnectionID, "activeCall"},
		{"ConnectionID in another element", bare("AnswerCall", `<callToBeCleared>-18</callToBeCleared>`), InvalidConnectionID, "missing"},
		{"empty ConnectionID", bare("AnswerCall", `<callToBeAnswered> </callToBeAnswered>`), InvalidConnectionID, "empty"},
		{"self-closed ConnectionID", bare("AnswerCall", `<callToBeAnswered/>`), InvalidConnectionID, "empty"},
		{"ConnectionID with empty children", bare("AnswerCall", `<callToBeAnswered><callID/><deviceID> </deviceID></callToBeAnswered>`), InvalidConnectionID, "empty"},
		{"ConnectionID text only in unknown child", bare("AnswerCall", `<callToBeAnswered><call>-18</call></callToBeAnswered>`), InvalidConnectionID, "empty"},
		{"ConnectionID twice", bare("AnswerCall", `<callToBeAnswered>1</callToBeAnswered><callToBeAnswered>2</callToBeAnswered>`), InvalidConnectionID, "more than once"},
		{"callID twice", bare("AnswerCall", `<callToBeAnswered><callID>1</callID><callID>2</callID></callToBeAnswered>`), InvalidConnectionID, "callID"},
		{"huge callID", bare("HoldCall", `<callToBeHeld><callID>`+long+`</callID></callToBeHeld>`), InvalidConnectionID, "longer than"},
		{"huge bare ConnectionID", bare("HoldCall", `<callToBeHeld>`+long+`</callToBeHeld>`), InvalidConnectionID, "longer than"},
		{"line break in callID", bare("HoldCall", `<callToBeHeld>1&#10;2</callToBeHeld>`), InvalidConnectionID, "control"},

		{"SST without transferredTo", bare("SingleStepTransferCall", `<activeCall>1</activeCall>`), InvalidCalledDeviceID, "transferredTo"},
		{"SST empty transferredTo", bare("SingleStepTransferCall", `<activeCall>1</activeCall><transferredTo> </transferredTo>`), InvalidCalledDeviceID, "empty"},
		{"MakeCall without calledDirectoryNumber", bare("MakeCall", `<callingDevice>1001</callingDevice>`), InvalidCalledDeviceID, "calledDirectoryNumber"},
		{"MakeCall empty calledDirectoryNumber", bare("MakeCall", `<callingDevice>1001</callingDevice><calledDirectoryNumber/>`), InvalidCalledDeviceID, "empty"},
		{"MakeCall huge calledDirectoryNumber", bare("MakeCall", `<callingDevice/><calledDirectoryNumber>`+long+`</calledDirectoryNumber>`), InvalidCalledDeviceID, "longer than"},
		{"MakeCall injected line", bare("MakeCall", "<callingDevice/><calledDirectoryNumber>1002\napi reloadxml</calledDirectoryNumber>"), InvalidCalledDeviceID, "control"},
		{"MakeCall without callingDevice", bare("MakeCall", `<calledDirectoryNumber>1002</calledDirectoryNumber>`), InvalidParameterValue, "callingDevice"},
		{"MakeCall bad autoOriginate", bare("MakeCall", `<callingDevice/><calledDirectoryNumber>1002</calledDirectoryNumber><autoOriginate>now</autoOriginate>`), InvalidParameterValue, "autoOriginate"},
		{"MakeCall autoOriginate twice", bare("MakeCall", `<callingDevice/><calledDirectoryNumber>1</calledDirectoryNumber><autoOriginate>prompt</autoOriginate><autoOriginate>prompt</autoOriginate>`), InvalidParameterValue, "more than once"},

		{"SnapshotDevice without snapshotObject", bare("SnapshotDevice", ""), InvalidDeviceID, "snapshotObject"},
		{"SnapshotDevice empty snapshotObject", bare("SnapshotDevice", `<snapshotObject> </snapshotObject>`), InvalidDeviceID, "empty"},
		{"SnapshotCall without snapshotObject", soap(`<csta:SnapshotCall/>`), InvalidConnectionID, "snapshotObject"},
		{"GetSwitchingFunctionDevices requestedDeviceID twice", bare("GetSwitchingFunctionDevices", `<requestedDeviceID>1</requestedDeviceID><requestedDeviceID>2</requestedDeviceID>`), InvalidDeviceID, "more than once"},
		{"ConsultationCall without existingCall", bare("ConsultationCall", `<consultedDevice>1002</consultedDevice>`), InvalidConnectionID, "existingCall"},
		{"ConsultationCall without consultedDevice", soap(`<csta:ConsultationCall><csta:existingCall>1</csta:existingCall></csta:ConsultationCall>`), InvalidCalledDeviceID, "consultedDevice"},
		{"AlternateCall without activeCall", bare("AlternateCall", `<heldCall>1</heldCall>`), InvalidConnectionID, "activeCall"},
		{"ReconnectCall without heldCall", bare("ReconnectCall", `<activeCall>2</activeCall>`), InvalidConnectionID, "heldCall"},
		{"ConferenceCall empty activeCall", bare("ConferenceCall", `<heldCall>1</heldCall><activeCall><callID/></activeCall>`), InvalidConnectionID, "empty"},
		{"DeflectCall without callToBeDiverted", bare("DeflectCall", `<newDestination>1002</newDestination>`), InvalidConnectionID, "callToBeDiverted"},
		{"DeflectCall empty newDestination", bare("DeflectCall", `<callToBeDiverted>-1</callToBeDiverted><newDestination/>`), InvalidCalledDeviceID, "empty"},
		{"DeflectCall injected newDestination", bare("DeflectCall", "<callToBeDiverted>-1</callToBeDiverted><newDestination>1002\r\nuuid_kill all</newDestination>"), InvalidCalledDeviceID, "control"},
		{"SetDoNotDisturb without device", bare("SetDoNotDisturb", `<doNotDisturbOn>true</doNotDisturbOn>`), InvalidDeviceID, "device"},
		{"SetDoNotDisturb bad flag", bare("SetDoNotDisturb", `<device>1001</device><doNotDisturbOn>yes</doNotDisturbOn>`), InvalidDoNotDisturb, "true or false"},
		{"SetForwarding unknown type", bare("SetForwarding", `<device>1001</device><forwardingType>forwardDND</forwardingType><activateForward>true</activateForward>`), InvalidForwardingType, "forwardingType"},
		{"SetForwarding empty type", bare("SetForwarding", `<device>1001</device><forwardingType/><activateForward>true</activateForward>`), InvalidForwardingType, "empty"},
		{"SetForwarding injected forwardDN", bare("SetForwarding", "<device>1001</device><forwardingType>forwardBusy</forwardingType><forwardDN>1002\r\nuuid_kill all</forwardDN><activateForward>true</activateForward>"), InvalidForwardingDestination, "control"},
		{"SetForwarding without activateForward", bare("SetForwarding", `<device>1001</device><forwardingType>forwardBusy</forwardingType>`), InvalidForwardingFlag, "activateForward"},
		{"SetForwarding ringCount zero", bare("SetForwarding", `<device>1001</device><forwardingType>forwardNoAns</forwardingType><forwardDN>1</forwardDN><activateForward>true</activateForward><ringCount>0</ringCount>`), InvalidRingCount, "ringCount"},
		{"GetForwarding without device", bare("GetForwarding", ``), InvalidDeviceID, "device"},
		{"GenerateDigits without connectionToSendDigits", bare("GenerateDigits", `<charactersToSend>1</charactersToSend>`), InvalidConnectionID, "connectionToSendDigits"},
		{"GenerateDigits without charactersToSend", bare("GenerateDigits", `<connectionToSendDigits>1</connectionToSendDigits>`), InvalidParameterValue, "charactersToSend"},
		{"GenerateDigits empty charactersToSend", bare("GenerateDigits", `<connectionToSendDigits>1</connectionToSendDigits><charactersToSend/>`), InvalidParameterValue, "empty"},
		{"GenerateDigits lower-case digit", bare("GenerateDigits", `<connectionToSendDigits>1</connectionToSendDigits><charactersToSend>1a</charactersToSend>`), InvalidParameterValue, "DTMF"},
		{"GenerateDigits space between digits", bare("GenerateDigits", `<connectionToSendDigits>1</connectionToSendDigits><charactersToSend>1 2</charactersToSend>`), InvalidParameterValue, "DTMF"},
		{"GenerateDigits pause character", bare("GenerateDigits", `<connectionToSendDigits>1</connectionToSendDigits><charactersToSend>1,2</charactersToSend>`), InvalidParameterValue, "DTMF"},
		{"GenerateDigits shell", soap(`<csta:GenerateDigits><csta:connectionToSendDigits>1</csta:connectionToSendDigits><csta:charactersToSend>1;reboot</csta:charactersToSend></csta:GenerateDigits>`), InvalidParameterValue, "DTMF"},
		{"GenerateDigits too many digits", bare("GenerateDigits", `<connectionToSendDigits>1</connectionToSendDigits><charactersToSend>`+strings.Repeat("1", maxDigits+1)+`</charactersToSend>`), InvalidParameterValue, "longer than"},

		{"envelope without body", `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/></SOAP-ENV:Envelope>`, Generic, "without Body"},
		{"empty body", soap(" "), Generic, "empty SOAP Body"},
		{"two bodies", soapOpen + `<csta:HoldCall><csta:callToBeHeld>1</csta:callToBeHeld></csta:HoldCall></SOAP-ENV:Body><SOAP-ENV:Body/></SOAP-ENV:Envelope>`, Generic, "more than one Body"},
		{"two requests in body", soap(`<csta:HoldCall><csta:callToBeHeld>1</csta:callToBeHeld></csta:HoldCall><csta:ClearCall><csta:callToBeCleared>1</csta:callToBeCleared></csta:ClearCall>`), Generic, "more than one request"},
		{"two bare requests", bare("HoldCall", `<callToBeHeld>1</callToBeHeld>`) + bare("ClearCall", `<callToBeCleared>1</callToBeCleared>`), Generic, "more than one document element"},
		{"text after root", bare("HoldCall", `<callToBeHeld>1</callToBeHeld>`) + "x", Generic, "text outside"},

		{"doctype", `<!DOCTYPE HoldCall>` + bare("HoldCall", `<callToBeHeld>1</callToBeHeld>`), Generic, "DOCTYPE"},
		{"billion laughs", laughs, Generic, "DOCTYPE"},
		{"external entity", `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>` + bare("HoldCall", `<callToBeHeld>&x;</callToBeHeld>`), Generic, "DOCTYPE"},
		{"undefined entity", bare("HoldCall", `<callToBeHeld>&x;</callToBeHeld>`), Generic, "malformed"},
		{"deep nesting", bare("HoldCall", `<callToBeHeld>1</callToBeHeld><extensions>`+nested(200)+`</extensions>`), Generic, "nested deeper"},
		{"deep nesting in ConnectionID", bare("HoldCall", `<callToBeHeld>`+nested(100)+`1</callToBeHeld>`), Generic, "nested deeper"},
		{"too large", bare("HoldCall", `<callToBeHeld>1</callToBeHeld><extensions>`+strings.Repeat("x", MaxBodySize)+`</extensions>`), Generic, "larger than"},
		{"NUL in text", bare("HoldCall", "<callToBeHeld>1\x002</callToBeHeld>"), Generic, "malformed"},
		{"NUL in name", bare("HoldCall", "<callTo\x00BeHeld>1</callTo\x00BeHeld>"), Generic, "malformed"},
		{"NUL character reference", bare("HoldCall", "<callToBeHeld>&#0;</callToBeHeld>"), Generic, "malformed"},
		{"invalid UTF-8 in text", bare("HoldCall", "<callToBeHeld>1\xff</callToBeHeld>"), Generic, "UTF-8"},
		{"invalid UTF-8 in comment", bare("HoldCall", "<callToBeHeld>1</callToBeHeld><!-- \xc3\x28 -->"), Generic, "UTF-8"},
		{"latin-1 bytes declared UTF-8", `<?xml version="1.0" encoding="UTF-8"?>` + bare("MakeCall", "<callingDevice/><calledDirectoryNumber>M\xfcller</calledDirectoryNumber>"), Generic, "UTF-8"},
		{"unsupported encoding", `<?xml version="1.0" encoding="KOI8-R"?>` + bare("HoldCall", `<callToBeHeld>1</callToBeHeld>`), Generic, "KOI8-R"},
		{"UTF-16 declared without BOM", `<?xml version="1.0" encoding="UTF-16"?>` + bare("HoldCall", `<callToBeHeld>1</callToBeHeld>`), Generic, "UTF-16"},
		{"UTF-16 odd length", "\xff\xfe<\x00a", Generic, "odd number"},
		{"UTF-16 unpaired surrogate", "\xff\xfe<\x00\x00\xd8", Generic, "surrogate"},
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := rejectCases()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Decode([]byte(tt.body))
			if req == nil {
				t.Fatal("Decode returned a nil *Request")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode = %+v, %v; want an *Error", req, err)
			}
			if len(e.Message) > 300 {
				t.Errorf("message of %d bytes: %.80s...", len(e.Message), e.Message)
			}
			if e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
				t.Fatalf("Decode error = %v; want code %s with %q in the message", err, tt.code, tt.msg)
			}
			if out := EncodeFault(req.Envelope, e); wellFormed(out) != nil {
				t.Fatalf("fault is not well-formed: %v\n%s", wellFormed(out), out)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Request
	}{
		{"nesting up to the limit", bare("HoldCall", `<callToBeHeld>1</callToBeHeld><extensions>`+nested(maxDepth-2)+`</extensions>`),
			Request{Service: HoldCall, Namespace: ed5, Conn: ConnectionID{CallID: "1"}}},
		{"value of the maximum length", bare("HoldCall", "<callToBeHeld>\r\n  "+strings.Repeat("7", maxValueLen)+"\r\n  </callToBeHeld>"),
			Request{Service: HoldCall, Namespace: ed5, Conn: ConnectionID{CallID: strings.Repeat("7", maxValueLen)}}},
		{"comments and CDATA inside values", bare("HoldCall", `<callToBeHeld><!-- id: -->-1<![CDATA[8]]><?pi x?></callToBeHeld>`),
			Request{Service: HoldCall, Namespace: ed5, Conn: ConnectionID{CallID: "-18"}}},
		{"callID child wins over own text", bare("HoldCall", `<callToBeHeld>9<callID>3</callID></callToBeHeld>`),
			Request{Service: HoldCall, Namespace: ed5, Conn: ConnectionID{CallID: "3"}}},
		{"deviceID only", bare("ClearConnection", `<connectionToBeCleared><deviceID>sip:1001@pbx</deviceID></connectionToBeCleared>`),
			Request{Service: ClearConnection, Namespace: ed5, Conn: ConnectionID{DeviceID: "sip:1001@pbx"}}},
		{"undeclared prefix", `<csta:HoldCall><csta:callToBeHeld>4</csta:callToBeHeld></csta:HoldCall>`,
			Request{Service: HoldCall, Conn: ConnectionID{CallID: "4"}}},
		{"foreign namespace, local names match", `<x:AnswerCall xmlns:x="urn:vendor:csta"><y:callToBeAnswered xmlns:y="urn:other">5</y:callToBeAnswered></x:AnswerCall>`,
			Request{Service: AnswerCall, Namespace: "urn:vendor:csta", Conn: ConnectionID{CallID: "5"}}},
		{"envelope with trailing element after Body", soap(`<csta:HoldCall><csta:callToBeHeld>1</csta:callToBeHeld></csta:HoldCall>`)[:len(soap(""))-len("</SOAP-ENV:Envelope>")+len(`<csta:HoldCall><csta:callToBeHeld>1</csta:callToBeHeld></csta:HoldCall>`)] + `<trailer/></SOAP-ENV:Envelope>`,
			Request{Service: HoldCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "1"}}},
		{"windows-1252 label", `<?xml version='1.0' encoding='windows-1252'?>` + bare("MakeCall", "<callingDevice>\x80</callingDevice><calledDirectoryNumber>\xe9</calledDirectoryNumber>"),
			Request{Service: MakeCall, Namespace: ed5, CallingDevice: "€", Called: "é"}},
		{"whitespace before the declaration", "\r\n\n" + `<?xml version="1.0" encoding="UTF-8"?>` + bare("HoldCall", `<callToBeHeld>1</callToBeHeld>`),
			Request{Service: HoldCall, Namespace: ed5, Conn: ConnectionID{CallID: "1"}}},
		{"us-ascii label", `<?xml version="1.0" encoding="US-ASCII"?>` + bare("HoldCall", `<callToBeHeld>1</callToBeHeld>`),
			Request{Service: HoldCall, Namespace: ed5, Conn: ConnectionID{CallID: "1"}}},
		{"utf8 label", `<?xml version="1.0" encoding="utf8"?>` + bare("HoldCall", `<callToBeHeld>ü</callToBeHeld>`),
			Request{Service: HoldCall, Namespace: ed5, Conn: ConnectionID{CallID: "ü"}}},
		{"UTF-16BE with BOM", utf16be("\ufeff" + bare("HoldCall", `<callToBeHeld>1</callToBeHeld>`)),
			Request{Service: HoldCall, Namespace: ed5, Conn: ConnectionID{CallID: "1"}}},
		{"conference id passes untouched", bare("ClearConnection", `<connectionToBeCleared> -3|4 </connectionToBeCleared>`),
			Request{Service: ClearConnection, Namespace: ed5, Conn: ConnectionID{CallID: "-3|4"}}},
		{"conference id as callID child", bare("ConferenceCall", `<heldCall><callID>-3|4</callID></heldCall><activeCall>5</activeCall>`),
			Request{Service: ConferenceCall, Namespace: ed5, Held: ConnectionID{CallID: "-3|4"}, Active: ConnectionID{CallID: "5"}}},
		{"GenerateDigits, the longest string", bare("GenerateDigits", `<connectionToSendDigits>1</connectionToSendDigits><charactersToSend> `+strings.Repeat("0123456789*#ABCD", maxDigits/16)+"\n</charactersToSend>"),
			Request{Service: GenerateDigits, Namespace: ed5, Conn: ConnectionID{CallID: "1"}, Digits: strings.Repeat("0123456789*#ABCD", maxDigits/16)}},
		{"GetSwitchingFunctionDevices, empty requestedDeviceID", bare("GetSwitchingFunctionDevices", `<requestedDeviceID/><requestedDeviceCategory>station</requestedDeviceCategory>`),
			Request{Service: GetSwitchingFunctionDevices, Namespace: ed5}},
		{"SnapshotDevice by identity index", `<csta:SnapshotDevice xmlns:csta="` + ed3 + `"><csta:snapshotObject>1</csta:snapshotObject></csta:SnapshotDevice>`,
			Request{Service: SnapshotDevice, Namespace: ed3, Device: "1"}},
		{"UTF-8 BOM wins over a Latin-1 label", "\xef\xbb\xbf" + `<?xml version="1.0" encoding="ISO-8859-1"?>` + bare("HoldCall", `<callToBeHeld>ü</callToBeHeld>`),
			Request{Service: HoldCall, Namespace: ed5, Conn: ConnectionID{CallID: "ü"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(*req, tt.want) {
				t.Fatalf("Decode =\n%+v\nwant\n%+v", *req, tt.want)
			}
		})
	}
}

func utf16be(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		if r > 0xFFFF {
			panic("test helper handles the BMP only")
		}
		b.WriteByte(byte(r >> 8))
		b.WriteByte(byte(r))
	}
	return b.String()
}

// The partial request that comes with an error tells the caller how to
// answer: in the client's envelope style once the document element is known.
func TestDecodeErrorKeepsStyle(t *testing.T) {
	tests := []struct {
		body     string
		envelope bool
		service  Service
	}{
		{"<<<", true, ""},
		{bare("MakeCall", `<callingDevice/>`), false, MakeCall},
		{bare("MakeCall", `<callingDevice/>`)[:strings.Index(bare("MakeCall", ""), "</")+5], false, MakeCall},
		{soap(`<csta:AnswerCall/>`), true, AnswerCall},
		{bare("Snapshot", ""), false, ""},
	}
	for _, tt := range tests {
		req, err := Decode([]byte(tt.body))
		if err == nil {
			t.Fatalf("Decode(%q) succeeded", tt.body)
		}
		if req.Envelope != tt.envelope || req.Service != tt.service {
			t.Errorf("Decode(%q) = Envelope %v Service %q; want %v %q", tt.body, req.Envelope, req.Service, tt.envelope, tt.service)
		}
	}
}

// The templates on Snom's page lack the space between two attributes. That
// is not well-formed XML, yet clients send it and the phone takes it; this
// pins the behaviour of encoding/xml the decoder relies on.
func TestMissingSpaceBeforeXmlnsIsAccepted(t *testing.T) {
	body := readGolden(t, "spec-clearconnection.req.xml")
	if !bytes.Contains(body, []byte(`envelope/"xmlns:csta=`)) {
		t.Fatal("the golden template lost its missing space")
	}
	req, err := Decode(body)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if req.Service != ClearConnection || req.Namespace != ed4 || req.Conn.CallID != "4711" {
		t.Fatalf("Decode = %+v", req)
	}
}
