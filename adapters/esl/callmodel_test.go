package esl

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
)

// callModel is a FreeSWITCH that keeps the channels of calls ringing the
// extensions and carries out the call-control commands on them: the answer
// swap (bgapi originate of the device with &park(), uuid_bridge of the
// caller to it, uuid_kill of the ringing channel), uuid_hold [off],
// uuid_transfer -bleg, uuid_bridge of two far parties, uuid_kill. Its
// events are captured events (a_basic_call, b_cancel, d_hold) given the
// model's channels' identities.
//
// Two things a real FreeSWITCH 1.10.12 did that the plain fakes did not:
//
//   - It reports what a command did a moment after its reply: the device's
//     CHANNEL_ANSWER after the originate job's BACKGROUND_JOB result, and
//     CHANNEL_ANSWER/CHANNEL_BRIDGE after uuid_bridge's +OK (lag).
//   - Callers that are loopback channels (`originate loopback/1005/default
//     &playback(…)`: IVRs, ring groups, other applications' click-to-call).
//
// No loopback call was captured (traces/freeswitch has none), so the
// loopback channels are modelled from FreeSWITCH's source
// (src/mod/endpoints/mod_loopback/mod_loopback.c, mod_dptools.c at the
// mirror's HEAD), not from a capture:
//
//   - `loopback/1005/default` makes two channels: "loopback/1005-a"
//     (Call-Direction outbound, the one originate returns) and
//     "loopback/1005-b" (inbound, created in -a's on_init, caller profile
//     cloned from -a with Caller-Source mod_loopback), which runs the
//     dialplan for 1005 and bridges user/1005.
//   - Each carries loopback_leg=A/B and other_loopback_leg_uuid naming the
//     other; neither has a presence id (nothing sets presence_id on them).
//   - mod_dptools' user_outgoing_channel sets dialed_user/dialed_domain on
//     the calling channel (-b) as well as on the device's channel; the
//     device's channel names -b in Other-Leg-Unique-ID.
//   - Answering -b marks -a answered (INDICATE_ANSWER on a non-outbound
//     loopback channel); a hang-up of one hangs up the other with the
//     same cause (channel_on_hangup).
//
// A real FreeSWITCH 1.10.12 (the test bed, `bgapi originate
// {originate_timeout=3}loopback/1019/default &park()`, 1019 unregistered)
// showed the same: loopback/1019-a outbound and loopback/1019-b inbound,
// no Channel-Presence-ID, Caller-Source mod_loopback, caller id
// 0000000000, loopback_leg and other_loopback_leg_uuid, and
// variable_dialed_user=1019 on -b's CHANNEL_ANSWER and CHANNEL_BRIDGE.
//
// Templates whose sofia details a loopback channel would not have
// (variable_sip_*, the directory user's variables, …) lose their
// variable_ headers; the model gives them the loopback ones instead.
type callModel struct {
	t   testing.TB
	srv *fakeesl.Server

	lag time.Duration // between a reply and the events it causes

	basic, cancel, hold []fakeesl.Event

	mu    sync.Mutex
	tpls  map[tplKey]fakeesl.Event // found in the captures, by ev
	chans map[string]*mChan
	holds []string // uuid_hold commands, as received
	// stuck counts partners left playing hold music for good: a
	// `uuid_hold off` that came before the music had started (see moh).
	stuck int
}

// mChan is one channel of the model.
type mChan struct {
	uuid, name, dir   string
	presence, dialed  string // "" = none
	dialedLater       string // dialed_user set once the channel runs bridge user/…
	cidNum, cidName   string
	dest              string
	loop              string // "A" or "B" for a loopback channel
	pair              string // the other loopback channel
	other             string // originator (ringing) or bridge partner
	sipID             string
	answered, bridged bool
	held              bool
	moh               mohState // hold music the partner of this held channel plays
	keepAfterUnbridge bool
}

type mohState uint8

const (
	mohNone    mohState = iota
	mohPending          // queued by uuid_hold, not playing yet
	mohPlaying
)

