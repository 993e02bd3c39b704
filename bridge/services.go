package bridge

// This file is where a CSTA request becomes a PBX command: serve resolves
// the request's ConnectionIDs to the phone's calls, checks the request fits
// the call's ECMA-269 state, calls the adapter, and on success feeds the
// result through the switchboard like any PBX event.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/csta"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// commandTimeout bounds how long a CTI client waits for the PBX: it gets a
// fault after this, never a hung request.
const commandTimeout = 10 * time.Second

// services carries out CSTA requests on the current PBX adapter.
type services struct {
	sb      *switchboard
	pbx     func() pbx.PBX
	timeout time.Duration
	boot    string // distinguishes MakeCall refs across bridge restarts
	// store changes and persists feature settings (App.storeFeatures);
	// nil changes them at run time only.
	store func(ext string, changed map[string]string) error
}

func newServices(sb *switchboard, current func() pbx.PBX) *services {
	var b [3]byte
	_, _ = rand.Read(b[:])
	s := &services{sb: sb, pbx: current, timeout: commandTimeout, boot: hex.EncodeToString(b[:])}
	sb.divertPBX = s.divert
	return s
}

// target is a resolved connection, copied out of the switchboard.
type target struct {
	ref    pbx.CallRef
	id     int
	state  pbx.State
	remote string // $remote form
}

// serve carries out one decoded request for extension ext. It keeps going
// when the HTTP client hangs up: ctx must not be the request's context.
func (s *services) serve(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if svc, ok := connServices[req.Service]; ok {
		return s.single(ctx, ext, req.Conn, svc)
	}
	switch req.Service {
	case csta.RequestSystemStatus:
		return csta.Result{SystemStatus: "normal"}, nil
	case csta.SingleStepTransferCall:
		return s.singleStepTransfer(ctx, ext, req)
	case csta.TransferCall:
		return s.transfer(ctx, ext, req)
	case csta.MakeCall:
		return s.makeCall(ctx, ext, req)
	case csta.SnapshotDevice:
		return s.snapshotDevice(ctx, ext, req)
	case csta.SnapshotCall:
		return s.snapshotCall(ctx, ext, req)
	case csta.GetSwitchingFunctionDevices:
		return s.switchingFunctionDevices(ctx, ext, req)
	case csta.ConsultationCall:
		return s.consultationCall(ctx, ext, req)
	case csta.AlternateCall:
		return s.alternateCall(ctx, ext, req)
	case csta.ReconnectCall:
		return s.reconnectCall(ctx, ext, req)
	case csta.ConferenceCall:
		return s.conferenceCall(ctx, ext, req)
	case csta.DeflectCall:
		return s.deflectCall(ctx, ext, req)
	case csta.GenerateDigits:
		return s.generateDigits(ctx, ext, req)
	case csta.SetDoNotDisturb:
		return s.setDoNotDisturb(ctx, ext, req)
	case csta.GetDoNotDisturb:
		return s.getDoNotDisturb(ctx, ext, req)
	case csta.SetForwarding:
		return s.setForwarding(ctx, ext, req)
	case csta.GetForwarding:
		return s.getForwarding(ctx, ext, req)
	}
	return csta.Result{}, &csta.Error{Code: csta.ServiceNotSupported, Message: "service " + string(req.Service) + " is not supported"}
}

// connService is a service on one connection: which states it accepts, the
// adapter command, and the event its success amounts to.
type connService struct {
	states  stateSet
	command func(pbx.PBX, context.Context, pbx.CallRef) error
	result  func(target) pbx.Event
	// talks: the call becomes the one the user talks on, so the call that
	// was active is held first, as a Snom does (call waiting, swapping).
	talks bool
}

var connServices = map[csta.Service]connService{
	csta.AnswerCall:      {states(pbx.StateAlerting), pbx.PBX.Answer, becomes(pbx.EventConnected), true},
	csta.HoldCall:        {states(pbx.StateConnected), pbx.PBX.Hold, becomes(pbx.EventHeld), false},
	csta.RetrieveCall:    {states(pbx.StateHeld), pbx.PBX.Retrieve, becomes(pbx.EventRetrieved), true},
	csta.ClearConnection: {anyState, pbx.PBX.ClearConnection, cleared, false},
	csta.ClearCall:       {anyState, pbx.PBX.ClearCall, cleared, false},
}

func becomes(kind pbx.EventKind) func(target) pbx.Event {
	return func(t target) pbx.Event { return pbx.Event{Kind: kind, Call: t.ref} }
}

