package testphone

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// State is where a call stands, seen from the phone.
type State int

const (
	StateDialing   State = iota // outgoing, the far end has not answered
	StateRinging                // incoming, the phone rings
	StateConnected              // answered, media flowing both ways
	StateHeld                   // the phone put the call on hold (re-INVITE sendonly)
	StateEnded                  // gone; EndReason says why
)

var stateNames = [...]string{"dialing", "ringing", "connected", "held", "ended"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Direction says who placed the call.
type Direction int

const (
	Incoming Direction = iota
	Outgoing
)

func (d Direction) String() string {
	if d == Outgoing {
		return "outgoing"
	}
	return "incoming"
}

// Errors a command on a call can return.
var (
	ErrCallEnded    = errors.New("testphone: call has ended")
	ErrInvalidState = errors.New("testphone: command not possible in the call's state")
)

type cmdKind int

const (
	cmdAnswer cmdKind = iota
	cmdReject
	cmdHangup
	cmdHold
	cmdUnhold
)

var cmdNames = [...]string{"answer", "reject", "hang up", "hold", "unhold"}

type command struct {
	kind cmdKind
	code int
	ctx  context.Context
	done chan error
}

// Call is one call of the phone. Its SIP dialog is driven by one goroutine;
// the methods hand it commands and wait for the outcome.
type Call struct {
	phone  *Phone
	dir    Direction
	callID string
	invite *sip.Request // the INVITE as received (incoming) or sent (outgoing)

	// AutoAnswer is set on incoming calls whose INVITE asked the phone to
	// answer by itself (whether or not the phone honoured it).
	autoAnswer bool

	cmds chan command
	done chan struct{} // closed when the call ended

	mu        sync.Mutex
	state     State
	changed   chan struct{} // closed and replaced on every state change
	endReason string
	status    int // final SIP status of an outgoing call that failed, or of our rejection

	// answering is closed when the answer in progress has returned; nil
	// when none is (see Phone.dialogOrder); guarded by mu.
	answering chan struct{}
	// dialog is the call's diago dialog, set before the call is tracked.
	dialog dialogState
	// sipMu lets one in-dialog INVITE, ACK or BYE of the call through at a
	// time (see Phone.dialogOrder).
	sipMu sync.Mutex

	// remoteTail is closed when the last remote-control NOTIFY taken so far
	// has been carried out (see Phone.notifyMiddleware); guarded by mu.
	remoteTail chan struct{}
}

func newCall(p *Phone, dir Direction, initial State) *Call {
	return &Call{
		phone:   p,
		dir:     dir,
		cmds:    make(chan command),
		done:    make(chan struct{}),
		state:   initial,
		changed: make(chan struct{}),
	}
}

// Direction is the call's direction.
func (c *Call) Direction() Direction { return c.dir }

// CallID is the SIP Call-ID of the call.
func (c *Call) CallID() string { return c.callID }

// Header is the first value of the named header of the call's INVITE
// ("" when absent).
func (c *Call) Header(name string) string {
	if h := c.invite.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// RemoteUser is the user part of the far party: From of an incoming call,
// the request URI of an outgoing one.
func (c *Call) RemoteUser() string {
	if c.dir == Outgoing {
		return c.invite.Recipient.User
	}
	if f := c.invite.From(); f != nil {
		return f.Address.User
	}
	return ""
}

// RemoteName is the display name of an incoming call's caller.
func (c *Call) RemoteName() string {
	if f := c.invite.From(); f != nil && c.dir == Incoming {
		return f.DisplayName
	}
	return ""
}

// AutoAnswerRequested says whether the INVITE asked for auto-answer.
func (c *Call) AutoAnswerRequested() bool { return c.autoAnswer }

// State is the call's state now.
func (c *Call) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// EndReason says why an ended call ended ("" while it is live).
func (c *Call) EndReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endReason
}

// Status is the final SIP status of an outgoing call that was not
// answered (486, 603, 487…), 0 otherwise.
func (c *Call) Status() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// WaitState waits until the call is in one of states and returns it. A
// call that ends first returns ErrCallEnded (unless StateEnded was asked
// for).
func (c *Call) WaitState(ctx context.Context, states ...State) (State, error) {
	for {
		c.mu.Lock()
		st, ch := c.state, c.changed
		c.mu.Unlock()
		for _, s := range states {
			if s == st {
				return st, nil
			}
		}
		if st == StateEnded {
			return st, fmt.Errorf("%w (%s) while waiting for %v", ErrCallEnded, c.EndReason(), states)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, fmt.Errorf("testphone %s: call %s still %s, wanted %v: %w", c.phone.opts.User, c.callID, st, states, ctx.Err())
		}
	}
}

func (c *Call) setState(s State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == s || c.state == StateEnded {
		return
	}
	c.phone.log.Debug("call state", "call_id", c.callID, "from", c.state, "to", s, "reason", c.endReason)
	c.state = s
	close(c.changed)
	c.changed = make(chan struct{})
	c.phone.bump()
}

// end marks the call ended. Called once, by the call's goroutine.
func (c *Call) end(reason string) {
	c.mu.Lock()
	if c.state != StateEnded {
		c.endReason = reason
	}
	c.mu.Unlock()
	c.setState(StateEnded)
	c.phone.untrack(c)
	close(c.done)
}

func (c *Call) setStatus(code int) {
	c.mu.Lock()
	c.status = code
	c.mu.Unlock()
}

// Answer answers a ringing incoming call and waits for the ACK.
func (c *Call) Answer(ctx context.Context) error { return c.do(ctx, cmdAnswer, 0) }

// Reject refuses a ringing incoming call with a final status (486 Busy
// Here, 603 Decline…).
func (c *Call) Reject(ctx context.Context, code int) error {
	if code < 300 || code > 699 {
		return fmt.Errorf("testphone: reject with %d: want a final error status 300-699", code)
	}
	return c.do(ctx, cmdReject, code)
}

// Hangup ends the call the way its state asks: CANCEL while dialing, 486
// while ringing, BYE when answered. It returns once the call has ended.
func (c *Call) Hangup(ctx context.Context) error {
	if err := c.do(ctx, cmdHangup, 0); err != nil {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("testphone: hang up %s: %w", c.callID, ctx.Err())
	}
}

// Hold puts a connected call on hold (re-INVITE with a=sendonly).
func (c *Call) Hold(ctx context.Context) error { return c.do(ctx, cmdHold, 0) }

// Unhold resumes a held call (re-INVITE with a=sendrecv).
func (c *Call) Unhold(ctx context.Context) error { return c.do(ctx, cmdUnhold, 0) }

func (c *Call) do(ctx context.Context, kind cmdKind, code int) error {
	cmd := command{kind: kind, code: code, ctx: ctx, done: make(chan error, 1)}
	select {
	case c.cmds <- cmd:
	case <-c.done:
		return fmt.Errorf("testphone: %s %s: %w (%s)", cmdNames[kind], c.callID, ErrCallEnded, c.EndReason())
	case <-ctx.Done():
		return fmt.Errorf("testphone: %s %s: %w", cmdNames[kind], c.callID, ctx.Err())
	}
	select {
	case err := <-cmd.done:
		if err != nil {
			return fmt.Errorf("testphone: %s %s: %w", cmdNames[kind], c.callID, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("testphone: %s %s: %w", cmdNames[kind], c.callID, ctx.Err())
	}
}

// wrongState answers a command that does not fit the call's state.
func (c *Call) wrongState(cmd command) {
	cmd.done <- fmt.Errorf("%w (%s)", ErrInvalidState, c.State())
}
