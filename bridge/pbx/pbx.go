// Package pbx is the contract between the bridge core and the PBX adapters
// (adapters/sim, adapters/ari, adapters/esl). It has no dependencies, so an
// adapter imports this package and nothing else of the core.
//
// The rules every adapter follows:
//
//   - A connection of an extension (its leg of a call) is named by a CallRef
//     whose ID the adapter chooses and keeps stable for the life of that
//     connection, even when the adapter swaps the PBX channel underneath
//     (answer by re-originate). For MakeCall the core chooses the ID and the
//     adapter must use it.
//   - A command returns nil only when its effect has happened on the PBX (or
//     the PBX has accepted it and will carry it out). The core then applies
//     the resulting state itself, so a confirming event that arrives later is
//     harmless: the core ignores events that do not change a call's state,
//     and EventHeld/EventRetrieved without ByPhone (the bridge's own hold,
//     which a late report could otherwise undo after the next command).
//   - When a command returns nil, the adapter's own view of the connection is
//     already the resulting state, so the next command on that connection —
//     even one sent the same millisecond — is judged on that state: an Answer
//     that swapped the PBX channel has moved the CallRef to the new channel,
//     answered and connected, and later events about the old channel are
//     ignored. A channel the adapter created itself is its own from the moment
//     it asked for it, whatever the PBX reports first.
//   - The adapter reports everything it sees as Events, including what the
//     phone does on its own (placing calls, hold, REFER transfers), and the
//     effects of its own commands the PBX does not report (PBX-side hold).
//   - After every (re)connect the adapter sends one EventSync with every live
//     call of every configured extension; the core reconciles against it.
//   - Errors wrap one of the sentinel errors below so the core can answer the
//     CTI client with the fitting CSTA error code.
package pbx

import (
	"context"
	"errors"
)

// PBX is implemented by every adapter.
type PBX interface {
	// Run connects to the PBX and delivers events until ctx is done. It owns
	// reconnection: it returns only when ctx is done (with ctx.Err()) or on a
	// configuration error it cannot recover from. It must not block start-up
	// on an unreachable PBX: it reports EventLink{Up:false} and keeps trying.
	// Sending on events may block when the core is busy; that is the only
	// back-pressure, events are never dropped.
	Run(ctx context.Context, events chan<- Event) error

	// SetExtensions replaces the set of mapped extensions. It is called once
	// before Run and again after every config reload; it must not block.
	SetExtensions(exts []Extension)

	// Answer makes the extension's alerting connection connected.
	Answer(ctx context.Context, c CallRef) error
	// Hold puts the far party of a connected call on hold (music on hold).
	Hold(ctx context.Context, c CallRef) error
	// Retrieve takes a held call back.
	Retrieve(ctx context.Context, c CallRef) error
	// ClearConnection releases the extension's connection (reject when alerting).
	ClearConnection(ctx context.Context, c CallRef) error
	// ClearCall releases every connection of the call.
	ClearCall(ctx context.Context, c CallRef) error
	// SingleStepTransfer moves the far party of c to destination (a number or
	// a SIP URI as the CTI client wrote it) and releases the extension's leg.
	SingleStepTransfer(ctx context.Context, c CallRef, destination string) error
	// Transfer connects the far parties of held and active (two calls of the
	// same extension) and releases the extension's two legs.
	Transfer(ctx context.Context, held, active CallRef) error
	// MakeCall calls the extension's device first (auto-answered when
	// req.AutoAnswer), then the destination. Events for the new connection
	// use req.Call as their CallRef.
	MakeCall(ctx context.Context, req MakeCallRequest) error
}

// Tagger is implemented by adapters that can store the csta_id on the PBX
// channel, so that a restarted bridge gets the same ids back in EventSync.
// The core calls it after it numbers a call; failures are only logged.
type Tagger interface {
	TagCall(ctx context.Context, c CallRef, cstaID int) error
}

// DTMFSender is implemented by adapters that can send DTMF on a call.
type DTMFSender interface {
	SendDTMF(ctx context.Context, c CallRef, digits string) error
}

// Deflector is implemented by adapters that can send a ringing call
// somewhere else without answering it (CSTA DeflectCall): the caller goes
// on to destination (a number or URI as the core cleaned it) as if it had
// dialled it, and the extension's connection ends with CauseDeflected (no
// missed call).
type Deflector interface {
	Deflect(ctx context.Context, c CallRef, destination string) error
}

// Conferencer is implemented by adapters that can join two calls of an
// extension into one three-party call (CSTA ConferenceCall). held is the
// extension's held call, active its connected (or still ringing) one; on
// success both connections are connected and every party hears the other
// two. While they are conferenced:
//   - ClearConnection of one of them drops that far party only; the
//     extension talks on with the other;
//   - Transfer of the two is the extension leaving: the two far parties
//     talk on without it (a Snom's transfer on hang-up);
//   - a far party that hangs up ends its connection only.
type Conferencer interface {
	Conference(ctx context.Context, held, active CallRef) error
}

// Extension is what an adapter knows about one mapped extension.
type Extension struct {
	Name              string   // extension number, e.g. "1001"; also the Snom identity's user name
	Endpoint          string   // "PJSIP/1001" (ari), "user/1001" (esl), any name (sim)
	Domain            string   // SIP domain used for URIs
	DisplayName       string   // caller-id name of the extension
	AutoAnswerHeaders []string // "Name: value" SIP headers that make the device answer by itself
	Node              string   // clusters: the PBX node the extension is pinned to (`node:`); "" = learned
}

// CallRef names one connection: an extension's leg of a call.
type CallRef struct {
	Ext string // extension name
	ID  string // adapter-chosen (core-chosen for MakeCall), stable for the connection's life
}

