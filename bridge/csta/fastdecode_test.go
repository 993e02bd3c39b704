package csta

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// generalDecode is Decode without the fast path.
func generalDecode(body []byte) (*Request, *Error) {
	req := &Request{Envelope: true}
	return req, decode(body, req)
}

// agree fails when the fast path accepts body but the general path does not
// decode it to the very same Request.
func agree(t *testing.T, body []byte) (fast bool) {
	t.Helper()
	got := &Request{Envelope: true}
	if !decodeFast(body, got) {
		return false
	}
	want, err := generalDecode(body)
	if err != nil {
		t.Fatalf("fast path accepted %q, general path rejects it: %v", body, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path decoded %q as\n%+v\ngeneral path as\n%+v", body, got, want)
	}
	return true
}

// TestFastPathTaken pins which golden requests the fast path decodes: all
// of Snom's templates and every plain ASCII form. Were it to fall back on
// them, Decode would stay correct but slow, and nothing else would notice.
func TestFastPathTaken(t *testing.T) {
	general := map[string]bool{ // outside the plain shape on purpose
		"bom-utf8-holdcall":                           true,
		"bare-ed6-makecall-empty-calling":             true, // &amp;
		"bare-no-namespace-clearconnection":           true, // CDATA
		"latin1-makecall":                             true,
		"utf16le-bom-retrievecall":                    true,
		"fault-bare-missing-called":                   true,
		"fault-doctype":                               true,
		"fault-missing-connection":                    true,
		"fault-truncated":                             true,
		"fault-unknown-service":                       true,
		"fault-snapshotdevice-missing-object":         true,
		"fault-bare-consultationcall-empty-consulted": true,
		"fault-bare-generatedigits-not-dtmf":          true,
		"fault-bare-setforwarding-bad-type":           true,
		"fault-alternatecall-missing-held":            true,
	}
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.req.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden requests: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".req.xml")
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if fast := agree(t, body); fast == general[name] {
			t.Errorf("%s: fast path taken = %v, want %v", name, fast, !general[name])
		}
	}
}

// TestFastPathAgrees runs every rejected body and a set of near misses
// through both paths: wherever the fast path accepts, the results match,
// and it never accepts what the general path rejects.
func TestFastPathAgrees(t *testing.T) {
	for _, c := range rejectCases() {
		if decodeFast([]byte(c.body), &Request{Envelope: true}) {
			t.Errorf("%s: fast path accepted a body the general path rejects", c.name)
		}
	}
	ok := `<AnswerCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed5"><callToBeAnswered>7</callToBeAnswered></AnswerCall>`
	cases := []struct {
		body string
		fast bool
	}{
		{ok, true},
		{" \r\n" + `<?xml version="1.0" encoding="utf-8" standalone="yes"?>` + ok, true},
		{`<?xml version='1.0'?>` + ok + "\n", true},
		{`<?xml version="1.0" encoding="ISO-8859-1"?>` + ok, false},
		{`<?xml version = "1.0"?>` + ok, false},
		{`<!-- c -->` + ok, false},
		{`<AnswerCall><callToBeAnswered>&#55;</callToBeAnswered></AnswerCall>`, false},
		{`<AnswerCall><callToBeAnswered><![CDATA[7]]></callToBeAnswered></AnswerCall>`, false},
		{`<a:AnswerCall xmlns:a="urn:x" xmlns:a="urn:y"><a:callToBeAnswered>7</a:callToBeAnswered></a:AnswerCall>`, true},
		{`<AnswerCall b="1" b="2"><callToBeAnswered>7</callToBeAnswered></AnswerCall>`, true},
		{`<AnswerCall b="1"c='2'><callToBeAnswered>7</callToBeAnswered></AnswerCall>`, true},
		{`<AnswerCallb="1"><callToBeAnswered>7</callToBeAnswered></AnswerCall>`, false},
		{`<u:AnswerCall><u:callToBeAnswered>7</u:callToBeAnswered></u:AnswerCall>`, true},
		{`<xml:AnswerCall><callToBeAnswered>7</callToBeAnswered></xml:AnswerCall>`, false},
		{`<AnswerCall xmlns:p=""><callToBeAnswered>7</callToBeAnswered></AnswerCall>`, false},
		{`<AnswerCall ><callToBeAnswered >7<x/> 8 <y>9</y></callToBeAnswered ></AnswerCall >`, true},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered><callToBeAnswered>8</callToBeAnswered></AnswerCall>`, false},
		{`<AnswerCall><callToBeAnswered> 7 <callID> 12 </callID><deviceID>sip:a@[::1]</deviceID></callToBeAnswered></AnswerCall>`, true},
		{`<AnswerCall><callToBeAnswered><callID>1</callID><callID>2</callID></callToBeAnswered></AnswerCall>`, false},
		{`<AnswerCall><callToBeAnswered>7]]>8</callToBeAnswered></AnswerCall>`, false},
		{`<AnswerCall><callToBeAnswered>7` + "\x01" + `</callToBeAnswered></AnswerCall>`, false},
		{`<AnswerCall><callToBeAnswered>7` + "\r\n" + `</callToBeAnswered></AnswerCall>`, true},
		{`<AnswerCall><callToBeAnswered>7` + "\r\n8" + `</callToBeAnswered></AnswerCall>`, false},
		{`<AnswerCall><callToBeAnswered>` + strings.Repeat("7", maxValueLen) + `</callToBeAnswered></AnswerCall>`, true},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered></AnswerCall><x/>`, false},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered></AnswerCall>x`, false},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered>`, false},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered></AnswerCall `, false},
		{`<Envelope><Header><a><b/></a></Header>x<Body><MakeCall><callingDevice/><calledDirectoryNumber>1</calledDirectoryNumber>` +
			`<autoOriginate>doNotPrompt</autoOriginate></MakeCall></Body></Envelope>`, true},
		{`<Envelope><Body><MakeCall><calledDirectoryNumber>1</calledDirectoryNumber><autoOriginate>never</autoOriginate></MakeCall></Body></Envelope>`, false},
		{`<Envelope><Body/></Envelope>`, false},
		{`<Envelope><Body><RequestSystemStatus/></Body><Body/></Envelope>`, false},
		{`<Envelope><Body><RequestSystemStatus/><RequestSystemStatus/></Body></Envelope>`, false},
		{strings.Repeat("<a>", 20) + strings.Repeat("</a>", 20), false},
		{`<GetSwitchingFunctionDevices/>`, true},
		{`<GetSwitchingFunctionDevices><requestedDeviceID>1</requestedDeviceID><requestedDeviceID/></GetSwitchingFunctionDevices>`, false},
		{`<GenerateDigits><connectionToSendDigits>-3|4</connectionToSendDigits><charactersToSend>#*</charactersToSend></GenerateDigits>`, true},
		{`<GenerateDigits><connectionToSendDigits>1</connectionToSendDigits><charactersToSend>E</charactersToSend></GenerateDigits>`, false},
		{`<SnapshotCall><snapshotObject><deviceID>sip:a@b</deviceID></snapshotObject></SnapshotCall>`, true},
		{`<SnapshotDevice><snapshotObject><deviceID>sip:a@b</deviceID></snapshotObject></SnapshotDevice>`, false},
	}
	for _, c := range cases {
		if got := agree(t, []byte(c.body)); got != c.fast {
			t.Errorf("fast path taken = %v, want %v, for %q", got, c.fast, c.body)
		}
	}
}
