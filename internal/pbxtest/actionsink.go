package pbxtest

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ActionSink is the CTI server of an end-to-end test: it records every
// action URL the bridge sends, per extension, in arrival order.
type ActionSink struct {
	URL  string
	wait time.Duration
	mu   sync.Mutex
	got  map[string]chan Hit
}

// Hit is one action URL: the event (the URL's path) and its $csta_id, with
// the $remote and $sip_header(X-Customer) it carried (rows_queues.go).
type Hit struct{ Event, CSTAID, Remote, Header string }

func (h Hit) String() string { return h.Event + ":" + h.CSTAID }

// actionEvents maps the action URL settings the sink configures to the
// path it records them under.
var actionEvents = map[string]string{
	"action_incoming_url": "incoming", "action_outgoing_url": "outgoing", "action_offhook_url": "offhook",
	"action_onhook_url": "onhook", "action_missed_url": "missed", "action_connected_url": "connected",
	"action_disconnected_url": "disconnected", "action_hold": "hold", "action_unhold": "unhold",
	"action_setup_url": "setup",
}

// transferEvents are the transfer URLs, which ConfigAll adds: a Snom
// fires action_transfer and then the blind or attended one.
var transferEvents = map[string]string{
	"action_transfer": "transfer", "action_blind_transfer": "blind_transfer",
	"action_attended_transfer": "attended_transfer",
}

// featureEvents are the URLs DND and forwarding fire (rows_dnd.go).
var featureEvents = map[string]string{
	"action_dnd_on_url": "dnd_on", "action_dnd_off_url": "dnd_off",
	"action_redirection_on_url": "redirection_on", "action_redirection_off_url": "redirection_off",
}

// HeaderName is the SIP header whose $sip_header the sink records: the one
// the PBXs' test dialplans set (AppHeader).
const HeaderName = "X-Customer"

// NewActionSink starts a sink on 127.0.0.1; Expect and CollectUntil give
// up after wait. It stops when the test ends.
func NewActionSink(t testing.TB, wait time.Duration) *ActionSink {
	s := &ActionSink{wait: wait, got: map[string]chan Hit{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		s.ch(q.Get("ext")) <- Hit{Event: strings.TrimPrefix(r.URL.Path, "/"), CSTAID: q.Get("csta_id"),
			Remote: q.Get("remote"), Header: q.Get("hdr")}
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Config is the YAML for the sink's action URLs, one setting per line,
// each line starting with indent.
func (s *ActionSink) Config(indent string) string { return s.config(indent, actionEvents) }

// ConfigAll is Config with the transfer URLs too (the scenario table's).
func (s *ActionSink) ConfigAll(indent string) string {
	return s.config(indent, actionEvents, transferEvents, featureEvents)
}

func (s *ActionSink) config(indent string, sets ...map[string]string) string {
	events := map[string]string{}
	for _, set := range sets {
		maps.Copy(events, set)
	}
	settings := slices.Sorted(maps.Keys(events))
	var b strings.Builder
	for _, setting := range settings {
		fmt.Fprintf(&b, "%s%s: %s/%s?ext=$active_user&csta_id=$csta_id&remote=$remote&hdr=$sip_header(%s)\n",
			indent, setting, s.URL, events[setting], HeaderName)
	}
	return b.String()
}

// next waits for ext's next action URL until ctx is done.
func (s *ActionSink) next(ext string, ctx context.Context) (Hit, bool) {
	select {
	case h := <-s.ch(ext):
		return h, true
	case <-ctx.Done():
		return Hit{}, false
	}
}

// Drain takes every action URL of ext received so far.
func (s *ActionSink) Drain(ext string) []Hit {
	var out []Hit
	for {
		select {
		case h := <-s.ch(ext):
			out = append(out, h)
		default:
			return out
		}
	}
}

func (s *ActionSink) ch(ext string) chan Hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.got[ext]
	if c == nil {
		c = make(chan Hit, 256)
		s.got[ext] = c
	}
	return c
}

// Expect checks the next action URLs of ext, in order. An entry with a
// colon ("hold:-1") checks the csta_id too.
func (s *ActionSink) Expect(t testing.TB, ext string, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case h := <-s.ch(ext):
			got := h.Event
			if strings.Contains(w, ":") {
				got = h.String()
			}
			if got != w {
				t.Fatalf("ext %s: action URL %s, want %s", ext, h, w)
			}
		case <-time.After(s.wait):
			t.Fatalf("ext %s: no action URL %s within %s", ext, w, s.wait)
		}
	}
}

// CollectUntil gathers ext's action URLs (as "event:csta_id") until all of
// want have arrived, in any order, and returns everything received.
func (s *ActionSink) CollectUntil(t testing.TB, ext string, want ...string) []string {
	t.Helper()
	var got []string
	deadline := time.After(s.wait)
	for {
		missing := false
		for _, w := range want {
			if !slices.Contains(got, w) {
				missing = true
			}
		}
		if !missing {
			return got
		}
		select {
		case h := <-s.ch(ext):
			got = append(got, h.String())
		case <-deadline:
			t.Fatalf("ext %s: got action URLs %v, still waiting for some of %v", ext, got, want)
		}
	}
}
