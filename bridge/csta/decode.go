package csta

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// field describes one child of a request element the bridge reads. code is
// the error when the field is missing (unless optional), repeated, empty
// (unless emptyOK) or its value is unusable; check, if set, vets a text
// field's non-empty value and returns why it is unusable ("" = fine).
type field struct {
	name     string
	conn     func(*Request) *ConnectionID // a ConnectionID-typed field
	text     func(*Request) *string       // a DeviceID or enumeration field
	code     ErrorCode
	optional bool
	emptyOK  bool
	check    func(string) string
}

func connField(name string, at func(*Request) *ConnectionID) field {
	return field{name: name, conn: at, code: InvalidConnectionID}
}

func conn(r *Request) *ConnectionID   { return &r.Conn }
func held(r *Request) *ConnectionID   { return &r.Held }
func active(r *Request) *ConnectionID { return &r.Active }

func called(r *Request) *string { return &r.Called }
func device(r *Request) *string { return &r.Device }

// services lists, per request element, the children the bridge needs.
// Every other child (correlatorData, userData, extensions, ...) is ignored.
var services = map[string][]field{
	string(AnswerCall):      {connField("callToBeAnswered", conn)},
	string(ClearCall):       {connField("callToBeCleared", conn)},
	string(ClearConnection): {connField("connectionToBeCleared", conn)},
	string(HoldCall):        {connField("callToBeHeld", conn)},
	string(RetrieveCall):    {connField("callToBeRetrieved", conn)},
	string(SingleStepTransferCall): {
		connField("activeCall", conn),
		{name: "transferredTo", text: func(r *Request) *string { return &r.TransferredTo }, code: InvalidCalledDeviceID},
	},
	string(TransferCall): {connField("heldCall", held), connField("activeCall", active)},
	string(MakeCall): {
		// An empty callingDevice selects the phone's active identity.
		{name: "callingDevice", text: func(r *Request) *string { return &r.CallingDevice }, code: InvalidParameterValue, emptyOK: true},
		{name: "calledDirectoryNumber", text: called, code: InvalidCalledDeviceID},
		{name: "autoOriginate", text: func(r *Request) *string { return &r.AutoOriginate }, code: InvalidParameterValue, optional: true, emptyOK: true},
	},
	string(RequestSystemStatus): nil,

	// The services of Snom firmware 8.7.3+. ConnectionIDs are taken as sent:
	// a conference's "-3|4" is split by the core, not here.
	string(SnapshotDevice): {
		{name: "snapshotObject", text: device, code: InvalidDeviceID},
	},
	string(SnapshotCall): {connField("snapshotObject", conn)},
	string(GetSwitchingFunctionDevices): {
		// Without it (or empty) the client asks for every device; the
		// other filter, requestedDeviceCategory, is ignored: a phone's
		// devices are all stations.
		{name: "requestedDeviceID", text: device, code: InvalidDeviceID, optional: true, emptyOK: true},
	},
	string(ConsultationCall): {
		connField("existingCall", conn),
		{name: "consultedDevice", text: called, code: InvalidCalledDeviceID},
	},
	string(AlternateCall):  {connField("heldCall", held), connField("activeCall", active)},
	string(ReconnectCall):  {connField("heldCall", held), connField("activeCall", active)},
	string(ConferenceCall): {connField("heldCall", held), connField("activeCall", active)},
	string(DeflectCall): {
		connField("callToBeDiverted", conn),
		{name: "newDestination", text: called, code: InvalidCalledDeviceID},
	},
	string(GenerateDigits): {
		connField("connectionToSendDigits", conn),
		{name: "charactersToSend", text: func(r *Request) *string { return &r.Digits }, code: InvalidParameterValue, check: checkDigits},
	},

	// The feature services of Snom firmware 8.7.4+ (ECMA-323 ed5 names).
	string(SetDoNotDisturb): {
		{name: "device", text: device, code: InvalidDeviceID},
		{name: "doNotDisturbOn", text: func(r *Request) *string { return &r.DoNotDisturbOn }, code: InvalidDoNotDisturb, check: checkBool("doNotDisturbOn")},
	},
	string(GetDoNotDisturb): {{name: "device", text: device, code: InvalidDeviceID}},
	string(SetForwarding): {
		{name: "device", text: device, code: InvalidDeviceID},
		{name: "forwardingType", text: func(r *Request) *string { return &r.ForwardingType }, code: InvalidForwardingType, check: checkForwardingType},
		{name: "forwardDN", text: func(r *Request) *string { return &r.ForwardDN }, code: InvalidForwardingDestination, optional: true},
		{name: "activateForward", text: func(r *Request) *string { return &r.ActivateForward }, code: InvalidForwardingFlag, check: checkBool("activateForward")},
		{name: "ringCount", text: func(r *Request) *string { return &r.RingCount }, code: InvalidRingCount, optional: true, check: checkRingCount},
	},
	string(GetForwarding): {{name: "device", text: device, code: InvalidDeviceID}},
}

