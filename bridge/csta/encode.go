package csta

import "unicode/utf8"

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
