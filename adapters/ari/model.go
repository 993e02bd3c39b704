package ari

import (
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Channel variables the adapter stores on channels so that a restarted
// bridge finds its calls again (read back during resync).
const (
	varCSTAID = "CSTA_ID"   // the csta_id the core gave the connection
	varLeg    = "CSTA_LEG"  // "<CallRef.ID>,<in|out>": survives the leg swap of AnswerCall
	varCall   = "CSTA_CALL" // id of the owned call a Stasis channel belongs to
	varHeld   = "CSTA_HELD" // "1" on a far party the bridge holds (out of its bridge, music on hold)
)

// Stasis application arguments. The dialplan snippet passes argDial; the
// others mark channels the adapter creates itself.
const (
	argDial     = "dial"     // Stasis(app,dial,<number>): a call routed through the bridge
	argOutbound = "outbound" // a leg the adapter created and dials
	argMakeCall = "makecall" // the device leg of MakeCall
	argAnswer   = "answer"   // the auto-answer leg that replaces a ringing one
)

// channel is what the adapter knows about one Asterisk channel.
type channel struct {
	id, name   string
	endpoint   string // "PJSIP/1001" for device channels, "" otherwise
	state      string // Down, Rsrvd, OffHook, Dialing, Ring, Ringing, Up, Busy
	protocolID string
	caller     wireParty
	connected  wireParty
	exten      string       // dialplan extension when first seen (the number dialled)
	dialplan   wireDialplan // where the channel last was in the dialplan (bypass.go)
	inStasis   bool
	// stasisAt is where in the dialplan the channel last entered the
	// application; Asterisk keeps it there while the channel is in Stasis.
	stasisAt   dialplanPos
	bridge     string
	dialStatus string // last Dial status involving this channel
	peer       string // the other channel of a Dial, when known
	hangupBy   int    // cause of the channel's own hangup request
	endCause   int    // cause in ChannelDestroyed: what the channel really ended with
	leg        *leg
	// released channels leave their owned call without taking the other
	// party down (transfer, swap, continue).
	released bool
	// muted: the adapter muted the channel both ways (the second device
	// channel of a conference, see conference.go).
	muted bool
	// heldFar: read back from varHeld at a resync, for restoreCall.
	heldFar bool
	// ruled: the hangup handler that keeps the call's rule without the
	// bridge is on the channel (sweep_rule.go).
	ruled bool
}

// dialplanPos is a channel's position in the dialplan.
type dialplanPos struct {
	context, exten string
	priority       int64
}

// leg is one connection of a mapped extension (a pbx.CallRef).
type leg struct {
	ref    pbx.CallRef
	ch     *channel
	dir    pbx.Direction
	state  pbx.State // StateNull until announced
	remote pbx.Party
	cstaID int
	call   *call // owned call, nil when only observed
	heldBy bool  // PBX-side hold done by the bridge

	transferred bool
	clearCause  *pbx.Cause // set by a command that knows why the leg ends
	busy        bool       // a multi-step command (answer, hold, transfer…) is running on it
}

func (l *leg) owned() bool { return l.call != nil }

// call is a call owned through Stasis: one mixing bridge and its members.
type call struct {
	id        string
	bridge    string
	members   map[string]bool // channel ids
	answered  bool
	pending   int    // operations that will add a member (dial, swap)
	dialing   string // channel being dialled for this call
	swapIn    string // the auto-answer channel that replaces the ringing one (AnswerCall)
	destroyed bool
	conf      *conference       // set while the call shares its bridge with another (ConferenceCall)
	headers   map[string]string // SIP headers the dialplan passed for the device's INVITE (headers.go)
}

func (c *call) others(id string) []string {
	var out []string
	for m := range c.members {
		if m != id {
			out = append(out, m)
		}
	}
	return out
}

func partyOf(p wireParty) pbx.Party { return pbx.Party{Number: p.Number, Name: p.Name} }

// remoteOf works out the far party of an extension's channel: Asterisk
// keeps it in the connected line; an outgoing call shows the dialled
// number until the far end's identity arrives.
func remoteOf(ch *channel, dir pbx.Direction) pbx.Party {
	if ch.connected.Number != "" || ch.connected.Name != "" {
		return partyOf(ch.connected)
	}
	if dir == pbx.Outgoing && ch.exten != "" && ch.exten != "s" {
		return pbx.Party{Number: ch.exten}
	}
	return pbx.Party{}
}

func endpointKey(ep string) string {
	if i := strings.IndexByte(ep, '/'); i > 0 {
		return strings.ToUpper(ep[:i]) + ep[i:]
	}
	return ep
}

// recentSetSize is how many destroyed channel ids the adapter remembers to
// drop late duplicate events; duplicates arrive within milliseconds, so a
// few hundred calls of history is plenty.
const recentSetSize = 512

// recentSet remembers the last recentSetSize ids added.
type recentSet struct {
	ids  map[string]bool
	ring []string
	next int
}

func (s *recentSet) add(id string) {
	if s.ids == nil {
		s.ids = make(map[string]bool, recentSetSize)
		s.ring = make([]string, recentSetSize)
	}
	if s.ids[id] {
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.ids[id] = true
	s.next = (s.next + 1) % recentSetSize
}

func (s *recentSet) has(id string) bool { return s.ids[id] }

// remove forgets id; its slot in the ring is reused in turn.
func (s *recentSet) remove(id string) { delete(s.ids, id) }
