package csta

import (
	"strconv"
	"unicode/utf8"
)

const (
	nsSOAP = "http://schemas.xmlsoap.org/soap/envelope/"
	nsED4  = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
	nsED5  = "http://www.ecma-international.org/standards/ecma-323/csta/ed5"

	xmlDecl = `<?xml version="1.0" encoding="UTF-8"?>` + "\r\n"

	// The envelope of Snom's C code, with the space it lacks between the
	// two namespace declarations.
	envHead = xmlDecl +
		`<SOAP-ENV:Envelope xmlns:SOAP-ENV="` + nsSOAP + `" xmlns:csta="` + nsED4 + `">` + "\r\n" +
		" <SOAP-ENV:Body>\r\n"
	envTail = " </SOAP-ENV:Body>\r\n" +
		"</SOAP-ENV:Envelope>\r\n"

	faultHead = envHead +
		" <SOAP-ENV:Fault>\r\n" +
		" <SOAP-ENV:faultcode>Client</SOAP-ENV:faultcode>\r\n" +
		" <SOAP-ENV:faultstring>CSTA Error</SOAP-ENV:faultstring>\r\n" +
		" <SOAP-ENV:detail>\r\n" +
		` <csta:CSTAErrorCode xmlns:csta="` + nsED4 + `">` + "\r\n" +
		" <csta:operation>"
	faultMid = "</csta:operation>\r\n" +
		" </csta:CSTAErrorCode>\r\n"
	faultTail = " </SOAP-ENV:detail>\r\n" +
		" </SOAP-ENV:Fault>\r\n" +
		envTail

	// The bare form Snom firmware 8.7 answers bare requests with.
	bareFaultHead = xmlDecl + `<CSTAErrorCode xmlns="` + nsED5 + `"><operation>`
)

// EncodeResponse returns the positive response to req: SOAP-enveloped
// exactly like a Snom phone's if req.Envelope, else a bare ed5 document. Of
// res only the part that belongs to req.Service is written.
func EncodeResponse(req *Request, res Result) []byte {
	env := true
	name := "Unknown"
	if req != nil {
		env = req.Envelope
		if isName(string(req.Service)) {
			name = string(req.Service)
		}
	}
	name += "Response"

	prefix, lineStart, lineEnd := "", "", ""
	if env {
		prefix, lineStart, lineEnd = "csta:", " ", "\r\n"
	}
	var content []byte
	if req != nil {
		switch req.Service {
		case MakeCall:
			content = appendConn(content, prefix, "callingDevice", res.CallingDevice)
		case SingleStepTransferCall, TransferCall:
			content = appendConn(content, prefix, "transferredCall", res.TransferredCall)
		case RequestSystemStatus:
			status := res.SystemStatus
			if status == "" {
				status = "normal"
			}
			content = appendElem(content, prefix, "systemStatus", status)
		case ConsultationCall:
			content = appendConn(content, prefix, "initiatedCall", res.InitiatedCall)
		case ConferenceCall:
			content = appendConn(content, prefix, "conferenceCall", res.ConferenceCall)
		case SnapshotDevice:
			content = appendSnapshotDevice(content, prefix, res.Connections)
		case SnapshotCall:
			content = appendSnapshotCall(content, prefix, res.Connections)
		case GetSwitchingFunctionDevices:
			content = appendDevices(content, prefix, res.Devices)
		case GetDoNotDisturb:
			content = appendElem(content, prefix, "doNotDisturbOn", strconv.FormatBool(res.DoNotDisturbOn))
		case GetForwarding:
			content = appendForwarding(content, prefix, res.Forwarding)
		}
	}

	b := make([]byte, 0, len(envHead)+len(envTail)+2*len(name)+len(content)+32)
	if env {
		b = append(b, envHead...)
		b = append(b, " <csta:"...)
		b = append(b, name...)
		b = append(b, ">\r\n"...)
	} else {
		b = append(b, xmlDecl...)
		b = append(b, '<')
		b = append(b, name...)
		b = append(b, ` xmlns="`+nsED5+`">`...)
	}
	if len(content) > 0 {
		b = append(b, lineStart...)
		b = append(b, content...)
		b = append(b, lineEnd...)
	}
	if env {
		b = append(b, " </csta:"...)
		b = append(b, name...)
		b = append(b, ">\r\n"...)
		b = append(b, envTail...)
	} else {
		b = append(b, "</"...)
		b = append(b, name...)
		b = append(b, ">\r\n"...)
	}
	return b
}

