package actionurl

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Defaults for Options and Job fields left zero.
const (
	DefaultQueueSize    = 256
	DefaultMaxQueued    = 65536
	DefaultMaxInFlight  = 64
	DefaultTimeout      = 2 * time.Second
	DefaultRetryBackoff = 250 * time.Millisecond
	DefaultUserAgent    = "csta-bridge"
)

// Drop reasons passed to Observer.Dropped.
const (
	DropQueueFull = "queue-full" // the key's queue was full; the oldest queued job gave way
	DropClosed    = "closed"     // Enqueue after Close
	DropShutdown  = "shutdown"   // Close's deadline passed before the job was delivered
)

// Job is one action URL GET.
type Job struct {
	Key       string        // ordering key: the extension; jobs with the same key are delivered in order
	Event     string        // setting name, e.g. "action_incoming_url" (logs, metrics)
	URL       string        // already expanded
	Timeout   time.Duration // per attempt; 0 = 2s
	Retries   int           // extra attempts on network error or 5xx (not on 4xx)
	LocalAddr string        // source IP for the GET ("" = any); the extension's own listen IP
	CSTAID    int           // for logs, 0 if none
	// TLS for an https URL: the extension's trust and client certificate;
	// nil = Options.TLSConfig. Jobs should share one *tls.Config per
	// setting: each distinct one gets its own connections.
	TLS *tls.Config
}

// Observer is the metrics hook; it must be cheap and non-blocking. Every job handed to Enqueue produces
// exactly one call: Delivered with its final outcome, or Dropped.
type Observer interface {
	// Delivered reports a job's final outcome, once per job. status is the last HTTP status received (0 if
	// none); err is nil on success (2xx or 3xx). elapsed runs from the first attempt to the outcome,
	// retries and backoff included.
	Delivered(j Job, status int, elapsed time.Duration, err error)
	// Dropped reports a job that was not (completely) delivered: reason is DropQueueFull, DropClosed or
	// DropShutdown.
	Dropped(j Job, reason string)
}

// Options configure a Notifier. Zero values select the defaults.
type Options struct {
	Logger    *slog.Logger // nil = discard
	QueueSize int          // per key; default 256
	Observer  Observer     // may be nil

	// MaxInFlight caps concurrent deliveries over all keys, and so goroutines and sockets; default 64.
	MaxInFlight int
	// RetryBackoff is the delay before the first retry, doubled per retry (with jitter) up to 5s;
	// default 250ms.
	RetryBackoff time.Duration
	// MaxQueued caps queued jobs over all keys, so 10,000 extensions with a
	// dead CTI server cannot queue 10,000 × QueueSize jobs; default 65536.
	MaxQueued int
	// UserAgent is sent with every GET; default "csta-bridge".
	UserAgent string
	// TLSConfig for https action URLs; nil = system roots.
	TLSConfig *tls.Config
}

// Notifier delivers action URL jobs: per key strictly in order, different keys in parallel, with bounded
// per-key queues, at most MaxInFlight deliveries at a time and no goroutine for idle keys.
type Notifier struct {
	log          *slog.Logger
	obs          Observer
	queueSize    int
	maxQueued    int
	maxInFlight  int
	retryBackoff time.Duration
	userAgent    string
	tlsConfig    *tls.Config

	// stop is cancelled when Close gives up waiting; it aborts deliveries and backoff waits.
	stop       context.Context
	stopCancel context.CancelFunc
	wg         sync.WaitGroup // workers

	mu      sync.Mutex
	keys    map[string]*keyQueue // keys with queued jobs or a job in flight
	ready   fifo[*keyQueue]      // keys with queued jobs and no job in flight, in turn order
	workers int
	pending int // queued + in flight
	closed  bool
	drained chan struct{} // closed once closed && pending == 0
	isDrain bool

	clientsMu sync.Mutex
	clients   map[clientKey]*http.Client

	downMu sync.Mutex
	down   map[string]time.Time // sinks that refused connections, until when they are not dialled
}

