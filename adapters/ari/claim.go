package ari

import (
	"fmt"
	"slices"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// What every command does before it asks Asterisk for anything: find the
// extension's connection, and for the commands that change it in several
// REST steps, claim it and check its state. All of it runs with a.mu held.

// errNotOwned is the reason every Stasis-only service gives for a call the
// adapter only observes.
func errNotOwned(op string, c pbx.CallRef) error {
	return fmt.Errorf("ari: %s %s: %w: call is not under the bridge's Stasis application; route it through the csta-bridge dialplan snippet", op, c, pbx.ErrNotSupported)
}

// errState is the refusal of a command the connection's state does not allow.
func errState(op string, c pbx.CallRef, s pbx.State) error {
	return fmt.Errorf("ari: %s %s: %w (state %s)", op, c, pbx.ErrInvalidState, s)
}

// legOf finds the live leg of c. Called with a.mu held.
func (a *Adapter) legOf(op string, c pbx.CallRef) (*leg, error) {
	if a.client == nil {
		return nil, fmt.Errorf("ari: %s %s: %w", op, c, pbx.ErrUnavailable)
	}
	l := a.legs[c]
	if l == nil {
		return nil, fmt.Errorf("ari: %s %s: %w", op, c, pbx.ErrNoSuchCall)
	}
	return l, nil
}

// claimReq names a connection a command claims and the states it accepts
// the connection in.
type claimReq struct {
	call   pbx.CallRef
	states []pbx.State
}

// claimLegs is the preamble of the commands that change a connection in
// several REST steps with a.mu released in between (answer, hold, retrieve,
// the transfers): find each leg, claim it, check its state. The claim lasts
// until the command's last step, so a second command on the same connection
// meanwhile is refused rather than interleaved with the first, whose steps
// it would undo.
//
// The refusals come in one order for every command, because the core turns
// them into different CSTA errors: a missing connection first
// (ErrUnavailable, ErrNoSuchCall), then one another command holds, then one
// in the wrong state (both ErrInvalidState); among refusals of one kind,
// the first in reqs. A refused command claims nothing.
//
// Called with a.mu held. release gives the claims back; it takes a.mu
// itself, so the caller defers it at once, before any deferred Unlock.
func (a *Adapter) claimLegs(op string, reqs ...claimReq) (ls []*leg, release func(), err error) {
	ls = make([]*leg, len(reqs))
	for i, r := range reqs {
		if ls[i], err = a.legOf(op, r.call); err != nil {
			return nil, nil, err
		}
	}
	unclaim := func(ls []*leg) {
		for _, l := range ls {
			l.busy = false
		}
	}
	for i, l := range ls {
		if l.busy {
			unclaim(ls[:i])
			return nil, nil, fmt.Errorf("ari: %s %s: %w: another request on this call is in progress", op, reqs[i].call, pbx.ErrInvalidState)
		}
		l.busy = true
	}
	for i, l := range ls {
		if !slices.Contains(reqs[i].states, l.state) {
			unclaim(ls)
			return nil, nil, errState(op, reqs[i].call, l.state)
		}
	}
	return ls, func() {
		a.mu.Lock()
		unclaim(ls)
		a.mu.Unlock()
	}, nil
}

// claimLeg is claimLegs for a command on one connection.
func (a *Adapter) claimLeg(op string, c pbx.CallRef, states ...pbx.State) (*leg, func(), error) {
	ls, release, err := a.claimLegs(op, claimReq{call: c, states: states})
	if err != nil {
		return nil, nil, err
	}
	return ls[0], release, nil
}

// farOf is the other member of an owned leg's call. A member the adapter
// let go of (a channel replaced by AnswerCall's swap, a far party continued
// by a transfer) is no party to the call any more, even while Asterisk has
// not yet reported it gone. Called with a.mu held.
func (a *Adapter) farOf(l *leg) (string, bool) {
	if l.call == nil {
		return "", false
	}
	far := ""
	for _, o := range l.call.others(l.ch.id) {
		if och := a.chans[o]; och != nil && och.released {
			continue
		}
		if far != "" {
			return "", false
		}
		far = o
	}
	return far, far != ""
}

// What every command does after its requests to Asterisk: the call may have
// ended while they were under way (a hangup is an event, and events are
// handled while a command waits for Asterisk). A connection that ended has
// been reported cleared, so nothing may be reported about it afterwards,
// and the command must not claim to have changed it.

// errEnded is the answer of a command whose connection ended (or whose far
// party hung up) while its requests were under way.
func errEnded(op string, c pbx.CallRef) error {
	return fmt.Errorf("ari: %s %s: %w: the call ended while the request was under way", op, c, pbx.ErrNoSuchCall)
}

// live says whether l is still the connection it was claimed as: legs leave
// a.legs when their channel is destroyed (and are never put back), and a
// leg that has left may report nothing more. Called with a.mu held.
func (a *Adapter) live(l *leg) bool { return l != nil && a.legs[l.ref] == l }

// stepFailed is wrap for a failed REST step of a command on l, whose far
// party is far ("" if none). When the call ended meanwhile, Asterisk's
// refusal (404 no such channel, 400 channel not found, 422 not in that
// bridge) says nothing the CTI client can use: the connection is gone.
func (a *Adapter) stepFailed(op string, c pbx.CallRef, l *leg, far string, err error) error {
	a.mu.Lock()
	ended := !a.live(l) || (far != "" && a.ended.has(far))
	a.mu.Unlock()
	if ended {
		return fmt.Errorf("%w (asterisk: %v)", errEnded(op, c), err)
	}
	return wrap(op, c, err)
}