func newCallModel(t testing.TB, srv *fakeesl.Server, lag time.Duration) *callModel {
	m := &callModel{t: t, srv: srv, lag: lag,
		basic: loadEvents(t, "a_basic_call"), cancel: loadEvents(t, "b_cancel"), hold: loadEvents(t, "d_hold"),
		chans: map[string]*mChan{}, tpls: map[tplKey]fakeesl.Event{}}
	srv.SetHandler(m.handle)
	return m
}

// tpl returns the captured event name of the channel whose uuid starts with prefix.
func tpl(t testing.TB, evs []fakeesl.Event, name, prefix string) fakeesl.Event {
	return find(t, evs, name, prefix)
}

var (
	num1001 = regexp.MustCompile(`\b1001\b`)
	num1002 = regexp.MustCompile(`\b1002\b`)
)

// shape gives a captured event the identity of channel c (s.mu held).
func (m *callModel) shape(e fakeesl.Event, c *mChan) fakeesl.Event {
	hs := make([]fakeesl.Header, 0, len(e.Headers)+16)
	hasVars := false
	for _, h := range e.Headers {
		if strings.HasPrefix(h.Name, "variable_") {
			hasVars = true
			if c.loop != "" {
				continue // see callModel: a loopback channel has none of these
			}
		}
		// The captures' phones were 1001 (caller) and 1002 (callee). The
		// regular expressions only run where they can match: on every
		// header they were most of the model's cost, which delayed its
		// replies under -race.
		v := h.Value
		if strings.Contains(v, "1001") {
			v = num1001.ReplaceAllString(v, c.cidNum)
		}
		if strings.Contains(v, "1002") {
			v = num1002.ReplaceAllString(v, c.dest)
		}
		hs = append(hs, fakeesl.Header{Name: h.Name, Value: v})
	}
	e = fakeesl.Event{Headers: hs, Body: e.Body}
	for _, kv := range [][2]string{
		{"Unique-ID", c.uuid}, {"Caller-Unique-ID", c.uuid}, {"Channel-Call-UUID", c.uuid},
		{"Channel-Name", c.name}, {"Caller-Channel-Name", c.name},
		{"Call-Direction", c.dir}, {"Presence-Call-Direction", c.dir}, {"Caller-Direction", c.dir},
		{"Caller-Logical-Direction", c.dir},
		{"Caller-Caller-ID-Number", c.cidNum}, {"Caller-Caller-ID-Name", c.cidName},
		{"Caller-Orig-Caller-ID-Number", c.cidNum}, {"Caller-Orig-Caller-ID-Name", c.cidName},
		{"Caller-ANI", c.cidNum}, {"Caller-Destination-Number", c.dest},
		{"Event-Sequence", strconv.FormatUint(m.srv.NextSeq(), 10)},
	} {
		e.Set(kv[0], kv[1])
	}
	e = without(e, "Channel-Presence-ID", "Other-Leg-Unique-ID", "Other-Type")
	if c.presence != "" {
		e = e.With("Channel-Presence-ID", c.presence)
	}
	if c.other != "" && (c.dir == "outbound" || c.bridged) {
		e = e.With("Other-Leg-Unique-ID", c.other)
	}
	if c.loop != "" {
		e = e.With("Caller-Source", "mod_loopback").With("Caller-Username", "")
	}
	if !hasVars {
		return e
	}
	e = without(e, "variable_dialed_user", "variable_dialed_domain", "variable_presence_id", "variable_signal_bond",
		"variable_sip_call_id")
	e = e.With("variable_uuid", c.uuid).With("variable_channel_name", c.name).With("variable_direction", c.dir)
	if c.presence != "" {
		e = e.With("variable_presence_id", c.presence)
	}
	if c.dialed != "" {
		e = e.With("variable_dialed_user", c.dialed).With("variable_dialed_domain", "127.0.0.1")
	}
	if c.sipID != "" && c.loop == "" {
		e = e.With("variable_sip_call_id", c.sipID)
	}
	if c.bridged && c.other != "" {
		e = e.With("variable_signal_bond", c.other)
	}
	if c.loop != "" {
		e = e.With("variable_loopback_leg", c.loop).With("variable_other_loopback_leg_uuid", c.pair)
	}
	return e
}

