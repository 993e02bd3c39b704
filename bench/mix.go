package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
)

// This file is the CTI client's side of the load: per extension, a loop of
// call scenarios that together use every CSTA service the bridge offers, on
// live calls of the simulator. A scenario's set-up (a caller ringing the
// extension) and tear-down (the far parties of a transfer hanging up) go
// through the simulator's control API, in-process, outside the timed
// requests.

// soapReq builds a request the way the Snom wiki templates do.
func soapReq(service, inner string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?> <SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:csta="http://www.ecma-international.org/standards/ecma-323/csta/ed4"> <SOAP-ENV:Body> <csta:` +
		service + `> ` + inner + ` </csta:` + service + `> </SOAP-ENV:Body> </SOAP-ENV:Envelope>`)
}

func connID(elem string, id int) string {
	return fmt.Sprintf("<csta:%s>%d</csta:%s>", elem, id, elem)
}

// request is one /csta request of a scenario.
type request struct {
	service string
	body    []byte
	// fault: the bridge must refuse it with a CSTA fault (HTTP 500) whose
	// <operation> is this code.
	fault string
}

// step builds a request from the session's state; after (optional) reads
// what the response tells (MakeCall's new call id).
type step struct {
	build func(s *session) request
	after func(s *session, resp []byte) error
}

type scenario struct {
	name  string
	offer bool // a caller rings the extension first
	steps []step
	// hangup: the call lives on between outside parties after the
	// extension left it (transfers); the far parties hang up afterwards.
	hangup bool
}

func answerStep() step {
	return step{build: func(s *session) request {
		return request{service: "AnswerCall", body: soapReq("AnswerCall", connID("callToBeAnswered", s.inID))}
	}}
}

func holdStep() step {
	return step{build: func(s *session) request {
		return request{service: "HoldCall", body: soapReq("HoldCall", connID("callToBeHeld", s.inID))}
	}}
}

func makeCallStep() step {
	return step{
		build: func(s *session) request {
			return request{service: "MakeCall", body: soapReq("MakeCall", "<csta:callingDevice>"+s.ext+
				"</csta:callingDevice><csta:calledDirectoryNumber>+49305550"+s.ext+"</csta:calledDirectoryNumber>")}
		},
		after: func(s *session, resp []byte) error {
			if s.dry {
				s.mcID = 1
				return nil
			}
			m := callIDRE.FindSubmatch(resp)
			if m == nil {
				return fmt.Errorf("MakeCallResponse without a callID: %.200s", resp)
			}
			id, err := strconv.Atoi(string(m[1]))
			if err != nil {
				return err
			}
			s.mcID = id
			return nil
		},
	}
}

var callIDRE = regexp.MustCompile(`callID>(-?\d+)<`)

// scenarios cycle per extension; one round uses all nine services:
// AnswerCall ×3, HoldCall ×2, RetrieveCall, ClearConnection ×2, TransferCall,
// MakeCall ×2, SingleStepTransferCall, ClearCall, RequestSystemStatus.
var scenarios = []scenario{
	{name: "answer-hold-retrieve-hangup", offer: true, steps: []step{answerStep(), holdStep(),
		{build: func(s *session) request {
			return request{service: "RetrieveCall", body: soapReq("RetrieveCall", connID("callToBeRetrieved", s.inID))}
		}},
		{build: func(s *session) request {
			return request{service: "ClearConnection", body: soapReq("ClearConnection", connID("connectionToBeCleared", s.inID))}
		}},
	}},
	{name: "consultation-transfer", offer: true, hangup: true, steps: []step{answerStep(), holdStep(), makeCallStep(),
		{build: func(s *session) request {
			return request{service: "TransferCall", body: soapReq("TransferCall", connID("heldCall", s.inID)+connID("activeCall", s.mcID))}
		}},
	}},
	{name: "blind-transfer", offer: true, hangup: true, steps: []step{answerStep(),
		{build: func(s *session) request {
			return request{service: "SingleStepTransferCall", body: soapReq("SingleStepTransferCall", connID("activeCall", s.inID)+
				"<csta:transferredTo>sip:+49307770"+s.ext+"@bench.test</csta:transferredTo>")}
		}},
	}},
	{name: "make-call-clear-call", steps: []step{makeCallStep(),
		{build: func(s *session) request {
			return request{service: "ClearCall", body: soapReq("ClearCall", connID("callToBeCleared", s.mcID))}
		}},
	}},
	{name: "status-reject", offer: true, steps: []step{
		{build: func(s *session) request {
			return request{service: "RequestSystemStatus", body: soapReq("RequestSystemStatus", "")}
		}},
		{build: func(s *session) request {
			return request{service: "ClearConnection", body: soapReq("ClearConnection", connID("connectionToBeCleared", s.inID))}
		}},
	}},
}

// snom87 is the "snom87" mix: the services Snom firmware 8.7 adds, on
// live simulator calls, with the basic ones they need around them.
var snom87 = []scenario{
	{name: "snapshot-consult-reconnect-digits", offer: true, steps: []step{answerStep(),
		{build: func(s *session) request {
			return request{service: "SnapshotDevice", body: soapReq("SnapshotDevice", "<csta:snapshotObject>"+s.ext+"</csta:snapshotObject>")}
		}},
		consultStep(),
		{build: func(s *session) request {
			return request{service: "ReconnectCall", body: soapReq("ReconnectCall", connID("heldCall", s.inID)+connID("activeCall", s.mcID))}
		}},
		{build: func(s *session) request {
			return request{service: "SnapshotCall", body: soapReq("SnapshotCall", connID("snapshotObject", s.inID))}
		}},
		{build: func(s *session) request {
			return request{service: "GenerateDigits", body: soapReq("GenerateDigits", connID("connectionToSendDigits", s.inID)+
				"<csta:charactersToSend>12#</csta:charactersToSend>")}
		}},
		{build: func(s *session) request {
			return request{service: "ClearConnection", body: soapReq("ClearConnection", connID("connectionToBeCleared", s.inID))}
		}},
	}},
	{name: "conference-leave", offer: true, hangup: true, steps: []step{answerStep(), consultStep(),
		{build: func(s *session) request {
			return request{service: "ConferenceCall", body: soapReq("ConferenceCall", connID("heldCall", s.inID)+connID("activeCall", s.mcID))}
		}},
		{build: func(s *session) request {
			return request{service: "ClearConnection", body: soapReq("ClearConnection", fmt.Sprintf(
				"<csta:connectionToBeCleared>%d|%d</csta:connectionToBeCleared>", s.inID, s.mcID))}
		}},
	}},
	{name: "deflect", offer: true, hangup: true, steps: []step{
		{build: func(s *session) request {
			return request{service: "GetSwitchingFunctionDevices", body: soapReq("GetSwitchingFunctionDevices", "")}
		}},
		{build: func(s *session) request {
			return request{service: "DeflectCall", body: soapReq("DeflectCall", connID("callToBeDiverted", s.inID)+
				"<csta:newDestination>+49306660"+s.ext+"</csta:newDestination>")}
		}},
	}},
}

// consultStep holds the offered call and calls an outside number; the
// new call's id is read from initiatedCall.
func consultStep() step {
	mc := makeCallStep()
	return step{
		build: func(s *session) request {
			return request{service: "ConsultationCall", body: soapReq("ConsultationCall", connID("existingCall", s.inID)+
				"<csta:consultedDevice>+49305550"+s.ext+"</csta:consultedDevice>")}
		},
		after: mc.after,
	}
}

// statusOnly is the "status" mix: RequestSystemStatus, which never reaches
// the call state machine; it measures HTTP, decode and encode alone.
var statusOnly = []scenario{{name: "status", steps: []step{{build: func(s *session) request {
	return request{service: "RequestSystemStatus", body: soapReq("RequestSystemStatus", "")}
}}}}}

// faults is the "faults" mix: a client hammering /csta with requests the
// bridge refuses, both in the decoder (not XML, an unknown service, a
// request without its ConnectionID) and in the services (no such call, a
// MakeCall to nowhere). Every one must come back as the expected CSTA
// fault; none reaches the PBX.
var faults = []scenario{{name: "faults", steps: []step{
	{build: func(s *session) request {
		return request{service: "garbage", body: []byte("<csta:AnswerCall><callToBeAnswered>"), fault: "generic"}
	}},
	{build: func(s *session) request {
		return request{service: "AnswerCall", body: soapReq("AnswerCall", connID("callToBeAnswered", -999999)),
			fault: "invalidConnectionID"}
	}},
	{build: func(s *session) request {
		return request{service: "UnknownService", body: soapReq("MakeCoffee", "<csta:strength>9</csta:strength>"),
			fault: "serviceNotSupported"}
	}},
	{build: func(s *session) request {
		return request{service: "HoldCall", body: soapReq("HoldCall", ""), fault: "invalidConnectionID"}
	}},
	{build: func(s *session) request {
		return request{service: "ClearConnection", body: soapReq("ClearConnection", connID("connectionToBeCleared", 424242)),
			fault: "invalidConnectionID"}
	}},
}}}

// session is one extension's CTI client state. Only its worker touches it.
type session struct {
	ext       string
	sim       *simCtl // nil when dry
	dry       bool    // against the bare server: no simulator, fixed ids
	scenarios []scenario
	sc, st    int // current scenario and step
	inID      int // csta_id of the offered call
	mcID      int // csta_id of the MakeCall call
	simCall   string
}

func newSessions(exts []string, mix []scenario, sim *simCtl) []*session {
	out := make([]*session, len(exts))
	for i, e := range exts {
		// Start extensions at different scenarios so that every service is
		// in the mix from the first second.
		out[i] = &session{ext: e, sim: sim, dry: sim == nil, scenarios: mix, sc: i % len(mix)}
	}
	return out
}

// prepare runs the current scenario's set-up when it is at its first step.
func (s *session) prepare(ctx context.Context) error {
	if s.st != 0 {
		return nil
	}
	sc := s.scenarios[s.sc]
	s.inID, s.mcID, s.simCall = -1, 1, ""
	if !sc.offer || s.dry {
		return nil
	}
	id, cstaID, err := s.sim.offer(ctx, "+4930100"+s.ext, s.ext)
	if err != nil {
		return err
	}
	s.simCall, s.inID = id, cstaID
	return nil
}

func (s *session) current() request { return s.scenarios[s.sc].steps[s.st].build(s) }

// done takes the response of the current request and moves on; on a wrong
// answer it returns an error and the scenario is abandoned (its calls hung
// up) so that the next one starts clean.
func (s *session) done(ctx context.Context, req request, status int, body []byte) error {
	sc := s.scenarios[s.sc]
	var err error
	switch {
	case s.dry && status != http.StatusOK:
		err = fmt.Errorf("%s: HTTP %d", req.service, status)
	case !s.dry && req.fault != "":
		if status != http.StatusInternalServerError || !bytes.Contains(body, []byte(">"+req.fault+"</")) {
			err = fmt.Errorf("%s on %s: want fault %s, got HTTP %d: %.300s", req.service, s.ext, req.fault, status, body)
		}
	case !s.dry && (status != http.StatusOK || !bytes.Contains(body, []byte(req.service+"Response"))):
		err = fmt.Errorf("%s on %s: HTTP %d: %.300s", req.service, s.ext, status, body)
	default:
		if a := sc.steps[s.st].after; a != nil {
			err = a(s, body)
		}
	}
	if err != nil {
		s.abandon(ctx)
		return err
	}
	s.st++
	if s.st < len(sc.steps) {
		return nil
	}
	if sc.hangup && !s.dry {
		if herr := s.sim.hangup(ctx, s.simCall); herr != nil {
			err = fmt.Errorf("hang up after %s: %w", sc.name, herr)
		}
	}
	s.next()
	return err
}

func (s *session) next() { s.sc, s.st, s.simCall = (s.sc+1)%len(s.scenarios), 0, "" }

// abandon hangs up every simulator call of the extension and moves on.
func (s *session) abandon(ctx context.Context) {
	if !s.dry {
		_ = s.sim.hangupAll(ctx, s.ext)
	}
	s.next()
}

// finish ends the scenario in progress (a phase ended in its middle).
func (s *session) finish(ctx context.Context) {
	if s.st != 0 || s.simCall != "" {
		s.abandon(ctx)
	}
}

// simCtl drives the simulator's control API in-process: calling its
// handler directly keeps the bench's own traffic off the listeners under
// test.
type simCtl struct{ h http.Handler }

func (c *simCtl) call(ctx context.Context, method, path string, in, out any) error {
	var body bytes.Buffer
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			return err
		}
	}
	req := httptest.NewRequestWithContext(ctx, method, path, &body)
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		return fmt.Errorf("sim %s %s: %d %s", method, path, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	if out != nil {
		return json.Unmarshal(rec.Body.Bytes(), out)
	}
	return nil
}

type simCall struct {
	ID     string `json:"id"`
	CSTAID *int   `json:"csta_id"`
	Legs   []struct {
		Ext string `json:"ext"`
	} `json:"legs"`
}

// offer rings ext from an outside number; it returns once the bridge has
// numbered the call (the simulator waits for TagCall).
func (c *simCtl) offer(ctx context.Context, from, to string) (string, int, error) {
	var v simCall
	if err := c.call(ctx, http.MethodPost, "/sim/calls", map[string]string{"from": from, "to": to}, &v); err != nil {
		return "", 0, err
	}
	if v.CSTAID == nil {
		return v.ID, 0, fmt.Errorf("sim call %s to %s: the bridge did not number it in time", v.ID, to)
	}
	return v.ID, *v.CSTAID, nil
}

func (c *simCtl) hangup(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, "/sim/calls/"+id+"/hangup", nil, nil)
}

func (c *simCtl) hangupAll(ctx context.Context, ext string) error {
	var calls []simCall
	if err := c.call(ctx, http.MethodGet, "/sim/calls", nil, &calls); err != nil {
		return err
	}
	for _, sc := range calls {
		for _, l := range sc.Legs {
			if l.Ext == ext {
				_ = c.hangup(ctx, sc.ID)
				break
			}
		}
	}
	return nil
}

func (c *simCtl) live(ctx context.Context) (int, error) {
	var calls []simCall
	err := c.call(ctx, http.MethodGet, "/sim/calls", nil, &calls)
	return len(calls), err
}
