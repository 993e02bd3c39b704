package esl

import (
	"context"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// leg is one channel of a mapped extension: the extension's connection.
type leg struct {
	uuid   string
	ext    string        // extension name
	id     string        // CallRef.ID, stable across an answer swap and reconnects
	dir    pbx.Direction // Incoming: FreeSWITCH calls the device; Outgoing: the device calls
	other  string        // partner channel uuid, when known
	remote pbx.Party
	sipID  string
	cstaID int
	// headers are the custom headers of the INVITE FreeSWITCH sent the
	// phone ($sip_header), reported with Offered or Originated only: a
	// later event (the auto-answer call of an answer swap) must not
	// replace what the phone was first offered.
	headers map[string]string
	talk    bool // the phone takes BroadSoft talk/hold NOTIFYs (an *allow_events variable)
	// presence is the channel's presence id (user@domain): where the
	// directory is asked for csta_allow_events (see Adapter.usePhoneEvents).
	presence string

	makeCall bool   // device leg of MakeCall: Originated on answer, Connected on bridge
	swapLeg  bool   // auto-answer leg that replaces a ringing one: no Offered
	swapped  bool   // replaced by a swap leg: its end is not reported
	replaces string // swapLeg: the ringing channel it replaces

	// orphan: the device leg of a MakeCall that failed or gave up before
	// FreeSWITCH reported the channel (see abandonMakeCall). The core has
	// cleared the MakeCall's connection, so the leg is a connection of its
	// own (CallRef.ID is the channel uuid), reported as a call the phone
	// places once the device answers, and not at all if it never does.
	orphan bool
	// staleID is the failed MakeCall's csta_id, still stored on an orphan's
	// channel: a csta_id is never given out twice, so it is not reported.
	staleID int

	// offerPending: the Offered event waits for the SIP Call-ID. FreeSWITCH
	// creates the channel that calls a phone before it sends the INVITE, so
	// CHANNEL_CREATE has no sip_call_id; CHANNEL_PROGRESS (180) or
	// CHANNEL_ANSWER is the first event that carries it.
	offerPending bool

	answered, connected, held bool
	// partnerGone: the channel it was bridged to has hung up. FreeSWITCH
	// then takes a held channel off hold (CHANNEL_UNHOLD) just before
	// hanging it up; a phone whose held call is ended by the far party
	// reports no unhold.
	partnerGone bool

	rejected     bool             // ClearConnection while alerting
	xfer         bool             // the bridge transferred it (reported when it ends)
	xferKind     pbx.TransferKind // of the bridge's transfer
	xferReported bool             // Transferred was sent
	ended        bool

	deflected bool // DeflectCall sent its caller elsewhere (deflect.go)
	// dialing is the channel this one calls and that has not answered yet
	// (the destination of a MakeCall), named by its Other-Type originator.
	dialing string

	bridgeHoldUntil time.Time // a hold change before this was requested by the bridge
	// mohPending: held with uuid_hold, whose hold music has not been seen
	// starting on the partner yet (see Adapter.waitHoldMusic).
	mohPending bool
	mohSince   time.Time // when uuid_hold was sent
	expected   time.Time // when the bridge originated it (expect table)
}

func (l *leg) ref() pbx.CallRef { return pbx.CallRef{Ext: l.ext, ID: l.id} }

// signal is something a command waits for on a channel.
type signal uint8

const (
	sigCreated signal = iota + 1
	sigAnswered
	sigHeld
	sigRetrieved
	sigUnbridged
	sigGone
	sigBridged // CHANNEL_BRIDGE names the channel, tracked or not (Transfer)
	sigMusic   // the partner of a channel held with uuid_hold plays hold music
	sigHangup  // CHANNEL_HANGUP names the channel, tracked or not (conference.go)
)

type waiter struct {
	uuid string
	sigs []signal
	ch   chan signal
}

// callState is the call state machine: it turns ordered channel events into
// pbx.Events and keeps what the commands need (which channel is which
// connection, partners, phone capabilities).
type callState struct {
	log *slog.Logger
	out *outQueue
	now func() time.Time

	mu      sync.Mutex
	exts    map[string]pbx.Extension // by name
	users   map[string]string        // device user → extension name
	legs    map[string]*leg          // by channel uuid
	refs    map[pbx.CallRef]string   // connection → current channel uuid
	expect  map[string]*leg          // channels we originate, before FreeSWITCH reports them
	gone    map[string]time.Time     // channels whose end was handled; late events are ignored
	waiters map[string][]*waiter
	devices map[string]bool // extension → registered, as last reported
	regSeen map[string]bool // extensions an event of this session reported (registrations.go)

	// doomed are channels the adapter must hang up whenever it sees them:
	// auto-answer calls of an answer swap that did not complete. They
	// stand for no connection and are not tracked; kills holds the
	// hang-ups asked for and not yet sent (see Adapter.hangUpDoomed).
	doomed map[string]*doom
	kills  []kill
}

type doom struct {
	cause string    // for uuid_kill, may be empty
	at    time.Time // when it was doomed; forgotten after 5 minutes
	asked bool      // a hang-up was sent in this session
}

type kill struct{ uuid, cause string }

func newCallState(log *slog.Logger, out *outQueue) *callState {
	return &callState{
		log: log, out: out, now: time.Now,
		exts: map[string]pbx.Extension{}, users: map[string]string{},
		legs: map[string]*leg{}, refs: map[pbx.CallRef]string{}, expect: map[string]*leg{},
		gone: map[string]time.Time{}, waiters: map[string][]*waiter{}, devices: map[string]bool{},
		regSeen: map[string]bool{}, doomed: map[string]*doom{},
	}
}

// deviceUser is the key a channel of the extension's device is found by:
// the user of "user/1001", "user/1001@domain" or "sofia/internal/1001".
func deviceUser(x pbx.Extension) string {
	if u := userPart(x.Endpoint); u != "" {
		return u
	}
	return x.Name
}

func (s *callState) setExtensions(exts []pbx.Extension) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exts = make(map[string]pbx.Extension, len(exts))
	s.users = make(map[string]string, len(exts))
	for _, x := range exts {
		s.exts[x.Name] = x
		s.users[deviceUser(x)] = x.Name
	}
	// What was reported of an extension no longer mapped would hide its
	// state if it is mapped again.
	for name := range s.devices {
		if _, ok := s.exts[name]; !ok {
			delete(s.devices, name)
			delete(s.regSeen, name)
		}
	}
}

