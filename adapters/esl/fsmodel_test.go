package esl

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
)

// fsModel is a FreeSWITCH that keeps channels, on top of the fake event
// socket. Tests play captured calls through it under fresh channel uuids;
// it remembers every live channel from the events it played (whether or
// not anybody was subscribed) and answers the adapter's API commands from
// that state, in the shapes FreeSWITCH 1.10.12 used in the captures:
//
//   - show channels as json: one row per live channel, shaped like the rows
//     of testdata/h_show_channels;
//   - uuid_dump <uuid> json: every header and variable the channel's events
//     carried, the latest value winning (uuid_dump prints the event data of a
//     channel);
//   - uuid_exists, uuid_setvar;
//   - uuid_hold [off]: "+OK Success" and the channel's hold or unhold events
//     of testdata/d_hold;
//   - uuid_kill: "+OK" and the hang-up events of the call's capture;
//   - bgapi originate: the device leg of testdata/c_click_to_call under the
//     origination_uuid, and "+OK <uuid>" as the job result.
//
// Anything else gets fakeesl.DefaultReply. fail and delay inject faults.
type fsModel struct {
	t      testing.TB
	srv    *fakeesl.Server
	rowTpl map[string]json.RawMessage
	click  []fakeesl.Event // c_click_to_call, for originate

	mu     sync.Mutex
	chans  map[string]*fsChan // live channels by uuid
	order  []string           // live channels in creation order
	owner  map[string]fsLeg   // every uuid a played call uses
	lag    map[string]bool    // left out of the next `show channels`
	faults []fsFault
	listed listing // when `show channels` lists a channel (fsmodel_listing_test.go)
}

// fsCall is one call of a capture, played under fresh channel uuids.
type fsCall struct {
	m       *fsModel
	capture []fakeesl.Event
	ids     map[string]string // capture uuid → live uuid
}

type fsLeg struct {
	call *fsCall
	tpl  string // the leg's uuid in the capture
}

type fsChan struct {
	fsLeg
	fields map[string]string // decoded header values
	vars   map[string]string // set by uuid_setvar or the originate
}

type fsFault struct {
	prefix  string
	replace *fakeesl.Reply // nil: answer as usual, after delay
	delay   time.Duration
}

func newFSModel(t testing.TB, srv *fakeesl.Server) *fsModel {
	t.Helper()
	m := &fsModel{t: t, srv: srv, rowTpl: rowTemplate(t), click: loadEvents(t, "c_click_to_call"),
		chans: map[string]*fsChan{}, owner: map[string]fsLeg{}, lag: map[string]bool{}}
	srv.SetHandler(m.handle)
	return m
}

