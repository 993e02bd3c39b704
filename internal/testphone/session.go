package testphone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

// dialogSession is what the connected phase needs of a diago dialog,
// incoming or outgoing.
type dialogSession interface {
	Context() context.Context
	Hangup(ctx context.Context) error
	Hold(ctx context.Context) error
	Unhold(ctx context.Context) error
}

// bounded limits a command's context to the phone's request timeout, so a
// far end that never answers a re-INVITE or BYE cannot stall the call.
func (p *Phone) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.opts.RequestTimeout)
}

// serveIncoming runs one incoming call, from INVITE to its end. diago
// hangs the dialog up when it returns.
func (p *Phone) serveIncoming(d *diago.DialogServerSession) {
	c := newCall(p, Incoming, StateRinging)
	c.invite = d.InviteRequest
	c.dialog = d
	if h := d.InviteRequest.CallID(); h != nil {
		c.callID = h.Value()
	}
	delay, auto := autoAnswerDelay(d.InviteRequest)
	c.autoAnswer = auto
	if !p.track(c) {
		_ = d.Respond(sip.StatusServiceUnavailable, "Shutting Down", nil)
		c.end("phone closing")
		return
	}
	p.log.Debug("incoming call", "call_id", c.callID, "from", c.RemoteUser(), "auto_answer", auto)
	if err := d.Ringing(); err != nil {
		c.end("cannot send 180 Ringing: " + err.Error())
		return
	}
	// The auto-answer policy is read before the call is handed to
	// Incoming: a test may change it as soon as it has the call, for the
	// calls that follow.
	var answerAt <-chan time.Time
	switch {
	case auto && !p.ignoreAuto.Load():
		t := time.NewTimer(delay)
		defer t.Stop()
		answerAt = t.C
	case p.opts.AutoAnswer:
		t := time.NewTimer(0)
		defer t.Stop()
		answerAt = t.C
	}
	select {
	case p.incoming <- c:
	default:
		_ = d.Respond(sip.StatusBusyHere, "Busy Here", nil)
		c.setStatus(sip.StatusBusyHere)
		c.end("no free line: too many unclaimed incoming calls")
		return
	}

	for {
		select {
		case <-d.Context().Done():
			c.end("cancelled by the caller")
			return
		case <-answerAt:
			if err := p.answer(c, d); err != nil {
				c.end("auto-answer failed: " + err.Error())
				return
			}
			c.connected(d)
			return
		case cmd := <-c.cmds:
			switch cmd.kind {
			case cmdAnswer:
				// State first, then the reply: the caller of Answer reads
				// the state as soon as it returns.
				err := p.answer(c, d)
				if err != nil {
					c.end("answer failed: " + err.Error())
					cmd.done <- err
					return
				}
				c.setState(StateConnected)
				cmd.done <- nil
				c.connected(d)
				return
			case cmdReject, cmdHangup:
				code := cmd.code
				if code == 0 {
					code = sip.StatusBusyHere
				}
				err := d.Respond(code, reasonPhrase(code), nil)
				// The call's status and end come before the reply: the
				// caller of Reject reads them as soon as it returns.
				c.setStatus(code)
				c.end(fmt.Sprintf("rejected with %d", code))
				cmd.done <- err
				return
			default:
				c.wrongState(cmd)
			}
		}
	}
}

func reasonPhrase(code int) string {
	switch code {
	case sip.StatusBusyHere:
		return "Busy Here"
	case 603:
		return "Decline"
	case sip.StatusTemporarilyUnavailable:
		return "Temporarily Unavailable"
	case sip.StatusNotFound:
		return "Not Found"
	}
	return "Rejected"
}

// connected runs an answered call until it ends.
func (c *Call) connected(d dialogSession) {
	c.setState(StateConnected)
	for {
		select {
		case <-d.Context().Done():
			c.end("hung up by the far end")
			return
		case cmd := <-c.cmds:
			ctx, cancel := c.phone.bounded(cmd.ctx)
			switch cmd.kind {
			case cmdHangup:
				err := d.Hangup(ctx)
				cancel()
				if responseStatus(err) == sip.StatusCallTransactionDoesNotExists {
					err = nil // the far end hung up at the same moment
				}
				c.end("hung up by the phone")
				cmd.done <- err
				return
			case cmdHold:
				if c.State() != StateConnected {
					c.wrongState(cmd)
					break
				}
				err := d.Hold(ctx)
				if err == nil {
					c.setState(StateHeld)
				}
				cmd.done <- err
			case cmdUnhold:
				if c.State() != StateHeld {
					c.wrongState(cmd)
					break
				}
				err := d.Unhold(ctx)
				if err == nil {
					c.setState(StateConnected)
				}
				cmd.done <- err
			default:
				c.wrongState(cmd)
			}
			cancel()
		}
	}
}