func (s *callState) extension(name string) (pbx.Extension, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.exts[name]
	return x, ok
}

// extOf finds the extension a channel belongs to, "" when it is none's.
//
// The presence id is the most reliable per-user key: user/1001 sets it on
// the channel that calls the device, and mod_sofia on a channel the phone
// calls in on. When a channel has one, it decides alone: dialed_user is
// also set on the *calling* channel of a bridge to user/1002
// (mod_dptools user_outgoing_channel, a_basic_call's 1001 leg from its
// CHANNEL_ANSWER on), so an unmapped caller would otherwise pass for a
// channel of the extension it calls. Without a presence id, dialed_user
// counts only on a channel FreeSWITCH called out on (Call-Direction
// outbound), the channel name only for the device's own endpoint, and a
// loopback channel (loopback/1005-a, -b: IVRs, ring groups, click-to-call
// of other applications) is never a device's channel, whatever it dialled.
func (s *callState) extOf(ev chEvent) string {
	if strings.HasPrefix(ev.ChanName, "loopback/") {
		return ""
	}
	if ev.Presence != "" {
		if x, ok := s.users[userPart(ev.Presence)]; ok {
			return x
		}
		return ""
	}
	if ev.DialedUser != "" && ev.Dir != "inbound" {
		if x, ok := s.users[ev.DialedUser]; ok {
			return x
		}
	}
	if u := userPart(ev.ChanName); u != "" {
		if x, ok := s.users[u]; ok {
			return x
		}
	}
	return ""
}

