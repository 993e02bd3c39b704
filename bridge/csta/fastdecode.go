package csta

import (
	"bytes"
	"strconv"
	"strings"
)

// decodeFast decodes the plain shape nearly every CTI client sends: ASCII,
// no entities, comments, CDATA, DTD or processing instructions but the XML
// declaration. encoding/xml spends about 10 µs and 58 allocations on such a
// body, half of what /csta cost; this single pass over the bytes takes
// 1–1.5 µs and 4 allocations (BenchmarkDecode).
//
// done reports whether it decided: with a nil e the body is decoded into
// req; with e, it is refused with the very error (and req) the general path
// gives. It refuses only where that error is certain from the plain shape
// read so far: a body cut off between two tags, text outside the document
// element, a structure error of the envelope, an unknown request element,
// a missing or unusable field of a well-formed request. These are what a
// client hammering /csta with bad requests sends, and encoding/xml spends
// as long on refusing them as on a good request. On anything else outside
// that shape, and on every other error, done is false and Decode takes the
// general path, which decides the error and its message. FuzzDecode and
// TestFastPathAgrees check that wherever decodeFast decides, the general
// path returns the same Request and the same error.
func decodeFast(body []byte, req *Request) (done bool, e *Error) {
	if len(body) > MaxBodySize {
		return false, nil
	}
	f := fastParser{s: scanner{b: body}, req: req}
	if f.document() {
		return true, nil
	}
	if f.err != nil {
		return true, f.err
	}
	return false, nil
}

// fastMaxDepth is far below maxDepth: a SOAP request needs 5 levels, and a
// deeper body is left to the general path.
const fastMaxDepth = 16

// scanner tokenizes the plain shape. Names and values are subslices of the
// body: nothing is copied until a value is kept.
type scanner struct {
	b     []byte
	i     int
	depth int
	open  [fastMaxDepth][]byte // qualified names of the open elements
	ns    [fastMaxBindings]binding
	nns   int // namespace declarations in scope, innermost last
}

// fastMaxBindings bounds the namespace declarations in scope; a SOAP
// request has two or three.
const fastMaxBindings = 8

type binding struct {
	prefix, uri []byte
	isDefault   bool // xmlns="..."
	depth       int  // the element that declared it
}

type tokenKind uint8

const (
	tokEOF tokenKind = iota
	tokStart
	tokEnd
	tokText
	tokBad   // outside the plain shape, or malformed
	tokTrunc // the input ends between two tokens inside an element
)

type token struct {
	kind  tokenKind
	local []byte // tokStart
	space []byte // tokStart: the resolved namespace, as encoding/xml resolves it
	text  []byte // tokText
}

// fastParser walks the tokens; selfClosed is set while the end of an
// empty-element tag is pending.
type fastParser struct {
	s          scanner
	req        *Request
	selfClosed bool
	found      bool
	fields     []field
	seen       [5]bool
	// unknown is the request element's name when it names no service: the
	// general path notes it and reads on, so a later syntax error wins.
	unknown []byte
	// err is set, with the general path's error, when the body is refused
	// for certain; every step then returns false.
	err *Error
}

// refuse records the general path's error and stops the walk.
func (p *fastParser) refuse(code ErrorCode, msg string) bool {
	p.err = errorf(code, msg)
	return false
}

func (p *fastParser) next() token {
	if p.selfClosed {
		p.selfClosed = false
		p.s.pop()
		return token{kind: tokEnd}
	}
	t, selfClosed := p.s.next()
	p.selfClosed = selfClosed
	if t.kind == tokTrunc {
		// encoding/xml has read the whole body when it finds elements
		// still open at its end; its line count is one plus the newlines.
		p.refuse(Generic, "malformed XML (line "+strconv.Itoa(1+bytes.Count(p.s.b, []byte{'\n'}))+"): unexpected EOF")
		t.kind = tokBad
	}
	return t
}

func (s *scanner) next() (t token, selfClosed bool) {
	if s.i >= len(s.b) {
		if s.depth > 0 {
			return token{kind: tokTrunc}, false
		}
		return token{kind: tokEOF}, false
	}
	if s.b[s.i] != '<' {
		start := s.i
		for s.i < len(s.b) && s.b[s.i] != '<' {
			c := s.b[s.i]
			if c == '&' || c >= 0x7F || c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return token{kind: tokBad}, false
			}
			if c == '>' && s.i-start >= 2 && s.b[s.i-1] == ']' && s.b[s.i-2] == ']' {
				return token{kind: tokBad}, false
			}
			s.i++
		}
		return token{kind: tokText, text: s.b[start:s.i]}, false
	}
	if s.i+1 < len(s.b) && s.b[s.i+1] == '/' {
		return s.endTag(), false
	}
	return s.startTag()
}