// checkBool accepts the two XML Schema boolean spellings of each value.
func checkBool(name string) func(string) string {
	return func(v string) string {
		switch v {
		case "true", "false", "1", "0":
			return ""
		}
		return name + " must be true or false, not " + strconv.Quote(clip(v, 64))
	}
}

// checkForwardingType accepts the types a phone keeps.
func checkForwardingType(v string) string {
	switch v {
	case ForwardImmediate, ForwardBusy, ForwardNoAns:
		return ""
	}
	return "forwardingType must be forwardImmediate, forwardBusy or forwardNoAns, not " + strconv.Quote(clip(v, 64))
}

// MaxRingCount bounds SetForwarding's ringCount (ECMA-323: 1..100).
const MaxRingCount = 100

func checkRingCount(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxRingCount {
		return "ringCount must be a whole number from 1 to " + strconv.Itoa(MaxRingCount) + ", not " + strconv.Quote(clip(v, 64))
	}
	return ""
}

// maxDigits bounds GenerateDigits' charactersToSend. ECMA-269 sets no
// limit; a phone's DTMF queue is short, and a PBX plays each digit for
// about a quarter of a second, so a longer string is a client error.
const maxDigits = 64

// checkDigits accepts the sixteen DTMF characters only: anything else has
// no tone (a phone ignores it) and would reach the PBX's command line.
func checkDigits(v string) string {
	if len(v) > maxDigits {
		return "charactersToSend longer than " + strconv.Itoa(maxDigits) + " characters"
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case '0' <= c && c <= '9', c == '*', c == '#', 'A' <= c && c <= 'D':
		default:
			return "charactersToSend may hold only the DTMF characters 0-9 * # A-D, not " + strconv.Quote(clip(v, 64))
		}
	}
	return ""
}

// Decode parses a CSTA request body, SOAP-enveloped or bare. The error is
// always an *Error whose Code is the one to answer with.
//
// Decode returns a non-nil *Request even with an error: it then holds what
// was learned before the failure (Envelope — true until the document element
// is known, so an unparsable body gets the SOAP fault a Snom phone sends —
// and, once known, Namespace and Service), so the caller can answer in the
// client's style with EncodeFault(req.Envelope, err). Such a request must
// not be carried out.
func Decode(body []byte) (*Request, error) {
	req := &Request{Envelope: true}
	if done, e := decodeFast(body, req); done {
		if e != nil {
			return req, e
		}
		return req, nil
	}
	*req = Request{Envelope: true}
	if e := decode(body, req); e != nil {
		return req, e
	}
	return req, nil
}

func decode(body []byte, req *Request) *Error {
	if len(body) > MaxBodySize {
		return errorf(Generic, "request body larger than "+strconv.Itoa(MaxBodySize)+" bytes")
	}
	data, bom, e := stripBOM(body)
	if e != nil {
		return e
	}
	if len(bytes.Trim(data, " \t\r\n")) == 0 {
		return errorf(Generic, "empty request body")
	}
	var converted bool
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = charsetReader(bom, &converted)
	p := parser{d: d, req: req}
	if e := p.document(); e != nil {
		return e
	}
	// encoding/xml checks UTF-8 in names, text and attributes but not in
	// comments or processing instructions; the document as a whole must be
	// valid in its encoding.
	if !converted && !utf8.Valid(data) {
		return errorf(Generic, "malformed XML: invalid UTF-8")
	}
	if p.deferred != nil {
		return p.deferred
	}
	if !p.found {
		return errorf(Generic, "no request element")
	}
	return p.validate()
}

// parser walks the token stream once. Errors that make the document
// unusable (syntax, DTDs, depth, structure) return at once; errors about the
// request's content are kept in deferred until the document is known to be
// well-formed, so a truncated body is reported as malformed rather than as
// missing some element.
type parser struct {
	d        *xml.Decoder
	req      *Request
	depth    int
	tokens   int // tokens read so far, but whitespace; the XML declaration must be the first
	found    bool
	fields   []field
	seen     []bool
	deferred *Error
}

// note keeps the first content error; later ones add nothing useful.
func (p *parser) note(code ErrorCode, msg string) {
	if p.deferred == nil {
		p.deferred = errorf(code, msg)
	}
}

