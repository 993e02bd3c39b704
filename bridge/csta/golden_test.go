package csta

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.resp.xml and the seed corpus in testdata/fuzz")

const goldenDir = "testdata/golden"

// goldenCase pairs a request file with what Decode must make of it and the
// reply the bridge sends. With core set, the decoded request is answered
// with that error, as when the call logic refuses it; with res set, with
// that result instead of resultFor's.
type goldenCase struct {
	name    string // testdata/golden/<name>.resp.xml
	req     string // testdata/golden/<req>.req.xml; "" = name
	want    *Request
	wantErr ErrorCode
	core    *Error
	res     *Result
}

const (
	ed2 = "http://www.ecma.ch/standards/ecma-323/csta/ed2"
	ed3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
	ed4 = nsED4
	ed5 = nsED5
	ed6 = "http://www.ecma-international.org/standards/ecma-323/csta/ed6"
)

var goldenCases = []goldenCase{
	// The eight templates of Snom's CSTA page, byte for byte.
	{name: "spec-clearconnection", want: &Request{Service: ClearConnection, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "4711"}}},
	{name: "spec-holdcall", want: &Request{Service: HoldCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "4711"}}},
	{name: "spec-retrievecall", want: &Request{Service: RetrieveCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "4711"}}},
	{name: "spec-singlesteptransfercall", want: &Request{Service: SingleStepTransferCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "4711"}, TransferredTo: "sip:a@bc.com"}},
	{name: "spec-transfercall", want: &Request{Service: TransferCall, Envelope: true, Namespace: ed4, Held: ConnectionID{CallID: "4711"}, Active: ConnectionID{CallID: "4712"}}},
	{name: "spec-answercall", want: &Request{Service: AnswerCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "4711"}}},
	{name: "spec-clearcall", want: &Request{Service: ClearCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "4711"}}},
	{name: "spec-makecall", want: &Request{Service: MakeCall, Envelope: true, Namespace: ed4, CallingDevice: "22343", Called: "18005551212"}},
	{name: "spec-post-example", want: &Request{Service: AnswerCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "-2"}}},

	// The test vectors of research/snom.md §4.1.
	{name: "snom-answercall-18", want: &Request{Service: AnswerCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "-18"}}},
	{name: "snom-makecall-bare-ed5", want: &Request{Service: MakeCall, Namespace: ed5, CallingDevice: "sip:455455@ser.intern.snom.de", Called: "455360", AutoOriginate: "doNotPrompt"}},

	// What other clients send.
	{name: "envelope-default-ns", want: &Request{Service: HoldCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "-3"}}},
	{name: "envelope-other-prefixes-ed3", want: &Request{Service: RetrieveCall, Envelope: true, Namespace: ed3, Conn: ConnectionID{CallID: "7"}}},
	{name: "envelope-soap12-header", want: &Request{Service: ClearCall, Envelope: true, Namespace: ed6, Conn: ConnectionID{CallID: "-12", DeviceID: "sip:1001@pbx.example.com"}}},
	{name: "envelope-ed2-children", want: &Request{Service: TransferCall, Envelope: true, Namespace: ed2, Held: ConnectionID{CallID: "4711", DeviceID: "1001"}, Active: ConnectionID{CallID: "4712", DeviceID: "1001"}}},
	{name: "envelope-requestsystemstatus", want: &Request{Service: RequestSystemStatus, Envelope: true, Namespace: ed4}},
	{name: "bare-ed3-answercall-children", want: &Request{Service: AnswerCall, Namespace: ed3, Conn: ConnectionID{CallID: "-12", DeviceID: "sip:455455@ser.intern.snom.de"}}},
	{name: "bare-ed5-sst-extra-elements", want: &Request{Service: SingleStepTransferCall, Namespace: ed5, Conn: ConnectionID{CallID: "-4"}, TransferredTo: "sip:2002@pbx.example.com"}},
	{name: "bare-no-namespace-clearconnection", want: &Request{Service: ClearConnection, Conn: ConnectionID{CallID: "-18"}}},
	{name: "bare-ed6-makecall-empty-calling", want: &Request{Service: MakeCall, Namespace: ed6, Called: "+49 30 1234&5", AutoOriginate: "prompt"}},
	{name: "bare-requestsystemstatus", want: &Request{Service: RequestSystemStatus, Namespace: ed5}},
	{name: "bom-utf8-holdcall", want: &Request{Service: HoldCall, Namespace: ed5, Conn: ConnectionID{CallID: "2"}}},
	{name: "latin1-makecall", want: &Request{Service: MakeCall, Namespace: ed4, CallingDevice: "sip:andré@pbx.example.com", Called: "Müller €"}},
	{name: "utf16le-bom-retrievecall", want: &Request{Service: RetrieveCall, Namespace: ed5, Conn: ConnectionID{CallID: "-\U0001F4DE"}}},

	// The services of Snom firmware 8.7.3+: SOAP in the style of Snom's
	// templates, and bare with ConnectionIDs as children.
	{name: "envelope-snapshotdevice", want: &Request{Service: SnapshotDevice, Envelope: true, Namespace: ed4, Device: "sip:1001@pbx.example.com"}},
	{name: "bare-ed5-snapshotdevice", want: &Request{Service: SnapshotDevice, Namespace: ed5, Device: "455455@ser.intern.snom.de"}},
	{name: "bare-ed5-snapshotdevice-nocalls", req: "bare-ed5-snapshotdevice",
		want: &Request{Service: SnapshotDevice, Namespace: ed5, Device: "455455@ser.intern.snom.de"},
		res:  &Result{}},
	{name: "envelope-snapshotcall", want: &Request{Service: SnapshotCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "-12"}}},
	{name: "bare-ed3-snapshotcall-children", want: &Request{Service: SnapshotCall, Namespace: ed3, Conn: ConnectionID{CallID: "-12", DeviceID: "sip:455455@ser.intern.snom.de"}}},
	{name: "envelope-getswitchingfunctiondevices", want: &Request{Service: GetSwitchingFunctionDevices, Envelope: true, Namespace: ed4}},
	{name: "bare-ed5-getswitchingfunctiondevices-requested", want: &Request{Service: GetSwitchingFunctionDevices, Namespace: ed5, Device: "sip:455455@ser.intern.snom.de"}},
	{name: "envelope-consultationcall", want: &Request{Service: ConsultationCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "4711"}, Called: "1002"}},
	{name: "bare-ed5-consultationcall-children", want: &Request{Service: ConsultationCall, Namespace: ed5, Conn: ConnectionID{CallID: "-12", DeviceID: "sip:455455@ser.intern.snom.de"}, Called: "455360"}},
	{name: "envelope-alternatecall", want: &Request{Service: AlternateCall, Envelope: true, Namespace: ed4, Held: ConnectionID{CallID: "4711"}, Active: ConnectionID{CallID: "4712"}}},
	{name: "bare-ed3-alternatecall-children", want: &Request{Service: AlternateCall, Namespace: ed3,
		Held: ConnectionID{CallID: "-12", DeviceID: "sip:455455@ser.intern.snom.de"}, Active: ConnectionID{CallID: "3", DeviceID: "sip:455455@ser.intern.snom.de"}}},
	{name: "envelope-reconnectcall", want: &Request{Service: ReconnectCall, Envelope: true, Namespace: ed4, Held: ConnectionID{CallID: "4711"}, Active: ConnectionID{CallID: "4712"}}},
	{name: "bare-ed5-reconnectcall-children", want: &Request{Service: ReconnectCall, Namespace: ed5,
		Held: ConnectionID{CallID: "-12", DeviceID: "sip:455455@ser.intern.snom.de"}, Active: ConnectionID{CallID: "3", DeviceID: "sip:455455@ser.intern.snom.de"}}},
	{name: "envelope-conferencecall", want: &Request{Service: ConferenceCall, Envelope: true, Namespace: ed4, Held: ConnectionID{CallID: "4711"}, Active: ConnectionID{CallID: "4712"}}},
	{name: "bare-ed5-conferencecall-children", want: &Request{Service: ConferenceCall, Namespace: ed5,
		Held: ConnectionID{CallID: "-12", DeviceID: "sip:455455@ser.intern.snom.de"}, Active: ConnectionID{CallID: "3", DeviceID: "sip:455455@ser.intern.snom.de"}}},
	{name: "envelope-clearconnection-conference", want: &Request{Service: ClearConnection, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "-3|4"}}},
	{name: "envelope-deflectcall", want: &Request{Service: DeflectCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "-18"}, Called: "sip:1003@pbx.example.com"}},
	{name: "bare-ed5-deflectcall-children", want: &Request{Service: DeflectCall, Namespace: ed5, Conn: ConnectionID{CallID: "-18", DeviceID: "sip:455455@ser.intern.snom.de"}, Called: "455360"}},
	{name: "bare-ed5-setdonotdisturb", want: &Request{Service: SetDoNotDisturb, Namespace: ed5, Device: "sip:455455@ser.intern.snom.de", DoNotDisturbOn: "true"}},
	{name: "bare-ed5-getdonotdisturb", want: &Request{Service: GetDoNotDisturb, Namespace: ed5, Device: "sip:455455@ser.intern.snom.de"}},
	{name: "bare-ed5-setforwarding", want: &Request{Service: SetForwarding, Namespace: ed5, Device: "sip:455455@ser.intern.snom.de", ForwardingType: "forwardNoAns", ForwardDN: "455360", ActivateForward: "true", RingCount: "4"}},
	{name: "bare-ed5-getforwarding", want: &Request{Service: GetForwarding, Namespace: ed5, Device: "sip:455455@ser.intern.snom.de"}},
	{name: "envelope-setforwarding-off", want: &Request{Service: SetForwarding, Envelope: true, Namespace: ed4, Device: "1001", ForwardingType: "forwardImmediate", ActivateForward: "false"}},
	{name: "envelope-getforwarding", want: &Request{Service: GetForwarding, Envelope: true, Namespace: ed4, Device: "1001"}},
	{name: "envelope-generatedigits", want: &Request{Service: GenerateDigits, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "4711"}, Digits: "123*#A"}},
	{name: "bare-ed5-generatedigits-children", want: &Request{Service: GenerateDigits, Namespace: ed5, Conn: ConnectionID{CallID: "2", DeviceID: "sip:455455@ser.intern.snom.de"}, Digits: "0123456789*#ABCD"}},

	// Requests the decoder refuses.
	{name: "fault-unknown-service", wantErr: ServiceNotSupported},
	{name: "fault-snapshotdevice-missing-object", wantErr: InvalidDeviceID},
	{name: "fault-bare-consultationcall-empty-consulted", wantErr: InvalidCalledDeviceID},
	{name: "fault-bare-generatedigits-not-dtmf", wantErr: InvalidParameterValue},
	{name: "fault-bare-setforwarding-bad-type", wantErr: InvalidForwardingType},
	{name: "fault-alternatecall-missing-held", wantErr: InvalidConnectionID},
	{name: "fault-missing-connection", wantErr: InvalidConnectionID},
	{name: "fault-truncated", wantErr: Generic},
	{name: "fault-bare-missing-called", wantErr: InvalidCalledDeviceID},
	{name: "fault-doctype", wantErr: Generic},

	// Requests the call logic refuses.
	{name: "spec-holdcall-core-invalidCallID", req: "spec-holdcall",
		want: &Request{Service: HoldCall, Envelope: true, Namespace: ed4, Conn: ConnectionID{CallID: "4711"}},
		core: &Error{Code: InvalidCallID, Message: `no call "4711" <at> extension 1001 -- stale id? & -->`}},
	{name: "bare-ed3-answercall-core-noCallToAnswer", req: "bare-ed3-answercall-children",
		want: &Request{Service: AnswerCall, Namespace: ed3, Conn: ConnectionID{CallID: "-12", DeviceID: "sip:455455@ser.intern.snom.de"}},
		core: &Error{Code: NoCallToAnswer, Message: "call -12 is connected, not alerting"}},
	{name: "bare-requestsystemstatus-core-nomessage", req: "bare-requestsystemstatus",
		want: &Request{Service: RequestSystemStatus, Namespace: ed5},
		core: &Error{Code: ResourceOutOfService}},
	{name: "envelope-snapshotdevice-core-invalidDeviceID", req: "envelope-snapshotdevice",
		want: &Request{Service: SnapshotDevice, Envelope: true, Namespace: ed4, Device: "sip:1001@pbx.example.com"},
		core: &Error{Code: InvalidDeviceID, Message: "sip:1001@pbx.example.com is not this phone"}},
}

