// Package fakeesl is a fake FreeSWITCH event socket for tests: it speaks
// real ESL framing on loopback TCP, replays event frames captured from
// FreeSWITCH 1.10.12, records the commands it receives and can misbehave.
package fakeesl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Frame is one ESL message: headers (in order, values as sent) and a body.
type Frame struct {
	Headers []Header
	Body    []byte
}

// Header is one "Name: value" line.
type Header struct{ Name, Value string }

// Get returns the first value of a header ("" when absent).
func (f Frame) Get(name string) string {
	for _, h := range f.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// ReadFrame reads one frame: header lines up to an empty line, then
// Content-Length bytes of body.
func ReadFrame(r *bufio.Reader) (Frame, error) {
	var f Frame
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF && (len(f.Headers) > 0 || line != "") {
				return f, io.ErrUnexpectedEOF
			}
			return f, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(f.Headers) == 0 {
				continue // stray blank line between frames
			}
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return f, fmt.Errorf("malformed header line %q", line)
		}
		f.Headers = append(f.Headers, Header{strings.TrimSpace(name), strings.TrimSpace(value)})
	}
	if cl := f.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > 64<<20 {
			return f, fmt.Errorf("bad Content-Length %q", cl)
		}
		f.Body = make([]byte, n)
		if _, err := io.ReadFull(r, f.Body); err != nil {
			return f, err
		}
	}
	return f, nil
}

// Bytes renders the frame; Content-Length is computed from the body.
func (f Frame) Bytes() []byte {
	var b bytes.Buffer
	if len(f.Body) > 0 {
		fmt.Fprintf(&b, "Content-Length: %d\n", len(f.Body))
	}
	for _, h := range f.Headers {
		if strings.EqualFold(h.Name, "Content-Length") {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", h.Name, h.Value)
	}
	b.WriteByte('\n')
	b.Write(f.Body)
	return b.Bytes()
}

// Event is a plain event: URL-encoded headers, optionally an inner body.
type Event struct {
	Headers []Header // values URL-encoded, as on the wire
	Body    []byte
}

// ParseEvent decodes the body of a text/event-plain frame.
func ParseEvent(b []byte) (Event, error) {
	f, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		return Event{}, err
	}
	return Event{Headers: f.Headers, Body: f.Body}, nil
}

// Get returns a header value, URL-decoded.
func (e Event) Get(name string) string {
	for _, h := range e.Headers {
		if strings.EqualFold(h.Name, name) {
			if v, err := url.PathUnescape(h.Value); err == nil {
				return v
			}
			return h.Value
		}
	}
	return ""
}

// Name is the Event-Name (with the subclass for CUSTOM events).
func (e Event) Name() string {
	if n := e.Get("Event-Name"); n != "CUSTOM" {
		return n
	}
	return "CUSTOM " + e.Get("Event-Subclass")
}

// With returns a copy with a header set (added when missing); value is
// given decoded and encoded like FreeSWITCH does.
func (e Event) With(name, value string) Event {
	c := Event{Headers: append(make([]Header, 0, len(e.Headers)+1), e.Headers...), Body: e.Body}
	c.Set(name, value)
	return c
}

// Set sets a header in place (added when missing), as With does without
// copying the event: the fakes build every event header by header, and a
// copy per header made them slow enough under -race to delay the replies
// of the command connection.
func (e *Event) Set(name, value string) {
	enc := url.PathEscape(value)
	for i, h := range e.Headers {
		if strings.EqualFold(h.Name, name) {
			e.Headers[i].Value = enc
			return
		}
	}
	// Before the inner Content-Length, which must stay last.
	at := len(e.Headers)
	if at > 0 && strings.EqualFold(e.Headers[at-1].Name, "Content-Length") {
		at--
	}
	e.Headers = slices.Insert(e.Headers, at, Header{name, enc})
}

// Bytes renders the event as the body of a text/event-plain frame.
func (e Event) Bytes() []byte {
	var b bytes.Buffer
	for _, h := range e.Headers {
		if strings.EqualFold(h.Name, "Content-Length") {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", h.Name, h.Value)
	}
	if len(e.Body) > 0 {
		fmt.Fprintf(&b, "Content-Length: %d\n\n", len(e.Body))
		b.Write(e.Body)
	} else {
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Capture is a recorded ESL stream (what FreeSWITCH sent to one client).
type Capture struct {
	Frames []Frame
}

// LoadCapture reads a *.rx.raw file.
func LoadCapture(path string) (*Capture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(bytes.NewReader(data))
	c := &Capture{}
	for {
		f, err := ReadFrame(r)
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: frame %d: %w", path, len(c.Frames)+1, err)
		}
		c.Frames = append(c.Frames, f)
	}
}

// Events returns the plain events of the capture, in wire order, without
// HEARTBEATs.
func (c *Capture) Events() []Event {
	var out []Event
	for _, f := range c.Frames {
		if f.Get("Content-Type") != "text/event-plain" {
			continue
		}
		e, err := ParseEvent(f.Body)
		if err != nil || e.Get("Event-Name") == "HEARTBEAT" {
			continue
		}
		out = append(out, e)
	}
	return out
}

// APIResponses returns the bodies of the api/response frames, in order.
func (c *Capture) APIResponses() []string {
	var out []string
	for _, f := range c.Frames {
		if f.Get("Content-Type") == "api/response" {
			out = append(out, string(f.Body))
		}
	}
	return out
}