// cleared: releasing a ringing call is a rejection, not a missed call.
func cleared(t target) pbx.Event {
	cause := pbx.CauseNormal
	if t.state == pbx.StateAlerting {
		cause = pbx.CauseRejected
	}
	return pbx.Event{Kind: pbx.EventCleared, Call: t.ref, Cause: cause}
}

type stateSet func(pbx.State) bool

func states(ok ...pbx.State) stateSet {
	return func(s pbx.State) bool {
		for _, o := range ok {
			if s == o {
				return true
			}
		}
		return false
	}
}

func anyState(pbx.State) bool { return true }

// single runs a service on one connection: resolve, check state, command, commit.
func (s *services) single(ctx context.Context, ext string, conn csta.ConnectionID, svc connService) (csta.Result, *csta.Error) {
	if strings.Contains(conn.CallID, "|") {
		return s.clearJoined(ctx, ext, conn, svc)
	}
	t, cerr := s.resolve(ctx, ext, conn, svc.states)
	if cerr != nil {
		return csta.Result{}, cerr
	}
	if svc.talks {
		if cerr := s.holdActive(ctx, ext, t.ref); cerr != nil {
			return csta.Result{}, cerr
		}
	}
	if err := svc.command(s.pbx(), ctx, t.ref); err != nil {
		return csta.Result{}, fromPBX(err)
	}
	s.commit(ctx, svc.result(t))
	return csta.Result{}, nil
}

// holdActive holds the extension's connected calls other than next before
// next becomes the call the user talks on: a phone talks on one call at a
// time, and a Snom holds the active call when the user answers a waiting
// call, takes back a held one or dials another. When a hold fails nothing
// more is done and the fault says which call could not be held.
func (s *services) holdActive(ctx context.Context, ext string, next pbx.CallRef) *csta.Error {
	var active []target
	err := s.sb.do(ctx, func() {
		p := s.sb.phones[ext]
		if p == nil {
			return
		}
		for _, c := range p.calls {
			if !c.pending && c.state == pbx.StateConnected && c.ref != next {
				active = append(active, target{ref: c.ref, id: c.id, state: c.state})
			}
		}
	})
	if err != nil {
		return timeoutFault(err)
	}
	for _, t := range active {
		if err := s.pbx().Hold(ctx, t.ref); err != nil {
			return stepFault("holding first the active call", t.id, err)
		}
		s.commit(ctx, pbx.Event{Kind: pbx.EventHeld, Call: t.ref})
	}
	return nil
}

// resolve finds the connection a ConnectionID names and checks its state.
func (s *services) resolve(ctx context.Context, ext string, conn csta.ConnectionID, ok stateSet) (target, *csta.Error) {
	var t target
	var cerr *csta.Error
	err := s.sb.do(ctx, func() {
		t, cerr = s.sb.lookupConn(ext, conn, ok)
	})
	if err != nil {
		return t, timeoutFault(err)
	}
	return t, cerr
}

// commit applies the outcome of a successful command as PBX events. It runs
// even when the CTI client has gone: the PBX already did it.
func (s *services) commit(ctx context.Context, evs ...pbx.Event) {
	s.afterCommand(ctx, func() {
		for _, ev := range evs {
			s.sb.apply(ev)
		}
	})
}

// afterCommand runs f on the switchboard even when the CTI client has gone.
func (s *services) afterCommand(ctx context.Context, f func()) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	_ = s.sb.do(ctx, f)
}

func (s *services) singleStepTransfer(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	t, cerr := s.resolve(ctx, ext, req.Conn, states(pbx.StateConnected, pbx.StateHeld, pbx.StateAlerting))
	if cerr != nil {
		return csta.Result{}, cerr
	}
	var domain string
	_ = s.sb.do(ctx, func() {
		if p := s.sb.phones[ext]; p != nil {
			domain = p.cfg.Domain
		}
	})
	dest := cleanDestination(req.TransferredTo, domain)
	if dest == "" {
		return csta.Result{}, &csta.Error{Code: csta.InvalidCalledDeviceID, Message: "transferredTo is empty"}
	}
	if err := s.pbx().SingleStepTransfer(ctx, t.ref, dest); err != nil {
		return csta.Result{}, fromPBX(err)
	}
	s.commit(ctx,
		pbx.Event{Kind: pbx.EventTransferred, Call: t.ref, Transfer: pbx.TransferBlind},
		pbx.Event{Kind: pbx.EventCleared, Call: t.ref, Cause: pbx.CauseTransferred})
	return csta.Result{TransferredCall: &csta.ConnectionID{CallID: strconv.Itoa(t.id), DeviceID: req.TransferredTo}}, nil
}

