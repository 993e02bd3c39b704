package fakefs

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
)

// Every event the fake sends is a captured event of the same name (and,
// where the captures have one, of the same call direction and call
// state) from FreeSWITCH 1.10.12, with the part that describes one
// channel replaced by the model's channel: its identity, its caller
// profile, its partner, its state and its variables. What stays of the
// capture is what does not depend on the channel (Core-UUID, host names,
// Event-Calling-*, Channel-State, codecs).

// captures are the template sources, first match wins: the basic call
// (a phone calls a phone), hold, click-to-call (FreeSWITCH calls the
// device first), cancel, MakeCalls to applications (CHANNEL_EXECUTE).
var captures = []string{
	"a_basic_call.filtered.rx.raw", "d_hold.filtered.rx.raw", "c_click_to_call.filtered.rx.raw",
	"b_cancel.filtered.rx.raw",
	"k_makecall_echo.events.raw", "k_makecall_moh.events.raw", "k_makecall_conference.events.raw",
}

// templates are captured events by name|direction|call state, by
// name|direction and by name.
type templates struct {
	ev  map[string]fakeesl.Event
	row map[string]json.RawMessage // a row of `show channels as json`
	// base holds, per captured event, its headers that do not describe
	// the captured channel (channelPart), worked out once: a regular
	// expression over every header of every event the fake sends was most
	// of its cost.
	base map[string][]fakeesl.Header
}

var uuidRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func loadTemplates(dir string) (*templates, error) {
	t := &templates{ev: map[string]fakeesl.Event{}, base: map[string][]fakeesl.Header{}}
	for _, name := range captures {
		c, err := fakeesl.LoadCapture(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("fakefs: %w", err)
		}
		for _, e := range c.Events() {
			n := e.Name()
			for _, k := range []string{n + "|" + e.Get("Call-Direction") + "|" + e.Get("Channel-Call-State"),
				n + "|" + e.Get("Call-Direction"), n} {
				if _, ok := t.ev[k]; !ok {
					t.ev[k] = e
					t.base[k] = baseHeaders(e)
				}
			}
		}
	}
	for _, n := range []string{"CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_CALLSTATE",
		"CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CALL_UPDATE", "CHANNEL_EXECUTE",
		"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"} {
		if _, ok := t.ev[n]; !ok {
			return nil, fmt.Errorf("fakefs: no captured %s in %s", n, dir)
		}
	}
	c, err := fakeesl.LoadCapture(filepath.Join(dir, "h_show_channels.filtered.rx.raw"))
	if err != nil {
		return nil, fmt.Errorf("fakefs: %w", err)
	}
	for _, r := range c.APIResponses() {
		var list struct {
			Rows []map[string]json.RawMessage `json:"rows"`
		}
		if strings.HasPrefix(r, `{"row_count":`) && json.Unmarshal([]byte(r), &list) == nil && len(list.Rows) > 0 {
			t.row = list.Rows[0]
			break
		}
	}
	if t.row == nil {
		return nil, fmt.Errorf("fakefs: h_show_channels has no `show channels as json` rows")
	}
	return t, nil
}

// template is the captured event closest to what c is to report, and
// its headers that do not describe the captured channel.
func (t *templates) template(name, dir, state string) (fakeesl.Event, []fakeesl.Header) {
	for _, k := range []string{name + "|" + dir + "|" + state, name + "|" + dir, name} {
		if e, ok := t.ev[k]; ok {
			return e, t.base[k]
		}
	}
	return t.ev["CHANNEL_CALLSTATE"], t.base["CHANNEL_CALLSTATE"]
}

// baseHeaders are the headers of a captured event that do not describe
// the captured channel.
func baseHeaders(e fakeesl.Event) []fakeesl.Header {
	var out []fakeesl.Header
	for _, h := range e.Headers {
		if !channelPart(h) {
			out = append(out, h)
		}
	}
	return out
}

// channelPart reports whether a captured header describes the captured
// channel (and is therefore replaced by the model's): its identity, its
// caller profile and partner, its state, its variables, anything naming a
// captured channel.
func channelPart(h fakeesl.Header) bool {
	switch h.Name {
	case "Unique-ID", "Channel-Call-UUID", "Channel-Name", "Channel-Presence-ID", "Call-Direction",
		"Presence-Call-Direction", "Answer-State", "Channel-Call-State", "Original-Channel-Call-State",
		"Hangup-Cause", "Other-Type", "Event-Sequence", "Content-Length", "Channel-Call-State-Number":
		return true
	}
	for _, p := range []string{"Caller-", "Other-Leg-", "variable_", "Application", "Bridge-"} {
		if strings.HasPrefix(h.Name, p) {
			return true
		}
	}
	return uuidRe.MatchString(h.Value)
}