func (c CallRef) String() string { return c.Ext + "/" + c.ID }

// Party is the far party as the PBX reports it.
type Party struct {
	Number string // user part: "1002", "+4930123456"
	Name   string // display name, may be empty
	URI    string // full SIP URI when the PBX knows it; the core builds sip:Number@domain otherwise
}

// MakeCallRequest is the argument of PBX.MakeCall.
type MakeCallRequest struct {
	Call        CallRef // chosen by the core
	CSTAID      int     // the csta_id the core gave the call (store it like Tagger does)
	Destination string  // number or URI to call, as cleaned by the core
	AutoAnswer  bool    // true for autoOriginate=doNotPrompt (the Snom default)
}

// EventKind says what happened.
type EventKind uint8

const (
	_ EventKind = iota
	// EventOffered: a call rings at the extension (ECMA-269 Delivered,
	// local connection state alerting). Snom: action_incoming_url.
	EventOffered
	// EventOriginated: the extension's device places a call, by itself or as
	// the first step of MakeCall (state initiated). Snom: action_outgoing_url.
	EventOriginated
	// EventConnected: the call is established (answered on either side).
	EventConnected
	// EventHeld / EventRetrieved: the call was put on hold / taken back, by the
	// phone itself or by the bridge.
	EventHeld
	EventRetrieved
	// EventTransferred: the extension transferred this call away (Transfer
	// says how). An EventCleared for the same CallRef follows or is implied.
	EventTransferred
	// EventCleared: the extension's connection is gone (Cause says why).
	EventCleared
	// EventPartyChanged: the far party changed (after a transfer elsewhere).
	EventPartyChanged
	// EventSync: the full list of live calls after a (re)connect (Calls).
	EventSync
	// EventLink: the PBX connection went up or down (Up, Detail).
	EventLink
	// EventDevice: the extension's device registered or unregistered (Registered).
	EventDevice
)

var kindNames = [...]string{"", "offered", "originated", "connected", "held", "retrieved",
	"transferred", "cleared", "party-changed", "sync", "link", "device"}

func (k EventKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Cause says why a connection was cleared.
type Cause uint8

const (
	CauseNormal      Cause = iota // hung up after being connected, or unspecified
	CauseCancelled                // the caller gave up before answer (missed call)
	CauseNoAnswer                 // ring timeout (missed call)
	CauseBusy                     // the far party was busy
	CauseRejected                 // the extension rejected the offered call
	CauseUnreachable              // destination unknown, unregistered, congested
	CauseTransferred              // the call was transferred away
	CauseVanished                 // the call was not in the PBX's list after a reconnect
	CauseDeflected                // the ringing call was sent elsewhere (DeflectCall): not missed
	// CauseAnsweredElsewhere: another phone of a ring-all (queue, ring
	// group) took the ringing call. A Snom lists a call "completed
	// elsewhere" nowhere and fires no URL for it: not missed.
	CauseAnsweredElsewhere
)

var causeNames = [...]string{"normal", "cancelled", "no-answer", "busy", "rejected", "unreachable",
	"transferred", "vanished", "deflected", "answered-elsewhere"}

func (c Cause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "unknown"
}

// TransferKind tells EventTransferred apart.
type TransferKind uint8

const (
	TransferBlind    TransferKind = iota // single step: action_blind_transfer
	TransferAttended                     // consultation: action_attended_transfer
)

// State is a connection's ECMA-269 local connection state, as used in EventSync.
type State uint8

const (
	StateNull      State = iota // no connection (not used in events)
	StateInitiated              // the extension is placing the call, far party not answered yet
	StateAlerting               // the call rings at the extension
	StateConnected
	StateHeld
)

var stateNames = [...]string{"null", "initiated", "alerting", "connected", "held"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Direction of a call as seen from the extension.
type Direction uint8

const (
	Incoming Direction = iota
	Outgoing
)

// Event is one normalized PBX event. Which fields are set depends on Kind.
type Event struct {
	Kind EventKind
	Call CallRef // every kind but EventSync, EventLink; EventDevice uses Call.Ext only

	Remote    Party             // Offered, Originated, Connected, PartyChanged (when known)
	SIPCallID string            // SIP Call-ID of the extension's leg when known ($call-id)
	Headers   map[string]string // SIP headers of the first INVITE ($sip_header(NAME)), canonical names
	CSTAID    int               // csta_id stored on the PBX channel, 0 when none
	Cause     Cause             // Cleared
	Reason    string            // Cleared: PBX's cause text ($cancel_reason); Link: why it went down
	Transfer  TransferKind      // Transferred
	ByPhone   bool              // Held/Retrieved/Transferred: the phone did it, not the bridge

	Calls []CallInfo // Sync: every live call of every extension the adapter maps

	Up         bool // Link
	Registered bool // Device
}

// CallInfo is one live connection in EventSync.
type CallInfo struct {
	Call      CallRef
	State     State
	Direction Direction
	Remote    Party
	SIPCallID string
	CSTAID    int // stored csta_id, 0 when none
}

// Sentinel errors. Adapters wrap them (fmt.Errorf("ari: hold %s: %w", c, pbx.ErrInvalidState));
// the core turns them into CSTA error codes.
var (
	ErrNoSuchCall         = errors.New("no such call")                // the connection is gone at the PBX
	ErrInvalidState       = errors.New("call is in the wrong state")  // e.g. answer a connected call
	ErrNotSupported       = errors.New("not supported for this call") // e.g. hold on a non-Stasis ARI call
	ErrInvalidDestination = errors.New("invalid destination")         // unknown number, bad URI
	ErrUnavailable        = errors.New("PBX not connected")           // link down, or the PBX refused for load
	ErrDeviceUnreachable  = errors.New("device unreachable")          // the extension's device is not registered / did not answer
)
