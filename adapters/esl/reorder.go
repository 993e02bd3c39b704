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
// An event that directly follows the last one released (its sequence is
// one more) cannot have an earlier one still on its way, so it is released
// at once; events the adapter does not reorder (BACKGROUND_JOB, HEARTBEAT)
// pass through as markers of their sequence numbers, so that they leave no
// gap.
type reorderer struct {
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	held    eventHeap
	arrival uint64 // tie-breaker for events without Event-Sequence
	last    uint64 // Event-Sequence of the last event released, 0 before the first
	wake    chan struct{}
}

type heldEvent struct {
	ev      chEvent
	due     time.Time
	arrival uint64
	marker  bool // only its sequence number counts; it is not delivered
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
func (r *reorderer) push(ev chEvent) { r.hold(heldEvent{ev: ev}) }

// pass notes the sequence number of an event that is not reordered.
// A session's first events have no predecessor to follow and wait the
// whole window.
func (r *reorderer) pass(seq uint64) {
	if seq != 0 {
		r.hold(heldEvent{ev: chEvent{Seq: seq}, marker: true})
	}
}

func (r *reorderer) hold(e heldEvent) {
	r.mu.Lock()
	r.arrival++
	e.due, e.arrival = r.now().Add(r.window), r.arrival
	heap.Push(&r.held, e)
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
			head := r.held[0]
			follows := r.last != 0 && head.ev.Seq == r.last+1
			if wait := head.due.Sub(now); wait > 0 && !follows {
				next = wait
				break
			}
			heap.Pop(&r.held)
			if head.ev.Seq > r.last {
				r.last = head.ev.Seq
			}
			if !head.marker {
				ready = append(ready, head.ev)
			}
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