// remoteOf derives the far party of l from an event of its channel.
func (s *callState) remoteOf(l *leg, ev chEvent) pbx.Party {
	self := func(n string) bool {
		if n == "" {
			return true
		}
		x := s.exts[l.ext]
		return n == x.Name || n == deviceUser(x)
	}
	var p pbx.Party
	switch {
	case l.dir == pbx.Incoming && !self(ev.CallerNum):
		p = pbx.Party{Number: ev.CallerNum, Name: ev.CallerName}
	case !self(ev.CalleeNum):
		p = pbx.Party{Number: ev.CalleeNum, Name: ev.CalleeName}
	case !self(ev.DestNum) && l.dir == pbx.Outgoing:
		p = pbx.Party{Number: ev.DestNum}
	default:
		return l.remote
	}
	if p.Name == p.Number || p.Name == "Outbound Call" || p.Name == "unknown" {
		// FreeSWITCH fills names with placeholders; an empty name lets the
		// core show the number.
		p.Name = ""
	}
	return p
}

func (s *callState) emit(ev pbx.Event) { s.out.push(ev) }

func (s *callState) notify(uuid string, sig signal) {
	ws := s.waiters[uuid]
	for _, w := range ws {
		for _, want := range w.sigs {
			if want == sig {
				select {
				case w.ch <- sig:
				default:
				}
			}
		}
	}
}

// watch registers interest in signals of a channel; call it before sending
// the command whose effect it waits for.
func (s *callState) watch(uuid string, sigs ...signal) *waiter {
	w := &waiter{uuid: uuid, sigs: sigs, ch: make(chan signal, len(sigs)+1)}
	s.mu.Lock()
	s.waiters[uuid] = append(s.waiters[uuid], w)
	s.mu.Unlock()
	return w
}

func (s *callState) unwatch(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.waiters[w.uuid]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.waiters, w.uuid)
	} else {
		s.waiters[w.uuid] = ws
	}
}

func isEnd(name string) bool {
	return name == "CHANNEL_HANGUP" || name == "CHANNEL_HANGUP_COMPLETE" || name == "CHANNEL_DESTROY"
}

// handle applies one event, in FreeSWITCH's order.
func (s *callState) handle(ev chEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.apply(ev)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.logEvent(ev, l)
	}
}