// EncodeFault returns the negative response carrying e.Code: the SOAP fault
// of Snom's C code if envelope, else a bare ed5 CSTAErrorCode. e.Message, if
// any, follows the code as an XML comment. A nil e or an empty Code is sent
// as generic.
func EncodeFault(envelope bool, e *Error) []byte {
	code, msg := Generic, ""
	if e != nil {
		msg = e.Message
		if e.Code != "" {
			code = e.Code
		}
	}
	b := make([]byte, 0, len(faultHead)+len(faultMid)+len(faultTail)+len(code)+len(msg)+32)
	if envelope {
		b = append(b, faultHead...)
		b = appendText(b, string(code))
		b = append(b, faultMid...)
		if msg != "" {
			b = append(b, ' ')
			b = appendComment(b, msg)
			b = append(b, "\r\n"...)
		}
		return append(b, faultTail...)
	}
	b = append(b, bareFaultHead...)
	b = appendText(b, string(code))
	b = append(b, "</operation>"...)
	if msg != "" {
		b = appendComment(b, msg)
	}
	return append(b, "</CSTAErrorCode>\r\n"...)
}

func appendElem(b []byte, prefix, name, text string) []byte {
	b = append(b, '<')
	b = append(b, prefix...)
	b = append(b, name...)
	b = append(b, '>')
	b = appendText(b, text)
	b = append(b, "</"...)
	b = append(b, prefix...)
	b = append(b, name...)
	return append(b, '>')
}

// appendConn writes a ConnectionID in the schema's child form; a nil c
// writes nothing.
func appendConn(b []byte, prefix, name string, c *ConnectionID) []byte {
	if c == nil {
		return b
	}
	b = append(b, '<')
	b = append(b, prefix...)
	b = append(b, name...)
	b = append(b, '>')
	if c.CallID != "" {
		b = appendElem(b, prefix, "callID", c.CallID)
	}
	if c.DeviceID != "" {
		b = appendElem(b, prefix, "deviceID", c.DeviceID)
	}
	b = append(b, "</"...)
	b = append(b, prefix...)
	b = append(b, name...)
	return append(b, '>')
}

func appendOpen(b []byte, prefix, name string) []byte {
	b = append(b, '<')
	b = append(b, prefix...)
	b = append(b, name...)
	return append(b, '>')
}

func appendClose(b []byte, prefix, name string) []byte {
	b = append(b, "</"...)
	b = append(b, prefix...)
	b = append(b, name...)
	return append(b, '>')
}

func appendEmpty(b []byte, prefix, name string) []byte {
	b = append(b, '<')
	b = append(b, prefix...)
	b = append(b, name...)
	return append(b, "/>"...)
}

// appendSnapshotDevice writes SnapshotDeviceResponse's content as Snom
// does: the snapshot itself (never a serviceCrossRefID for data to come),
// each connection's state as a compoundCallState of one
// localConnectionState. An entry without a State gets the CallState
// choice "unknown" rather than an empty, schema-invalid state.
func appendSnapshotDevice(b []byte, prefix string, entries []SnapshotEntry) []byte {
	b = appendOpen(b, prefix, "crossRefIDorSnapshotData")
	b = appendOpen(b, prefix, "snapshotData")
	for i := range entries {
		e := &entries[i]
		b = appendOpen(b, prefix, "snapshotDeviceResponseInfo")
		b = appendConn(b, prefix, "connectionIdentifier", &e.Conn)
		b = appendOpen(b, prefix, "localCallState")
		if e.State == "" {
			b = appendEmpty(b, prefix, "unknown")
		} else {
			b = appendOpen(b, prefix, "compoundCallState")
			b = appendElem(b, prefix, "localConnectionState", e.State)
			b = appendClose(b, prefix, "compoundCallState")
		}
		b = appendClose(b, prefix, "localCallState")
		b = appendClose(b, prefix, "snapshotDeviceResponseInfo")
	}
	b = appendClose(b, prefix, "snapshotData")
	return appendClose(b, prefix, "crossRefIDorSnapshotData")
}

// appendSnapshotCall writes SnapshotCallResponse's content: one
// snapshotCallResponseInfo per party. callIdentifier and
// localConnectionState are optional in ECMA-323 and left out when unknown
// (a far party the bridge has no connection id for); a party without a
// device is <notKnown/>, the standard's word for it.
func appendSnapshotCall(b []byte, prefix string, entries []SnapshotEntry) []byte {
	b = appendOpen(b, prefix, "crossRefIDorSnapshotData")
	b = appendOpen(b, prefix, "snapshotData")
	for i := range entries {
		e := &entries[i]
		b = appendOpen(b, prefix, "snapshotCallResponseInfo")
		b = appendOpen(b, prefix, "deviceOnCall")
		if e.Device == "" {
			b = appendEmpty(b, prefix, "notKnown")
		} else {
			b = appendElem(b, prefix, "deviceIdentifier", e.Device)
		}
		b = appendClose(b, prefix, "deviceOnCall")
		if e.Conn != (ConnectionID{}) {
			b = appendConn(b, prefix, "callIdentifier", &e.Conn)
		}
		if e.State != "" {
			b = appendElem(b, prefix, "localConnectionState", e.State)
		}
		b = appendClose(b, prefix, "snapshotCallResponseInfo")
	}
	b = appendClose(b, prefix, "snapshotData")
	return appendClose(b, prefix, "crossRefIDorSnapshotData")
}