// resultFor is what the call logic would answer: a fixed new call id, the
// devices taken from the request so the golden files show them escaped.
func resultFor(req *Request) Result {
	switch req.Service {
	case MakeCall:
		dev := req.CallingDevice
		if dev == "" {
			dev = "sip:1001@pbx.example.com"
		}
		return Result{CallingDevice: &ConnectionID{CallID: "2", DeviceID: dev}}
	case SingleStepTransferCall:
		return Result{TransferredCall: &ConnectionID{CallID: "5", DeviceID: req.TransferredTo}}
	case TransferCall:
		return Result{TransferredCall: &ConnectionID{CallID: req.Active.CallID}}
	case RequestSystemStatus:
		return Result{SystemStatus: "normal"}
	case GetDoNotDisturb:
		return Result{DoNotDisturbOn: true}
	case GetForwarding:
		return Result{Forwarding: []ForwardItem{
			{Type: ForwardImmediate, On: false},
			{Type: ForwardBusy, On: true, DN: "455360"},
			{Type: ForwardNoAns, On: true, DN: "sip:455361@ser.intern.snom.de;a=b&c", RingCount: 4},
		}}
	case ConsultationCall:
		return Result{InitiatedCall: &ConnectionID{CallID: "3", DeviceID: "sip:1001@pbx.example.com"}}
	case ConferenceCall:
		return Result{ConferenceCall: &ConnectionID{CallID: req.Held.CallID + "|" + req.Active.CallID, DeviceID: "sip:1001@pbx.example.com"}}
	case SnapshotDevice:
		// Snom's documented answer, then a held call with a device that
		// needs escaping.
		return Result{Connections: []SnapshotEntry{
			{Conn: ConnectionID{CallID: "-12", DeviceID: "sip:455455@ser.intern.snom.de"}, State: "alerting"},
			{Conn: ConnectionID{CallID: "3", DeviceID: "sip:455455@ser.intern.snom.de;a=b&c"}, State: "hold"},
		}}
	case SnapshotCall:
		// The extension, a far party without a connection id, and one the
		// PBX could not name.
		return Result{Connections: []SnapshotEntry{
			{Device: "sip:455455@ser.intern.snom.de", Conn: ConnectionID{CallID: req.Conn.CallID, DeviceID: "sip:455455@ser.intern.snom.de"}, State: "connected"},
			{Device: "sip:455360@ser.intern.snom.de", State: "connected"},
			{State: "alerting"},
		}}
	case GetSwitchingFunctionDevices:
		return Result{Devices: []string{"sip:455455@ser.intern.snom.de"}}
	}
	return Result{}
}

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	reqFiles := map[string]bool{}
	for _, c := range goldenCases {
		r := c.req
		if r == "" {
			r = c.name
		}
		reqFiles[r+".req.xml"] = true

		t.Run(c.name, func(t *testing.T) {
			body := readGolden(t, r+".req.xml")
			req, err := Decode(body)
			var out []byte
			switch {
			case c.wantErr != "":
				var e *Error
				if !errors.As(err, &e) || e.Code != c.wantErr {
					t.Fatalf("Decode error = %v, want code %s", err, c.wantErr)
				}
				out = EncodeFault(req.Envelope, e)
			case err != nil:
				t.Fatalf("Decode: %v", err)
			default:
				if !reflect.DeepEqual(req, c.want) {
					t.Fatalf("Decode =\n%+v\nwant\n%+v", req, c.want)
				}
				switch {
				case c.core != nil:
					out = EncodeFault(req.Envelope, c.core)
				case c.res != nil:
					out = EncodeResponse(req, *c.res)
				default:
					out = EncodeResponse(req, resultFor(req))
				}
			}

			path := filepath.Join(goldenDir, c.name+".resp.xml")
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := readGolden(t, c.name+".resp.xml")
			if !bytes.Equal(out, want) {
				t.Fatalf("reply differs from %s (-update rewrites it)\ngot:\n%s\nwant:\n%s", path, out, want)
			}

			envelope := req.Envelope
			wantRoot := string(req.Service) + "Response"
			wantCode := ""
			if c.wantErr != "" || c.core != nil {
				wantRoot = "CSTAErrorCode"
				wantCode = string(c.wantErr)
				if c.core != nil {
					wantCode = string(c.core.Code)
				}
			}
			checkReply(t, want, envelope, wantRoot, wantCode)
		})
	}

	// Every request file is covered by a case, so none sits there unchecked.
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.req.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !reqFiles[filepath.Base(f)] {
			t.Errorf("%s has no golden case", f)
		}
	}
}

