package fakefs

import (
	"context"
	"errors"
	"fmt"
)

// Showing is what a phone shows for one of its calls.
type Showing int

// The states of a phone's call.
const (
	Dialing   Showing = iota + 1 // it placed the call, not answered yet
	Ringing                      // a call rings
	Connected                    // answered (a PBX-side hold too: the phone does not know)
	Held                         // the phone itself holds it
)

func (s Showing) String() string {
	return [...]string{"none", "dialing", "ringing", "connected", "held"}[s]
}

func (c *Chan) showing() Showing {
	switch {
	case c.answer != "answered" && c.dir == "inbound":
		return Dialing
	case c.answer != "answered":
		return Ringing
	case c.heldByPhone:
		return Held
	}
	return Connected
}

// ErrNoCall: the phone has no call in the state asked for.
var ErrNoCall = errors.New("fakefs: the phone has no such call")

// Dial: the user's phone calls number (an INVITE to FreeSWITCH, which
// runs the dialplan for it).
func (f *FS) Dial(user, number string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.directoryUser(user) {
		return fmt.Errorf("fakefs: %s is no phone of the directory", user)
	}
	c := f.newChan(&Chan{User: user, name: f.sofiaName(user, false), dir: "inbound",
		callerNum: user, callerName: user, dest: number})
	f.callState(c, "RINGING")
	f.route(c, number)
	return nil
}

// phoneCall is the user's call showing one of want, oldest first for
// Ringing (the call that rang first is picked up), newest otherwise.
func (f *FS) phoneCall(user string, want ...Showing) *Chan {
	var found *Chan
	for _, u := range f.order {
		c := f.chans[u]
		if c.User != user || c.ended {
			continue
		}
		for _, w := range want {
			if c.showing() == w {
				if w == Ringing && found == nil {
					return c
				}
				found = c
			}
		}
	}
	return found
}

// Answer: the user picks up the ringing call.
func (f *FS) Answer(user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.phoneCall(user, Ringing)
	if c == nil {
		return fmt.Errorf("%w: %s has no ringing call", ErrNoCall, user)
	}
	f.answerLeg(c)
	return nil
}

// Hangup: the user hangs up its newest call, answered ones first; a
// ringing call is refused (486 Busy Here: USER_BUSY), a call still
// dialling is cancelled (ORIGINATOR_CANCEL).
func (f *FS) Hangup(user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.phoneCall(user, Connected, Held)
	if c == nil {
		c = f.phoneCall(user, Dialing)
	}
	if c == nil {
		if c = f.phoneCall(user, Ringing); c != nil {
			f.hangup(c, "USER_BUSY")
			return nil
		}
		return fmt.Errorf("%w: %s has no call", ErrNoCall, user)
	}
	cause := "NORMAL_CLEARING"
	if c.answer != "answered" {
		cause = "ORIGINATOR_CANCEL"
	}
	f.hangup(c, cause)
	return nil
}

// Hold and Unhold: the user holds or resumes its call (a re-INVITE
// sendonly / sendrecv).
func (f *FS) Hold(user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.phoneCall(user, Connected)
	if c == nil {
		return fmt.Errorf("%w: %s has no connected call", ErrNoCall, user)
	}
	c.heldByPhone = true
	if c.held {
		f.notifyLocked()
		return nil
	}
	f.hold(c)
	return nil
}

func (f *FS) Unhold(user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.phoneCall(user, Held)
	if c == nil {
		return fmt.Errorf("%w: %s has no held call", ErrNoCall, user)
	}
	c.heldByPhone = false
	f.unhold(c, true)
	f.notifyLocked()
	return nil
}

// Shows lists what the user's phone shows, one entry per call.
func (f *FS) Shows(user string) []Showing {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.showsLocked(user)
}

// Wait returns once the user's phone has a call showing want, or (want
// 0) no call at all.
func (f *FS) Wait(ctx context.Context, user string, want Showing) error {
	for {
		ch := f.Changed()
		shows := f.Shows(user)
		if want == 0 && len(shows) == 0 {
			return nil
		}
		for _, s := range shows {
			if s == want {
				return nil
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakefs: phone %s shows %v, not %v: %w", user, shows, want, ctx.Err())
		}
	}
}
