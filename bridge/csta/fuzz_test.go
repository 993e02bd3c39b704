package csta

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

const corpusDir = "testdata/fuzz/FuzzDecode"

// seeds are the fuzz seed inputs: every golden request and every rejected
// body of TestDecodeRejects small enough to mutate usefully, by file name.
func seeds(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.req.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out["seed-golden-"+strings.TrimSuffix(filepath.Base(f), ".req.xml")] = b
	}
	unsafe := regexp.MustCompile(`[^a-z0-9]+`)
	for _, c := range rejectCases() {
		if len(c.body) > 4096 {
			continue
		}
		name := "seed-bad-" + strings.Trim(unsafe.ReplaceAllString(strings.ToLower(c.name), "-"), "-")
		if _, dup := out[name]; dup {
			t.Fatalf("two seeds named %s", name)
		}
		out[name] = []byte(c.body)
	}
	return out
}

// corpusFile is the "go test fuzz v1" encoding of one []byte input.
func corpusFile(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
}

// TestSeedCorpus keeps the committed seed corpus equal to the seeds; -update
// rewrites it. Inputs the fuzzer found (files not named seed-*) are kept.
func TestSeedCorpus(t *testing.T) {
	want := seeds(t)
	if *update {
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(corpusDir, "seed-*"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join(corpusDir, name), corpusFile(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	have, err := filepath.Glob(filepath.Join(corpusDir, "seed-*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(have)
	for _, f := range have {
		name := filepath.Base(f)
		b, ok := want[name]
		if !ok {
			t.Errorf("%s is no longer a seed (-update removes it)", f)
			continue
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, corpusFile(b)) {
			t.Errorf("%s is out of date (-update rewrites it)", f)
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("seed %s is missing from %s (-update writes it)", name, corpusDir)
	}
}

// FuzzDecode: Decode never panics and returns a usable request or an
// *Error; whatever it returns encodes to well-formed XML, also with the
// decoded (client-controlled) values echoed into every output field; and
// wherever the fast path accepts a body, the general path decodes it to the
// same Request.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		agree(t, body)
		req, err := Decode(body)
		if req == nil {
			t.Fatal("nil *Request")
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("error %T %v is not an *Error with a code", err, err)
			}
			if err := wellFormed(EncodeFault(req.Envelope, e)); err != nil {
				t.Fatalf("fault for %v: %v", e, err)
			}
			return
		}
		fields, ok := services[string(req.Service)]
		if !ok {
			t.Fatalf("decoded unknown service %q", req.Service)
		}
		for _, f := range fields {
			if f.conn != nil {
				c := f.conn(req)
				if c.CallID == "" && c.DeviceID == "" {
					t.Fatalf("%s decoded with an empty %s", req.Service, f.name)
				}
				checkValue(t, c.CallID)
				checkValue(t, c.DeviceID)
			} else {
				checkValue(t, *f.text(req))
			}
		}

		echo := &ConnectionID{CallID: req.Conn.CallID + req.Held.CallID, DeviceID: req.CallingDevice + req.TransferredTo}
		res := Result{CallingDevice: echo, TransferredCall: echo, SystemStatus: req.Called,
			InitiatedCall: echo, ConferenceCall: echo, Devices: []string{req.Device, req.Digits},
			Connections: []SnapshotEntry{{Conn: *echo, Device: req.Device, State: req.Digits}, {Device: req.Active.DeviceID}}}
		if err := wellFormed(EncodeResponse(req, res)); err != nil {
			t.Fatalf("response: %v", err)
		}
		e := &Error{Code: ErrorCode(req.Active.CallID), Message: req.Called + req.Conn.DeviceID}
		if err := wellFormed(EncodeFault(req.Envelope, e)); err != nil {
			t.Fatalf("fault: %v", err)
		}
	})
}

func checkValue(t *testing.T, v string) {
	t.Helper()
	if len(v) > maxValueLen || !utf8.ValidString(v) || strings.Trim(v, " \t\r\n") != v {
		t.Fatalf("decoded value %q is too long, not UTF-8 or not trimmed", v)
	}
	for _, r := range v {
		if r < 0x20 || r >= 0x7F && r <= 0x9F {
			t.Fatalf("decoded value %q has control characters", v)
		}
	}
}