// checkReply parses a reply with encoding/xml: it must be one well-formed
// document whose CSTA element is wantRoot (reached through Envelope/Body,
// and Fault/detail for faults, when enveloped), with the operation code
// wantCode for faults.
func checkReply(t *testing.T, reply []byte, envelope bool, wantRoot, wantCode string) {
	t.Helper()
	if err := wellFormed(reply); err != nil {
		t.Fatalf("reply is not well-formed XML: %v\n%s", err, reply)
	}
	var path []string
	var gotRoot, gotCode string
	d := xml.NewDecoder(bytes.NewReader(reply))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			path = append(path, tok.Name.Local)
			want := []string{wantRoot}
			if envelope {
				want = []string{"Envelope", "Body", wantRoot}
				if wantCode != "" {
					want = []string{"Envelope", "Body", "Fault", "detail", wantRoot}
				}
			}
			if tok.Name.Local == wantRoot && reflect.DeepEqual(path, want) {
				gotRoot = tok.Name.Space
			}
		case xml.EndElement:
			path = path[:len(path)-1]
		case xml.CharData:
			if len(path) > 0 && path[len(path)-1] == "operation" {
				gotCode += string(tok)
			}
		}
	}
	wantNS := ed5
	if envelope {
		wantNS = ed4
	}
	if gotRoot != wantNS {
		t.Fatalf("reply has no %s element in namespace %s where expected:\n%s", wantRoot, wantNS, reply)
	}
	if gotCode != wantCode {
		t.Fatalf("reply carries operation %q, want %q", gotCode, wantCode)
	}
}

// wellFormed reports whether b is exactly one well-formed XML document.
func wellFormed(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	roots, depth := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if roots != 1 {
				return fmt.Errorf("%d document elements", roots)
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && strings.Trim(string(tok), " \t\r\n") != "" {
				return fmt.Errorf("text outside the document element")
			}
		case xml.Directive:
			return fmt.Errorf("unexpected directive")
		}
	}
}