// rowTemplate is a row of the captured `show channels as json`.
func rowTemplate(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	c, err := fakeesl.LoadCapture(filepath.Join("testdata", "h_show_channels.filtered.rx.raw"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.APIResponses() {
		var list struct {
			Rows []map[string]json.RawMessage `json:"rows"`
		}
		if strings.HasPrefix(r, `{"row_count":2`) && json.Unmarshal([]byte(r), &list) == nil && len(list.Rows) > 0 {
			return list.Rows[0]
		}
	}
	t.Fatal("h_show_channels has no `show channels as json` reply")
	return nil
}

// listingRow is the template row with the columns that describe a channel
// taken from its header values.
func listingRow(tpl map[string]json.RawMessage, fields map[string]string) map[string]json.RawMessage {
	row := make(map[string]json.RawMessage, len(tpl))
	for k, v := range tpl {
		row[k] = v
	}
	for col, header := range map[string]string{
		"uuid": "Unique-ID", "call_uuid": "Channel-Call-UUID", "direction": "Call-Direction",
		"name": "Channel-Name", "presence_id": "Channel-Presence-ID", "callstate": "Channel-Call-State",
		"cid_name": "Caller-Caller-ID-Name", "cid_num": "Caller-Caller-ID-Number", "dest": "Caller-Destination-Number",
	} {
		b, _ := json.Marshal(fields[header])
		row[col] = b
	}
	return row
}

// listingReply is the reply to `show channels as json`.
func listingReply(t testing.TB, rows []map[string]json.RawMessage) string {
	if len(rows) == 0 {
		return "{\"row_count\": 0}\n"
	}
	b, err := json.Marshal(map[string]any{"row_count": len(rows), "rows": rows})
	if err != nil {
		t.Errorf("show channels: %v", err)
	}
	return string(b) + "\n"
}

// fieldsOf merges the header values of a channel's events, the latest
// value winning: what FreeSWITCH knows about the channel after them.
func fieldsOf(t testing.TB, evs []fakeesl.Event, uuid string) map[string]string {
	t.Helper()
	d := map[string]string{}
	for _, e := range evs {
		if e.Get("Unique-ID") != uuid {
			continue
		}
		for _, h := range e.Headers {
			d[h.Name] = e.Get(h.Name)
		}
	}
	if len(d) == 0 {
		t.Fatalf("no events of %s", uuid)
	}
	return d
}

// newCall prepares a call of a capture (a testdata/*.filtered.rx.raw name)
// with a fresh uuid for each of its channels.
func (m *fsModel) newCall(capture string) *fsCall {
	m.t.Helper()
	return m.newCallOf(loadEvents(m.t, capture))
}

func (m *fsModel) newCallOf(capture []fakeesl.Event) *fsCall {
	c := &fsCall{m: m, capture: capture, ids: map[string]string{}}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range c.capture {
		if u := e.Get("Unique-ID"); u != "" && c.ids[u] == "" {
			c.ids[u] = newUUID()
			m.owner[c.ids[u]] = fsLeg{call: c, tpl: u}
		}
	}
	return c
}

// id is the live uuid of the capture's channel whose uuid starts with prefix.
func (c *fsCall) id(prefix string) string {
	for tpl, live := range c.ids {
		if strings.HasPrefix(tpl, prefix) {
			return live
		}
	}
	c.m.t.Fatalf("no channel %s… in the capture", prefix)
	return ""
}

// until returns the capture's events up to and including the first one
// named name on the channel prefix, renamed.
func (c *fsCall) until(name, prefix string) []fakeesl.Event {
	c.m.t.Helper()
	for i, e := range c.capture {
		if e.Name() == name && strings.HasPrefix(e.Get("Unique-ID"), prefix) {
			return c.rename(c.capture[:i+1])
		}
	}
	c.m.t.Fatalf("no %s of %s… in the capture", name, prefix)
	return nil
}

// hangup returns the capture's events from the first CHANNEL_HANGUP on.
// It may run on the fake's goroutine, so it does not stop the test.
func (c *fsCall) hangup() []fakeesl.Event {
	for i, e := range c.capture {
		if e.Name() == "CHANNEL_HANGUP" {
			return c.rename(c.capture[i:])
		}
	}
	c.m.t.Error("no CHANNEL_HANGUP in the capture")
	return nil
}

// leg keeps the events of the channel prefix.
func (c *fsCall) leg(prefix string, evs []fakeesl.Event) []fakeesl.Event {
	live := c.id(prefix)
	return slices.DeleteFunc(slices.Clone(evs), func(e fakeesl.Event) bool { return e.Get("Unique-ID") != live })
}

// rename gives captured events the call's live uuids, wherever they appear
// (Unique-ID, Other-Leg-Unique-ID, Channel-Call-UUID, variables).
func (c *fsCall) rename(evs []fakeesl.Event) []fakeesl.Event {
	out := make([]fakeesl.Event, len(evs))
	for i, e := range evs {
		hs := slices.Clone(e.Headers)
		for j := range hs {
			for tpl, live := range c.ids {
				hs[j].Value = strings.ReplaceAll(hs[j].Value, tpl, live)
			}
		}
		out[i] = fakeesl.Event{Headers: hs, Body: e.Body}
	}
	return out
}

// play sends events to the subscribers (if any) and updates the channels.
func (m *fsModel) play(evs ...fakeesl.Event) {
	m.srv.Emit(m.apply(evs)...)
}

// apply updates the channels for events about to be sent: fresh
// Event-Sequence numbers, and the variables set on the channel so far.
func (m *fsModel) apply(evs []fakeesl.Event) []fakeesl.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]fakeesl.Event, 0, len(evs))
	for _, e := range evs {
		e = e.With("Event-Sequence", strconv.FormatUint(m.srv.NextSeq(), 10))
		u := e.Get("Unique-ID")
		ch := m.chans[u]
		if ch == nil && e.Name() != "CHANNEL_DESTROY" {
			ch = &fsChan{fsLeg: m.owner[u], fields: map[string]string{}, vars: map[string]string{}}
			m.chans[u] = ch
			m.order = append(m.order, u)
			m.listed.born(u)
		}
		if ch != nil {
			for k, v := range ch.vars {
				e = e.With("variable_"+k, v)
			}
			for _, h := range e.Headers {
				ch.fields[h.Name] = e.Get(h.Name)
			}
		}
		if e.Name() == "CHANNEL_DESTROY" {
			m.forgetLocked(u)
		}
		out = append(out, e)
	}
	return out
}