// without drops headers.
func without(e fakeesl.Event, names ...string) fakeesl.Event {
	hs := slices.DeleteFunc(slices.Clone(e.Headers), func(h fakeesl.Header) bool {
		return slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, h.Name) })
	})
	return fakeesl.Event{Headers: hs, Body: e.Body}
}

// ev renders the captured event name of prefix's channel as an event of c.
func (m *callModel) ev(evs []fakeesl.Event, name, prefix string, c *mChan) fakeesl.Event {
	k := tplKey{&evs[0], name, prefix}
	e, ok := m.tpls[k]
	if !ok {
		e = tpl(m.t, evs, name, prefix)
		m.tpls[k] = e
	}
	return m.shape(e, c)
}

// tplKey names a captured event: its capture, name and channel.
type tplKey struct {
	capture      *fakeesl.Event
	name, prefix string
}

// inbound/outbound templates of a_basic_call: the 1001 and the 1002 leg.
func (m *callModel) tplLeg(c *mChan) string {
	if c.dir == "inbound" {
		return basicA[:8]
	}
	return basicB[:8]
}

// ring makes ext ring: from the SIP phone callerNum (not a mapped
// extension), or from a loopback channel pair when loop is true. It
// returns the device's ringing channel and the caller (the channel the
// device's channel names as its partner: -b for loopback).
func (m *callModel) ring(ext, callerNum string, loop bool) (phone, caller string) {
	m.mu.Lock()
	var evs []fakeesl.Event
	var a *mChan
	if loop {
		// originate loopback/<ext>/default &playback(…): -a, then -b.
		la := &mChan{uuid: newUUID(), name: "loopback/" + ext + "-a", dir: "outbound", loop: "A",
			cidNum: "0000000000", cidName: "FreeSWITCH", dest: ext}
		lb := &mChan{uuid: newUUID(), name: "loopback/" + ext + "-b", dir: "inbound", loop: "B",
			cidNum: "0000000000", cidName: "FreeSWITCH", dest: ext, dialedLater: ext}
		la.pair, lb.pair = lb.uuid, la.uuid
		m.chans[la.uuid], m.chans[lb.uuid] = la, lb
		evs = append(evs, m.ev(m.basic, "CHANNEL_CREATE", basicB[:8], la), m.ev(m.cancel, "CHANNEL_CREATE", cancA[:8], lb),
			m.ev(m.cancel, "CHANNEL_CALLSTATE", cancA[:8], lb))
		a = lb
	} else {
		a = &mChan{uuid: newUUID(), name: "sofia/internal/" + callerNum + "@127.0.0.1", dir: "inbound",
			presence: callerNum + "@127.0.0.1", cidNum: callerNum, cidName: callerNum, dest: ext, dialedLater: ext,
			sipID: newUUID() + "@caller"}
		m.chans[a.uuid] = a
		evs = append(evs, m.ev(m.cancel, "CHANNEL_CREATE", cancA[:8], a), m.ev(m.cancel, "CHANNEL_CALLSTATE", cancA[:8], a))
	}
	// The caller runs bridge user/<ext>: dialed_user is set on it too.
	a.dialed, a.other = a.dialedLater, ""
	b := &mChan{uuid: newUUID(), name: "sofia/internal/" + ext + "@127.0.0.1:5182", dir: "outbound",
		presence: ext + "@127.0.0.1", dialed: ext, cidNum: a.cidNum, cidName: a.cidName, dest: ext, other: a.uuid}
	m.chans[b.uuid] = b
	a.other = b.uuid
	evs = append(evs, m.ev(m.cancel, "CHANNEL_CREATE", cancB[:8], b))
	b.sipID = newUUID() + "@phone"
	evs = append(evs, m.ev(m.cancel, "CHANNEL_PROGRESS", cancB[:8], b), m.ev(m.cancel, "CHANNEL_CALLSTATE", cancB[:8], b))
	m.mu.Unlock()
	m.srv.Emit(evs...)
	return b.uuid, a.uuid
}

var (
	originateTarget = regexp.MustCompile(`\]user/([0-9]+) &park\(\)$`)
	originateCID    = regexp.MustCompile(`origination_caller_id_number=([^,\]]+)`)
)

