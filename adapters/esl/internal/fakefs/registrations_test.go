package fakefs

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
)

// jsonKeys lists the object keys of a JSON text in the order they appear.
func jsonKeys(t *testing.T, s string) []string {
	t.Helper()
	var keys []string
	dec := json.NewDecoder(strings.NewReader(s))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		for dec.More() {
			if d == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				keys = append(keys, k.(string))
			}
			if err := walk(); err != nil {
				return err
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	if err := walk(); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return keys
}

// captured is the l_registrations capture: its api replies and events.
func captured(t *testing.T) ([]string, []fakeesl.Event) {
	t.Helper()
	c, err := fakeesl.LoadCapture("../../testdata/" + regCapture)
	if err != nil {
		t.Fatal(err)
	}
	return c.APIResponses(), c.Events()
}

func headerNames(e fakeesl.Event) []string {
	var out []string
	for _, h := range e.Headers {
		if h.Name != "Content-Length" {
			out = append(out, h.Name)
		}
	}
	return out
}

// `show registrations as json` and the registration events have the
// shape FreeSWITCH 1.10.12 gave them in the capture: the same reply for
// no registration, the same columns in the same order, no line break
// after a list with rows, the same event headers.
func TestRegistrationsShape(t *testing.T) {
	replies, events := captured(t)
	f := start(t, Options{Users: []string{}})
	c := dial(t, f)
	if got, _ := c.api("show registrations as json"); got != replies[0] {
		t.Errorf("no registration: %q, want the captured %q", got, replies[0])
	}

	f.Register("1002")
	f.Register("1003")
	got, evs := c.api("show registrations as json")
	want := replies[1]
	if gk, wk := jsonKeys(t, got), jsonKeys(t, want); !slices.Equal(gk, wk) {
		t.Errorf("columns %q, want the captured %q", gk, wk)
	}
	if strings.HasSuffix(got, "\n") != strings.HasSuffix(want, "\n") {
		t.Errorf("line break at the end: %q vs the captured %q", got[len(got)-5:], want[len(want)-5:])
	}
	var list struct {
		RowCount int      `json:"row_count"`
		Rows     []regRow `json:"rows"`
	}
	if err := json.Unmarshal([]byte(got), &list); err != nil || list.RowCount != 2 || len(list.Rows) != 2 ||
		list.Rows[0].RegUser != "1002" || list.Rows[1].RegUser != "1003" || list.Rows[0].Token == list.Rows[1].Token {
		t.Errorf("listing %s (%v), want 1002 and 1003", got, err)
	}
	if now, _ := c.api("strepoch"); len(list.Rows) > 0 && list.Rows[0].Expires <= now {
		t.Errorf("row expires %s, FreeSWITCH's clock %s: expired already", list.Rows[0].Expires, now)
	}

	var capReg, capUnreg fakeesl.Event
	for _, e := range events {
		switch {
		case e.Get("from-user") != "1002":
		case e.Get("Event-Subclass") == "sofia::register":
			capReg = e
		case e.Get("Event-Subclass") == "sofia::unregister":
			capUnreg = e
		}
	}
	if len(evs) != 2 {
		t.Fatalf("registering two phones sent %d events", len(evs))
	}
	if !slices.Equal(headerNames(evs[0]), headerNames(capReg)) {
		t.Errorf("sofia::register headers %q, want the captured %q", headerNames(evs[0]), headerNames(capReg))
	}
	for _, e := range evs {
		if e.Get("Event-Subclass") != "sofia::register" || e.Get("from-user") != e.Get("username") {
			t.Errorf("event %v", e.Headers)
		}
	}
	if evs[1].Get("from-user") != "1003" || !strings.Contains(evs[1].Get("contact"), "sip:1003@") ||
		evs[1].Get("call-id") != list.Rows[1].Token || evs[1].Get("network-port") != list.Rows[1].NetworkPort {
		t.Errorf("1003's sofia::register does not name its phone: %v", evs[1].Headers)
	}

	f.Unregister("1002")
	got, evs = c.api("show registrations as json")
	if len(evs) != 1 || evs[0].Get("Event-Subclass") != "sofia::unregister" || evs[0].Get("from-user") != "1002" {
		t.Fatalf("unregistering sent %v", evs)
	}
	if !slices.Equal(headerNames(evs[0]), headerNames(capUnreg)) {
		t.Errorf("sofia::unregister headers %q, want the captured %q", headerNames(evs[0]), headerNames(capUnreg))
	}
	if strings.Contains(got, `"1002"`) || !strings.Contains(got, `"reg_user":"1003"`) {
		t.Errorf("after 1002 unregistered: %s", got)
	}
}

// A phone that is not registered cannot be called; a static one can, but
// is not listed; the core database shows a change only after the list
// delay.
func TestRegistrationsReach(t *testing.T) {
	f := start(t, Options{Users: []string{"1001", "1002"}, Static: []string{"1005"}, ListDelay: time.Hour})
	c := dial(t, f)
	f.Unregister("1002")
	f.Register("1003")
	got, _ := c.api("show registrations as json")
	if !strings.Contains(got, `"reg_user":"1001"`) || !strings.Contains(got, `"reg_user":"1002"`) ||
		strings.Contains(got, `"1003"`) || strings.Contains(got, `"1005"`) {
		t.Errorf("listing within the list delay: %s, want 1001 and 1002 (not written yet: 1002 gone, 1003 there)", got)
	}
	if got := f.Registered(); !slices.Equal(got, []string{"1001", "1003"}) {
		t.Errorf("registered %q", got)
	}
	f.mu.Lock()
	reach := map[string]bool{}
	for _, u := range []string{"1001", "1002", "1003", "1005", "1009"} {
		reach[u] = f.reachable(u)
	}
	f.mu.Unlock()
	if want := map[string]bool{"1001": true, "1003": true, "1005": true}; !mapsEqual(reach, want) {
		t.Errorf("reachable %v, want %v", reach, want)
	}
	c.send("bgapi originate user/1002 &park()")
	for {
		e := c.next()
		if e.Name() == "BACKGROUND_JOB" {
			if !strings.Contains(string(e.Body), "USER_NOT_REGISTERED") {
				t.Errorf("originate to an unregistered phone: %q", e.Body)
			}
			break
		}
	}
	if err := f.Dial("1001", "1002"); err != nil {
		t.Fatal(err)
	}
	for {
		e := c.next()
		if e.Name() == "CHANNEL_HANGUP" {
			if e.Get("Hangup-Cause") != "USER_NOT_REGISTERED" {
				t.Errorf("a call to an unregistered phone ends with %s", e.Get("Hangup-Cause"))
			}
			break
		}
	}
}

func mapsEqual(got, want map[string]bool) bool {
	for k, v := range got {
		if v != want[k] {
			return false
		}
	}
	return true
}