// hdr is one header the model sets, decoded.
type hdr struct{ name, value string }

// event is the captured event name for channel c as the model has it now,
// with extra headers (Application, Hangup-Cause) on top.
func (f *FS) event(c *Chan, name string, extra ...hdr) fakeesl.Event {
	tpl, base := f.tpl.template(name, c.dir, c.state)
	e := fakeesl.Event{Body: tpl.Body, Headers: append(make([]fakeesl.Header, 0, len(base)+64), base...)}
	set := func(n, v string) {
		if v != "" {
			e.Set(n, v)
		}
	}
	set("Channel-Call-State", c.state)
	set("Original-Channel-Call-State", c.prevState)
	set("Channel-Name", c.name)
	set("Unique-ID", c.UUID)
	set("Call-Direction", c.dir)
	set("Presence-Call-Direction", c.dir)
	if c.User != "" {
		set("Channel-Presence-ID", c.User+"@"+f.opts.Domain)
	}
	set("Channel-Call-UUID", c.UUID)
	set("Answer-State", c.answer)
	set("Caller-Direction", c.dir)
	set("Caller-Logical-Direction", c.dir)
	set("Caller-Username", c.User)
	set("Caller-Dialplan", "XML")
	set("Caller-Caller-ID-Name", c.callerName)
	set("Caller-Caller-ID-Number", c.callerNum)
	set("Caller-Orig-Caller-ID-Name", c.callerName)
	set("Caller-Orig-Caller-ID-Number", c.callerNum)
	set("Caller-Callee-ID-Name", c.calleeName)
	set("Caller-Callee-ID-Number", c.calleeNum)
	set("Caller-Network-Addr", "127.0.0.1")
	set("Caller-ANI", c.callerNum)
	set("Caller-Destination-Number", c.dest)
	set("Caller-Unique-ID", c.UUID)
	set("Caller-Source", "mod_sofia")
	set("Caller-Context", f.opts.Context)
	set("Caller-Channel-Name", c.name)
	if c.other != "" {
		set("Other-Type", c.otherType)
		set("Other-Leg-Unique-ID", c.other)
		if o := f.chans[c.other]; o != nil {
			set("Other-Leg-Direction", o.dir)
			set("Other-Leg-Caller-ID-Name", o.callerName)
			set("Other-Leg-Caller-ID-Number", o.callerNum)
			set("Other-Leg-Destination-Number", o.dest)
			set("Other-Leg-Channel-Name", o.name)
		}
	}
	for _, h := range extra {
		set(h.name, h.value)
	}
	set("variable_direction", c.dir)
	set("variable_uuid", c.UUID)
	set("variable_channel_name", c.name)
	set("variable_sip_call_id", c.sipCallID)
	if c.User != "" {
		set("variable_presence_id", c.User+"@"+f.opts.Domain)
		set("variable_sip_from_host", f.opts.Domain)
	}
	if c.dialed {
		set("variable_dialed_user", c.User)
		set("variable_dialed_domain", f.opts.Domain)
	}
	set("variable_current_application", c.app)
	for _, k := range c.varOrder {
		set("variable_"+k, c.vars[k])
	}
	return e
}

// row is c as a row of `show channels as json`: the captured row with the
// columns that describe a channel taken from the model.
func (f *FS) row(c *Chan) map[string]json.RawMessage {
	row := make(map[string]json.RawMessage, len(f.tpl.row))
	for k, v := range f.tpl.row {
		row[k] = v
	}
	presence := ""
	if c.User != "" {
		presence = c.User + "@" + f.opts.Domain
	}
	for col, v := range map[string]string{
		"uuid": c.UUID, "call_uuid": c.UUID, "direction": c.dir, "name": c.name, "presence_id": presence,
		"callstate": c.state, "cid_name": c.callerName, "cid_num": c.callerNum, "dest": c.dest,
		"application": c.app, "application_data": c.appData, "callee_name": c.calleeName, "callee_num": c.calleeNum,
	} {
		b, _ := json.Marshal(v)
		row[col] = b
	}
	return row
}

// dump is `uuid_dump <uuid> json` of c: the headers and variables of a
// channel event (FreeSWITCH prints the channel's event data, named
// CHANNEL_DATA).
func (f *FS) dump(c *Chan) string {
	e := f.event(c, "CHANNEL_CALLSTATE")
	d := map[string]string{}
	for _, h := range e.Headers {
		d[h.Name] = e.Get(h.Name)
	}
	d["Event-Name"] = "CHANNEL_DATA"
	delete(d, "Content-Length")
	delete(d, "Event-Sequence")
	b, err := json.Marshal(d)
	if err != nil {
		return "-ERR " + err.Error() + "\n"
	}
	return string(b)
}
