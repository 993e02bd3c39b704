// Package csta is the ECMA-323 (CSTA XML) codec of the Snom-compatible
// /csta endpoint. It is pure: Decode turns a request body into a typed
// Request, EncodeResponse and EncodeFault turn the outcome into the bytes a
// Snom phone would send. It knows nothing about HTTP or the PBX.
//
// Decoding is as forgiving as a phone: the templates of Snom's CSTA page are
// accepted byte for byte (including the missing space before xmlns:csta),
// with or without a SOAP 1.1/1.2 envelope, with any prefix or a default
// namespace, in any ECMA-323 namespace edition or none, elements matched on
// their local names, ConnectionIDs as bare text or as callID/deviceID
// children. Anything hostile (malformed XML, DTDs, deep nesting, oversized
// values, bad encodings) is answered with an *Error, never a panic.
//
// Decode has two paths. The plain shape every CTI client sends (ASCII, no
// entities, comments, CDATA or DTD) is read in one pass over the bytes
// (fastdecode.go); everything else, and every error, goes through
// encoding/xml (decode.go), which alone decides what is rejected and why.
// FuzzDecode checks the two agree wherever the first one answers.
//
// Encoding follows the phone: a request that came in a SOAP envelope gets the
// envelope of Snom's C code (ed4 namespace, CRLF line ends), a bare request
// gets a bare ed5 document as Snom firmware 8.7 sends it.
package csta

// Service names a CSTA request by the local name of its element.
type Service string

// The services the bridge understands. The first eight are the ones Snom's
// CSTA page lists; RequestSystemStatus is answered by Snom firmware >= 8.7
// and costs nothing to support.
const (
	AnswerCall             Service = "AnswerCall"
	ClearCall              Service = "ClearCall"
	ClearConnection        Service = "ClearConnection"
	HoldCall               Service = "HoldCall"
	RetrieveCall           Service = "RetrieveCall"
	SingleStepTransferCall Service = "SingleStepTransferCall"
	TransferCall           Service = "TransferCall"
	MakeCall               Service = "MakeCall"
	RequestSystemStatus    Service = "RequestSystemStatus"

	// The services Snom firmware 8.7.3+ (and Yealink's copy of Snom's
	// /csta) add.
	SnapshotDevice              Service = "SnapshotDevice"
	SnapshotCall                Service = "SnapshotCall"
	GetSwitchingFunctionDevices Service = "GetSwitchingFunctionDevices"
	ConsultationCall            Service = "ConsultationCall"
	AlternateCall               Service = "AlternateCall"
	ReconnectCall               Service = "ReconnectCall"
	ConferenceCall              Service = "ConferenceCall"
	DeflectCall                 Service = "DeflectCall"
	GenerateDigits              Service = "GenerateDigits"

	// The phone's own features, Snom firmware 8.7.4+: do-not-disturb and
	// call forwarding (ECMA-269 §22.2.7/§22.2.8, §22.1.7/§22.1.8).
	SetDoNotDisturb Service = "SetDoNotDisturb"
	GetDoNotDisturb Service = "GetDoNotDisturb"
	SetForwarding   Service = "SetForwarding"
	GetForwarding   Service = "GetForwarding"
)

// The ECMA-269 forwarding types a phone keeps (ForwardingType); the
// standard's others (forwardDND, forwardBusyInt, …) have no Snom setting.
const (
	ForwardImmediate = "forwardImmediate"
	ForwardBusy      = "forwardBusy"
	ForwardNoAns     = "forwardNoAns"
)

// ConnectionID is a CSTA connection as the client sent it. CallID is the
// trimmed text of the callID child, or of the element itself when the client
// used the bare-text form (<callToBeAnswered>-18</callToBeAnswered>); the
// core parses it. DeviceID is the trimmed deviceID child, "" if absent.
// At least one of the two is non-empty in a decoded request.
type ConnectionID struct {
	CallID   string
	DeviceID string
}