func (m *callModel) handle(cmd string, bg bool) fakeesl.Reply {
	name, args, _ := strings.Cut(cmd, " ")
	f := strings.Fields(args)
	const noChannel = "-ERR No such channel!\n"
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case name == "originate" && bg:
		return m.originate(cmd)
	case name == "uuid_exists" && len(f) == 1:
		return fakeesl.Reply{Body: strconv.FormatBool(m.chans[f[0]] != nil)}
	case name == "uuid_bridge" && len(f) == 2:
		return m.bridge(f[0], f[1])
	case name == "uuid_kill" && len(f) >= 1:
		c := m.chans[f[0]]
		if c == nil {
			return fakeesl.Reply{Body: noChannel}
		}
		cause := "NORMAL_CLEARING"
		if len(f) > 1 {
			cause = f[1]
		}
		return fakeesl.Reply{Body: "+OK\n", After: m.hangup(c, cause), AfterDelay: m.lag}
	case name == "uuid_hold":
		m.holds = append(m.holds, args)
		off := len(f) == 2 && f[0] == "off"
		if c := m.chans[f[len(f)-1]]; c != nil && c.bridged {
			return fakeesl.Reply{Body: "+OK Success\n", After: m.holdEvents(c, !off)}
		}
		return fakeesl.Reply{Body: "+OK Success\n"}
	case name == "uuid_transfer" && len(f) >= 3 && f[1] == "-bleg":
		c := m.chans[f[0]]
		if c == nil {
			return fakeesl.Reply{Body: noChannel}
		}
		return fakeesl.Reply{Body: "+OK\n", After: m.unbridge(c), AfterDelay: m.lag}
	}
	return fakeesl.DefaultReply(cmd)
}

// originate is the auto-answer call of an answer swap: the device answers
// at once. Its CHANNEL_ANSWER comes after the job's result (lag).
func (m *callModel) originate(cmd string) fakeesl.Reply {
	u := originationUUID.FindStringSubmatch(cmd)
	x := originateTarget.FindStringSubmatch(cmd)
	if u == nil || x == nil {
		m.t.Errorf("originate the model does not know: %q", cmd)
		return fakeesl.Reply{Body: "-ERR INVALID_GATEWAY\n"}
	}
	cid := ""
	if c := originateCID.FindStringSubmatch(cmd); c != nil {
		cid = c[1]
	}
	n := &mChan{uuid: u[1], name: "sofia/internal/" + x[1] + "@127.0.0.1:5182", dir: "outbound",
		presence: x[1] + "@127.0.0.1", dialed: x[1], cidNum: cid, cidName: cid, dest: x[1], sipID: newUUID() + "@swap"}
	m.chans[n.uuid] = n
	create := m.ev(m.basic, "CHANNEL_CREATE", basicB[:8], n)
	n.answered = true
	answer := []fakeesl.Event{m.ev(m.basic, "CHANNEL_ANSWER", basicB[:8], n)}
	return fakeesl.Reply{Body: "+OK " + n.uuid + "\n", Before: []fakeesl.Event{create}, After: answer, AfterDelay: m.lag}
}

// bridge is uuid_bridge x y: x answers if it has not, (a loopback -b
// answers its -a too), then x reports the bridge. x's ringing partner, if
// any, is cancelled by FreeSWITCH; a bridged one is left alone.
func (m *callModel) bridge(xu, yu string) fakeesl.Reply {
	x, y := m.chans[xu], m.chans[yu]
	if x == nil || y == nil {
		return fakeesl.Reply{Body: "-ERR Invalid uuid\n"}
	}
	var evs []fakeesl.Event
	// Every phone x's bridge still rings (several for a ring-all) is
	// cancelled.
	for _, old := range m.ringing(x) {
		if old != y {
			old.other = ""
			evs = append(evs, m.hangup(old, "ORIGINATOR_CANCEL")...)
		}
	}
	for _, c := range []*mChan{x, y} {
		if p := m.chans[c.other]; p != nil && p.bridged && p != x && p != y {
			p.bridged, p.other = false, ""
		}
	}
	x.other, y.other = y.uuid, x.uuid
	x.bridged, y.bridged = true, true
	if !x.answered {
		x.answered = true
		evs = append(evs, m.ev(m.basic, "CHANNEL_ANSWER", m.tplLeg(x), x))
		if p := m.chans[x.pair]; p != nil && !p.answered {
			p.answered = true
			evs = append(evs, m.ev(m.basic, "CHANNEL_ANSWER", m.tplLeg(p), p))
		}
	}
	evs = append(evs, m.ev(m.basic, "CHANNEL_BRIDGE", basicA[:8], x))
	return fakeesl.Reply{Body: "+OK\n", After: evs, AfterDelay: m.lag}
}

