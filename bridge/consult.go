package bridge

// ConsultationCall, AlternateCall and ReconnectCall: the keys of a Snom
// phone's second line ("consult", "swap", "back"), each a sequence of the
// basic commands with the action URLs each step fires.

import (
	"context"
	"fmt"

	"github.com/csta-bridge/csta-bridge/bridge/csta"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// consultationCall holds existingCall and calls consultedDevice.
func (s *services) consultationCall(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	if _, cerr := s.resolve(ctx, ext, req.Conn, states(pbx.StateConnected, pbx.StateHeld)); cerr != nil {
		return csta.Result{}, cerr
	}
	// placeCall holds every connected call of the extension first,
	// existingCall among them.
	placed, cerr := s.placeCall(ctx, ext, "", req.Called, "")
	if cerr != nil {
		return csta.Result{}, cerr
	}
	return csta.Result{InitiatedCall: placed}, nil
}

// pair resolves heldCall and activeCall: two different calls of ext.
func (s *services) pair(ctx context.Context, ext string, req *csta.Request, activeStates stateSet) (held, active target, cerr *csta.Error) {
	err := s.sb.do(ctx, func() {
		held, cerr = s.sb.lookupConn(ext, req.Held, states(pbx.StateHeld))
		if cerr != nil {
			return
		}
		active, cerr = s.sb.lookupConn(ext, req.Active, activeStates)
		if cerr == nil && held.ref == active.ref {
			cerr = &csta.Error{Code: csta.InvalidConnectionID, Message: "heldCall and activeCall are the same call"}
		}
	})
	if err != nil {
		return held, active, timeoutFault(err)
	}
	return held, active, cerr
}

// alternateCall holds the active call and takes back the held one. If the
// held one cannot be taken back, the active one is taken back again, so
// the user is never left with both on hold.
func (s *services) alternateCall(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	held, active, cerr := s.pair(ctx, ext, req, states(pbx.StateConnected))
	if cerr != nil {
		return csta.Result{}, cerr
	}
	if err := s.pbx().Hold(ctx, active.ref); err != nil {
		return csta.Result{}, stepFault("holding the active call", active.id, err)
	}
	s.commit(ctx, pbx.Event{Kind: pbx.EventHeld, Call: active.ref})
	if err := s.pbx().Retrieve(ctx, held.ref); err != nil {
		if undo := s.pbx().Retrieve(ctx, active.ref); undo == nil {
			s.commit(ctx, pbx.Event{Kind: pbx.EventRetrieved, Call: active.ref})
		}
		return csta.Result{}, stepFault("retrieving the held call", held.id, err)
	}
	s.commit(ctx, pbx.Event{Kind: pbx.EventRetrieved, Call: held.ref})
	return csta.Result{}, nil
}

// reconnectCall clears the active call (connected, or a consultation
// still ringing) and takes back the held one.
func (s *services) reconnectCall(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	held, active, cerr := s.pair(ctx, ext, req, states(pbx.StateConnected, pbx.StateInitiated, pbx.StateAlerting))
	if cerr != nil {
		return csta.Result{}, cerr
	}
	if err := s.pbx().ClearConnection(ctx, active.ref); err != nil {
		return csta.Result{}, stepFault("clearing the active call", active.id, err)
	}
	s.commit(ctx, cleared(active))
	if err := s.pbx().Retrieve(ctx, held.ref); err != nil {
		return csta.Result{}, stepFault("retrieving the held call", held.id, err)
	}
	s.commit(ctx, pbx.Event{Kind: pbx.EventRetrieved, Call: held.ref})
	return csta.Result{}, nil
}

// stepFault is the fault of one step of a compound service: the CSTA code
// of the adapter's error, with the step and call named.
func stepFault(step string, id int, err error) *csta.Error {
	f := fromPBX(err)
	f.Message = fmt.Sprintf("%s %d: %s", step, id, f.Message)
	return f
}