// apply applies one event under s.mu and returns the connection it was
// attributed to (nil: not ours).
func (s *callState) apply(ev chEvent) *leg {
	if ev.Name == "CUSTOM" {
		switch ev.Subclass {
		case "sofia::register":
			s.device(ev.RegUser, true)
			return nil
		case "sofia::unregister", "sofia::expire":
			s.device(ev.RegUser, false)
			return nil
		}
	}
	if ev.UUID == "" {
		return nil
	}

	if ev.Name == "PLAYBACK_START" {
		// uuid_hold starts hold music on the held channel's partner.
		for _, l := range s.legs {
			if l.other == ev.UUID && l.mohPending {
				l.mohPending = false
				s.notify(l.uuid, sigMusic)
			}
		}
		return nil
	}
	if ev.Name == "CHANNEL_HANGUP" {
		s.notify(ev.UUID, sigHangup)
		// The far party need not be an extension's channel: untracked.
		for _, l := range s.legs {
			if l.other == ev.UUID && l.held {
				l.partnerGone = true
			}
		}
	}
	if ev.Name == "CHANNEL_BRIDGE" {
		// Transfer waits for the far parties it joins, which are not
		// the extensions' channels and so are not tracked.
		s.notify(ev.UUID, sigBridged)
		s.notify(ev.Other, sigBridged)
	}
	if ev.OtherType == "originator" && !isEnd(ev.Name) {
		// A channel being called names its caller: TransferCall while it
		// rings joins the held party to it (transfer_ringing.go).
		if p := s.legs[ev.Other]; p != nil && !p.connected {
			p.dialing = ev.UUID
		}
	}
	if ev.Name == "CHANNEL_UNBRIDGE" {
		// ConferenceCall waits for either channel of a call, tracked or not.
		s.notify(ev.UUID, sigUnbridged)
	}
	if ev.Name == "CHANNEL_BRIDGE" || ev.Name == "CHANNEL_UNBRIDGE" {
		// Only the a-leg of a bridge gets these events; the b-leg is named
		// in Other-Leg-Unique-ID.
		if p := s.legs[ev.Other]; p != nil {
			s.bridgeEvent(p, ev.Name, ev.UUID)
		}
	}
	l := s.legs[ev.UUID]
	if l == nil {
		if l = s.adopt(ev); l == nil {
			return nil
		}
	}
	if ev.Other != "" && !isEnd(ev.Name) {
		l.other = ev.Other
	}
	if ev.SIPCallID != "" {
		l.sipID = ev.SIPCallID
	}
	l.takeHeaders(ev)
	if l.offerPending && (l.sipID != "" || ev.Name != "CHANNEL_CREATE") {
		// Any later event means the call moved on: report the offer
		// before it, with or without Call-ID.
		l.offerPending = false
		s.emit(pbx.Event{Kind: pbx.EventOffered, Call: l.ref(), Remote: l.remote, SIPCallID: l.sipID,
			Headers: l.offerHeaders(), CSTAID: l.cstaID})
	}
	if advertisesTalk(ev.AllowEvents) {
		l.talk = true
	}
	if ev.Presence != "" {
		l.presence = ev.Presence
	}
	l.takeStoredID(ev.CSTAID)

	switch ev.Name {
	case "CHANNEL_ANSWER":
		s.answered(l)
	case "CHANNEL_CALLSTATE":
		switch ev.State {
		case "ACTIVE":
			if l.held {
				s.retrieved(l)
			} else if ev.Answer == "answered" {
				s.answered(l)
			}
		case "HELD":
			s.heldEv(l)
		case "UNHELD":
			s.retrieved(l)
		}
	case "CHANNEL_EXECUTE":
		s.appStarted(l, ev)
	case "CHANNEL_HOLD":
		s.heldEv(l)
	case "CHANNEL_UNHOLD":
		s.retrieved(l)
	case "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE":
		s.bridgeEvent(l, ev.Name, ev.Other)
	case "CALL_UPDATE":
		if p := s.remoteOf(l, ev); p.Number != "" && p.Number != l.remote.Number {
			l.remote = p
			s.emit(pbx.Event{Kind: pbx.EventPartyChanged, Call: l.ref(), Remote: p, SIPCallID: l.sipID, CSTAID: l.cstaID})
		}
	case "CUSTOM":
		switch ev.Subclass {
		case "sofia::transferor":
			// The phone sent REFER. A blind REFER leaves
			// transfer_destination=blind:<target> on the channel.
			kind := pbx.TransferAttended
			if strings.HasPrefix(ev.TransferDest, "blind:") {
				kind = pbx.TransferBlind
			}
			s.transferredByPhone(l, kind)
		case "sofia::replaced":
			// This leg was replaced by an attended REFER (Replaces).
			s.transferredByPhone(l, pbx.TransferAttended)
		}
	default:
		if isEnd(ev.Name) {
			s.end(l, ev)
		}
	}
	return l
}

// device reports a registration change of an extension's device. Phones
// re-register every few minutes; only changes are reported.
func (s *callState) device(user string, registered bool) {
	ext, ok := s.users[user]
	if !ok {
		return
	}
	s.regSeen[ext] = true
	if was, known := s.devices[ext]; known && was == registered {
		return
	}
	s.devices[ext] = registered
	s.emit(pbx.Event{Kind: pbx.EventDevice, Call: pbx.CallRef{Ext: ext}, Registered: registered})
}

// newLeg is a channel of extension ext seen for the first time. Its
// CallRef.ID is the channel uuid. FreeSWITCH's Call-Direction is its own
// view: "inbound" is a channel the phone called in on. The device leg of a
// MakeCall is a channel FreeSWITCH called, but the phone places that call:
// a bridge that did not start it (restarted, or a second one) knows it by
// the csta_makecall variable MakeCall set.
func newLeg(ev chEvent, ext string) *leg {
	l := &leg{uuid: ev.UUID, ext: ext, id: ev.UUID, dir: pbx.Incoming}
	if ev.Dir == "inbound" || ev.MakeCall {
		l.dir = pbx.Outgoing
	}
	l.makeCall = ev.MakeCall
	return l
}

