package testphone

import (
	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// dialogState is what dialogOrder reads of a call's diago dialog.
type dialogState interface {
	LoadState() sip.DialogState
}

// answer answers an incoming call and waits for the ACK. While it runs,
// re-INVITEs of the call wait (see dialogOrder).
func (p *Phone) answer(c *Call, d *diago.DialogServerSession) error {
	done := make(chan struct{})
	c.mu.Lock()
	c.answering = done
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.answering = nil
		c.mu.Unlock()
		close(done)
	}()
	_, err := d.Answer(diago.AnswerOptions{})
	return err
}

// answeringDone is closed when the answer in progress has returned; nil
// when none is.
func (c *Call) answeringDone() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.answering == nil {
		return nil
	}
	return c.answering
}

// dialogOrder makes the phone take a call's in-dialog INVITEs, ACKs and
// BYEs one after the other, as a desk phone's single SIP stack does.
// sipgo hands every request to its own goroutine, and two races of diago
// v0.42.1 / sipgo v1.7.3 follow from that:
//
//   - diago's Answer sends 200 OK, waits for the ACK and only then starts
//     the media monitor on the RTP session it set up. A re-INVITE handled
//     in between replaces (and closes) that session, and Answer fails
//     with "rtp session is closed" although the call is up; the phone
//     then hung up. A re-INVITE handled before diago saw the ACK got 491.
//     Asterisk sends exactly this when a call it originated is answered
//     and it updates the connected line: the re-INVITE follows the ACK
//     within a millisecond. So a re-INVITE waits until the answer has
//     returned.
//   - An ACK handled after a BYE sets the ended dialog back to confirmed,
//     and diago then sends a BYE of its own for a call that is over. So
//     ACKs and BYEs of a call do not overlap, and an ACK of a dialog that
//     has ended is dropped (it needs no reply).
func (p *Phone) dialogOrder(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		switch req.Method {
		case sip.INVITE, sip.ACK, sip.BYE:
		default:
			next(req, tx)
			return
		}
		if to := req.To(); to == nil || !to.Params.Has("tag") {
			next(req, tx) // a new call
			return
		}
		var c *Call
		if h := req.CallID(); h != nil {
			c = p.callByID(h.Value())
		}
		if c == nil {
			next(req, tx)
			return
		}
		if wait := c.answeringDone(); wait != nil && req.Method == sip.INVITE {
			// The ACK the answer waits for is not held up: it does not
			// wait here, and sipgo runs each request on its own
			// goroutine. diago bounds the answer (64*T1 without ACK).
			select {
			case <-wait:
			case <-c.done:
			case <-p.life.Done():
			}
		}
		c.sipMu.Lock()
		defer c.sipMu.Unlock()
		if req.Method == sip.ACK && c.dialog != nil && c.dialog.LoadState() == sip.DialogStateEnded {
			p.log.Debug("ACK after the call ended dropped", "call_id", c.callID, "cseq", req.CSeq().SeqNo)
			return
		}
		next(req, tx)
	}
}