func (s *services) transfer(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	var held, active target
	var cerr *csta.Error
	err := s.sb.do(ctx, func() {
		held, cerr = s.sb.lookupConn(ext, req.Held, states(pbx.StateHeld))
		if cerr != nil {
			return
		}
		active, cerr = s.sb.lookupConn(ext, req.Active, states(pbx.StateConnected, pbx.StateInitiated))
		if cerr == nil && held.ref == active.ref {
			cerr = &csta.Error{Code: csta.InvalidConnectionID, Message: "heldCall and activeCall are the same call"}
		}
	})
	if err != nil {
		return csta.Result{}, timeoutFault(err)
	}
	if cerr != nil {
		return csta.Result{}, cerr
	}
	if err := s.pbx().Transfer(ctx, held.ref, active.ref); err != nil {
		return csta.Result{}, fromPBX(err)
	}
	s.commit(ctx,
		pbx.Event{Kind: pbx.EventTransferred, Call: held.ref, Transfer: pbx.TransferAttended},
		pbx.Event{Kind: pbx.EventTransferred, Call: active.ref, Transfer: pbx.TransferAttended},
		pbx.Event{Kind: pbx.EventCleared, Call: held.ref, Cause: pbx.CauseTransferred},
		pbx.Event{Kind: pbx.EventCleared, Call: active.ref, Cause: pbx.CauseTransferred})
	return csta.Result{TransferredCall: &csta.ConnectionID{CallID: strconv.Itoa(active.id), DeviceID: active.remote}}, nil
}

func (s *services) makeCall(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	placed, cerr := s.placeCall(ctx, ext, req.CallingDevice, req.Called, req.AutoOriginate)
	if cerr != nil {
		return csta.Result{}, cerr
	}
	return csta.Result{CallingDevice: placed}, nil
}

// placeCall is MakeCall's work, which ConsultationCall shares: the
// extension's active call is held, its device called, then the
// destination. It returns the new call as the calling device sees it.
func (s *services) placeCall(ctx context.Context, ext, callingDevice, called, autoOriginate string) (*csta.ConnectionID, *csta.Error) {
	var (
		c      *call
		cerr   *csta.Error
		dest   string
		device string
	)
	err := s.sb.do(ctx, func() {
		p := s.sb.phones[ext]
		if p == nil {
			cerr = &csta.Error{Code: csta.InvalidCallingDeviceID, Message: "unknown extension " + ext}
			return
		}
		if !p.matchesDevice(callingDevice) {
			cerr = &csta.Error{Code: csta.InvalidCallingDeviceID,
				Message: fmt.Sprintf("callingDevice %q is not an identity of extension %s", callingDevice, ext)}
			return
		}
		dest = cleanDestination(called, p.cfg.Domain)
		if dest == "" {
			cerr = &csta.Error{Code: csta.InvalidCalledDeviceID, Message: "the number to call is empty"}
			return
		}
		device = strings.TrimSpace(callingDevice)
		if device == "" {
			device = p.localURI()
		}
		id := p.newID(pbx.Outgoing)
		ref := pbx.CallRef{Ext: ext, ID: fmt.Sprintf("mc-%s-%s-%d", s.boot, ext, id)}
		c = &call{id: id, ref: ref, dir: pbx.Outgoing, remote: pbx.Party{Number: dest}, pending: true,
			created: s.sb.now()}
		p.add(c)
	})
	if err != nil {
		return nil, timeoutFault(err)
	}
	if cerr != nil {
		return nil, cerr
	}
	if cerr := s.holdActive(ctx, ext, c.ref); cerr != nil {
		s.commit(ctx, pbx.Event{Kind: pbx.EventCleared, Call: c.ref})
		return nil, cerr
	}
	mc := pbx.MakeCallRequest{Call: c.ref, CSTAID: c.id, Destination: dest,
		AutoAnswer: !strings.EqualFold(strings.TrimSpace(autoOriginate), "prompt")}
	if err := s.pbx().MakeCall(ctx, mc); err != nil {
		// The id stays burned: a Snom never hands out an id twice either.
		s.commit(ctx, pbx.Event{Kind: pbx.EventCleared, Call: c.ref})
		return nil, fromPBX(err)
	}
	s.afterCommand(ctx, func() {
		// The PBX may already have reported the call, or its end (a quick
		// busy): only a call still waiting for this answer is announced now.
		if p := s.sb.phones[ext]; p != nil && p.byRef[c.ref.ID] == c && c.pending {
			s.sb.apply(pbx.Event{Kind: pbx.EventOriginated, Call: c.ref, Remote: pbx.Party{Number: dest}})
		}
	})
	return &csta.ConnectionID{CallID: strconv.Itoa(c.id), DeviceID: device}, nil
}