// takeHeaders keeps the INVITE headers of the first event that has any.
// Only a channel FreeSWITCH called out on (Call-Direction outbound) sent
// the phone an INVITE; on a channel the phone called in on, sip_h_*
// variables hold what the phone itself sent.
func (l *leg) takeHeaders(ev chEvent) {
	if l.headers == nil && ev.Dir == "outbound" && len(ev.SIPHeaders) > 0 {
		l.headers = ev.SIPHeaders
	}
}

// offerHeaders are the headers reported with the leg's Offered or
// Originated: none for an answer swap's auto-answer call, which stands in
// for a connection already offered.
func (l *leg) offerHeaders() map[string]string {
	if l.swapLeg {
		return nil
	}
	return maps.Clone(l.headers)
}

// takeStoredID takes the csta_id stored on the leg's channel, except the
// stale one of a failed MakeCall.
func (l *leg) takeStoredID(n int) {
	if n != 0 && n != l.staleID {
		l.cstaID = n
	}
}

// adopt starts tracking a channel of a mapped extension on its first event.
func (s *callState) adopt(ev chEvent) *leg {
	if _, doomed := s.doomed[ev.UUID]; doomed {
		if isEnd(ev.Name) || ev.State == "HANGUP" {
			delete(s.doomed, ev.UUID)
			s.markGone(ev.UUID)
		} else {
			s.askKill(ev.UUID)
		}
		return nil
	}
	if _, done := s.gone[ev.UUID]; done {
		return nil
	}
	if isEnd(ev.Name) || ev.State == "HANGUP" {
		// The channel ends before it was ever tracked (it began while the
		// link was down, or before the resync listed it). Remember that, so
		// that a channel listing taken before its end cannot bring it back.
		if s.expect[ev.UUID] == nil && s.extOf(ev) != "" {
			s.markGone(ev.UUID)
		}
		return nil
	}
	l := s.expect[ev.UUID]
	found := l == nil // not one the adapter started: found after connecting
	if l != nil {
		delete(s.expect, ev.UUID)
	} else {
		ext := s.extOf(ev)
		if ext == "" {
			return nil
		}
		l = newLeg(ev, ext)
	}
	l.uuid = ev.UUID
	if ev.Other != "" {
		l.other = ev.Other
	}
	l.sipID = ev.SIPCallID
	l.takeHeaders(ev)
	if p := s.remoteOf(l, ev); p.Number != "" {
		l.remote = p
	}
	s.legs[l.uuid] = l
	if !l.swapLeg {
		s.refs[l.ref()] = l.uuid
	}
	s.notify(l.uuid, sigCreated)
	l.takeStoredID(ev.CSTAID)
	if found && storedTakeover(l) {
		// Missed by the resync and the recheck (takeover.go).
		syncedState(l, ev)
		s.takeOver(l)
		return l
	}
	switch {
	case l.makeCall, l.swapLeg:
		// Reported by the command that created it.
	case l.dir == pbx.Incoming && l.sipID == "" && strings.HasPrefix(ev.ChanName, "sofia/"):
		l.offerPending = true
	case l.dir == pbx.Incoming:
		s.emit(pbx.Event{Kind: pbx.EventOffered, Call: l.ref(), Remote: l.remote, SIPCallID: l.sipID,
			Headers: l.offerHeaders(), CSTAID: l.cstaID})
	default:
		s.emit(pbx.Event{Kind: pbx.EventOriginated, Call: l.ref(), Remote: l.remote, SIPCallID: l.sipID,
			Headers: l.offerHeaders(), CSTAID: l.cstaID})
	}
	return l
}

func (s *callState) answered(l *leg) {
	if l.answered {
		return
	}
	l.answered = true
	s.notify(l.uuid, sigAnswered)
	switch {
	case l.makeCall:
		// The device went off-hook: it now places the call.
		s.emit(pbx.Event{Kind: pbx.EventOriginated, Call: l.ref(), Remote: l.remote, SIPCallID: l.sipID,
			Headers: l.offerHeaders(), CSTAID: l.cstaID})
	case l.swapLeg:
		// Connected once it is bridged to the caller.
	default:
		s.connected(l)
	}
}