// ringing returns the device channels x calls that have not answered,
// oldest first (m.mu held).
func (m *callModel) ringing(x *mChan) []*mChan {
	var out []*mChan
	for _, c := range m.chans {
		if c.other == x.uuid && c.dir == "outbound" && !c.bridged && !c.answered && c.loop == "" {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *mChan) int { return strings.Compare(a.sipID, b.sipID) })
	return out
}

// ringAll makes every one of exts ring at once from the SIP phone
// callerNum (`bridge user/2001,user/2002`, group_call). It returns the
// devices' ringing channels, in the order of exts, and the caller.
func (m *callModel) ringAll(exts []string, callerNum string) (phones []string, caller string) {
	m.mu.Lock()
	a := &mChan{uuid: newUUID(), name: "sofia/internal/" + callerNum + "@127.0.0.1", dir: "inbound",
		presence: callerNum + "@127.0.0.1", cidNum: callerNum, cidName: callerNum, dest: "79" + strings.Join(exts, ""),
		sipID: newUUID() + "@caller"}
	m.chans[a.uuid] = a
	evs := []fakeesl.Event{m.ev(m.cancel, "CHANNEL_CREATE", cancA[:8], a), m.ev(m.cancel, "CHANNEL_CALLSTATE", cancA[:8], a)}
	for _, ext := range exts {
		b := &mChan{uuid: newUUID(), name: "sofia/internal/" + ext + "@127.0.0.1:5182", dir: "outbound",
			presence: ext + "@127.0.0.1", dialed: ext, cidNum: a.cidNum, cidName: a.cidName, dest: ext, other: a.uuid}
		m.chans[b.uuid] = b
		a.other = b.uuid
		evs = append(evs, m.ev(m.cancel, "CHANNEL_CREATE", cancB[:8], b))
		b.sipID = newUUID() + "@phone"
		evs = append(evs, m.ev(m.cancel, "CHANNEL_PROGRESS", cancB[:8], b), m.ev(m.cancel, "CHANNEL_CALLSTATE", cancB[:8], b))
		phones = append(phones, b.uuid)
	}
	m.mu.Unlock()
	m.srv.Emit(evs...)
	return phones, a.uuid
}

// pickUp: the phone of the ringing channel u answers by itself; its
// caller's bridge takes it, and the phones the caller also rang lose the
// race (LOSE_RACE, as switch_ivr_originate ends the other legs).
func (m *callModel) pickUp(u string) {
	m.mu.Lock()
	b := m.chans[u]
	x := m.chans[b.other]
	var evs []fakeesl.Event
	for _, o := range m.ringing(x) {
		if o != b {
			o.other = ""
			evs = append(evs, m.hangup(o, "LOSE_RACE")...)
		}
	}
	b.answered = true
	evs = append(evs, m.ev(m.basic, "CHANNEL_ANSWER", m.tplLeg(b), b))
	x.other, x.bridged, b.bridged = b.uuid, true, true
	if !x.answered {
		x.answered = true
		evs = append(evs, m.ev(m.basic, "CHANNEL_ANSWER", m.tplLeg(x), x))
	}
	evs = append(evs, m.ev(m.basic, "CHANNEL_BRIDGE", basicA[:8], x))
	m.mu.Unlock()
	m.srv.Emit(evs...)
}

// drop hangs up a channel (and what ends with it) with cause.
func (m *callModel) drop(u, cause string) {
	m.mu.Lock()
	var evs []fakeesl.Event
	if c := m.chans[u]; c != nil {
		for _, o := range m.ringing(c) {
			evs = append(evs, m.hangup(o, "ORIGINATOR_CANCEL")...)
		}
		evs = append(evs, m.hangup(c, cause)...)
	}
	m.mu.Unlock()
	m.srv.Emit(evs...)
}