// Dial places a call and returns at once, while it is dialing. target is a
// SIP URI, or a number that is sent to the registrar. headers are extra
// "Name: value" headers for the INVITE.
func (p *Phone) Dial(ctx context.Context, target string, headers ...string) (*Call, error) {
	uri, err := p.targetURI(target)
	if err != nil {
		return nil, err
	}
	var hdrs []sip.Header
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("testphone: header %q: want \"Name: value\"", h)
		}
		hdrs = append(hdrs, sip.NewHeader(strings.TrimSpace(name), strings.TrimSpace(value)))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := p.dg.NewDialog(uri, diago.NewDialogOptions{})
	if err != nil {
		return nil, fmt.Errorf("testphone: dial %s: %w", target, err)
	}
	c := newCall(p, Outgoing, StateDialing)
	c.dialog = d
	c.callID = uuid.NewString()
	cid := sip.CallIDHeader(c.callID)
	d.InviteRequest.AppendHeader(&cid)
	for _, h := range hdrs {
		d.InviteRequest.AppendHeader(h)
	}
	// The dialog goroutine changes the request (SDP, auth); readers get a copy.
	c.invite = d.InviteRequest.Clone()
	if !p.startWork() {
		_ = d.Close()
		return nil, errors.New("testphone: phone is closed")
	}
	if !p.track(c) {
		p.wg.Done()
		_ = d.Close()
		return nil, errors.New("testphone: phone is closed")
	}
	go func() {
		defer p.wg.Done()
		defer func() { _ = d.Close() }()
		p.runOutgoing(c, d)
	}()
	return c, nil
}

func (p *Phone) targetURI(target string) (sip.Uri, error) {
	var uri sip.Uri
	t := strings.TrimSpace(target)
	if !strings.HasPrefix(strings.ToLower(t), "sip:") {
		if p.opts.Registrar == "" {
			return uri, fmt.Errorf("testphone: dial %q: no registrar to send a number to; give a sip: URI", target)
		}
		if t == "" || strings.ContainsAny(t, "@:;<> \t") {
			return uri, fmt.Errorf("testphone: dial %q: not a number", target)
		}
		host, port, _ := net.SplitHostPort(p.opts.Registrar)
		t = "sip:" + t + "@" + net.JoinHostPort(host, port)
	}
	if err := sip.ParseUri(t, &uri); err != nil {
		return uri, fmt.Errorf("testphone: dial %q: %w", target, err)
	}
	if uri.Host == "" {
		return uri, fmt.Errorf("testphone: dial %q: no host", target)
	}
	if uri.UriParams == nil {
		uri.UriParams = sip.NewParams()
	}
	if uri.Headers == nil {
		uri.Headers = sip.NewParams()
	}
	return uri, nil
}

// runOutgoing drives an outgoing call: INVITE until answered, then the
// connected phase. A hang-up while dialing cancels the INVITE.
func (p *Phone) runOutgoing(c *Call, d *diago.DialogClientSession) {
	ictx, cancelInvite := context.WithCancel(p.life)
	defer cancelInvite()
	answered := make(chan error, 1)
	go func() {
		opts := diago.InviteClientOptions{Username: p.opts.User, Password: p.opts.Password}
		med, err := d.Invite(ictx, opts)
		if errors.Is(err, diago.ErrClientEarlyMedia) {
			err = d.WaitAnswer(ictx, med, sipgo.AnswerOptions{Username: p.opts.User, Password: p.opts.Password})
		}
		answered <- err
	}()
	var hangups []command
	for {
		select {
		case err := <-answered:
			if err == nil && len(hangups) == 0 {
				actx, cancel := p.bounded(p.life)
				err = d.Ack(actx)
				cancel()
				if err == nil {
					c.connected(d)
					return
				}
			}
			if err == nil {
				// Answered just as the phone hung up: ACK and BYE.
				actx, cancel := p.bounded(p.life)
				err = errors.Join(d.Ack(actx), d.Hangup(actx))
				cancel()
				for _, h := range hangups {
					h.done <- err
				}
				c.end("hung up by the phone")
				return
			}
			reason := "call failed: " + err.Error()
			if st := responseStatus(err); st != 0 {
				c.setStatus(st)
				reason = fmt.Sprintf("call failed with %d", st)
			} else if len(hangups) > 0 {
				c.setStatus(sip.StatusRequestTerminated)
				reason = "cancelled by the phone"
			}
			for _, h := range hangups {
				h.done <- nil
			}
			c.end(reason)
			return
		case cmd := <-c.cmds:
			if cmd.kind != cmdHangup {
				c.wrongState(cmd)
				continue
			}
			hangups = append(hangups, cmd)
			cancelInvite()
		}
	}
}

// responseStatus is the SIP status of a failed dialog request (sipgo
// returns ErrDialogResponse by value or by pointer), 0 for other errors.
func responseStatus(err error) int {
	var p *sipgo.ErrDialogResponse
	if errors.As(err, &p) && p.Res != nil {
		return p.Res.StatusCode
	}
	var v sipgo.ErrDialogResponse
	if errors.As(err, &v) && v.Res != nil {
		return v.Res.StatusCode
	}
	return 0
}
