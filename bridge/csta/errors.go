package csta

// ErrorCode is the ECMA-269 error value a fault carries. ECMA-323 sorts the
// values into categories (operation, stateIncompatibility,
// systemResourceAvailibility, ...), but a Snom phone writes every code into
// <operation> and CTI software written for it reads it from there, so the
// encoder does the same for all of them. Spellings are the XSD's, exactly.
type ErrorCode string

// Operation errors.
const (
	Generic                       ErrorCode = "generic"
	InvalidParameterValue         ErrorCode = "invalidParameterValue"
	InvalidConnectionID           ErrorCode = "invalidConnectionID"
	InvalidCallID                 ErrorCode = "invalidCallID"
	InvalidDeviceID               ErrorCode = "invalidDeviceID"
	InvalidCallingDeviceID        ErrorCode = "invalidCallingDeviceID"
	InvalidCalledDeviceID         ErrorCode = "invalidCalledDeviceID"
	InvalidDestination            ErrorCode = "invalidDestination"
	InvalidHeldCallID             ErrorCode = "invalidHeldCallID"
	InvalidActiveCallID           ErrorCode = "invalidActiveCallID"
	InvalidHeldConnectionID       ErrorCode = "invalidHeldConnectionID"
	InvalidActiveConnectionID     ErrorCode = "invalidActiveConnectionID"
	ObjectNotKnown                ErrorCode = "objectNotKnown"
	NotDifferentDevices           ErrorCode = "notDifferentDevices"
	RequestIncompatibleWithObject ErrorCode = "requestIncompatibleWithObject"
	ServiceNotSupported           ErrorCode = "serviceNotSupported"
	ParameterNotSupported         ErrorCode = "parameterNotSupported"
	ValueOutOfRange               ErrorCode = "valueOutOfRange"
	InvalidDoNotDisturb           ErrorCode = "invalidDoNotDisturb"
	InvalidForwardingDestination  ErrorCode = "invalidForwardingDestination"
	InvalidForwardingFlag         ErrorCode = "invalidForwardingFlag"
	InvalidForwardingType         ErrorCode = "invalidForwardingType"
	InvalidRingCount              ErrorCode = "invalidRingCount"
)

// State incompatibility errors.
const (
	InvalidObjectState           ErrorCode = "invalidObjectState"
	InvalidDeviceState           ErrorCode = "invalidDeviceState"
	InvalidConnectionState       ErrorCode = "invalidConnectionState"
	InvalidActiveConnectionState ErrorCode = "invalidActiveConnectionState"
	InvalidHeldConnectionState   ErrorCode = "invalidHeldConnectionState"
	ConnectedCallExists          ErrorCode = "connectedCallExists"
	NoActiveCall                 ErrorCode = "noActiveCall"
	NoHeldCall                   ErrorCode = "noHeldCall"
	NoCallToAnswer               ErrorCode = "noCallToAnswer"
	NoCallToClear                ErrorCode = "noCallToClear"
	NoConnectionToClear          ErrorCode = "noConnectionToClear"
)

// System resource availability errors.
const (
	ResourceBusy              ErrorCode = "resourceBusy"
	ResourceOutOfService      ErrorCode = "resourceOutOfService"
	NetworkBusy               ErrorCode = "networkBusy"
	NetworkOutOfService       ErrorCode = "networkOutOfService"
	DeviceOutOfService        ErrorCode = "deviceOutOfService"
	CallingDeviceOutOfService ErrorCode = "callingDeviceOutOfService"
	CalledDeviceOutOfService  ErrorCode = "calledDeviceOutOfService"
)

// Error is a CSTA negative response: Code goes to the client as the
// ECMA-269 value, Message is human text for logs and for the XML comment
// that accompanies the code in the fault.
type Error struct {
	Code    ErrorCode
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "csta: " + string(e.Code)
	}
	return "csta: " + string(e.Code) + ": " + e.Message
}

func errorf(code ErrorCode, msg string) *Error {
	return &Error{Code: code, Message: msg}
}