// next returns the next token, nil at the end of the input.
func (p *parser) next() (xml.Token, *Error) {
	t, err := p.d.Token()
	if err != nil {
		if err == io.EOF {
			if p.depth > 0 {
				return nil, errorf(Generic, "malformed XML: unexpected end of input")
			}
			return nil, nil
		}
		return nil, xmlError(err)
	}
	if cd, ok := t.(xml.CharData); !ok || !isSpace(cd) {
		// Whitespace before the declaration is tolerated: scripts that
		// print a stray newline first are common.
		p.tokens++
	}
	switch t := t.(type) {
	case xml.StartElement:
		p.depth++
		if p.depth > maxDepth {
			return nil, errorf(Generic, "malformed XML: elements nested deeper than "+strconv.Itoa(maxDepth))
		}
	case xml.EndElement:
		p.depth--
	case xml.Directive:
		// A DTD can declare entities; nothing a CSTA client sends needs one.
		return nil, errorf(Generic, "DOCTYPE and other markup declarations are not allowed")
	case xml.ProcInst:
		if strings.EqualFold(t.Target, "xml") && p.tokens > 1 {
			return nil, errorf(Generic, "malformed XML: XML declaration not at the start")
		}
	}
	return t, nil
}

func xmlError(err error) *Error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return errorf(Generic, "malformed XML (line "+strconv.Itoa(se.Line)+"): "+clip(se.Msg, 200))
	}
	return errorf(Generic, "malformed XML: "+clip(strings.TrimPrefix(err.Error(), "xml: "), 200))
}

func isSpace(b []byte) bool {
	return len(bytes.Trim(b, " \t\r\n")) == 0
}

// document reads the whole input: prolog, the document element (a SOAP
// Envelope or a bare request), and the epilog.
func (p *parser) document() *Error {
	root := false
	for {
		t, e := p.next()
		if e != nil {
			return e
		}
		switch t := t.(type) {
		case nil:
			if !root {
				return errorf(Generic, "malformed XML: no document element")
			}
			return nil
		case xml.StartElement:
			if root {
				return errorf(Generic, "malformed XML: more than one document element")
			}
			root = true
			if t.Name.Local == "Envelope" {
				if e := p.envelope(); e != nil {
					return e
				}
				continue
			}
			p.req.Envelope = false
			if e := p.request(t); e != nil {
				return e
			}
		case xml.CharData:
			if !isSpace(t) {
				return errorf(Generic, "malformed XML: text outside the document element")
			}
		}
	}
}

// envelope reads a SOAP envelope (1.1 or 1.2: matched on local names) up to
// its end tag. Header and any other children but Body are ignored.
func (p *parser) envelope() *Error {
	body := false
	for {
		t, e := p.next()
		if e != nil {
			return e
		}
		switch t := t.(type) {
		case xml.StartElement:
			if t.Name.Local != "Body" {
				if e := p.skip(); e != nil {
					return e
				}
				continue
			}
			if body {
				return errorf(Generic, "SOAP envelope with more than one Body")
			}
			body = true
			if e := p.body(); e != nil {
				return e
			}
		case xml.EndElement:
			if !body {
				return errorf(Generic, "SOAP envelope without Body")
			}
			if !p.found {
				return errorf(Generic, "empty SOAP Body")
			}
			return nil
		}
	}
}

func (p *parser) body() *Error {
	for {
		t, e := p.next()
		if e != nil {
			return e
		}
		switch t := t.(type) {
		case xml.StartElement:
			if p.found {
				return errorf(Generic, "more than one request element in the SOAP Body")
			}
			if e := p.request(t); e != nil {
				return e
			}
		case xml.EndElement:
			return nil
		}
	}
}

// skip consumes the content and end tag of the element just started.
func (p *parser) skip() *Error {
	for base := p.depth; p.depth >= base; {
		if _, e := p.next(); e != nil {
			return e
		}
	}
	return nil
}

// request reads the request element just started.
func (p *parser) request(start xml.StartElement) *Error {
	p.found = true
	if strings.Contains(start.Name.Space, ":") {
		// A resolved namespace is a URI; encoding/xml leaves an undeclared
		// prefix in Space, which is not one.
		p.req.Namespace = start.Name.Space
	}
	fields, ok := services[start.Name.Local]
	if !ok {
		p.note(ServiceNotSupported, "request "+clip(start.Name.Local, 64)+" is not supported")
		return p.skip()
	}
	p.req.Service = Service(start.Name.Local)
	p.fields, p.seen = fields, make([]bool, len(fields))
	for {
		t, e := p.next()
		if e != nil {
			return e
		}
		switch t := t.(type) {
		case xml.StartElement:
			i := p.lookup(t.Name.Local)
			if i < 0 {
				if e := p.skip(); e != nil {
					return e
				}
				continue
			}
			f := &fields[i]
			if p.seen[i] {
				p.note(f.code, "element "+f.name+" given more than once")
				if e := p.skip(); e != nil {
					return e
				}
				continue
			}
			p.seen[i] = true
			if f.conn != nil {
				e = p.connectionID(f, f.conn(p.req))
			} else {
				e = p.value(f, f.text(p.req))
			}
			if e != nil {
				return e
			}
		case xml.EndElement:
			return nil
		}
	}
}