func (s *callState) connected(l *leg) {
	if l.connected || l.swapped {
		return
	}
	l.connected = true
	s.emit(pbx.Event{Kind: pbx.EventConnected, Call: l.ref(), Remote: l.remote, SIPCallID: l.sipID, CSTAID: l.cstaID})
}

func (s *callState) bridgeEvent(l *leg, name, partner string) {
	if name == "CHANNEL_UNBRIDGE" {
		s.notify(l.uuid, sigUnbridged)
		return
	}
	if partner != "" {
		if partner != l.other {
			l.partnerGone = false
		}
		l.other = partner
	}
	if l.answered {
		s.connected(l)
	}
}

func (s *callState) heldEv(l *leg) {
	if l.held {
		return
	}
	l.held = true
	s.notify(l.uuid, sigHeld)
	if l.xferReported || l.xfer {
		return // only the end of a transferred connection is news
	}
	s.emit(pbx.Event{Kind: pbx.EventHeld, Call: l.ref(), CSTAID: l.cstaID, ByPhone: s.byPhone(l)})
}

func (s *callState) retrieved(l *leg) {
	if !l.held {
		return
	}
	l.held = false
	l.mohPending = false
	s.notify(l.uuid, sigRetrieved)
	if l.xferReported || l.xfer || l.partnerGone {
		// FreeSWITCH takes a held channel off hold when its partner hangs
		// up or uuid_bridge (uuid_transfer) moves it away, just before the
		// channel ends: a phone whose held call is ended or transferred
		// reports no unhold.
		return
	}
	s.emit(pbx.Event{Kind: pbx.EventRetrieved, Call: l.ref(), CSTAID: l.cstaID, ByPhone: s.byPhone(l)})
}

// byPhone tells a hold change the phone made from one the bridge asked for
// (HoldCall/RetrieveCall mark the channel for a short while).
func (s *callState) byPhone(l *leg) bool {
	if s.now().Before(l.bridgeHoldUntil) {
		l.bridgeHoldUntil = time.Time{}
		return false
	}
	return true
}

func (s *callState) transferredByPhone(l *leg, kind pbx.TransferKind) {
	if l.xferReported {
		return
	}
	l.xferReported = true
	s.emit(pbx.Event{Kind: pbx.EventTransferred, Call: l.ref(), CSTAID: l.cstaID, Transfer: kind, ByPhone: true})
}

func (s *callState) end(l *leg, ev chEvent) {
	if l.ended {
		return
	}
	l.ended = true
	// The auto-answer call of an answer swap stands for the connection
	// only once the swap has moved the connection to it. FreeSWITCH
	// reports the end of one the device did not answer before the
	// originate's result (which makes answerBySwap drop it): that end is
	// no end of the ringing call.
	standIn := l.swapLeg && s.refs[l.ref()] != l.uuid
	s.forget(l)
	s.notify(l.uuid, sigGone)
	if l.swapped || l.orphan && !l.answered || standIn {
		return // it never stood for a connection the core knows
	}
	cause := hangupCause(l, ev.Cause)
	switch {
	case l.xfer && !l.xferReported:
		l.xferReported = true
		s.emit(pbx.Event{Kind: pbx.EventTransferred, Call: l.ref(), CSTAID: l.cstaID, Transfer: l.xferKind})
	case !l.xferReported && l.connected && strings.HasPrefix(ev.TransferDest, "blind:"):
		// A blind REFER without fire-transfer-events: the channel only
		// says where the call went when it ends.
		l.xferReported = true
		s.emit(pbx.Event{Kind: pbx.EventTransferred, Call: l.ref(), CSTAID: l.cstaID, Transfer: pbx.TransferBlind, ByPhone: true})
	}
	if l.xferReported {
		cause = pbx.CauseTransferred
	}
	s.emit(pbx.Event{Kind: pbx.EventCleared, Call: l.ref(), CSTAID: l.cstaID, Cause: cause, Reason: ev.Cause})
}

