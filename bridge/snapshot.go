package bridge

// SnapshotDevice, SnapshotCall and GetSwitchingFunctionDevices: what a CTI
// client asks a Snom phone (firmware 8.7.3+) at start-up and after a
// reconnect to learn its identity and its calls. They read the
// switchboard only; the PBX is not asked.

import (
	"context"
	"slices"
	"strconv"

	"github.com/csta-bridge/csta-bridge/bridge/csta"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// localConnectionState is ECMA-269's name of a connection state.
func localConnectionState(st pbx.State) string {
	switch st {
	case pbx.StateInitiated:
		return "initiated"
	case pbx.StateAlerting:
		return "alerting"
	case pbx.StateConnected:
		return "connected"
	case pbx.StateHeld:
		return "hold"
	}
	return "null"
}

// farState is the far party's connection state as far as the extension's
// own state tells it: the caller of a ringing call is connected, the
// called party of a call still being placed is alerting, and a held party
// stays connected (it is the holding side that is "hold").
func farState(st pbx.State) string {
	if st == pbx.StateInitiated {
		return "alerting"
	}
	return "connected"
}

// identifies tells whether a CSTA device id names the phone: its user
// name, user@host, sip:user@host, or identity index 1 (Snom numbers a
// phone's identities from 1; the bridge's phone has one).
func (p *phone) identifies(dev string) bool {
	return dev == "1" || dev != "" && p.matchesDevice(dev)
}

// byAge lists the phone's announced calls, oldest first.
func (p *phone) byAge() []*call {
	out := make([]*call, 0, len(p.calls))
	for _, c := range p.calls {
		if !c.pending {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *call) int {
		if d := a.created.Compare(b.created); d != 0 {
			return d
		}
		return a.id - b.id
	})
	return out
}

func (s *services) snapshotDevice(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	var res csta.Result
	cerr := s.onPhone(ctx, ext, func(p *phone) *csta.Error {
		if !p.identifies(req.Device) {
			return &csta.Error{Code: csta.InvalidDeviceID, Message: "snapshotObject " + strconv.Quote(req.Device) + " is not this phone (" + p.localURI() + ")"}
		}
		res.Connections = []csta.SnapshotEntry{}
		for _, c := range p.byAge() {
			res.Connections = append(res.Connections, csta.SnapshotEntry{
				Conn:  csta.ConnectionID{CallID: strconv.Itoa(c.id), DeviceID: p.localURI()},
				State: localConnectionState(c.state)})
		}
		return nil
	})
	return res, cerr
}

func (s *services) snapshotCall(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	var res csta.Result
	cerr := s.onPhone(ctx, ext, func(p *phone) *csta.Error {
		t, cerr := s.sb.lookupConn(ext, req.Conn, anyState)
		if cerr != nil {
			return cerr
		}
		c := p.byRef[t.ref.ID]
		res.Connections = []csta.SnapshotEntry{{
			Device: p.localURI(),
			Conn:   csta.ConnectionID{CallID: strconv.Itoa(c.id), DeviceID: p.localURI()},
			State:  localConnectionState(c.state)}}
		for _, far := range []*call{c, c.conf} {
			if far != nil {
				res.Connections = append(res.Connections, csta.SnapshotEntry{Device: remoteURI(p, far), State: farState(far.state)})
			}
		}
		return nil
	})
	return res, cerr
}

func (s *services) switchingFunctionDevices(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	var res csta.Result
	cerr := s.onPhone(ctx, ext, func(p *phone) *csta.Error {
		if req.Device != "" && !p.identifies(req.Device) {
			return &csta.Error{Code: csta.InvalidDeviceID, Message: "requestedDeviceID " + strconv.Quote(req.Device) + " is not this phone"}
		}
		res.Devices = []string{p.localURI()}
		return nil
	})
	return res, cerr
}

// onPhone runs f on the switchboard with the extension's phone.
func (s *services) onPhone(ctx context.Context, ext string, f func(p *phone) *csta.Error) *csta.Error {
	var cerr *csta.Error
	err := s.sb.do(ctx, func() {
		p := s.sb.phones[ext]
		if p == nil {
			cerr = &csta.Error{Code: csta.InvalidDeviceID, Message: "unknown extension " + ext}
			return
		}
		cerr = f(p)
	})
	if err != nil {
		return timeoutFault(err)
	}
	return cerr
}
