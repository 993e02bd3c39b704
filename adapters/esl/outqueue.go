package esl

import (
	"context"
	"sync"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// outQueue decouples the state machine from the core: the state machine
// never blocks on a busy core (commands wait for the state machine to see
// their effect, and the core may be the one calling them), and events are
// never dropped.
type outQueue struct {
	mu   sync.Mutex
	q    []pbx.Event
	wake chan struct{}
}

func newOutQueue() *outQueue { return &outQueue{wake: make(chan struct{}, 1)} }

func (o *outQueue) push(ev pbx.Event) {
	o.mu.Lock()
	o.q = append(o.q, ev)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run forwards queued events in order until ctx is done.
func (o *outQueue) run(ctx context.Context, events chan<- pbx.Event) {
	for {
		o.mu.Lock()
		batch := o.q
		o.q = nil
		o.mu.Unlock()
		for i, ev := range batch {
			select {
			case events <- ev:
			case <-ctx.Done():
				// Keep what was not delivered, in order, for a later run.
				o.mu.Lock()
				o.q = append(batch[i:], o.q...)
				o.mu.Unlock()
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-o.wake:
		case <-ctx.Done():
			return
		}
	}
}
