package fakefs

import (
	"context"

	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// TablePhone is the desk phone of one user as the scenario table
// (internal/pbxtest) drives it: each act waits until the phone shows what
// the act needs, as a person waits for the ring before picking up.
type TablePhone struct {
	FS   *FS
	User string
}

var _ pbxtest.Phone = TablePhone{}

var tableShowing = map[pbxtest.Showing]Showing{
	pbxtest.Ringing: Ringing, pbxtest.Dialing: Dialing,
	pbxtest.Connected: Connected, pbxtest.Held: Held,
}

func (p TablePhone) Dial(_ context.Context, number string) error { return p.FS.Dial(p.User, number) }
func (p TablePhone) Hangup(context.Context) error                { return p.FS.Hangup(p.User) }

func (p TablePhone) Answer(ctx context.Context) error {
	return p.when(ctx, Ringing, func() error { return p.FS.Answer(p.User) })
}

func (p TablePhone) Hold(ctx context.Context) error {
	return p.when(ctx, Connected, func() error { return p.FS.Hold(p.User) })
}

func (p TablePhone) Unhold(ctx context.Context) error {
	return p.when(ctx, Held, func() error { return p.FS.Unhold(p.User) })
}

func (p TablePhone) Wait(ctx context.Context, want pbxtest.Showing) error {
	return p.FS.Wait(ctx, p.User, tableShowing[want])
}

// when waits until the phone shows st, then acts.
func (p TablePhone) when(ctx context.Context, st Showing, act func() error) error {
	if err := p.FS.Wait(ctx, p.User, st); err != nil {
		return err
	}
	return act()
}
