package bridge

// ConferenceCall and the ClearConnection of a conference: a Snom phone
// joins its held and its active call into a three-party call, reports the
// conference as "held|active" (Yealink's copy does the same), and takes
// that id back in ClearConnection to leave the conference, which leaves
// the two other parties talking (its transfer on hang-up).

import (
	"context"
	"strconv"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/csta"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func (s *services) conferenceCall(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	conf, ok := s.pbx().(pbx.Conferencer)
	if !ok {
		return csta.Result{}, &csta.Error{Code: csta.ServiceNotSupported, Message: "this PBX adapter cannot join calls into a conference"}
	}
	held, active, cerr := s.pair(ctx, ext, req, states(pbx.StateConnected, pbx.StateInitiated))
	if cerr != nil {
		return csta.Result{}, cerr
	}
	if err := conf.Conference(ctx, held.ref, active.ref); err != nil {
		return csta.Result{}, fromPBX(err)
	}
	var device string
	s.afterCommand(ctx, func() {
		p := s.sb.phones[ext]
		if p == nil {
			return
		}
		device = p.localURI()
		s.sb.apply(pbx.Event{Kind: pbx.EventRetrieved, Call: held.ref})
		h, a := p.byRef[held.ref.ID], p.byRef[active.ref.ID]
		if h != nil && a != nil {
			h.conf, a.conf = a, h
		}
	})
	return csta.Result{ConferenceCall: &csta.ConnectionID{
		CallID: strconv.Itoa(held.id) + "|" + strconv.Itoa(active.id), DeviceID: device}}, nil
}

// clearJoined is ClearConnection (or ClearCall) of "x|y": the extension
// leaves the conference of x and y, which talk on; two calls that are not
// in a conference together are each cleared.
func (s *services) clearJoined(ctx context.Context, ext string, conn csta.ConnectionID, svc connService) (csta.Result, *csta.Error) {
	ids := strings.Split(conn.CallID, "|")
	if len(ids) != 2 {
		return csta.Result{}, &csta.Error{Code: csta.InvalidConnectionID, Message: "a joined connection id names two calls, x|y"}
	}
	var ts [2]target
	var joined bool
	var cerr *csta.Error
	err := s.sb.do(ctx, func() {
		for i, id := range ids {
			if ts[i], cerr = s.sb.lookupConn(ext, csta.ConnectionID{CallID: id, DeviceID: conn.DeviceID}, svc.states); cerr != nil {
				return
			}
		}
		p := s.sb.phones[ext]
		x, y := p.byRef[ts[0].ref.ID], p.byRef[ts[1].ref.ID]
		joined = x != y && x.conf == y
	})
	if err != nil {
		return csta.Result{}, timeoutFault(err)
	}
	if cerr != nil {
		return csta.Result{}, cerr
	}
	if joined {
		if err := s.pbx().Transfer(ctx, ts[0].ref, ts[1].ref); err != nil {
			return csta.Result{}, stepFault("leaving the conference of call", ts[0].id, err)
		}
		// The two far parties are joined: an attended transfer, as
		// TransferCall reports it.
		s.commit(ctx,
			pbx.Event{Kind: pbx.EventTransferred, Call: ts[0].ref, Transfer: pbx.TransferAttended},
			pbx.Event{Kind: pbx.EventTransferred, Call: ts[1].ref, Transfer: pbx.TransferAttended},
			pbx.Event{Kind: pbx.EventCleared, Call: ts[0].ref, Cause: pbx.CauseTransferred},
			pbx.Event{Kind: pbx.EventCleared, Call: ts[1].ref, Cause: pbx.CauseTransferred})
		return csta.Result{}, nil
	}
	for _, t := range ts {
		if err := svc.command(s.pbx(), ctx, t.ref); err != nil {
			return csta.Result{}, stepFault("clearing call", t.id, err)
		}
		s.commit(ctx, svc.result(t))
	}
	return csta.Result{}, nil
}
