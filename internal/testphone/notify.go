package testphone

import (
	"context"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// notifyMiddleware takes the in-dialog NOTIFYs of the Snom remote-control
// convention ("Event: talk", "Event: hold") before diago, which only knows
// REFER progress NOTIFYs.
func (p *Phone) notifyMiddleware(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Method != sip.NOTIFY {
			next(req, tx)
			return
		}
		ev := req.GetHeader("Event")
		if ev == nil {
			next(req, tx)
			return
		}
		kind, _, _ := strings.Cut(ev.Value(), ";")
		kind = strings.ToLower(strings.TrimSpace(kind))
		if kind != "talk" && kind != "hold" {
			next(req, tx)
			return
		}
		var c *Call
		if h := req.CallID(); h != nil {
			c = p.callByID(h.Value())
		}
		if c == nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
			return
		}
		if err := tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)); err != nil {
			p.log.Warn("cannot answer NOTIFY", "event", kind, "err", err)
		}
		if !p.startWork() {
			return
		}
		// A phone acts on remote control in the order it arrives, each
		// event judged on the state the previous one left: "talk" right
		// after "hold" resumes the call once the hold's re-INVITE is
		// through (FreeSWITCH answers it only after starting hold music),
		// instead of being dropped because the call was still connected.
		prev, mine := c.queueRemote()
		// The command waits for the call's goroutine, which may be busy
		// with this very dialog; never block the SIP server on it.
		go func() {
			defer p.wg.Done()
			defer close(mine)
			ctx, cancel := context.WithTimeout(p.life, 2*p.opts.RequestTimeout)
			defer cancel()
			select {
			case <-prev:
			case <-ctx.Done():
				p.log.Warn("NOTIFY not carried out", "event", kind, "call_id", c.callID, "err", ctx.Err())
				return
			}
			if err := c.remoteControl(ctx, kind); err != nil {
				p.log.Warn("NOTIFY not carried out", "event", kind, "call_id", c.callID, "err", err)
			}
		}()
	}
}

// queueRemote takes a place in the call's queue of remote-control events:
// prev is closed when the one before is done, mine is closed by the caller
// when this one is.
func (c *Call) queueRemote() (prev <-chan struct{}, mine chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.remoteTail
	if p == nil {
		done := make(chan struct{})
		close(done)
		p = done
	}
	mine = make(chan struct{})
	c.remoteTail = mine
	return p, mine
}

// remoteControl carries out "talk" (answer a ringing call, resume a held
// one) or "hold" (hold a connected call); in other states it does nothing.
func (c *Call) remoteControl(ctx context.Context, kind string) error {
	switch st := c.State(); {
	case kind == "talk" && st == StateRinging:
		return c.Answer(ctx)
	case kind == "talk" && st == StateHeld:
		return c.Unhold(ctx)
	case kind == "hold" && st == StateConnected:
		return c.Hold(ctx)
	}
	return nil
}

// startWork counts a goroutine Close must wait for; false once closing.
func (p *Phone) startWork() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}