// unbridge is uuid_transfer c -bleg …: c's partner leaves for the dialplan.
func (m *callModel) unbridge(c *mChan) []fakeesl.Event {
	p := m.chans[c.other]
	if p == nil || !c.bridged {
		return nil
	}
	// The a-leg of the bridge (the caller uuid_bridge named first) reports it.
	ev := m.ev(m.basic, "CHANNEL_UNBRIDGE", basicA[:8], p)
	c.bridged, p.bridged = false, false
	p.other = ""
	return []fakeesl.Event{ev}
}

// hangup ends c and, as FreeSWITCH does, its bridge partner and its
// loopback pair.
func (m *callModel) hangup(c *mChan, cause string) []fakeesl.Event {
	if m.chans[c.uuid] == nil {
		return nil
	}
	delete(m.chans, c.uuid)
	var evs []fakeesl.Event
	for _, name := range []string{"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"} {
		evs = append(evs, m.ev(m.basic, name, m.tplLeg(c), c).With("Hangup-Cause", cause))
	}
	if p := m.chans[c.pair]; p != nil {
		evs = append(evs, m.hangup(p, cause)...)
	}
	if p := m.chans[c.other]; p != nil && c.bridged {
		evs = append(evs, m.hangup(p, "NORMAL_CLEARING")...)
	}
	return evs
}

// holdEvents are d_hold's events of uuid_hold [off] on its 1001 leg. Like
// switch_ivr_hold, uuid_hold queues hold music on the partner, which starts
// playing a moment later (PLAYBACK_START came 160 ms after CHANNEL_HOLD in
// d_hold); switch_ivr_unhold stops the partner's music only if it is
// playing (switch_channel_stop_broadcast tests CF_BROADCAST), so music
// queued but not started yet plays on for good: counted in stuck.
func (m *callModel) holdEvents(c *mChan, on bool) []fakeesl.Event {
	const leg = "fe0f41bc"
	if on {
		if c.held {
			return nil
		}
		c.held = true
		c.moh = mohPending
		p := m.chans[c.other]
		go func() {
			// The partner's hold music starts playing.
			time.Sleep(4 * m.lag)
			m.mu.Lock()
			var start []fakeesl.Event
			if c.moh == mohPending && p != nil && m.chans[p.uuid] != nil {
				c.moh = mohPlaying
				start = append(start, m.playbackStart(p))
			}
			m.mu.Unlock()
			m.srv.Emit(start...)
		}()
		seg := upTo(m.t, m.hold, "CHANNEL_HOLD", leg)
		var out []fakeesl.Event
		for _, e := range seg {
			if strings.HasPrefix(e.Get("Unique-ID"), leg) && e.Get("Channel-Call-State") == "HELD" {
				out = append(out, m.shape(e, c))
			}
		}
		return out
	}
	if !c.held {
		return nil
	}
	c.held = false
	if c.moh == mohPending {
		m.stuck++
	}
	c.moh = mohNone
	return []fakeesl.Event{m.ev(m.hold, "CHANNEL_UNHOLD", leg, c)}
}

// playbackStart is the PLAYBACK_START of hold music on c. The filtered
// captures do not subscribe to it; d_hold.log shows it on the held
// channel's partner. It is a channel event of c (switch_ivr_play_file
// fires it with the channel's data and Playback-File-Path), here made from
// c's captured CALL_UPDATE.
func (m *callModel) playbackStart(c *mChan) fakeesl.Event {
	return m.ev(m.basic, "CALL_UPDATE", m.tplLeg(c), c).With("Event-Name", "PLAYBACK_START").
		With("Event-Calling-File", "switch_ivr_play_say.c").With("Event-Calling-Function", "switch_ivr_play_file").
		With("Playback-File-Path", "local_stream://moh")
}

// stuckMusic reports how many partners were left playing hold music.
func (m *callModel) stuckMusic() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stuck
}

// holdCommands returns the uuid_hold commands received.
func (m *callModel) holdCommands() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.holds)
}

// live reports whether a channel exists.
func (m *callModel) live(u string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.chans[u] != nil
}
