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

// outcome is what the fast path made of a body.
type outcome string

const (
	accepted outcome = "accepted" // decoded
	refused  outcome = "refused"  // refused with the general path's error
	fallback outcome = "fallback" // left to the general path
)

// agree fails when the fast path decides on body but the general path does
// not decode it to the very same Request and error.
func agree(t *testing.T, body []byte) outcome {
	t.Helper()
	got := &Request{Envelope: true}
	done, ferr := decodeFast(body, got)
	if !done {
		if ferr != nil {
			t.Fatalf("fast path left %q to the general path with an error: %v", body, ferr)
		}
		return fallback
	}
	want, err := generalDecode(body)
	switch {
	case ferr == nil && err != nil:
		t.Fatalf("fast path accepted %q, general path rejects it: %v", body, err)
	case ferr != nil && err == nil:
		t.Fatalf("fast path refused %q (%v), general path accepts it", body, ferr)
	case ferr != nil && *ferr != *err:
		t.Fatalf("fast path refused %q with\n%v\ngeneral path with\n%v", body, ferr, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path decoded %q as\n%+v\ngeneral path as\n%+v", body, got, want)
	}
	if ferr != nil {
		return refused
	}
	return accepted
}

// TestFastPathTaken pins what the fast path makes of each golden request:
// it decodes all of Snom's templates and every plain ASCII form, and
// refuses the plain bad ones itself. Were it to fall back on them, Decode
// would stay correct but slow, and nothing else would notice.
func TestFastPathTaken(t *testing.T) {
	other := map[string]outcome{ // the rest are accepted
		"bom-utf8-holdcall":                           fallback,
		"bare-ed6-makecall-empty-calling":             fallback, // &amp;
		"bare-no-namespace-clearconnection":           fallback, // CDATA
		"latin1-makecall":                             fallback,
		"utf16le-bom-retrievecall":                    fallback,
		"fault-doctype":                               fallback,
		"fault-bare-missing-called":                   refused,
		"fault-missing-connection":                    refused,
		"fault-truncated":                             fallback, // cut off inside a name
		"fault-unknown-service":                       refused,
		"fault-snapshotdevice-missing-object":         refused,
		"fault-bare-consultationcall-empty-consulted": refused,
		"fault-bare-generatedigits-not-dtmf":          refused,
		"fault-bare-setforwarding-bad-type":           refused,
		"fault-alternatecall-missing-held":            refused,
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
		want := other[name]
		if want == "" {
			want = accepted
		}
		if got := agree(t, body); got != want {
			t.Errorf("%s: fast path %s it, want %s", name, got, want)
		}
	}
}

// TestFastPathAgrees runs every rejected body and a set of near misses
// through both paths: wherever the fast path decides, the results match,
// and it never accepts what the general path rejects.
func TestFastPathAgrees(t *testing.T) {
	n := 0
	for _, c := range rejectCases() {
		if agree(t, []byte(c.body)) == refused {
			n++
		}
	}
	t.Logf("the fast path refuses %d of the %d rejected bodies itself", n, len(rejectCases()))
	ok := `<AnswerCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed5"><callToBeAnswered>7</callToBeAnswered></AnswerCall>`
	cases := []struct {
		body string
		want outcome
	}{
		{ok, accepted},
		{" \r\n" + `<?xml version="1.0" encoding="utf-8" standalone="yes"?>` + ok, accepted},
		{`<?xml version='1.0'?>` + ok + "\n", accepted},
		{`<?xml version="1.0" encoding="ISO-8859-1"?>` + ok, fallback},
		{`<?xml version = "1.0"?>` + ok, fallback},
		{`<!-- c -->` + ok, fallback},
		{`<AnswerCall><callToBeAnswered>&#55;</callToBeAnswered></AnswerCall>`, fallback},
		{`<AnswerCall><callToBeAnswered><![CDATA[7]]></callToBeAnswered></AnswerCall>`, fallback},
		{`<a:AnswerCall xmlns:a="urn:x" xmlns:a="urn:y"><a:callToBeAnswered>7</a:callToBeAnswered></a:AnswerCall>`, accepted},
		{`<AnswerCall b="1" b="2"><callToBeAnswered>7</callToBeAnswered></AnswerCall>`, accepted},
		{`<AnswerCall b="1"c='2'><callToBeAnswered>7</callToBeAnswered></AnswerCall>`, accepted},
		{`<AnswerCallb="1"><callToBeAnswered>7</callToBeAnswered></AnswerCall>`, fallback},
		{`<u:AnswerCall><u:callToBeAnswered>7</u:callToBeAnswered></u:AnswerCall>`, accepted},
		{`<xml:AnswerCall><callToBeAnswered>7</callToBeAnswered></xml:AnswerCall>`, fallback},
		{`<AnswerCall xmlns:p=""><callToBeAnswered>7</callToBeAnswered></AnswerCall>`, fallback},
		{`<AnswerCall ><callToBeAnswered >7<x/> 8 <y>9</y></callToBeAnswered ></AnswerCall >`, accepted},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered><callToBeAnswered>8</callToBeAnswered></AnswerCall>`, fallback},
		{`<AnswerCall><callToBeAnswered> 7 <callID> 12 </callID><deviceID>sip:a@[::1]</deviceID></callToBeAnswered></AnswerCall>`, accepted},
		{`<AnswerCall><callToBeAnswered><callID>1</callID><callID>2</callID></callToBeAnswered></AnswerCall>`, fallback},
		{`<AnswerCall><callToBeAnswered>7]]>8</callToBeAnswered></AnswerCall>`, fallback},
		{`<AnswerCall><callToBeAnswered>7` + "\x01" + `</callToBeAnswered></AnswerCall>`, fallback},
		{`<AnswerCall><callToBeAnswered>7` + "\r\n" + `</callToBeAnswered></AnswerCall>`, accepted},
		{`<AnswerCall><callToBeAnswered>7` + "\r\n8" + `</callToBeAnswered></AnswerCall>`, fallback},
		{`<AnswerCall><callToBeAnswered>` + strings.Repeat("7", maxValueLen) + `</callToBeAnswered></AnswerCall>`, accepted},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered></AnswerCall><x/>`, refused},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered></AnswerCall>x`, refused},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered>`, refused},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered></AnswerCall `, fallback},
		// What a client hammering /csta sends: refused without encoding/xml.
		{`<csta:AnswerCall><callToBeAnswered>`, refused},
		{"<AnswerCall>\n<callToBeAnswered>7\r\n", refused},
		{"\n\n<Envelope>\n<Body>\n<HoldCall>\n<callToBeHeld>1</callToBeHeld>\n", refused},
		{`<AnswerCall><callToBeAnswered>7</callToBeAnswered></AnswerCall><`, fallback},
		{`<AnswerCall><callToBeAnswered`, fallback},
		{`<AnswerCall a="1`, fallback},
		{`garbage`, refused},
		{`garbage<AnswerCall/>`, refused},
		{`<?xml version="1.0"?>hello`, refused},
		{`caf` + "\xc3\xa9", fallback},
		{`a & b`, fallback},
		{`{"AnswerCall":{"callToBeAnswered":"-18"}}`, refused},
		{`<MakeCoffee><strength>9</strength></MakeCoffee>`, refused},
		{`<MakeCoffee><strength>9</strength>`, refused},
		{`<MakeCoffee><strength>9</strength></MakeCoffee>x`, refused},
		{`<MakeCoffee><strength>9</strength></MakeCoffee><x/>`, refused},
		{`<MakeCoffee><strength>9</strength></MakeCoffe>`, fallback},
		{`<MakeCoffee><strength>&amp;</strength></MakeCoffee>`, fallback},
		{`<Envelope><Body><MakeCoffee/><HoldCall/></Body></Envelope>`, refused},
		{`<Envelope><Header/></Envelope>`, refused},
		{`<HoldCall/>`, refused},
		{`<HoldCall><callToBeHeld/></HoldCall>`, refused},
		{`<HoldCall><callToBeHeld>1</callToBeHeld><callToBeHeld>2</callToBeHeld>`, fallback},
		{`<Envelope><Header><a><b/></a></Header>x<Body><MakeCall><callingDevice/><calledDirectoryNumber>1</calledDirectoryNumber>` +
			`<autoOriginate>doNotPrompt</autoOriginate></MakeCall></Body></Envelope>`, accepted},
		{`<Envelope><Body><MakeCall><calledDirectoryNumber>1</calledDirectoryNumber><autoOriginate>never</autoOriginate></MakeCall></Body></Envelope>`, refused},
		{`<Envelope><Body/></Envelope>`, refused},
		{`<Envelope><Body><RequestSystemStatus/></Body><Body/></Envelope>`, refused},
		{`<Envelope><Body><RequestSystemStatus/><RequestSystemStatus/></Body></Envelope>`, refused},
		{strings.Repeat("<a>", 20) + strings.Repeat("</a>", 20), fallback},
		{`<GetSwitchingFunctionDevices/>`, accepted},
		{`<GetSwitchingFunctionDevices><requestedDeviceID>1</requestedDeviceID><requestedDeviceID/></GetSwitchingFunctionDevices>`, fallback},
		{`<GenerateDigits><connectionToSendDigits>-3|4</connectionToSendDigits><charactersToSend>#*</charactersToSend></GenerateDigits>`, accepted},
		{`<GenerateDigits><connectionToSendDigits>1</connectionToSendDigits><charactersToSend>E</charactersToSend></GenerateDigits>`, refused},
		{`<SnapshotCall><snapshotObject><deviceID>sip:a@b</deviceID></snapshotObject></SnapshotCall>`, accepted},
		{`<SnapshotDevice><snapshotObject><deviceID>sip:a@b</deviceID></snapshotObject></SnapshotDevice>`, refused},
	}
	for _, c := range cases {
		if got := agree(t, []byte(c.body)); got != c.want {
			t.Errorf("fast path %s it, want %s, for %q", got, c.want, c.body)
		}
	}
}
