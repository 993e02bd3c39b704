package pbxtest

import (
	"context"
	"errors"
	"fmt"

	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// SIPPhone is a row's Phone played by a test phone registered with a
// real PBX.
type SIPPhone struct{ P *testphone.Phone }

var _ Phone = SIPPhone{}

var showingOf = map[testphone.State]Showing{
	testphone.StateDialing: Dialing, testphone.StateRinging: Ringing,
	testphone.StateConnected: Connected, testphone.StateHeld: Held,
}

// Dial calls number through the registrar.
func (s SIPPhone) Dial(ctx context.Context, number string) error {
	_, err := s.P.Dial(ctx, number)
	return err
}

// call waits for a call of the phone in one of states.
func (s SIPPhone) call(ctx context.Context, states ...testphone.State) (*testphone.Call, error) {
	for {
		changed := s.P.Changed()
		for _, c := range s.P.Calls() {
			for _, st := range states {
				if c.State() == st {
					return c, nil
				}
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("phone %s has no call %v (calls: %s): %w", s.P.User(), states, s.describe(), ctx.Err())
		}
	}
}

func (s SIPPhone) describe() string {
	var out []string
	for _, c := range s.P.Calls() {
		out = append(out, c.State().String())
	}
	return fmt.Sprint(out)
}

// Answer picks up the ringing call.
func (s SIPPhone) Answer(ctx context.Context) error {
	c, err := s.call(ctx, testphone.StateRinging)
	if err != nil {
		return err
	}
	return c.Answer(ctx)
}

// Hangup ends a call that is not over, answered ones first.
func (s SIPPhone) Hangup(ctx context.Context) error {
	c, err := s.call(ctx, testphone.StateConnected, testphone.StateHeld, testphone.StateRinging, testphone.StateDialing)
	if err != nil {
		return err
	}
	if err := c.Hangup(ctx); err != nil && !errors.Is(err, testphone.ErrCallEnded) {
		return err
	}
	return nil
}

// Hold holds the connected call.
func (s SIPPhone) Hold(ctx context.Context) error {
	c, err := s.call(ctx, testphone.StateConnected)
	if err != nil {
		return err
	}
	return c.Hold(ctx)
}

// Unhold resumes the held call.
func (s SIPPhone) Unhold(ctx context.Context) error {
	c, err := s.call(ctx, testphone.StateHeld)
	if err != nil {
		return err
	}
	return c.Unhold(ctx)
}

// Wait returns once the phone shows want.
func (s SIPPhone) Wait(ctx context.Context, want Showing) error {
	for {
		changed := s.P.Changed()
		calls := s.P.Calls()
		if want == Idle && len(calls) == 0 {
			return nil
		}
		for _, c := range calls {
			if st, ok := showingOf[c.State()]; ok && st == want {
				return nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("phone %s does not show %s (calls: %s): %w", s.P.User(), want, s.describe(), ctx.Err())
		}
	}
}

// HangupAll ends every call of the phone (a rig's Settle).
func (s SIPPhone) HangupAll(ctx context.Context) error {
	var errs []error
	for _, c := range s.P.Calls() {
		if err := c.Hangup(ctx); err != nil && !errors.Is(err, testphone.ErrCallEnded) {
			errs = append(errs, err)
		}
	}
	if err := s.Wait(ctx, Idle); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

var _ HeaderPhone = SIPPhone{}

// RingingHeader is a header of the ringing call's INVITE.
func (s SIPPhone) RingingHeader(ctx context.Context, name string) (string, error) {
	c, err := s.call(ctx, testphone.StateRinging)
	if err != nil {
		return "", err
	}
	return c.Header(name), nil
}
