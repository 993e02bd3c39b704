package bridge

// Standby bridges: several bridges run with the same config and a Lease
// decides which one is active. The standby binds its listeners (so that
// /-/ready can say it is the standby) but does not talk to the PBX; when it
// gets the lease it starts the adapter, whose first sync takes the live
// calls over silently by the csta_ids stored on the PBX's channels, as after
// a restart. An active bridge that loses its lease stops talking to the PBX
// at once and Run returns an error: its call state is stale from then on,
// so the service manager restarts it as a fresh standby.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Lease is the lock on being the active bridge. The core knows nothing of
// how it is kept (NATS key-value in internal/lease).
type Lease interface {
	// Acquire blocks until this bridge holds the lease, or ctx ends.
	Acquire(ctx context.Context) error
	// Lost is closed when a held lease is lost (not renewed in time).
	Lost() <-chan struct{}
	// Release gives the lease up, if held, so that a standby takes over at
	// once, and ends the Lease: a later or running Acquire fails.
	Release(ctx context.Context) error
	// Holder describes who holds the lease now, for the standby's /-/ready.
	Holder() string
}

// ErrLeaseLost ends Run when another bridge became the active one.
var ErrLeaseLost = errors.New("lost the active-bridge lease: another bridge is active now")

// awaitLease starts the PBX adapter once this bridge holds the lease and
// stops it when the lease is lost.
func (a *App) awaitLease(ctx context.Context, l Lease) {
	if err := l.Acquire(ctx); err != nil {
		a.mu.Lock() // Stop releases the lease, which ends Acquire: not a failure
		stopped := a.stopped
		a.mu.Unlock()
		if ctx.Err() == nil && !stopped {
			a.log.Error("could not acquire the active-bridge lease", "err", err)
			a.leaseEnd(fmt.Errorf("lease: %w", err))
		}
		return
	}
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	a.active.Store(true)
	_ = a.sb.do(ctx, a.sb.setup)
	a.startPBX(a.currentPBX())
	a.mu.Unlock()
	a.log.Info("this bridge is the active one now")
	select {
	case <-ctx.Done():
	case <-l.Lost():
		a.log.Error("lost the active-bridge lease; no longer talking to the PBX")
		a.active.Store(false)
		a.mu.Lock()
		if a.pbxStop != nil {
			a.pbxStop()
		}
		a.mu.Unlock()
		a.leaseEnd(ErrLeaseLost)
	}
}

func (a *App) leaseEnd(err error) {
	select {
	case a.leaseErr <- err:
	default:
	}
}

// LeaseErr delivers why the bridge can no longer be the active one (lease
// lost, or never obtainable); Run stops the bridge on it.
func (a *App) LeaseErr() <-chan error { return a.leaseErr }

// Active reports whether this bridge talks to the PBX: always without a
// Lease, only while it holds it with one.
func (a *App) Active() bool { return a.active.Load() }

// releaseLease hands the lease over at Stop, after the adapter stopped.
func (a *App) releaseLease(ctx context.Context) error {
	if a.opts.Lease == nil {
		return nil
	}
	a.active.Store(false)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.opts.Lease.Release(ctx); err != nil {
		return fmt.Errorf("lease release: %w", err)
	}
	return nil
}

// registerActive exports csta_bridge_active for bridges with a Lease: 1
// while this one holds it, 0 on the standby (alert when the sum over the
// bridges is not 1).
func (a *App) registerActive() {
	if a.opts.Lease == nil {
		return
	}
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "active",
		Help: "1 while this bridge holds the active-bridge lease, 0 while it is the standby."},
		func() float64 {
			if a.active.Load() {
				return 1
			}
			return 0
		}))
}
