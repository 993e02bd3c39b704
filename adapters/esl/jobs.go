package esl

import (
	"sync"
	"time"
)

// jobTable matches BACKGROUND_JOB results to bgapi callers. The result is
// an event on the event connection and the Job-UUID comes in the reply on
// the command connection, so a result can arrive before its caller has
// registered: such results are kept for a while instead of being dropped.
type jobTable struct {
	mu      sync.Mutex
	waiting map[string]chan string
	early   map[string]earlyJob
	keep    time.Duration
	now     func() time.Time
}

type earlyJob struct {
	body string
	at   time.Time
}

func newJobTable() *jobTable {
	return &jobTable{
		waiting: make(map[string]chan string),
		early:   make(map[string]earlyJob),
		keep:    10 * time.Minute,
		now:     time.Now,
	}
}

// wait returns a channel that receives the job's result once.
func (t *jobTable) wait(id string) <-chan string {
	ch := make(chan string, 1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.early[id]; ok {
		delete(t.early, id)
		ch <- e.body
		return ch
	}
	t.waiting[id] = ch
	return ch
}

// forget drops a waiter that gave up.
func (t *jobTable) forget(id string) {
	t.mu.Lock()
	delete(t.waiting, id)
	t.mu.Unlock()
}

// complete records a job result from a BACKGROUND_JOB event.
func (t *jobTable) complete(id, body string) {
	if id == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if ch, ok := t.waiting[id]; ok {
		delete(t.waiting, id)
		ch <- body
		return
	}
	now := t.now()
	for k, e := range t.early {
		if now.Sub(e.at) > t.keep {
			delete(t.early, k)
		}
	}
	t.early[id] = earlyJob{body: body, at: now}
}
