package sim

import (
	"context"
	"fmt"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Deflect sends a ringing connection's caller to destination without
// answering: the extension's connection ends as deflected (no missed
// call), the caller rings at the destination.
func (p *PBX) Deflect(ctx context.Context, c pbx.CallRef, destination string) error {
	return p.redirect(ctx, "deflect", c, destination, true)
}

// Conference joins the extension's held call and its active one: the
// simulator keeps them two calls (it has no audio to mix) and links the
// two connections, so that Transfer of the pair is the extension leaving
// and each far party still ends only its own call.
func (p *PBX) Conference(ctx context.Context, held, active pbx.CallRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	const op = "conference"
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
	case hl.state != pbx.StateHeld:
		return stateErr(op, hl)
	case al.state != pbx.StateConnected && al.state != pbx.StateInitiated:
		return stateErr(op, al)
	}
	if err := p.holdLeg(op, hl, false, false); err != nil {
		return err
	}
	hl.conf, al.conf = al, hl
	p.log.Debug(op, "held", held, "active", active)
	return nil
}