type keyState uint8

const (
	keyIdle  keyState = iota // no job in flight, not in ready
	keyReady                 // in ready
	keyBusy                  // a worker is delivering one of its jobs
)

type keyQueue struct {
	key   string
	jobs  fifo[Job]
	state keyState
}

// New returns a running Notifier. Call Close to stop it.
func New(opts Options) *Notifier {
	n := &Notifier{
		log:          opts.Logger,
		obs:          opts.Observer,
		queueSize:    opts.QueueSize,
		maxInFlight:  opts.MaxInFlight,
		retryBackoff: opts.RetryBackoff,
		userAgent:    opts.UserAgent,
		tlsConfig:    opts.TLSConfig,
		keys:         make(map[string]*keyQueue),
		drained:      make(chan struct{}),
		clients:      make(map[clientKey]*http.Client),
		down:         make(map[string]time.Time),
		maxQueued:    opts.MaxQueued,
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.obs == nil {
		n.obs = nopObserver{}
	}
	if n.queueSize <= 0 {
		n.queueSize = DefaultQueueSize
	}
	if n.maxQueued <= 0 {
		n.maxQueued = DefaultMaxQueued
	}
	if n.maxInFlight <= 0 {
		n.maxInFlight = DefaultMaxInFlight
	}
	if n.retryBackoff <= 0 {
		n.retryBackoff = DefaultRetryBackoff
	}
	if n.userAgent == "" {
		n.userAgent = DefaultUserAgent
	}
	n.stop, n.stopCancel = context.WithCancel(context.Background())
	return n
}

// Enqueue queues j and never blocks. It returns false if j was dropped: the Notifier is closed, or
// MaxQueued jobs are pending and j's key has none queued it could give up.
// When the key's queue is full the oldest queued job of that key is dropped instead (reported to the
// Observer as DropQueueFull) and j is queued: the newest events describe the current call state.
func (n *Notifier) Enqueue(j Job) bool {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.dropped(j, DropClosed)
		return false
	}
	q := n.keys[j.Key]
	if q == nil {
		q = &keyQueue{key: j.Key}
		n.keys[j.Key] = q
	}
	var oldest Job
	overflow := q.jobs.len() >= n.queueSize || (n.pending >= n.maxQueued && q.jobs.len() > 0)
	if !overflow && n.pending >= n.maxQueued {
		// Full everywhere and nothing of this key to give up: the new job goes.
		if q.jobs.len() == 0 && q.state == keyIdle {
			delete(n.keys, j.Key)
		}
		n.mu.Unlock()
		n.dropped(j, DropQueueFull)
		return false
	}
	if overflow {
		oldest = q.jobs.pop()
		n.pending--
	}
	q.jobs.push(j)
	n.pending++
	if q.state == keyIdle {
		q.state = keyReady
		n.ready.push(q)
		if n.workers < n.maxInFlight {
			n.workers++
			n.wg.Add(1)
			go n.work()
		}
	}
	n.mu.Unlock()
	if overflow {
		n.dropped(oldest, DropQueueFull)
	}
	return true
}

// Pending returns the number of jobs queued or in flight.
func (n *Notifier) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pending
}

// Close stops accepting jobs and delivers what is queued until ctx is done. Then it aborts deliveries in
// flight, drops the rest (DropShutdown) and returns an error wrapping ctx.Err(). Either way no goroutine of
// the Notifier is left when Close returns. Close may be called more than once.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	n.closed = true
	n.checkDrainedLocked()
	n.mu.Unlock()

	var err error
	select {
	case <-n.drained:
	case <-ctx.Done():
		if left := n.abort(); left > 0 {
			err = fmt.Errorf("actionurl: %d action URLs not delivered: %w", left, ctx.Err())
		}
	}
	n.wg.Wait()
	n.stopCancel()
	n.clientsMu.Lock()
	for _, c := range n.clients {
		c.CloseIdleConnections()
	}
	n.clientsMu.Unlock()
	return err
}