// forget drops a channel from the tables and remembers that it is gone.
func (s *callState) forget(l *leg) {
	delete(s.legs, l.uuid)
	if s.refs[l.ref()] == l.uuid {
		delete(s.refs, l.ref())
	}
	now := s.markGone(l.uuid)
	// FreeSWITCH reports an originated channel at once; an expectation it
	// never met (the originate failed after the command gave up) is stale.
	for u, x := range s.expect {
		if now.Sub(x.expected) > time.Minute {
			delete(s.expect, u)
			if s.refs[x.ref()] == u {
				delete(s.refs, x.ref())
			}
		}
	}
}

// markGone remembers that a channel has ended, so late events and stale
// channel listings are ignored; entries older than 5 minutes are dropped,
// and so are dooms that old (their channel never showed up again).
func (s *callState) markGone(uuid string) time.Time {
	now := s.now()
	for u, t := range s.gone {
		if now.Sub(t) > 5*time.Minute {
			delete(s.gone, u)
		}
	}
	for u, d := range s.doomed {
		if now.Sub(d.at) > 5*time.Minute {
			delete(s.doomed, u)
		}
	}
	s.gone[uuid] = now
	return now
}

// doom stops tracking a channel that stands for no connection, so that it
// is hung up whenever it is seen to exist (its next event, the next
// resync or recheck) and its end is never reported. hangingUp says that
// the caller hangs it up itself in this session.
func (s *callState) doom(uuid, cause string, hangingUp bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doomLocked(uuid, cause)
	if hangingUp {
		s.doomed[uuid].asked = true
	}
}

// doomLocked is doom for a caller that holds s.mu.
func (s *callState) doomLocked(uuid, cause string) {
	if l := s.legs[uuid]; l != nil {
		delete(s.legs, uuid)
		if s.refs[l.ref()] == uuid {
			delete(s.refs, l.ref())
		}
	}
	delete(s.expect, uuid)
	if _, ok := s.doomed[uuid]; !ok {
		s.doomed[uuid] = &doom{cause: cause, at: s.now()}
	}
}

// askKill queues the hang-up of a doomed channel that exists, once per
// session; s.mu is held.
func (s *callState) askKill(uuid string) {
	d := s.doomed[uuid]
	if d == nil || d.asked {
		return
	}
	d.asked = true
	s.kills = append(s.kills, kill{uuid: uuid, cause: d.cause})
}

// takeKills returns the hang-ups asked for since the last call.
func (s *callState) takeKills() []kill {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.kills
	s.kills = nil
	return k
}

// abandonMakeCall is called when MakeCall for connection c, whose device
// channel is uuid, fails or gives up after the originate may have reached
// FreeSWITCH. The core then clears c, but FreeSWITCH may still call the
// device: when it does, the channel must not look like a call ringing at
// the extension. Unless it is known already, the channel becomes an
// orphan (see leg.orphan). It reports whether the channel is known and the
// MakeCall therefore did start after all; failed says the originate
// itself failed, so the channel, if any, is ending.
func (s *callState) abandonMakeCall(uuid string, c pbx.CallRef, failed bool) (started bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.legs[uuid]
	if l != nil && !failed {
		return true
	}
	if s.refs[c] == uuid {
		delete(s.refs, c)
	}
	if l == nil {
		l = s.expect[uuid]
	}
	if l == nil || l.answered {
		// Never reported yet, or over already; or already reported as
		// placed under c, which the core then clears itself.
		return false
	}
	l.id, l.orphan, l.staleID, l.cstaID = uuid, true, l.cstaID, 0
	if s.legs[uuid] != nil {
		s.refs[l.ref()] = uuid
	}
	return false
}

