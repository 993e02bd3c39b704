package fakeesl

import (
	"bytes"
	"path/filepath"
	"testing"
)

// The fake replays captured events byte for byte.
func TestEventRoundTrip(t *testing.T) {
	files, err := filepath.Glob("../../testdata/*.rx.raw")
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	for _, f := range files {
		c, err := LoadCapture(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Frames) == 0 || c.Frames[0].Get("Content-Type") != "auth/request" {
			t.Errorf("%s: does not start with auth/request", f)
		}
		for i, fr := range c.Frames {
			if fr.Get("Content-Type") != "text/event-plain" {
				continue
			}
			e, err := ParseEvent(fr.Body)
			if err != nil {
				t.Fatalf("%s frame %d: %v", f, i, err)
			}
			if got := e.Bytes(); !bytes.Equal(got, fr.Body) {
				t.Fatalf("%s frame %d: re-rendered event differs:\n%q\n%q", f, i, got, fr.Body)
			}
		}
	}
}

func TestWithEncodesAndKeepsInnerBody(t *testing.T) {
	e := Event{Headers: []Header{{"Event-Name", "BACKGROUND_JOB"}, {"Content-Length", "4"}}, Body: []byte("+OK\n")}
	e = e.With("Job-Command-Arg", "a b,c")
	if got := e.Get("Job-Command-Arg"); got != "a b,c" {
		t.Errorf("Get after With: %q", got)
	}
	want := "Event-Name: BACKGROUND_JOB\nJob-Command-Arg: a%20b%2Cc\nContent-Length: 4\n\n+OK\n"
	if got := string(e.Bytes()); got != want {
		t.Errorf("rendered %q, want %q", got, want)
	}
}
