package bridge

// Enforcement of DND and forwarding on the real call, through the adapter
// interface every adapter already implements, so no adapter needs to know
// the features: a refused call is the ringing connection cleared (which
// the adapters answer busy), a forwarded one is deflected (pbx.Deflector).
// Calls refused or forwarded at once are never announced: no
// action_incoming_url and no action_missed_url (a Snom fires neither for a
// call its DND or unconditional forwarding turned away).

import (
	"context"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// divertRecord is one refused or forwarded call, for the status page.
type divertRecord struct {
	At     time.Time
	Ext    string
	Remote string
	Reason string // dnd, all, busy, time
	Target string
	Result string
}

// divertFunc refuses (target "") or forwards a ringing connection on the PBX.
type divertFunc func(ctx context.Context, c pbx.CallRef, target string) error

// divert decides, for a new incoming call, whether the phone's features
// turn it away before it rings; it starts that and reports true.
func (s *switchboard) divert(p *phone, ev pbx.Event) bool {
	if s.divertPBX == nil {
		return false
	}
	f := p.features()
	reason, target := "", ""
	switch {
	case f.DND:
		reason = "dnd"
	case f.Event == "all" && f.Always != "":
		reason, target = "all", f.Always
	case f.Event == "busy" && f.Busy != "" && p.busy():
		reason, target = "busy", f.Busy
	default:
		return false
	}
	if target != "" && userPart(target) == p.cfg.Name {
		s.log.Warn("forwarding to the extension itself ignored", "ext", p.cfg.Name, "target", target)
		return false
	}
	if target != "" {
		target = cleanDestination(target, p.cfg.Domain)
	}
	s.carryOut(p.cfg.Name, ev.Call, remoteOf(p, ev.Remote), reason, target, false)
	return true
}

// busy: the phone has a call (in any state), so a new one would be call waiting.
func (p *phone) busy() bool {
	for _, c := range p.calls {
		if !c.pending {
			return true
		}
	}
	return false
}

func remoteOf(p *phone, r pbx.Party) string {
	if r.URI != "" {
		return r.URI
	}
	if r.Number != "" {
		return localURI(r.Number, p.cfg.Domain)
	}
	return ""
}

// armNoAnswer starts forward-on-no-answer's timer for a call that now rings.
func (s *switchboard) armNoAnswer(p *phone, c *call) {
	f := p.features()
	if s.divertPBX == nil || c.dir != pbx.Incoming || f.Event != "time" || f.NoAnswer == "" ||
		userPart(f.NoAnswer) == p.cfg.Name {
		return
	}
	ext, ref, target, quit := p.cfg.Name, c.ref, f.NoAnswer, s.quit
	c.noAnswer = time.AfterFunc(f.Time, func() {
		select {
		case s.ops <- func() { s.noAnswerExpired(ext, ref, target) }:
		case <-quit:
		}
	})
}

// noAnswerExpired forwards the call if it still rings.
func (s *switchboard) noAnswerExpired(ext string, ref pbx.CallRef, target string) {
	p := s.phones[ext]
	if p == nil {
		return
	}
	c := p.byRef[ref.ID]
	if c == nil || c.state != pbx.StateAlerting || c.pending {
		return
	}
	s.carryOut(ext, ref, remoteURI(p, c), "time", cleanDestination(target, p.cfg.Domain), true)
}

// carryOut runs the PBX command off the switchboard goroutine. A call that
// was announced (no answer) is cleared as deflected once the PBX took it.
func (s *switchboard) carryOut(ext string, ref pbx.CallRef, remote, reason, target string, announced bool) {
	div, quit := s.divertPBX, s.quit
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		err := div(ctx, ref, target)
		rec := divertRecord{At: time.Now(), Ext: ext, Remote: remote, Reason: reason, Target: target, Result: "ok"}
		if err != nil {
			rec.Result = err.Error()
			s.log.Warn("phone feature could not turn the call away", "ext", ext, "call", ref.ID, "reason", reason,
				"target", target, "err", err)
		} else {
			s.log.Info("call turned away by the phone's features", "ext", ext, "call", ref.ID, "reason", reason,
				"target", target, "remote", remote)
		}
		s.metrics.features.divert(reason, err)
		s.diverted.add(rec)
		if err != nil || !announced {
			return
		}
		select {
		case s.ops <- func() {
			s.apply(pbx.Event{Kind: pbx.EventCleared, Call: ref, Cause: pbx.CauseDeflected})
		}:
		case <-quit:
		case <-ctx.Done():
		}
	}()
}
