package bridge

// DeflectCall and GenerateDigits: a ringing call sent elsewhere without
// answering it, and DTMF on a connected call.

import (
	"context"

	"github.com/csta-bridge/csta-bridge/bridge/csta"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func (s *services) deflectCall(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	d, ok := s.pbx().(pbx.Deflector)
	if !ok {
		return csta.Result{}, &csta.Error{Code: csta.ServiceNotSupported, Message: "this PBX adapter cannot deflect calls"}
	}
	t, cerr := s.resolve(ctx, ext, req.Conn, states(pbx.StateAlerting))
	if cerr != nil {
		return csta.Result{}, cerr
	}
	var dest string
	_ = s.onPhone(ctx, ext, func(p *phone) *csta.Error {
		dest = cleanDestination(req.Called, p.cfg.Domain)
		return nil
	})
	if dest == "" {
		return csta.Result{}, &csta.Error{Code: csta.InvalidCalledDeviceID, Message: "newDestination is empty"}
	}
	if err := d.Deflect(ctx, t.ref, dest); err != nil {
		return csta.Result{}, fromPBX(err)
	}
	s.commit(ctx, pbx.Event{Kind: pbx.EventCleared, Call: t.ref, Cause: pbx.CauseDeflected})
	return csta.Result{}, nil
}

func (s *services) generateDigits(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	d, ok := s.pbx().(pbx.DTMFSender)
	if !ok {
		return csta.Result{}, &csta.Error{Code: csta.ServiceNotSupported, Message: "this PBX adapter cannot send DTMF"}
	}
	t, cerr := s.resolve(ctx, ext, req.Conn, states(pbx.StateConnected))
	if cerr != nil {
		return csta.Result{}, cerr
	}
	if err := d.SendDTMF(ctx, t.ref, req.Digits); err != nil {
		return csta.Result{}, fromPBX(err)
	}
	return csta.Result{}, nil
}