func (s *scanner) startTag() (token, bool) {
	s.i++ // '<'
	qname, ok := s.name()
	if !ok || s.depth == fastMaxDepth {
		return token{kind: tokBad}, false
	}
	s.open[s.depth] = qname
	s.depth++
	for {
		gap := s.space()
		if s.i >= len(s.b) {
			return token{kind: tokBad}, false
		}
		switch s.b[s.i] {
		case '>':
			s.i++
			return s.resolve(qname), false
		case '/':
			if s.i+1 >= len(s.b) || s.b[s.i+1] != '>' {
				return token{kind: tokBad}, false
			}
			s.i += 2
			return s.resolve(qname), true
		}
		// encoding/xml takes attributes without whitespace between them
		// (Snom's own ClearConnection template relies on it), but not one
		// glued to the element name.
		if !gap && s.b[s.i-1] != '"' && s.b[s.i-1] != '\'' {
			return token{kind: tokBad}, false
		}
		if !s.attribute() {
			return token{kind: tokBad}, false
		}
	}
}

// attribute reads name="value"; namespace declarations are bound to the
// element being opened.
func (s *scanner) attribute() bool {
	qname, ok := s.name()
	if !ok {
		return false
	}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '=' {
		return false
	}
	s.i++
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' && s.b[s.i] != '\'' {
		return false
	}
	quote := s.b[s.i]
	s.i++
	start := s.i
	for s.i < len(s.b) && s.b[s.i] != quote {
		// Values are kept only in the printable ASCII range so that no
		// entity, '<' or line-end normalization can make encoding/xml see
		// something else.
		if c := s.b[s.i]; c < 0x20 || c >= 0x7F || c == '<' || c == '&' {
			return false
		}
		s.i++
	}
	if s.i >= len(s.b) {
		return false
	}
	value := s.b[start:s.i]
	s.i++
	prefix, local := split(qname)
	var b binding
	switch {
	case prefix == nil && string(local) == "xmlns":
		b.isDefault = true
	case string(prefix) == "xmlns":
		if isReserved(local) {
			return false
		}
		b.prefix = local
	default:
		return true
	}
	if len(value) == 0 || s.nns == fastMaxBindings {
		return false // an undeclaration, or an odd document: encoding/xml's
	}
	b.uri, b.depth = value, s.depth
	s.ns[s.nns] = b
	s.nns++
	return true
}

// resolve mirrors encoding/xml's translate for an element name: a declared
// prefix becomes its URI, an undeclared one stays as it is, no prefix takes
// the default namespace.
func (s *scanner) resolve(qname []byte) token {
	prefix, local := split(qname)
	if isReserved(prefix) || prefix == nil && string(local) == "xmlns" {
		return token{kind: tokBad}
	}
	space := prefix
	for i := s.nns - 1; i >= 0; i-- {
		b := &s.ns[i]
		if b.isDefault == (prefix == nil) && bytes.Equal(b.prefix, prefix) {
			space = b.uri
			break
		}
	}
	return token{kind: tokStart, local: local, space: space}
}

func (s *scanner) endTag() token {
	s.i += 2 // "</"
	qname, ok := s.name()
	if !ok || s.depth == 0 || !bytes.Equal(qname, s.open[s.depth-1]) {
		return token{kind: tokBad}
	}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '>' {
		return token{kind: tokBad}
	}
	s.i++
	s.pop()
	return token{kind: tokEnd}
}

func (s *scanner) pop() {
	s.depth--
	for s.nns > 0 && s.ns[s.nns-1].depth > s.depth {
		s.nns--
	}
}

// name reads an ASCII name with at most one colon, neither first nor last;
// each part starts with a letter or '_'.
func (s *scanner) name() ([]byte, bool) {
	start, partStart := s.i, s.i
	colon := false
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9', c == '.', c == '-':
			if s.i == partStart {
				return nil, false
			}
		case c == ':':
			if colon || s.i == partStart {
				return nil, false
			}
			colon, partStart = true, s.i+1
		default:
			if s.i == partStart {
				return nil, false
			}
			return s.b[start:s.i], true
		}
	}
	return nil, false
}

