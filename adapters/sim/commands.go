package sim

import (
	"context"
	"fmt"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// legFor finds the live connection c for command op. Callers hold p.mu.
func (p *PBX) legFor(op string, c pbx.CallRef) (*leg, error) {
	if err := p.running(op, c); err != nil {
		return nil, err
	}
	l := p.legs[c]
	if l == nil {
		return nil, fmt.Errorf("sim: %s %s: %w", op, c, pbx.ErrNoSuchCall)
	}
	return l, nil
}

// withLeg runs f on connection c under the lock, after the checks every
// command makes: ctx not done, the simulator running, c known.
func (p *PBX) withLeg(ctx context.Context, op string, c pbx.CallRef, f func(l *leg) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l, err := p.legFor(op, c)
	if err != nil {
		return err
	}
	return f(l)
}

func stateErr(op string, l *leg) error {
	return fmt.Errorf("sim: %s %s: connection is %s: %w", op, l.ref, l.state, pbx.ErrInvalidState)
}

// Answer picks up an alerting connection.
func (p *PBX) Answer(ctx context.Context, c pbx.CallRef) error {
	return p.withLeg(ctx, "answer", c, func(l *leg) error {
		if l.state != pbx.StateAlerting {
			return stateErr("answer", l)
		}
		p.answer(l.end)
		return nil
	})
}

// Hold puts the far party of a connected call on hold.
func (p *PBX) Hold(ctx context.Context, c pbx.CallRef) error {
	return p.setHold(ctx, "hold", c, true, false)
}

// Retrieve takes a held call back.
func (p *PBX) Retrieve(ctx context.Context, c pbx.CallRef) error {
	return p.setHold(ctx, "retrieve", c, false, false)
}

func (p *PBX) setHold(ctx context.Context, op string, c pbx.CallRef, hold, byPhone bool) error {
	return p.withLeg(ctx, op, c, func(l *leg) error {
		return p.holdLeg(op, l, hold, byPhone)
	})
}

// holdLeg moves l between connected and held. Callers hold p.mu.
func (p *PBX) holdLeg(op string, l *leg, hold, byPhone bool) error {
	from, to, kind := pbx.StateConnected, pbx.StateHeld, pbx.EventHeld
	if !hold {
		from, to, kind = pbx.StateHeld, pbx.StateConnected, pbx.EventRetrieved
	}
	if l.state != from {
		return stateErr(op, l)
	}
	l.state = to
	p.emit(pbx.Event{Kind: kind, Call: l.ref, ByPhone: byPhone})
	return nil
}

// ClearConnection releases the extension's connection: a reject while it
// rings, a hang-up otherwise. Every sim call has two parties, so the call
// ends with it.
func (p *PBX) ClearConnection(ctx context.Context, c pbx.CallRef) error {
	return p.clear(ctx, "clear connection", c)
}

// ClearCall releases every connection of the call.
func (p *PBX) ClearCall(ctx context.Context, c pbx.CallRef) error {
	return p.clear(ctx, "clear call", c)
}

func (p *PBX) clear(ctx context.Context, op string, c pbx.CallRef) error {
	return p.withLeg(ctx, op, c, func(l *leg) error {
		p.endCall(l.end.call, l.end)
		return nil
	})
}

// SingleStepTransfer moves the far party of c to destination: a configured
// extension is rung (Offered, the far party as its remote), an outside number
// answers after AnswerAfter. Works from connected, held and alerting
// (deflect).
func (p *PBX) SingleStepTransfer(ctx context.Context, c pbx.CallRef, destination string) error {
	return p.redirect(ctx, "single step transfer", c, destination, false)
}

// redirect sends the far party of c to destination and releases c: a
// transfer (EventTransferred, then cleared as transferred) or a deflection
// (cleared as deflected).
func (p *PBX) redirect(ctx context.Context, op string, c pbx.CallRef, destination string, deflect bool) error {
	return p.withLeg(ctx, op, c, func(l *leg) error {
		dest, err := cleanNumber(destination)
		if err != nil {
			return fmt.Errorf("sim: %s %s: %v: %w", op, c, err, pbx.ErrInvalidDestination)
		}
		switch {
		case deflect && l.state != pbx.StateAlerting:
			return stateErr(op, l)
		case l.state == pbx.StateConnected, l.state == pbx.StateHeld, l.state == pbx.StateAlerting:
		default:
			return stateErr(op, l)
		}
		e := l.end
		far := e.other()
		if far.phase != answered {
			return fmt.Errorf("sim: %s %s: the far party has not answered: %w", op, c, pbx.ErrInvalidState)
		}
		if dest == c.Ext || (far.ext != "" && dest == far.ext) || (far.ext == "" && dest == far.party.Number) {
			return fmt.Errorf("sim: %s %s: %s is a party of the call: %w", op, c, dest, pbx.ErrInvalidDestination)
		}
		party, ext := p.partyFor(dest, "")
		target := &end{call: e.call, party: party, ext: ext, phase: idle}
		e.call.ends[e.call.index(e)] = target

		if deflect {
			p.clearLeg(l, pbx.CauseDeflected)
		} else {
			p.emit(pbx.Event{Kind: pbx.EventTransferred, Call: l.ref, Transfer: pbx.TransferBlind})
			p.clearLeg(l, pbx.CauseTransferred)
		}
		if far.leg != nil {
			far.leg.remote = party
			p.emit(pbx.Event{Kind: pbx.EventPartyChanged, Call: far.leg.ref, Remote: party})
		}
		p.log.Debug(op, "call", e.call.id, "from", c, "to", dest)
		p.ring(target)
		return nil
	})
}

// Transfer joins the far parties of held and active, two connections of the
// same extension, and releases both. The far party of active may still be
// ringing (transfer on ringing); it keeps ringing in the joined call.
func (p *PBX) Transfer(ctx context.Context, held, active pbx.CallRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	const op = "transfer"
	p.mu.Lock()
	defer p.mu.Unlock()
	hl, err := p.legFor(op, held)
	if err != nil {
		return err
	}
	al, err := p.legFor(op, active)
	if err != nil {
		return err
	}
	switch {
	case held.Ext != active.Ext:
		return fmt.Errorf("sim: %s %s and %s: not connections of the same extension: %w", op, held, active, pbx.ErrInvalidState)
	case hl.end.call == al.end.call:
		return fmt.Errorf("sim: %s %s and %s: connections of the same call: %w", op, held, active, pbx.ErrInvalidState)
	case hl.state != pbx.StateHeld && !(hl.conf == al && hl.state == pbx.StateConnected):
		// Conferenced calls are both connected: their Transfer is the
		// extension leaving the conference.
		return stateErr(op, hl)
	case al.state != pbx.StateConnected && al.state != pbx.StateInitiated:
		return stateErr(op, al)
	case al.end.phase != answered:
		return fmt.Errorf("sim: %s %s: the device has not answered yet: %w", op, active, pbx.ErrInvalidState)
	case hl.end.other().phase != answered:
		return fmt.Errorf("sim: %s %s: its far party has not answered: %w", op, held, pbx.ErrInvalidState)
	}
	hc, ac := hl.end.call, al.end.call
	xh, xa := hl.end.other(), al.end.other()

	p.emit(pbx.Event{Kind: pbx.EventTransferred, Call: hl.ref, Transfer: pbx.TransferAttended})
	p.emit(pbx.Event{Kind: pbx.EventTransferred, Call: al.ref, Transfer: pbx.TransferAttended})
	p.clearLeg(hl, pbx.CauseTransferred)
	p.clearLeg(al, pbx.CauseTransferred)

	hc.ends = [2]*end{xh, xa}
	xa.call = hc
	p.forget(ac)
	if xh.leg != nil {
		xh.leg.remote = xa.party
		p.emit(pbx.Event{Kind: pbx.EventPartyChanged, Call: xh.leg.ref, Remote: xa.party})
	}
	if xa.leg != nil {
		xa.leg.remote = xh.party
		p.emit(pbx.Event{Kind: pbx.EventPartyChanged, Call: xa.leg.ref, Remote: xh.party})
	}
	p.log.Debug("attended transfer", "call", hc.id, "joined", ac.id, "held", held, "active", active)
	return nil
}

// MakeCall rings the extension's device (answered at once with AutoAnswer),
// then calls the destination. Without AutoAnswer the destination is called
// once the device is answered through the control API.
func (p *PBX) MakeCall(ctx context.Context, req pbx.MakeCallRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	const op = "make call"
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.running(op, req.Call); err != nil {
		return err
	}
	if strings.TrimSpace(req.Call.ID) == "" {
		return fmt.Errorf("sim: %s %s: empty call id: %w", op, req.Call, pbx.ErrInvalidState)
	}
	if _, ok := p.exts[req.Call.Ext]; !ok {
		return fmt.Errorf("sim: %s %s: extension %q is not configured: %w", op, req.Call, req.Call.Ext, pbx.ErrDeviceUnreachable)
	}
	if p.legs[req.Call] != nil {
		return fmt.Errorf("sim: %s %s: call id in use: %w", op, req.Call, pbx.ErrInvalidState)
	}
	dest, err := cleanNumber(req.Destination)
	if err != nil {
		return fmt.Errorf("sim: %s %s: %v: %w", op, req.Call, err, pbx.ErrInvalidDestination)
	}
	if dest == req.Call.Ext {
		return fmt.Errorf("sim: %s %s: an extension cannot call itself: %w", op, req.Call, pbx.ErrInvalidDestination)
	}
	c := p.originate(req.Call.Ext, req.Call.ID, req.CSTAID, dest, "", req.AutoAnswer)
	p.log.Debug("make call", "call", c.id, "ref", req.Call, "destination", dest, "auto_answer", req.AutoAnswer)
	return nil
}

// originate places a call from configured extension ext (leg id, chosen by
// the simulator when empty) to dest. Callers hold p.mu and have validated.
func (p *PBX) originate(ext, id string, cstaID int, dest, destName string, offHook bool) *call {
	x := p.exts[ext]
	from := &end{party: pbx.Party{Number: x.Name, Name: x.DisplayName}, ext: ext, phase: ringing}
	party, destExt := p.partyFor(dest, destName)
	to := &end{party: party, ext: destExt, phase: idle}
	c := p.newCall(from, to)
	l := p.newLeg(from, id, pbx.Outgoing, pbx.StateInitiated)
	if cstaID != 0 {
		l.cstaID = cstaID
		close(l.tagged)
	}
	p.emit(pbx.Event{Kind: pbx.EventOriginated, Call: l.ref, Remote: l.remote, SIPCallID: l.sipCallID, CSTAID: l.cstaID})
	if offHook {
		p.answer(from)
	}
	return c
}

// TagCall stores the csta_id the core gave connection c; Sync reports it.
func (p *PBX) TagCall(ctx context.Context, c pbx.CallRef, cstaID int) error {
	return p.withLeg(ctx, "tag", c, func(l *leg) error {
		l.cstaID = cstaID
		select {
		case <-l.tagged:
		default:
			close(l.tagged)
		}
		return nil
	})
}

// SendDTMF plays digits into a connected call; GET /sim/calls/{id}/dtmf
// shows them.
func (p *PBX) SendDTMF(ctx context.Context, c pbx.CallRef, digits string) error {
	return p.withLeg(ctx, "send DTMF", c, func(l *leg) error {
		return p.sendDTMF("send DTMF", l, digits, "bridge")
	})
}

// sendDTMF records digits sent by connection l. Callers hold p.mu.
func (p *PBX) sendDTMF(op string, l *leg, digits, by string) error {
	if err := validDigits(digits); err != nil {
		return fmt.Errorf("sim: %s %s: %v: %w", op, l.ref, err, pbx.ErrNotSupported)
	}
	if l.state != pbx.StateConnected {
		return stateErr(op, l)
	}
	c := l.end.call
	c.dtmf = append(c.dtmf, dtmfRecord{Time: p.now(), Ext: l.ref.Ext, Digits: digits, By: by})
	return nil
}