func (m *fsModel) forgetLocked(u string) {
	m.listed.forget(u)
	delete(m.chans, u)
	delete(m.lag, u)
	m.order = slices.DeleteFunc(m.order, func(x string) bool { return x == u })
}

// vanish ends the call's channels without a word (they ended while nobody
// was listening).
func (m *fsModel) vanish(c *fsCall) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, live := range c.ids {
		m.forgetLocked(live)
	}
}

// restart forgets every channel, as a restarted FreeSWITCH has none.
func (m *fsModel) restart() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range slices.Clone(m.order) {
		m.forgetLocked(u)
	}
}

// lagOnce leaves the call's live channels out of the next channel listing,
// as FreeSWITCH's core database lags a channel that was just created.
func (m *fsModel) lagOnce(c *fsCall) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, live := range c.ids {
		if m.chans[live] != nil {
			m.lag[live] = true
		}
	}
}

// live reports whether a channel exists.
func (m *fsModel) live(u string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.chans[u] != nil
}

// fail answers the next command starting with prefix with r instead, and
// changes nothing.
func (m *fsModel) fail(prefix string, r fakeesl.Reply) {
	m.mu.Lock()
	m.faults = append(m.faults, fsFault{prefix: prefix, replace: &r})
	m.mu.Unlock()
}

// delay answers the next command starting with prefix as usual, d late
// (for bgapi: its job result).
func (m *fsModel) delay(prefix string, d time.Duration) {
	m.mu.Lock()
	m.faults = append(m.faults, fsFault{prefix: prefix, delay: d})
	m.mu.Unlock()
}

func (m *fsModel) takeFault(cmd string) (fsFault, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, f := range m.faults {
		if strings.HasPrefix(cmd, f.prefix) {
			m.faults = slices.Delete(m.faults, i, i+1)
			return f, true
		}
	}
	return fsFault{}, false
}

func (m *fsModel) handle(cmd string, bg bool) fakeesl.Reply {
	f, faulty := m.takeFault(cmd)
	if faulty && f.replace != nil {
		return *f.replace
	}
	r := m.answer(cmd, bg)
	if faulty {
		r.Delay += f.delay
	}
	return r
}

var (
	originationUUID = regexp.MustCompile(`origination_uuid=([0-9a-f-]{36})`)
	originationCSTA = regexp.MustCompile(`[\[,]csta_id=(-?[0-9]+)`)
)

func (m *fsModel) answer(cmd string, bg bool) fakeesl.Reply {
	name, args, _ := strings.Cut(cmd, " ")
	f := strings.Fields(args)
	uuid := ""
	if len(f) > 0 {
		uuid = f[len(f)-1]
	}
	const noChannel = "-ERR No such channel!\n"
	switch {
	case cmd == "show channels as json":
		return fakeesl.Reply{Body: m.showChannels()}
	case cmd == "status":
		return fakeesl.Reply{Body: m.status()}
	case name == "uuid_dump" && len(f) == 2:
		if d := m.dump(f[0]); d != "" {
			return fakeesl.Reply{Body: d}
		}
		return fakeesl.Reply{Body: noChannel}
	case name == "uuid_exists":
		return fakeesl.Reply{Body: strconv.FormatBool(m.live(uuid))}
	case name == "uuid_setvar" && len(f) == 3:
		m.mu.Lock()
		defer m.mu.Unlock()
		if ch := m.chans[f[0]]; ch != nil {
			ch.vars[f[1]] = f[2]
			return fakeesl.Reply{Body: "+OK\n"}
		}
		return fakeesl.Reply{Body: noChannel}
	case name == "uuid_hold":
		// FreeSWITCH answers "+OK Success" even for a channel it does not have.
		return fakeesl.Reply{Body: "+OK Success\n", After: m.apply(m.holdEvents(uuid, len(f) == 1))}
	case name == "uuid_kill" && len(f) >= 1:
		m.mu.Lock()
		ch := m.chans[f[0]]
		m.mu.Unlock()
		if ch == nil {
			return fakeesl.Reply{Body: noChannel}
		}
		return fakeesl.Reply{Body: "+OK\n", After: m.apply(ch.call.hangup())}
	case name == "originate" && bg:
		if r, ok := m.originateApp(cmd); ok {
			return r
		}
		return m.originate(cmd)
	}
	return fakeesl.DefaultReply(cmd)
}

