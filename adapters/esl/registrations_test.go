package esl

import (
	"fmt"
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakefs"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// newRegFake starts a fake FreeSWITCH whose phones users are registered.
func newRegFake(t *testing.T, users ...string) *fakefs.FS {
	t.Helper()
	f, err := fakefs.New(fakefs.Options{Captures: "testdata", Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// untilUp returns the events of a connect up to its link up, which it
// checks comes right after the sync.
func (h *harness) untilUp() []pbx.Event {
	h.t.Helper()
	evs := h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventLink && e.Up })
	if len(evs) < 2 || evs[len(evs)-2].Kind != pbx.EventSync {
		h.t.Fatalf("connect events %s, want the link up right after the sync", kinds(evs))
	}
	return evs
}

// devices renders the EventDevice among evs as "1001=up", "1002=down".
func devices(evs []pbx.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == pbx.EventDevice {
			out = append(out, e.Call.Ext+"="+map[bool]string{true: "up", false: "down"}[e.Registered])
		}
	}
	return out
}

// A phone that registered while the bridge was away (its sofia::register
// went to nobody) is reported registered before the link is: the connect
// reads FreeSWITCH's registrations. A mapped phone that is not registered
// is not reported (no log-off for every idle extension at each start).
func TestRegistrationKnownAtConnect(t *testing.T) {
	f := newRegFake(t, "1009")
	f.Register("1002")
	f.Register("1001")
	f.Unregister("1001")
	h := startOn(t, f.Server(), nil)
	if got, want := devices(h.untilUp()), []string{"1002=up"}; !equal(got, want) {
		t.Errorf("devices reported at connect %q, want %q", got, want)
	}
	// Events go on from there: 1001 registers, 1002 refreshes (no news).
	f.Register("1001")
	f.Register("1002")
	if got := devices([]pbx.Event{h.want(pbx.EventDevice, nil)}); !equal(got, []string{"1001=up"}) {
		t.Errorf("after 1001 registered: %q", got)
	}
	if extra := devices(h.flush()); len(extra) > 0 {
		t.Errorf("a refresh was reported: %q", extra)
	}
}

// What changed while the link was down is reported before the link is up
// again: a phone that unregistered meanwhile is reported off, one that
// registered is reported on; one that did not change is not reported
// again.
func TestRegistrationChangesDuringOutage(t *testing.T) {
	f := newRegFake(t, "1001", "1002")
	h := startOn(t, f.Server(), nil)
	if got, want := devices(h.untilUp()), []string{"1001=up", "1002=up"}; !equal(got, want) {
		t.Fatalf("devices reported at connect %q, want %q", got, want)
	}
	f.Server().Refuse(true)
	f.Server().DropAll()
	h.want(pbx.EventLink, isDown)
	f.Unregister("1002")
	f.Register("1003")
	f.Server().Refuse(false)
	if got, want := devices(h.untilUp()), []string{"1002=down", "1003=up"}; !equal(got, want) {
		t.Errorf("devices reported at reconnect %q, want %q", got, want)
	}
	// And a phone that comes back is reported again.
	f.Register("1002")
	if got := devices([]pbx.Event{h.want(pbx.EventDevice, nil)}); !equal(got, []string{"1002=up"}) {
		t.Errorf("after 1002 registered again: %q", got)
	}
}

// regListing is a `show registrations as json` reply of the users, each
// row expiring at the given Unix second, shaped as the captured one.
func regListing(t *testing.T, rows map[string]int64) string {
	t.Helper()
	if len(rows) == 0 {
		return "{\"row_count\": 0}\n"
	}
	var out []string
	for _, u := range []string{"1001", "1002", "1003", "1009"} {
		exp, ok := rows[u]
		if !ok {
			continue
		}
		out = append(out, fmt.Sprintf(`{"reg_user":%q,"realm":"127.0.0.1","token":"6df06205-ebb8-4e1d-8672-12537bf948f%d",`+
			`"url":"sofia/internal/sip:%s@127.0.0.1:37878;transport=udp","expires":"%d","network_ip":"127.0.0.1",`+
			`"network_port":"37878","network_proto":"udp","hostname":"vm","metadata":""}`, u, len(out), u, exp))
	}
	return fmt.Sprintf(`{"row_count":%d,"rows":[%s]}`, len(out), strings.Join(out, ","))
}

// The core database writes a registration about 200 ms after the
// REGISTER: one whose event came just before the subscription is missing
// from the connect's listing, and the recheck finds it. A device an event
// of this session reported is left alone by the recheck, whose listing
// lags that event.
func TestRegistrationRecheck(t *testing.T) {
	const now = 1796466474
	sc := &script{}
	sc.on("show registrations as json", listings(
		regListing(t, map[string]int64{"1001": now + 177}),
		regListing(t, map[string]int64{"1001": now + 177, "1003": now + 180})))
	sc.on("strepoch", body(fmt.Sprint(now)))
	clk := newManualClock()
	h := start(t, func(o *Options, s *fakeesl.Server) {
		s.SetHandler(sc.handle)
		o.newTimer = clk.newTimer
	})
	if got, want := devices(h.untilUp()), []string{"1001=up"}; !equal(got, want) {
		t.Fatalf("devices reported at connect %q, want %q", got, want)
	}
	tm := clk.next(t)
	// 1001 unregisters; the recheck's listing does not show it yet.
	h.srv.Emit(regEvent(t, h.srv, "sofia::unregister", "1001"))
	if got := devices([]pbx.Event{h.want(pbx.EventDevice, nil)}); !equal(got, []string{"1001=down"}) {
		t.Fatalf("after 1001 unregistered: %q", got)
	}
	tm.fire()
	if got := devices([]pbx.Event{h.want(pbx.EventDevice, nil)}); !equal(got, []string{"1003=up"}) {
		t.Errorf("the recheck reported %q, want 1003=up", got)
	}
	if extra := devices(h.flush()); len(extra) > 0 {
		t.Errorf("the recheck's stale row of 1001 was reported: %q", extra)
	}
	if n := countCommands(h.srv, "api show registrations as json"); n != 2 {
		t.Errorf("%d registration listings, want 2 (connect, recheck)", n)
	}
}

// regEvent is the captured sofia::register or sofia::unregister of 1002,
// naming user instead.
func regEvent(t *testing.T, srv *fakeesl.Server, subclass, user string) fakeesl.Event {
	t.Helper()
	for _, e := range loadEvents(t, "l_registrations") {
		if e.Get("Event-Subclass") == subclass && e.Get("from-user") == "1002" {
			for _, k := range []string{"from-user", "to-user", "username", "user_name"} {
				e = e.With(k, user)
			}
			return e.With("Event-Sequence", fmt.Sprint(srv.NextSeq()))
		}
	}
	t.Fatalf("no captured %s of 1002", subclass)
	return fakeesl.Event{}
}

// Rows past their expiry, by FreeSWITCH's clock, are registrations that
// expired (sofia::expire went out) and wait for the core's sweep, every
// 15 s: not registered.
func TestRegistrationExpiredRowsIgnored(t *testing.T) {
	const now = 1796466474
	sc := &script{}
	sc.on("show registrations as json", body(regListing(t, map[string]int64{"1001": now - 3, "1002": now, "1003": now + 1})))
	sc.on("strepoch", body(fmt.Sprint(now)))
	h := start(t, func(_ *Options, s *fakeesl.Server) { s.SetHandler(sc.handle) })
	if got, want := devices(h.untilUp()), []string{"1003=up"}; !equal(got, want) {
		t.Errorf("devices reported at connect %q, want %q", got, want)
	}
}

// A FreeSWITCH that cannot list its registrations (its core database off)
// still serves calls: the link comes up, no device is reported, and
// devices are known from their events.
func TestRegistrationListingRefused(t *testing.T) {
	sc := &script{}
	sc.on("show registrations as json", body("-ERR SQL disabled, no data available!\n"))
	h := start(t, func(_ *Options, s *fakeesl.Server) { s.SetHandler(sc.handle) })
	if got := devices(h.untilUp()); len(got) > 0 {
		t.Errorf("devices reported at connect %q, want none", got)
	}
	h.srv.Emit(regEvent(t, h.srv, "sofia::register", "1002"))
	if got := devices([]pbx.Event{h.want(pbx.EventDevice, nil)}); !equal(got, []string{"1002=up"}) {
		t.Errorf("after 1002 registered: %q", got)
	}
}

// A reload that maps an extension whose phone is registered already
// reports it at once: the registrations are read again.
func TestRegistrationAfterReload(t *testing.T) {
	f := newRegFake(t, "1001", "1003")
	f.Server().Refuse(true)
	clk := newManualClock() // no recheck: it would read them too
	h := startOn(t, f.Server(), func(o *Options, _ *fakeesl.Server) { o.newTimer = clk.newTimer })
	h.a.SetExtensions(testExts[:2]) // before the first connect
	f.Server().Refuse(false)
	if got, want := devices(h.untilUp()), []string{"1001=up"}; !equal(got, want) {
		t.Fatalf("devices reported at connect %q, want %q", got, want)
	}
	h.a.SetExtensions(testExts)
	if got := devices([]pbx.Event{h.want(pbx.EventDevice, nil)}); !equal(got, []string{"1003=up"}) {
		t.Errorf("after the reload: %q, want 1003=up", got)
	}
	if n := countCommands(h.srv, "api show registrations as json"); n != 2 {
		t.Errorf("%d registration listings, want 2 (connect, reload)", n)
	}
}

// The listing's format, from the captured replies of FreeSWITCH 1.10.12:
// empty, two rows, one row, empty again.
func TestParseShowRegistrationsCaptured(t *testing.T) {
	c, err := fakeesl.LoadCapture("testdata/l_registrations.filtered.rx.raw")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range c.APIResponses() {
		if !strings.HasPrefix(r, "{") {
			if _, err := parseEpoch(r); err != nil {
				t.Errorf("strepoch reply %q: %v", r, err)
			}
			continue
		}
		rows, err := parseShowRegistrations(r)
		if err != nil {
			t.Fatalf("%q: %v", r, err)
		}
		var users []string
		for _, row := range rows {
			users = append(users, row.User+"@"+row.Realm)
			if row.Expires != "1796466651" {
				t.Errorf("row %+v: expires %q", row, row.Expires)
			}
		}
		got = append(got, strings.Join(users, ","))
	}
	if want := []string{"", "1002@127.0.0.1,1003@127.0.0.1", "1003@127.0.0.1", ""}; !equal(got, want) {
		t.Errorf("listings %q, want %q", got, want)
	}
	for _, bad := range []string{"", "+OK\n", `{"rows":[]}`, `{"row_count":2,"rows":[{"reg_user":"1001"}]}`, "{"} {
		if _, err := parseShowRegistrations(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := parseShowRegistrations("-ERR SQL disabled, no data available!\n"); !isReply(err) {
		t.Errorf("an -ERR answer is not taken for FreeSWITCH's: %v", err)
	}
}