// Request is a decoded CSTA request.
type Request struct {
	Service Service

	// Envelope reports that the request came in a SOAP envelope; the reply
	// must then be enveloped too. false means a bare CSTA body.
	Envelope bool

	// Namespace is the namespace URI of the request element ("" if none),
	// for logging: the reply's namespace is fixed by the envelope style.
	Namespace string

	// Conn is the one ConnectionID of AnswerCall (callToBeAnswered),
	// ClearCall (callToBeCleared), ClearConnection (connectionToBeCleared),
	// HoldCall (callToBeHeld), RetrieveCall (callToBeRetrieved),
	// SingleStepTransferCall (activeCall), ConsultationCall (existingCall),
	// DeflectCall (callToBeDiverted), GenerateDigits
	// (connectionToSendDigits) and SnapshotCall (snapshotObject).
	Conn ConnectionID

	// Held and Active are the heldCall and activeCall of TransferCall,
	// AlternateCall, ReconnectCall and ConferenceCall.
	Held, Active ConnectionID

	// Device is SnapshotDevice's snapshotObject,
	// GetSwitchingFunctionDevices' optional requestedDeviceID and the
	// device of the four feature services.
	Device string

	// DoNotDisturbOn is SetDoNotDisturb's doNotDisturbOn: "true" or "false".
	DoNotDisturbOn string

	// ForwardingType, ForwardDN, ActivateForward and RingCount are
	// SetForwarding's forwardingType, forwardDN (optional: not needed to
	// switch forwarding off), activateForward ("true"/"false") and
	// optional ringCount (1..100), as sent.
	ForwardingType, ForwardDN, ActivateForward, RingCount string

	// Digits is GenerateDigits' charactersToSend.
	Digits string

	// CallingDevice and Called are MakeCall's callingDevice and
	// calledDirectoryNumber. An empty CallingDevice is valid: it means the
	// phone's active identity, i.e. the extension itself. Called is also
	// ConsultationCall's consultedDevice and DeflectCall's newDestination.
	CallingDevice, Called string

	// TransferredTo is SingleStepTransferCall's transferredTo.
	TransferredTo string

	// AutoOriginate is MakeCall's autoOriginate: "prompt", "doNotPrompt",
	// or "" when absent (ECMA-323's default is prompt).
	AutoOriginate string
}

// Result is the content of a positive response; its zero value is the empty
// response every service but MakeCall and the two transfers gets.
type Result struct {
	// CallingDevice is MakeCallResponse's callingDevice: the new call as
	// seen at the calling device.
	CallingDevice *ConnectionID

	// TransferredCall is the transferredCall of SingleStepTransferCallResponse
	// and TransferCallResponse.
	TransferredCall *ConnectionID

	// SystemStatus is RequestSystemStatusResponse's systemStatus; "" is sent
	// as "normal", the only value a phone ever reports.
	SystemStatus string

	// InitiatedCall is ConsultationCallResponse's initiatedCall: the new
	// consultation call.
	InitiatedCall *ConnectionID

	// ConferenceCall is ConferenceCallResponse's conferenceCall; its CallID
	// joins the two calls' ids with "|" ("-3|4") as Snom and Yealink
	// phones do, which ClearConnection takes back.
	ConferenceCall *ConnectionID

	// Connections are SnapshotDeviceResponse's snapshotDeviceResponseInfo
	// entries (one per connection of the device) or
	// SnapshotCallResponse's snapshotCallResponseInfo entries (one per
	// party of the call); empty for a device without calls.
	Connections []SnapshotEntry

	// Devices is GetSwitchingFunctionDevicesResponse's list: the phone's
	// identities (its SIP URI).
	Devices []string

	// DoNotDisturbOn is GetDoNotDisturbResponse's doNotDisturbOn.
	DoNotDisturbOn bool

	// Forwarding is GetForwardingResponse's forwardingList: one
	// forwardListItem per forwarding type the phone has.
	Forwarding []ForwardItem
}

// ForwardItem is one forwardListItem of GetForwardingResponse.
type ForwardItem struct {
	Type      string // forwardImmediate, forwardBusy, forwardNoAns
	On        bool   // forwardStatus
	DN        string // forwardDN, left out when empty
	RingCount int    // ringCount, left out when 0 (forwardNoAns only)
}

// SnapshotEntry is one connection in a snapshot.
type SnapshotEntry struct {
	// Conn is the connectionIdentifier (SnapshotDevice) or callIdentifier
	// (SnapshotCall).
	Conn ConnectionID
	// Device is the party's deviceOnCall (SnapshotCall only).
	Device string
	// State is the ECMA-269 local connection state: null, initiated,
	// alerting, connected, hold, queued, fail.
	State string
}

// MaxBodySize is the largest request body Decode accepts. It matches what a
// phone's web server takes; the HTTP layer should cap reads at the same size.
const MaxBodySize = 64 << 10

// Limits that keep hostile input cheap. maxDepth counts element nesting from
// the document element (a SOAP request needs 4); maxValueLen bounds the text
// of one value the decoder keeps (call ids, SIP URIs, numbers).
const (
	maxDepth    = 64
	maxValueLen = 1024
)
