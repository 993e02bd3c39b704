package esl

import (
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
)

// listing is when the fsModel's `show channels` lists a channel. A real
// FreeSWITCH lists a channel only once its SQL thread has written it to
// the core database, up to about 200 ms after the channel was created
// (switch_core_sqldb.c, switch_user_sql_thread), while `status` counts it
// at once. after models that delay; hiding keeps channels created
// meanwhile out of every listing until reveal (a database that lags
// longer than the adapter waits). The zero value lists every channel at
// once. fsModel.mu is held by every method.
type listing struct {
	after  time.Duration
	hiding bool
	bornAt map[string]time.Time
	hidden map[string]bool
}

func (l *listing) born(u string) {
	if l.bornAt == nil {
		l.bornAt, l.hidden = map[string]time.Time{}, map[string]bool{}
	}
	l.bornAt[u] = time.Now()
	if l.hiding {
		l.hidden[u] = true
	}
}

func (l *listing) shows(u string) bool {
	if l.hidden[u] {
		return false
	}
	t, ok := l.bornAt[u]
	return !ok || time.Since(t) >= l.after
}

func (l *listing) forget(u string) {
	delete(l.bornAt, u)
	delete(l.hidden, u)
}

// listAfter makes `show channels` list a channel only d after it was created.
func (m *fsModel) listAfter(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listed.after = d
}

// hideNew keeps channels created from now on out of `show channels` until
// reveal (or, with false, stops hiding new ones).
func (m *fsModel) hideNew(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listed.hiding = on
}

// reveal lists the hidden channels from now on.
func (m *fsModel) reveal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.listed.hidden)
}

// status is FreeSWITCH 1.10.12's `status` (as fs_cli showed it on the test
// bed), counting the model's live channels as sessions.
func (m *fsModel) status() string {
	m.mu.Lock()
	n := len(m.chans)
	m.mu.Unlock()
	return "UP 0 years, 0 days, 1 hour, 42 minutes, 19 seconds, 42 milliseconds, 336 microseconds\n" +
		"FreeSWITCH (Version 1.10.12-release  64bit) is ready\n" +
		"18070 session(s) since startup\n" +
		fmt.Sprintf("%d session(s) - peak 32, last 5min 4 \n", n) +
		"0 session(s) per Sec out of max 30, peak 34, last 5min 8 \n" +
		"1000 session(s) max\nmin idle cpu 0.00/97.70\nCurrent Stack Size/Max 240K/8192K\n"
}

// appCaptures are MakeCalls to the vanilla dialplan's applications,
// captured on FreeSWITCH 1.10.12 with the device 1013 answering at once
// (testdata/k_makecall_*.events.raw, see testdata/README.md): the
// device's channel runs the destination's dialplan itself, `answer` and
// then the application.
var appCaptures = map[string]string{"9196": "k_makecall_echo", "9664": "k_makecall_moh", "3000": "k_makecall_conference"}

var (
	originateUser = regexp.MustCompile(`\]user/([0-9]+) ([^ ]+) XML `)
	capturedUser  = regexp.MustCompile(`\b1013\b`)
)

// originateApp plays a MakeCall to an application destination: the
// captured device channel (as the extension's, under the requested
// origination_uuid) rings, answers and runs the application. It reports
// false for other destinations.
func (m *fsModel) originateApp(cmd string) (fakeesl.Reply, bool) {
	x := originateUser.FindStringSubmatch(cmd)
	u := originationUUID.FindStringSubmatch(cmd)
	if x == nil || u == nil || appCaptures[x[2]] == "" {
		return fakeesl.Reply{}, false
	}
	capture, err := fakeesl.LoadCapture(filepath.Join("testdata", appCaptures[x[2]]+".events.raw"))
	if err != nil {
		m.t.Errorf("originate %s: %v", x[2], err)
		return fakeesl.Reply{Body: "-ERR NORMAL_TEMPORARY_FAILURE\n"}, true
	}
	evs := capture.Events()
	dev := evs[0].Get("Unique-ID")
	for i, e := range evs {
		hs := make([]fakeesl.Header, len(e.Headers))
		for j, h := range e.Headers {
			hs[j] = fakeesl.Header{Name: h.Name, Value: capturedUser.ReplaceAllString(h.Value, x[1])}
		}
		evs[i] = fakeesl.Event{Headers: hs, Body: e.Body}
	}
	c := m.newCallOf(evs)
	m.mu.Lock()
	delete(m.owner, c.ids[dev])
	c.ids[dev] = u[1]
	m.owner[u[1]] = fsLeg{call: c, tpl: dev}
	m.mu.Unlock()
	var ring, rest []fakeesl.Event
	for _, e := range c.rename(evs) {
		if e.Name() == "CHANNEL_HANGUP" {
			break
		}
		if rest == nil && !(e.Name() == "CHANNEL_CALLSTATE" && e.Get("Channel-Call-State") == "RINGING") {
			ring = append(ring, e)
			continue
		}
		rest = append(rest, e)
	}
	if id := originationCSTA.FindStringSubmatch(cmd); id != nil {
		for i := range ring {
			ring[i] = ring[i].With("variable_csta_id", id[1])
		}
	}
	before := m.apply(ring)
	if id := originationCSTA.FindStringSubmatch(cmd); id != nil {
		m.mu.Lock()
		m.chans[u[1]].vars["csta_id"] = id[1]
		m.mu.Unlock()
	}
	// The device answers at once; the job result follows its answer.
	return fakeesl.Reply{Body: "+OK " + u[1] + "\n", Before: before, After: m.apply(rest)}, true
}
