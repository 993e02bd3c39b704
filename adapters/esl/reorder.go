package esl

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// reorderer puts events back into FreeSWITCH's order. eslgo starts one
// goroutine per event, so two events sent microseconds apart can reach the
// adapter in either order. Every event is held for a short window and the
// held events are released by Event-Sequence (a global counter of the
// FreeSWITCH core). Filtered subscriptions leave gaps in the sequence, so a
// gap cannot be waited for; the window bounds how long we wait instead.
type reorderer struct {
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	held    eventHeap
	arrival uint64 // tie-breaker for events without Event-Sequence
	wake    chan struct{}
}

type heldEvent struct {
	ev      chEvent
	due     time.Time
	arrival uint64
}

type eventHeap []heldEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].ev.Seq != h[j].ev.Seq {
		return h[i].ev.Seq < h[j].ev.Seq
	}
	return h[i].arrival < h[j].arrival
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(heldEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newReorderer(window time.Duration) *reorderer {
	return &reorderer{window: window, now: time.Now, wake: make(chan struct{}, 1)}
}

// push never blocks: it is called from eslgo's listener goroutines.
func (r *reorderer) push(ev chEvent) {
	r.mu.Lock()
	r.arrival++
	heap.Push(&r.held, heldEvent{ev: ev, due: r.now().Add(r.window), arrival: r.arrival})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run delivers events in order on out until ctx is done.
func (r *reorderer) run(ctx context.Context, out chan<- chEvent) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var ready []chEvent
		var next time.Duration = -1
		r.mu.Lock()
		now := r.now()
		for r.held.Len() > 0 {
			if wait := r.held[0].due.Sub(now); wait > 0 {
				next = wait
				break
			}
			ready = append(ready, heap.Pop(&r.held).(heldEvent).ev)
		}
		r.mu.Unlock()
		for _, ev := range ready {
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
		if len(ready) > 0 {
			continue
		}
		if next >= 0 {
			timer.Reset(next)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}
