package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// maxBody bounds control API request bodies.
const maxBody = 64 << 10

// callView is a call as the control API shows it.
type callView struct {
	ID      string    `json:"id"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Name    string    `json:"name,omitempty"` // display name of the caller
	State   string    `json:"state"`          // dialing | ringing | connected | held | ended
	Created time.Time `json:"created"`
	CSTAID  *int      `json:"csta_id,omitempty"` // of the called extension's connection, else the caller's
	Legs    []legView `json:"legs"`
}

// legView is one extension connection of a call.
type legView struct {
	Side      string `json:"side"` // from | to
	Ext       string `json:"ext"`
	Ref       string `json:"ref"` // pbx.CallRef.ID
	State     string `json:"state"`
	Direction string `json:"direction"` // incoming | outgoing
	Remote    string `json:"remote"`
	CSTAID    *int   `json:"csta_id,omitempty"`
	SIPCallID string `json:"sip_call_id"`
}

// view renders c. Callers hold p.mu.
func (c *call) view() callView {
	v := callView{ID: c.id, From: c.ends[0].party.Number, To: c.ends[1].party.Number, Name: c.ends[0].party.Name,
		State: c.state(), Created: c.created, Legs: []legView{}}
	for i, e := range c.ends {
		l := e.leg
		if l == nil {
			continue
		}
		lv := legView{Side: [2]string{"from", "to"}[i], Ext: l.ref.Ext, Ref: l.ref.ID, State: l.state.String(),
			Direction: "incoming", Remote: l.remote.Number, SIPCallID: l.sipCallID}
		if l.state == pbx.StateNull {
			lv.State = "cleared"
		}
		if l.dir == pbx.Outgoing {
			lv.Direction = "outgoing"
		}
		if l.cstaID != 0 {
			id := l.cstaID
			lv.CSTAID = &id
			v.CSTAID = &id // the "to" side comes last and wins
		}
		v.Legs = append(v.Legs, lv)
	}
	return v
}

func (c *call) state() string {
	switch {
	case c.ended:
		return "ended"
	case c.ends[0].phase == ringing && c.ends[1].phase == idle:
		return "dialing"
	case c.ends[0].phase == ringing || c.ends[1].phase == ringing:
		return "ringing"
	}
	for _, e := range c.ends {
		if e.leg != nil && e.leg.state == pbx.StateHeld {
			return "held"
		}
	}
	return "connected"
}

// routes builds the /sim/ handler. Routing is by hand so that every answer,
// 404 and 405 included, is JSON.
func (p *PBX) routes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/sim/")
		if !ok && r.URL.Path != "/sim" {
			writeError(w, http.StatusNotFound, "no such path %s", r.URL.Path)
			return
		}
		resource, sub, _ := strings.Cut(rest, "/")
		switch resource {
		case "":
			p.serveIndex(w, r)
		case "calls":
			p.serveCalls(w, r, sub)
		case "actions":
			p.serveActions(w, r, sub)
		default:
			writeError(w, http.StatusNotFound, "no such path %s", r.URL.Path)
		}
	})
}

func (p *PBX) serveIndex(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, http.MethodGet, http.MethodHead)
		return
	}
	p.mu.Lock()
	exts := make([]string, 0, len(p.exts))
	for name := range p.exts {
		exts = append(exts, name)
	}
	running, calls := p.sess != nil, len(p.calls)
	p.mu.Unlock()
	slices.Sort(exts)
	writeJSON(w, http.StatusOK, map[string]any{
		"running":    running,
		"extensions": exts,
		"calls":      calls,
		"endpoints": []string{
			"POST /sim/calls", "GET /sim/calls", "GET /sim/calls/{id}",
			"POST /sim/calls/{id}/answer", "POST /sim/calls/{id}/hangup",
			"POST /sim/calls/{id}/hold", "POST /sim/calls/{id}/unhold",
			"POST /sim/calls/{id}/dtmf", "GET /sim/calls/{id}/dtmf",
			"GET /sim/actions/<event>", "GET /sim/actions", "DELETE /sim/actions",
		},
	})
}

func (p *PBX) serveCalls(w http.ResponseWriter, r *http.Request, sub string) {
	if sub == "" {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			p.mu.Lock()
			calls := p.sortedCalls()
			out := make([]callView, 0, len(calls))
			for _, c := range calls {
				out = append(out, c.view())
			}
			p.mu.Unlock()
			writeJSON(w, http.StatusOK, out)
		case http.MethodPost:
			p.createCall(w, r)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodHead, http.MethodPost)
		}
		return
	}
	id, action, _ := strings.Cut(sub, "/")
	switch action {
	case "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, http.MethodGet, http.MethodHead)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if c := p.callFor(w, id); c != nil {
			writeJSON(w, http.StatusOK, c.view())
		}
	case "answer", "hangup", "hold", "unhold":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		var req struct {
			Party string `json:"party"`
		}
		if !decodeJSON(w, r, &req, true) {
			return
		}
		p.callAction(w, id, action, req.Party)
	case "dtmf":
		p.serveDTMF(w, r, id)
	default:
		writeError(w, http.StatusNotFound, "no such path %s", r.URL.Path)
	}
}

// callFor finds a live call or answers 404. Callers hold p.mu.
func (p *PBX) callFor(w http.ResponseWriter, id string) *call {
	c := p.calls[id]
	if c == nil {
		writeError(w, http.StatusNotFound, "no such call %q", id)
	}
	return c
}

// createCall: an outside party or an extension calls a configured extension.
func (p *PBX) createCall(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From string `json:"from"`
		To   string `json:"to"`
		Name string `json:"name"`
	}
	if !decodeJSON(w, r, &req, false) {
		return
	}
	if strings.TrimSpace(req.From) == "" || strings.TrimSpace(req.To) == "" {
		writeError(w, http.StatusBadRequest, `"from" and "to" are required`)
		return
	}
	from, err := cleanNumber(req.From)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "from: %v", err)
		return
	}
	to, err := cleanNumber(req.To)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "to: %v", err)
		return
	}
	p.mu.Lock()
	if _, ok := p.exts[to]; !ok {
		p.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "to: %q is not a configured extension", to)
		return
	}
	if from == to {
		p.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "an extension cannot call itself")
		return
	}
	var c *call
	if _, ok := p.exts[from]; ok {
		c = p.originate(from, "", 0, to, "", true)
	} else {
		caller := &end{party: pbx.Party{Number: from, Name: strings.TrimSpace(req.Name)}, phase: answered}
		party, ext := p.partyFor(to, "")
		callee := &end{party: party, ext: ext, phase: idle}
		c = p.newCall(caller, callee)
		p.ring(callee)
	}
	var tags []<-chan struct{}
	if p.sess != nil {
		for _, e := range c.ends {
			if e.leg != nil {
				tags = append(tags, e.leg.tagged)
			}
		}
	}
	p.mu.Unlock()
	p.log.Info("simulated call", "call", c.id, "from", from, "to", to)

	p.awaitTags(r.Context(), c, tags)
	p.mu.Lock()
	v := c.view()
	p.mu.Unlock()
	w.Header().Set("Location", "/sim/calls/"+c.id)
	writeJSON(w, http.StatusCreated, v)
}

// awaitTags waits, bounded by p.tagWait, until the core has numbered the new
// connections (TagCall), so that the reply can carry their csta_ids.
func (p *PBX) awaitTags(ctx context.Context, c *call, tags []<-chan struct{}) {
	if len(tags) == 0 {
		return
	}
	t := time.NewTimer(p.tagWait)
	defer t.Stop()
	for _, ch := range tags {
		select {
		case <-ch:
		case <-c.done:
			return
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// callAction carries out answer, hangup, hold and unhold on call id.
func (p *PBX) callAction(w http.ResponseWriter, id, action, party string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.callFor(w, id)
	if c == nil {
		return
	}
	switch action {
	case "answer":
		e := c.ends[0]
		if e.phase != ringing {
			e = c.ends[1]
		}
		if e.phase != ringing {
			writeError(w, http.StatusConflict, "call %s is %s, nothing rings", c.id, c.state())
			return
		}
		p.answer(e)
	case "hangup":
		e, ok := hangupEnd(c, party)
		if !ok {
			writeError(w, http.StatusUnprocessableEntity, "%q is not a party of call %s", party, c.id)
			return
		}
		p.endCall(c, e)
	case "hold", "unhold":
		l, status, msg := phoneLeg(c, party)
		if l == nil {
			writeError(w, status, "%s", msg)
			return
		}
		if err := p.holdLeg(action, l, action == "hold", true); err != nil {
			writeError(w, http.StatusConflict, "cannot %s: %s's connection is %s", action, l.ref.Ext, l.state)
			return
		}
	}
	writeJSON(w, http.StatusOK, c.view())
}

// hangupEnd picks the end that hangs up: the named party, else the outside
// party, else the caller.
func hangupEnd(c *call, party string) (*end, bool) {
	if party != "" {
		n, err := cleanNumber(party)
		if err != nil {
			return nil, false
		}
		for _, e := range c.ends {
			if e.party.Number == n {
				return e, true
			}
		}
		return nil, false
	}
	if c.ends[0].ext != "" && c.ends[1].ext == "" {
		return c.ends[1], true
	}
	return c.ends[0], true
}

// phoneLeg picks the extension connection the phone acts on: the named
// extension, else the called one, else the caller.
func phoneLeg(c *call, party string) (*leg, int, string) {
	if party != "" {
		n, err := cleanNumber(party)
		if err == nil {
			for _, e := range c.ends {
				if e.ext == n && e.leg != nil {
					return e.leg, 0, ""
				}
			}
		}
		return nil, http.StatusUnprocessableEntity, fmt.Sprintf("%q is not an extension with a connection in call %s", party, c.id)
	}
	for _, e := range []*end{c.ends[1], c.ends[0]} {
		if e.leg != nil {
			return e.leg, 0, ""
		}
	}
	return nil, http.StatusConflict, fmt.Sprintf("call %s has no extension connection", c.id)
}

func (p *PBX) serveDTMF(w http.ResponseWriter, r *http.Request, id string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p.mu.Lock()
		defer p.mu.Unlock()
		if c := p.callFor(w, id); c != nil {
			writeJSON(w, http.StatusOK, dtmfList(c))
		}
	case http.MethodPost:
		var req struct {
			Digits string `json:"digits"`
			Party  string `json:"party"`
		}
		if !decodeJSON(w, r, &req, false) {
			return
		}
		if err := validDigits(req.Digits); err != nil {
			writeError(w, http.StatusBadRequest, "digits: %v", err)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		c := p.callFor(w, id)
		if c == nil {
			return
		}
		l, status, msg := phoneLeg(c, req.Party)
		if l == nil {
			writeError(w, status, "%s", msg)
			return
		}
		if err := p.sendDTMF("dtmf", l, req.Digits, "phone"); err != nil {
			writeError(w, http.StatusConflict, "cannot send DTMF: %s's connection is %s", l.ref.Ext, l.state)
			return
		}
		writeJSON(w, http.StatusOK, dtmfList(c))
	default:
		methodNotAllowed(w, http.MethodGet, http.MethodHead, http.MethodPost)
	}
}

func dtmfList(c *call) []dtmfRecord {
	out := make([]dtmfRecord, len(c.dtmf))
	copy(out, c.dtmf)
	return out
}

// decodeJSON reads one JSON object into v, answering 400 or 413 itself when
// it cannot. An empty body is fine when optional.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body exceeds %d bytes", maxBody)
		} else {
			writeError(w, http.StatusBadRequest, "reading request body: %v", err)
		}
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return true
		}
		writeError(w, http.StatusBadRequest, "a JSON object is required")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON: %v", err)
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid JSON: data after the object")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own view types get here; they always marshal.
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func methodNotAllowed(w http.ResponseWriter, allowed ...string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method not allowed; use %s", strings.Join(allowed, " or "))
}