// abort cancels deliveries in flight and drops every queued job. It returns how many jobs were pending.
func (n *Notifier) abort() int {
	n.stopCancel()
	n.mu.Lock()
	left := n.pending
	var dropped []Job
	for key, q := range n.keys {
		for q.jobs.len() > 0 {
			dropped = append(dropped, q.jobs.pop())
			n.pending--
		}
		if q.state != keyBusy {
			q.state = keyIdle
			delete(n.keys, key)
		}
	}
	n.ready = fifo[*keyQueue]{}
	n.checkDrainedLocked()
	n.mu.Unlock()
	// One line for the lot: a shutdown behind a dead CTI server may drop thousands.
	if len(dropped) > 0 {
		n.log.Warn("dropping queued action URLs at shutdown", slog.Int("count", len(dropped)))
	}
	for _, j := range dropped {
		n.debug("action URL dropped", j, slog.String("reason", DropShutdown))
		n.obs.Dropped(j, DropShutdown)
	}
	return left
}

// work delivers jobs until no key is ready. Taking one job per turn and putting the key back at the end
// of ready keeps keys fair and a key's jobs in order (a key is never ready while one of its jobs is in
// flight).
func (n *Notifier) work() {
	defer n.wg.Done()
	n.mu.Lock()
	for n.ready.len() > 0 {
		q := n.ready.pop()
		j := q.jobs.pop()
		q.state = keyBusy
		n.mu.Unlock()

		n.deliver(j)

		n.mu.Lock()
		n.pending--
		if q.jobs.len() > 0 {
			q.state = keyReady
			n.ready.push(q)
		} else {
			q.state = keyIdle
			delete(n.keys, q.key)
		}
		n.checkDrainedLocked()
	}
	n.workers--
	n.mu.Unlock()
}

func (n *Notifier) checkDrainedLocked() {
	if n.closed && n.pending == 0 && !n.isDrain {
		n.isDrain = true
		close(n.drained)
	}
}

func (n *Notifier) dropped(j Job, reason string) {
	n.log.Warn("action URL dropped", jobAttrs(j, slog.String("reason", reason))...)
	n.obs.Dropped(j, reason)
}

// debug logs a job at Debug level. It checks the level first: building the
// attributes (Redact parses the URL) for every delivered GET cost 6 % of
// the action URL path when Debug was off.
func (n *Notifier) debug(msg string, j Job, extra ...any) {
	if n.log.Enabled(context.Background(), slog.LevelDebug) {
		n.log.Debug(msg, jobAttrs(j, extra...)...)
	}
}

func jobAttrs(j Job, extra ...any) []any {
	attrs := make([]any, 0, 5+len(extra))
	attrs = append(attrs, slog.String("event", j.Event), slog.String("key", j.Key))
	if j.CSTAID != 0 {
		attrs = append(attrs, slog.Int("csta_id", j.CSTAID))
	}
	attrs = append(attrs, slog.String("url", Redact(j.URL)))
	return append(attrs, extra...)
}

type nopObserver struct{}

func (nopObserver) Delivered(Job, int, time.Duration, error) {}
func (nopObserver) Dropped(Job, string)                      {}

// fifo is a slice-backed queue; pop is O(1) and the space of popped items is reused.
type fifo[T any] struct {
	buf  []T
	head int
}

func (f *fifo[T]) len() int { return len(f.buf) - f.head }

func (f *fifo[T]) push(v T) {
	if f.head > 0 && len(f.buf) == cap(f.buf) && f.head >= len(f.buf)/2 {
		k := copy(f.buf, f.buf[f.head:])
		clear(f.buf[k:])
		f.buf, f.head = f.buf[:k], 0
	}
	f.buf = append(f.buf, v)
}

func (f *fifo[T]) pop() T {
	var zero T
	v := f.buf[f.head]
	f.buf[f.head] = zero
	f.head++
	if f.head == len(f.buf) {
		f.buf, f.head = f.buf[:0], 0
	}
	return v
}
