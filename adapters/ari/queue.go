package ari

import (
	"context"
	"sync"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// queue is an unbounded FIFO. The websocket reader and the state machine
// push into it without ever blocking, so a busy core slows nothing down
// and nothing is dropped; one goroutine drains it.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	signal chan struct{}
}

func newQueue[T any]() *queue[T] { return &queue[T]{signal: make(chan struct{}, 1)} }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// pop waits for the next item or for ctx to end.
func (q *queue[T]) pop(ctx context.Context) (T, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			v := q.items[0]
			var zero T
			q.items[0] = zero
			q.items = q.items[1:]
			q.mu.Unlock()
			return v, true
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-ctx.Done():
			var zero T
			return zero, false
		}
	}
}

func (q *queue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// deliver forwards queued pbx events to the core until ctx ends. Sending
// may block while the core is busy; that is the contract's back-pressure.
func deliver(ctx context.Context, q *queue[pbx.Event], events chan<- pbx.Event) {
	for {
		ev, ok := q.pop(ctx)
		if !ok {
			return
		}
		select {
		case events <- ev:
		case <-ctx.Done():
			return
		}
	}
}