// holdEvents returns the capture's hold (or unhold) events for the
// channel's leg: from its CHANNEL_CALLSTATE HELD to its CHANNEL_HOLD, and
// from there to its CHANNEL_UNHOLD.
func (m *fsModel) holdEvents(uuid string, on bool) []fakeesl.Event {
	m.mu.Lock()
	ch := m.chans[uuid]
	m.mu.Unlock()
	if ch == nil {
		return nil
	}
	var mine []fakeesl.Event
	for _, e := range ch.call.capture {
		if e.Get("Unique-ID") == ch.tpl {
			mine = append(mine, e)
		}
	}
	held, hold := -1, -1
	for i, e := range mine {
		if held < 0 && e.Name() == "CHANNEL_CALLSTATE" && e.Get("Channel-Call-State") == "HELD" {
			held = i
		}
		if held >= 0 && e.Name() == "CHANNEL_HOLD" {
			hold = i
			break
		}
	}
	if hold < 0 {
		return nil // the capture has no hold on this leg
	}
	if on {
		return ch.call.rename(mine[held : hold+1])
	}
	for i := hold + 1; i < len(mine); i++ {
		if mine[i].Name() == "CHANNEL_UNHOLD" {
			return ch.call.rename(mine[hold+1 : i+1])
		}
	}
	return nil
}

// originate has the device ring: the 1001 leg of c_click_to_call under the
// requested origination_uuid, with the csta_id the bridge passed. It runs
// on the fake's goroutine, so it reports problems as error replies.
func (m *fsModel) originate(cmd string) fakeesl.Reply {
	u := originationUUID.FindStringSubmatch(cmd)
	if u == nil {
		m.t.Errorf("originate without origination_uuid: %q", cmd)
		return fakeesl.Reply{Body: "-ERR INVALID_GATEWAY\n"}
	}
	const dev = "1cff0516-fb9d-46dc-a9dd-f707af882849" // 1001 in c_click_to_call
	var ring []fakeesl.Event
	for _, e := range m.click {
		if e.Get("Unique-ID") != dev {
			continue
		}
		ring = append(ring, e)
		if e.Name() == "CHANNEL_CALLSTATE" {
			break
		}
	}
	c := m.newCallOf(m.click)
	m.mu.Lock()
	delete(m.owner, c.ids[dev])
	c.ids[dev] = u[1]
	m.owner[u[1]] = fsLeg{call: c, tpl: dev}
	ch := &fsChan{fsLeg: m.owner[u[1]], fields: map[string]string{}, vars: map[string]string{}}
	if id := originationCSTA.FindStringSubmatch(cmd); id != nil {
		ch.vars["csta_id"] = id[1]
	}
	m.chans[u[1]] = ch
	m.order = append(m.order, u[1])
	m.listed.born(u[1])
	m.mu.Unlock()
	return fakeesl.Reply{Body: "+OK " + u[1] + "\n", Before: m.apply(c.rename(ring))}
}

func (m *fsModel) showChannels() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var rows []map[string]json.RawMessage
	for _, u := range m.order {
		if m.lag[u] {
			delete(m.lag, u)
			continue
		}
		if !m.listed.shows(u) {
			continue
		}
		rows = append(rows, listingRow(m.rowTpl, m.chans[u].fields))
	}
	return listingReply(m.t, rows)
}

func (m *fsModel) dump(u string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.chans[u]
	if ch == nil {
		return ""
	}
	d := make(map[string]string, len(ch.fields)+len(ch.vars))
	for k, v := range ch.fields {
		d[k] = v
	}
	for k, v := range ch.vars {
		d["variable_"+k] = v
	}
	return dumpJSON(m.t, d)
}

// dumpOf is what uuid_dump <uuid> json prints for a channel whose events
// so far are evs.
func dumpOf(t testing.TB, evs []fakeesl.Event, uuid string) string {
	t.Helper()
	return dumpJSON(t, fieldsOf(t, evs, uuid))
}

func dumpJSON(t testing.TB, d map[string]string) string {
	d["Event-Name"] = "CHANNEL_DATA"
	delete(d, "Content-Length")
	b, err := json.Marshal(d)
	if err != nil {
		t.Errorf("uuid_dump: %v", err)
	}
	return string(b)
}