func (p *parser) lookup(local string) int {
	for i := range p.fields {
		if p.fields[i].name == local {
			return i
		}
	}
	return -1
}

// text collects the character data directly inside the element just started,
// up to its end tag, trimmed. Child elements are handed to visit, which must
// consume them; with a nil visit they are skipped.
func (p *parser) text(f *field, visit func(xml.StartElement) *Error) (string, *Error) {
	var buf []byte
	long := false
	for {
		t, e := p.next()
		if e != nil {
			return "", e
		}
		switch t := t.(type) {
		case xml.CharData:
			if long {
				continue
			}
			if len(buf) == 0 {
				t = bytes.TrimLeft(t, " \t\r\n")
			}
			buf = append(buf, t...)
			if len(buf) > maxValueLen {
				buf = bytes.TrimRight(buf, " \t\r\n")
				if len(buf) > maxValueLen {
					long = true
					p.note(f.code, "value of "+f.name+" longer than "+strconv.Itoa(maxValueLen)+" bytes")
				}
			}
		case xml.StartElement:
			if visit == nil {
				e = p.skip()
			} else {
				e = visit(t)
			}
			if e != nil {
				return "", e
			}
		case xml.EndElement:
			if long {
				return "", nil
			}
			return p.clean(f, string(bytes.TrimRight(buf, " \t\r\n"))), nil
		}
	}
}

// clean rejects control characters in a value: no call id, number or URI
// has them, and a line break handed on to a PBX command line is an
// injection.
func (p *parser) clean(f *field, v string) string {
	for _, r := range v {
		if r < 0x20 || r >= 0x7F && r <= 0x9F {
			p.note(f.code, "value of "+f.name+" contains control characters")
			return ""
		}
	}
	return v
}

// value reads a DeviceID or enumeration field: its own text, trimmed.
func (p *parser) value(f *field, dst *string) *Error {
	v, e := p.text(f, nil)
	*dst = v
	return e
}

// connectionID reads a ConnectionID in either form: callID/deviceID
// children (the schema's) or bare text (Snom's template). A callID child
// wins over the element's own text.
func (p *parser) connectionID(f *field, dst *ConnectionID) *Error {
	var callID, deviceID string
	var haveCallID, haveDeviceID bool
	sub := func(name string, have *bool, dst *string) *Error {
		sf := field{name: f.name + "/" + name, code: f.code}
		if *have {
			p.note(f.code, "element "+sf.name+" given more than once")
			return p.skip()
		}
		*have = true
		v, e := p.text(&sf, nil)
		*dst = v
		return e
	}
	own, e := p.text(f, func(t xml.StartElement) *Error {
		switch t.Name.Local {
		case "callID":
			return sub("callID", &haveCallID, &callID)
		case "deviceID":
			return sub("deviceID", &haveDeviceID, &deviceID)
		}
		return p.skip()
	})
	if e != nil {
		return e
	}
	if !haveCallID {
		callID = own
	}
	*dst = ConnectionID{CallID: callID, DeviceID: deviceID}
	return nil
}

// validate checks presence and values once the document has been read.
func (p *parser) validate() *Error {
	for i, f := range p.fields {
		if !p.seen[i] {
			if f.optional {
				continue
			}
			return errorf(f.code, "missing element "+f.name)
		}
		switch {
		case f.conn != nil:
			if c := f.conn(p.req); c.CallID == "" && c.DeviceID == "" {
				return errorf(f.code, "empty element "+f.name)
			}
		case *f.text(p.req) == "" && !f.emptyOK:
			return errorf(f.code, "empty element "+f.name)
		case f.check != nil && *f.text(p.req) != "":
			if msg := f.check(*f.text(p.req)); msg != "" {
				return errorf(f.code, msg)
			}
		}
	}
	switch p.req.AutoOriginate {
	case "", "prompt", "doNotPrompt":
	default:
		return errorf(InvalidParameterValue, "autoOriginate must be prompt or doNotPrompt, not "+strconv.Quote(clip(p.req.AutoOriginate, 64)))
	}
	return nil
}

// clip bounds client-supplied text quoted in a message to max bytes.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