// space skips whitespace inside a tag and reports whether there was any.
func (s *scanner) space() bool {
	start := s.i
	for s.i < len(s.b) && isSpaceByte(s.b[s.i]) {
		s.i++
	}
	return s.i > start
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func split(qname []byte) (prefix, local []byte) {
	if i := bytes.IndexByte(qname, ':'); i >= 0 {
		return qname[:i], qname[i+1:]
	}
	return nil, qname
}

func isReserved(prefix []byte) bool {
	return len(prefix) >= 3 && strings.EqualFold(string(prefix[:3]), "xml")
}

// declaration accepts exactly <?xml version="1.0"[ encoding="UTF-8"][ standalone="yes|no"]?>
// (either quote, any case of utf-8, single spaces) at the very start after
// whitespace; any other form is left to the general path, which knows
// encodings.
func (s *scanner) declaration() bool {
	for s.i < len(s.b) && isSpaceByte(s.b[s.i]) {
		s.i++
	}
	if !bytes.HasPrefix(s.b[s.i:], []byte("<?")) {
		return true
	}
	rest, ok := bytes.CutPrefix(s.b[s.i:], []byte(`<?xml version=`))
	if !ok {
		return false
	}
	v, rest, ok := quoted(rest)
	if !ok || string(v) != "1.0" {
		return false
	}
	if r, ok := bytes.CutPrefix(rest, []byte(` encoding=`)); ok {
		if v, rest, ok = quoted(r); !ok || !bytes.EqualFold(v, []byte("utf-8")) {
			return false
		}
	}
	if r, ok := bytes.CutPrefix(rest, []byte(` standalone=`)); ok {
		if v, rest, ok = quoted(r); !ok || string(v) != "yes" && string(v) != "no" {
			return false
		}
	}
	rest = bytes.TrimLeft(rest, " ")
	if !bytes.HasPrefix(rest, []byte("?>")) {
		return false
	}
	s.i = len(s.b) - len(rest) + 2
	return true
}

// quoted splits a '...' or "..." value of printable ASCII off the front of b.
func quoted(b []byte) (value, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' && b[0] != '\'' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == b[0]:
			return b[1:i], b[i+1:], true
		case c < 0x20 || c >= 0x7F || c == '?':
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// The walk below follows parser's in decode.go step for step; see there for
// the rules. Every failure is false; where the general path's error is
// certain, refuse records it first.

func (p *fastParser) document() bool {
	if !p.s.declaration() {
		return false
	}
	root := false
	for {
		t := p.next()
		switch t.kind {
		case tokEOF:
			if !root || !p.found {
				return false
			}
			if p.unknown != nil {
				return p.refuse(ServiceNotSupported, "request "+clip(string(p.unknown), 64)+" is not supported")
			}
			return p.validate()
		case tokStart:
			if root {
				return p.refuse(Generic, "malformed XML: more than one document element")
			}
			root = true
			if string(t.local) == "Envelope" {
				if !p.envelope() {
					return false
				}
				continue
			}
			p.req.Envelope = false
			if !p.request(t) {
				return false
			}
		case tokText:
			if !isSpace(t.text) {
				return p.refuse(Generic, "malformed XML: text outside the document element")
			}
		default:
			return false
		}
	}
}

func (p *fastParser) envelope() bool {
	body := false
	for {
		t := p.next()
		switch t.kind {
		case tokStart:
			if string(t.local) != "Body" {
				if !p.skip() {
					return false
				}
				continue
			}
			if body {
				return p.refuse(Generic, "SOAP envelope with more than one Body")
			}
			body = true
			if !p.body() {
				return false
			}
		case tokEnd:
			if !body {
				return p.refuse(Generic, "SOAP envelope without Body")
			}
			if !p.found {
				return p.refuse(Generic, "empty SOAP Body")
			}
			return true
		case tokText:
		default:
			return false
		}
	}
}

func (p *fastParser) body() bool {
	for {
		t := p.next()
		switch t.kind {
		case tokStart:
			if p.found {
				return p.refuse(Generic, "more than one request element in the SOAP Body")
			}
			if !p.request(t) {
				return false
			}
		case tokEnd:
			return true
		case tokText:
		default:
			return false
		}
	}
}

func (p *fastParser) skip() bool {
	for base := p.s.depth; p.s.depth >= base; {
		if k := p.next().kind; k == tokBad || k == tokEOF {
			return false
		}
	}
	return true
}

func (p *fastParser) request(start token) bool {
	p.found = true
	if bytes.IndexByte(start.space, ':') >= 0 {
		p.req.Namespace = string(start.space)
	}
	svc, ok := serviceNames[string(start.local)]
	if !ok {
		p.unknown = start.local
		return p.skip()
	}
	fields := services[string(svc)]
	if len(fields) > len(p.seen) {
		return false
	}
	p.req.Service = svc
	p.fields = fields
	for {
		t := p.next()
		switch t.kind {
		case tokStart:
			i := fieldIndex(fields, t.local)
			if i < 0 {
				if !p.skip() {
					return false
				}
				continue
			}
			if p.seen[i] {
				return false
			}
			p.seen[i] = true
			f := &fields[i]
			if f.conn != nil {
				ok = p.connectionID(f.conn(p.req))
			} else {
				var r textResult
				r, ok = p.text(false)
				*f.text(p.req) = r.own
			}
			if !ok {
				return false
			}
		case tokEnd:
			return true
		case tokText:
		default:
			return false
		}
	}
}

func fieldIndex(fields []field, local []byte) int {
	for i := range fields {
		if fields[i].name == string(local) {
			return i
		}
	}
	return -1
}

// connectionID mirrors parser.connectionID: a callID child wins over the
// element's own text.
func (p *fastParser) connectionID(dst *ConnectionID) bool {
	r, ok := p.text(true)
	if !ok {
		return false
	}
	callID := r.own
	if r.haveCallID {
		callID = r.callID
	}
	*dst = ConnectionID{CallID: callID, DeviceID: r.deviceID}
	return true
}

// textResult is an element's own text and, for a ConnectionID, its
// callID and deviceID children.
type textResult struct {
	own, callID, deviceID    string
	haveCallID, haveDeviceID bool
}

// text collects the element's own character data, trimmed. Child elements
// are skipped, except callID and deviceID when conn is set.
func (p *fastParser) text(conn bool) (textResult, bool) {
	var r textResult
	var buf []byte
	owned := false // buf is a subslice of the body until a second chunk arrives
	for {
		t := p.next()
		switch t.kind {
		case tokText:
			chunk := t.text
			if len(buf) == 0 {
				chunk = bytes.TrimLeft(chunk, " \t\r\n")
			}
			switch {
			case len(chunk) == 0:
			case len(buf) == 0:
				buf = chunk
			default:
				if !owned {
					buf = append(make([]byte, 0, len(buf)+len(chunk)), buf...)
					owned = true
				}
				buf = append(buf, chunk...)
			}
		case tokStart:
			var have *bool
			var dst *string
			switch {
			case conn && string(t.local) == "callID":
				have, dst = &r.haveCallID, &r.callID
			case conn && string(t.local) == "deviceID":
				have, dst = &r.haveDeviceID, &r.deviceID
			default:
				if !p.skip() {
					return r, false
				}
				continue
			}
			if *have {
				return r, false
			}
			*have = true
			sub, ok := p.text(false)
			if !ok {
				return r, false
			}
			*dst = sub.own
		case tokEnd:
			v := bytes.TrimRight(buf, " \t\r\n")
			if len(v) > maxValueLen || hasControlASCII(v) {
				return r, false
			}
			r.own = string(v)
			return r, true
		default:
			return r, false
		}
	}
}

// hasControlASCII is parser.clean's rule for the ASCII the scanner lets through.
func hasControlASCII(v []byte) bool {
	for _, c := range v {
		if c < 0x20 || c == 0x7F {
			return true
		}
	}
	return false
}

// validate runs the general path's final checks on what was read; their
// error is the general path's too. It works on a copy of seen so that p
// can stay on the stack.
func (p *fastParser) validate() bool {
	seen := p.seen
	g := parser{req: p.req, fields: p.fields, seen: seen[:len(p.fields)]}
	if e := g.validate(); e != nil {
		p.err = e
		return false
	}
	return true
}

// serviceNames maps a request element's local name to its Service without
// allocating a string per request.
var serviceNames = func() map[string]Service {
	m := make(map[string]Service, len(services))
	for name := range services {
		m[name] = Service(name)
	}
	return m
}()