// appendDevices writes GetSwitchingFunctionDevicesResponse's content.
//
// Standard (ECMA-269 §13.1.5/§13.1.6, ECMA-285 modules
// get-switching-function-devices and switching-function-devices): the
// response carries only a serviceCrossRefID; the devices follow in
// separate SwitchingFunctionDevices messages (serviceCrossRefID,
// segmentID, lastSegment, deviceList: a sequence of deviceID,
// deviceCategory default station, ...).
//
// HTTP adaptation: a request/response endpoint has no way to send those
// later messages, so the bridge appends the one deviceList they would
// carry to the response itself, in SwitchingFunctionDevices' shape (each
// entry a <device>, as Yealink's copy of Snom's /csta names it), and the
// serviceCrossRefID is a constant "1": nothing will ever refer to it.
// A client that knows only the standard response reads the cross
// reference and ignores the list.
func appendDevices(b []byte, prefix string, devices []string) []byte {
	b = appendElem(b, prefix, "serviceCrossRefID", "1")
	b = appendOpen(b, prefix, "deviceList")
	for _, d := range devices {
		b = appendOpen(b, prefix, "device")
		b = appendElem(b, prefix, "deviceID", d)
		b = appendElem(b, prefix, "deviceCategory", "station")
		b = appendClose(b, prefix, "device")
	}
	return appendClose(b, prefix, "deviceList")
}

// appendForwarding writes GetForwardingResponse's forwardingList
// (ECMA-323 ed5: forwardListItem = forwardingType, forwardStatus,
// forwardDN?, ringCount?).
func appendForwarding(b []byte, prefix string, items []ForwardItem) []byte {
	b = appendOpen(b, prefix, "forwardingList")
	for _, it := range items {
		b = appendOpen(b, prefix, "forwardListItem")
		b = appendElem(b, prefix, "forwardingType", it.Type)
		b = appendElem(b, prefix, "forwardStatus", strconv.FormatBool(it.On))
		if it.DN != "" {
			b = appendElem(b, prefix, "forwardDN", it.DN)
		}
		if it.RingCount > 0 {
			b = appendElem(b, prefix, "ringCount", strconv.Itoa(it.RingCount))
		}
		b = appendClose(b, prefix, "forwardListItem")
	}
	return appendClose(b, prefix, "forwardingList")
}

// appendText writes s as XML character data. Bytes that are not UTF-8 and
// characters XML does not allow become U+FFFD, so the output stays
// well-formed whatever the caller passes.
func appendText(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '&':
			b = append(b, "&amp;"...)
		case r == '<':
			b = append(b, "&lt;"...)
		case r == '>':
			b = append(b, "&gt;"...)
		case r == '\r':
			b = append(b, "&#xD;"...)
		case r == utf8.RuneError && n == 1, !isXMLChar(r):
			b = append(b, "\uFFFD"...)
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

// maxComment bounds the message echoed to the client.
const maxComment = 256

// appendComment writes msg as one XML comment on one line. XML comments
// have no escapes, so "--" is broken up with a space and the text is padded
// so that it can neither end in "-" nor run into the closing "-->".
func appendComment(b []byte, msg string) []byte {
	b = append(b, "<!-- "...)
	prevDash := false
	for i := 0; i < len(msg); {
		r, n := utf8.DecodeRuneInString(msg[i:])
		if i >= maxComment {
			b = append(b, "…"...)
			break
		}
		switch {
		case r == '-':
			if prevDash {
				b = append(b, ' ')
			}
			b = append(b, '-')
		case r == '\t' || r == '\n' || r == '\r':
			b = append(b, ' ')
		case r == utf8.RuneError && n == 1, !isXMLChar(r), r < 0x20, r >= 0x7F && r <= 0x9F:
			b = append(b, "\uFFFD"...)
		default:
			b = append(b, msg[i:i+n]...)
		}
		prevDash = r == '-'
		i += n
	}
	return append(b, " -->"...)
}

// isXMLChar reports whether r is allowed in an XML 1.0 document.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// isName reports whether s is a plain ASCII XML name, as every service is.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}