// lookupConn resolves a ConnectionID on the owner goroutine. A callID names
// the call; a bare deviceID names the phone's only call in an allowed state.
func (s *switchboard) lookupConn(ext string, conn csta.ConnectionID, ok stateSet) (target, *csta.Error) {
	p := s.phones[ext]
	if p == nil {
		return target{}, &csta.Error{Code: csta.InvalidConnectionID, Message: "unknown extension " + ext}
	}
	var c *call
	idText := strings.TrimSpace(conn.CallID)
	switch {
	case idText != "":
		id, err := strconv.Atoi(idText)
		if err != nil {
			return target{}, &csta.Error{Code: csta.InvalidConnectionID, Message: fmt.Sprintf("connection id %q is not a number", idText)}
		}
		c = p.calls[id]
		if c == nil || c.pending {
			return target{}, &csta.Error{Code: csta.InvalidConnectionID, Message: fmt.Sprintf("no call %d on extension %s", id, ext)}
		}
	case strings.TrimSpace(conn.DeviceID) != "" && p.matchesDevice(conn.DeviceID):
		c = p.only(func(c *call) bool { return !c.pending && ok(c.state) })
		if c == nil {
			return target{}, &csta.Error{Code: csta.InvalidConnectionID, Message: "no single matching call at device " + conn.DeviceID}
		}
	default:
		return target{}, &csta.Error{Code: csta.InvalidConnectionID, Message: "connection id missing"}
	}
	if !ok(c.state) {
		return target{}, &csta.Error{Code: csta.InvalidObjectState,
			Message: fmt.Sprintf("call %d is %s", c.id, c.state)}
	}
	return target{ref: c.ref, id: c.id, state: c.state, remote: remoteURI(p, c)}, nil
}

// cleanDestination turns what a CTI client wrote into something to dial:
// "tel:+49 30 123" → "+4930123", "sip:1002@<our domain>" → "1002"; a SIP URI
// on another host is kept whole for the PBX to route.
func cleanDestination(d, domain string) string {
	d = strings.TrimSpace(d)
	lower := strings.ToLower(d)
	switch {
	case strings.HasPrefix(lower, "tel:"):
		d = d[4:]
	case strings.HasPrefix(lower, "sip:"), strings.HasPrefix(lower, "sips:"), strings.Contains(d, "@"):
		user := userPart(d)
		at := strings.IndexByte(d, '@')
		host := ""
		if at >= 0 {
			host = d[at+1:]
			if i := strings.IndexAny(host, ";?>"); i >= 0 {
				host = host[:i]
			}
			if h, _, ok := strings.Cut(host, ":"); ok {
				host = h
			}
		}
		if host == "" || strings.EqualFold(host, domain) {
			d = user
		} else if !strings.HasPrefix(lower, "sip") {
			return "sip:" + d
		} else {
			return d
		}
	}
	// Visual separators people paste from address books.
	var b strings.Builder
	for _, r := range d {
		switch r {
		case ' ', '-', '(', ')', '/', '.', '\t':
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fromPBX maps an adapter error to the CSTA error a phone would answer.
func fromPBX(err error) *csta.Error {
	msg := err.Error()
	switch {
	case errors.Is(err, pbx.ErrNoSuchCall):
		return &csta.Error{Code: csta.InvalidConnectionID, Message: msg}
	case errors.Is(err, pbx.ErrInvalidState):
		return &csta.Error{Code: csta.InvalidObjectState, Message: msg}
	case errors.Is(err, pbx.ErrNotSupported):
		return &csta.Error{Code: csta.RequestIncompatibleWithObject, Message: msg}
	case errors.Is(err, pbx.ErrInvalidDestination):
		return &csta.Error{Code: csta.InvalidCalledDeviceID, Message: msg}
	case errors.Is(err, pbx.ErrDeviceUnreachable):
		return &csta.Error{Code: csta.InvalidCallingDeviceID, Message: msg}
	case errors.Is(err, pbx.ErrUnavailable):
		return &csta.Error{Code: csta.ResourceOutOfService, Message: msg}
	case errors.Is(err, context.DeadlineExceeded):
		return &csta.Error{Code: csta.ResourceBusy, Message: "the PBX did not answer in time"}
	}
	return &csta.Error{Code: csta.Generic, Message: msg}
}

func timeoutFault(err error) *csta.Error {
	return &csta.Error{Code: csta.ResourceBusy, Message: "bridge busy: " + err.Error()}
}