// hangupCause maps FreeSWITCH hangup causes (switch_cause_t names).
func hangupCause(l *leg, cause string) pbx.Cause {
	if l.rejected {
		return pbx.CauseRejected
	}
	if l.deflected {
		return pbx.CauseDeflected
	}
	switch cause {
	case "LOSE_RACE":
		// FreeSWITCH ends the other legs of a ring-all (bridge a,b,
		// group_call) with it when one answers: the call was completed
		// elsewhere, not missed (issue 13). AnswerCall's swap kills the
		// ringing channel it replaces with LOSE_RACE too, so that the
		// phone shows the call as completed elsewhere; that channel is
		// marked swapped and its end is never reported (end).
		if l.dir == pbx.Incoming && !l.answered {
			return pbx.CauseAnsweredElsewhere
		}
	case "ORIGINATOR_CANCEL", "PICKED_OFF":
		if l.dir == pbx.Incoming && !l.answered {
			return pbx.CauseCancelled
		}
	case "NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT":
		if !l.connected {
			return pbx.CauseNoAnswer
		}
	case "USER_BUSY":
		if l.dir == pbx.Incoming && !l.answered {
			// The device answered the offer 486 Busy Here: what a Snom's
			// reject key (and the test phone's hang-up while ringing) sends.
			// The user refused the call; it was not missed.
			return pbx.CauseRejected
		}
		return pbx.CauseBusy
	case "CALL_REJECTED":
		if l.dir == pbx.Incoming {
			return pbx.CauseRejected
		}
		return pbx.CauseBusy
	case "UNALLOCATED_NUMBER", "NO_ROUTE_DESTINATION", "NO_ROUTE_TRANSIT_NET", "USER_NOT_REGISTERED",
		"SUBSCRIBER_ABSENT", "NORMAL_TEMPORARY_FAILURE", "DESTINATION_OUT_OF_ORDER", "NETWORK_OUT_OF_ORDER",
		"SWITCH_CONGESTION", "NORMAL_CIRCUIT_CONGESTION", "INVALID_NUMBER_FORMAT", "RECOVERY_ON_TIMER_EXPIRE",
		"INCOMPATIBLE_DESTINATION", "NUMBER_CHANGED":
		if !l.connected {
			return pbx.CauseUnreachable
		}
	}
	return pbx.CauseNormal
}

// swapDone makes the new channel of an answer swap the connection c,
// answered, connected and bridged to caller, whether or not its own events
// have been seen yet (they lag the originate's result and uuid_bridge's
// +OK), so the next command on c is judged on that state; its late events
// change nothing. It reports false when the session has ended: the resync
// after the reconnect then decides (settleSwaps).
func (s *callState) swapDone(sess *session, c pbx.CallRef, id, caller string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.ctx.Err() != nil {
		return false
	}
	l := s.legs[id]
	if l == nil {
		if l = s.expect[id]; l == nil {
			// Ended (or doomed) meanwhile; its end is reported as usual.
			return true
		}
		delete(s.expect, id)
		s.legs[id] = l
		s.notify(id, sigCreated)
	}
	s.refs[c] = id
	l.other = caller
	if !l.answered {
		l.answered = true
		s.notify(id, sigAnswered)
	}
	s.connected(l)
	return true
}

// siblings reports whether caller also rings a channel of a mapped
// extension other than skip (a ring group).
func (s *callState) siblings(caller, skip string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.legs {
		if x.other == caller && x.uuid != skip && x.dir == pbx.Incoming && !x.answered && !x.swapLeg && !x.swapped {
			return true
		}
	}
	return false
}

// legView is a copy of what a command needs to know about a connection.
type legView struct {
	uuid, other, ext          string
	dir                       pbx.Direction
	answered, connected, held bool
	mohPending                bool
	talk                      bool
	presence                  string
	remote                    pbx.Party
	cstaID                    int
	dialing                   string
}

// lookup finds the current channel of a connection.
func (s *callState) lookup(c pbx.CallRef) (legView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	uuid, ok := s.refs[c]
	if !ok {
		return legView{}, pbx.ErrNoSuchCall
	}
	l := s.legs[uuid]
	if l == nil {
		// Originated by MakeCall, not reported by FreeSWITCH yet.
		return legView{}, pbx.ErrInvalidState
	}
	return legView{uuid: l.uuid, other: l.other, ext: l.ext, dir: l.dir, answered: l.answered,
		connected: l.connected, held: l.held, mohPending: l.mohPending, talk: l.talk, presence: l.presence, remote: l.remote, cstaID: l.cstaID,
		dialing: l.dialing}, nil
}

// update changes a tracked channel under the lock; it reports false when
// the channel is gone.
func (s *callState) update(uuid string, f func(l *leg)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.legs[uuid]
	if l == nil {
		return false
	}
	f(l)
	return true
}
