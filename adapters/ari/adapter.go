package ari

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

var (
	_ pbx.PBX        = (*Adapter)(nil)
	_ pbx.Tagger     = (*Adapter)(nil)
	_ pbx.DTMFSender = (*Adapter)(nil)
)

// healthInterval is how often a connected session checks Asterisk over REST:
// x/net/websocket has no ping, so a half-open connection would otherwise
// only be noticed by TCP keepalive.
const healthInterval = 20 * time.Second

// Adapter is the Asterisk PBX adapter.
type Adapter struct {
	opts Options
	log  *slog.Logger
	tr   transport

	healthEvery time.Duration // healthInterval; shorter in tests and clusters
	inCluster   bool          // one node of several: endpoints of the others are normal

	running atomic.Bool
	ready   atomic.Bool
	out     *queue[pbx.Event]
	extsSig chan struct{}
	bgCtx   context.Context // Run's context, for work the event handler starts
	bg      sync.WaitGroup

	// Counters for operators and tests.
	badFrames     atomic.Int64 // frames that were not valid events
	unknownEvents atomic.Int64 // valid events of types the adapter ignores
	swept         sweepCounts  // leftovers of ended calls removed (sweep.go)

	mu         sync.Mutex
	client     ari.Client // non-nil while a session is up
	exts       map[string]pbx.Extension
	byEndpoint map[string]string // endpointKey → extension name
	subscribed map[string]bool   // endpoints subscribed in this session
	chans      map[string]*channel
	legs       map[pbx.CallRef]*leg
	calls      map[string]*call
	callOf     map[string]*call               // channel id → owned call
	makeCalls  map[string]pbx.MakeCallRequest // device channel id → request
	swaps      map[string]*leg                // replacement channel id → leg (AnswerCall)
	waiters    map[string][]chan struct{}     // channel id → woken on any change
	registered map[string]bool                // ext → device registered
	ended      recentSet                      // channels destroyed lately
	pbxID      string                         // entity id + startup time of the Asterisk we talk to
	seq        atomic.Uint64
}

// New validates opts and returns an adapter. It does no I/O.
func New(opts Options) (*Adapter, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("ari: %w", err)
	}
	opts.setDefaults()
	a := newAdapter(opts, opts.Logger.With("pbx", "ari"))
	a.tr = nativeTransport{&a.opts}
	return a, nil
}

// newAdapter builds an adapter on opts (defaults set) with no transport yet.
func newAdapter(opts Options, log *slog.Logger) *Adapter {
	return &Adapter{
		opts:        opts,
		log:         log,
		healthEvery: healthInterval,
		out:         newQueue[pbx.Event](),
		extsSig:     make(chan struct{}, 1),
		bgCtx:       context.Background(),
		exts:        map[string]pbx.Extension{},
		byEndpoint:  map[string]string{},
		subscribed:  map[string]bool{},
		chans:       map[string]*channel{},
		legs:        map[pbx.CallRef]*leg{},
		calls:       map[string]*call{},
		callOf:      map[string]*call{},
		makeCalls:   map[string]pbx.MakeCallRequest{},
		swaps:       map[string]*leg{},
		waiters:     map[string][]chan struct{}{},
		registered:  map[string]bool{},
	}
}

// Ready reports whether the adapter is connected to Asterisk right now.
func (a *Adapter) Ready() bool { return a.ready.Load() }

// Counters are totals since New, for metrics.
type Counters struct {
	BadFrames     int64 // websocket frames that were not valid ARI events
	UnknownEvents int64 // valid events of types the adapter does not handle
}

// Counters returns the adapter's event counters.
func (a *Adapter) Counters() Counters {
	return Counters{BadFrames: a.badFrames.Load(), UnknownEvents: a.unknownEvents.Load()}
}

// SetExtensions replaces the mapped extensions. It does not block: new
// endpoint subscriptions are made by the running session.
func (a *Adapter) SetExtensions(exts []pbx.Extension) {
	a.mu.Lock()
	a.exts = make(map[string]pbx.Extension, len(exts))
	a.byEndpoint = make(map[string]string, len(exts))
	for _, e := range exts {
		a.exts[e.Name] = e
		if e.Endpoint != "" {
			a.byEndpoint[endpointKey(e.Endpoint)] = e.Name
		}
	}
	a.mu.Unlock()
	select {
	case a.extsSig <- struct{}{}:
	default:
	}
}

func (a *Adapter) currentClient() ari.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client
}

// emit queues an event for the core. Callers hold a.mu so that events leave
// in the order the state changed.
func (a *Adapter) emit(ev pbx.Event) { a.out.push(ev) }

// Run connects, keeps the connection and delivers events until ctx ends.
func (a *Adapter) Run(ctx context.Context, events chan<- pbx.Event) error {
	if events == nil {
		return errors.New("ari: Run needs an events channel")
	}
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("ari: Run called twice")
	}
	defer a.running.Store(false)
	a.mu.Lock()
	a.bgCtx = ctx
	a.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); deliver(ctx, a.out, events) }()
	defer func() {
		a.bg.Wait()
		wg.Wait()
	}()

	// One client for the adapter's life: it holds the HTTP connection pool.
	cl, err := a.tr.client()
	if err != nil {
		return fmt.Errorf("ari: %w", err)
	}
	backoff := a.opts.MinBackoff
	linkDown := false
	for {
		start := time.Now()
		wasUp, err := a.session(ctx, cl)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if wasUp || !linkDown {
			a.emit(pbx.Event{Kind: pbx.EventLink, Up: false, Reason: err.Error()})
			linkDown = true
		}
		if wasUp {
			a.log.Warn("ARI connection lost", "err", err, "after", time.Since(start).Round(time.Millisecond))
			if time.Since(start) > a.opts.MaxBackoff {
				backoff = a.opts.MinBackoff
			}
		} else {
			a.log.Warn("cannot connect to ARI", "url", a.tr.where(), "err", err, "retry_in", backoff)
		}
		t := time.NewTimer(jitter(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = nextBackoff(backoff, a.opts.MaxBackoff)
	}
}

// jitter is the wait before a reconnect attempt whose nominal delay is d: a
// random time in [d/2, d], so several bridges that lost the same Asterisk
// do not all come back at the same instant. It never exceeds d, which is
// what keeps MaxBackoff a bound on the time between two attempts.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// nextBackoff is the nominal delay that follows d: doubled, capped at hi
// (without overflowing, however large hi is).
func nextBackoff(d, hi time.Duration) time.Duration {
	if d > hi/2 {
		return hi
	}
	return d * 2
}

// session runs one connection: dial, subscribe, resync, then read events
// until something fails. wasUp says whether it got as far as EventSync.
func (a *Adapter) session(ctx context.Context, cl ari.Client) (wasUp bool, err error) {
	// A REST request first: it gives a clear reason (401, connection
	// refused) where the websocket handshake only says "bad status".
	if err := a.restWith(ctx, cl, func(c ari.Client) error { _, err := c.Asterisk().Info(nil); return err }); err != nil {
		if st := httpStatus(err); st == 401 || st == 403 {
			return false, fmt.Errorf("ARI refused the credentials of user %q (HTTP %d): check ari.conf", a.opts.Username, st)
		}
		return false, err
	}
	feed, err := a.tr.events(ctx)
	if err != nil {
		return false, err
	}
	defer feed.close()

	frames := newQueue[[]byte]()
	readErr := make(chan error, 1)
	go func() { readErr <- feed.run(frames.push) }()

	a.mu.Lock()
	a.client = cl
	a.subscribed = map[string]bool{}
	a.mu.Unlock()
	defer func() {
		a.ready.Store(false)
		a.mu.Lock()
		a.client = nil
		a.mu.Unlock()
	}()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := a.resync(sctx); err != nil {
		return false, fmt.Errorf("resync: %w", err)
	}
	a.sweep(sctx)
	a.ready.Store(true)
	a.emit(pbx.Event{Kind: pbx.EventLink, Up: true})
	a.log.Info("ARI connected", "url", a.tr.where(), "application", a.opts.Application)

	health := time.NewTicker(a.healthEvery)
	defer health.Stop()
	fatal := make(chan error, 1)
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-readErr:
			// Frames read before the failure are still handled, in order.
			for frames.len() > 0 {
				f, _ := frames.pop(ctx)
				a.handleFrame(f, fatal)
			}
			return true, fmt.Errorf("event websocket: %w", err)
		case err := <-fatal:
			return true, err
		case <-frames.signal:
			// A push after this drain signals again, so nothing is left behind.
			for frames.len() > 0 {
				f, _ := frames.pop(ctx)
				a.handleFrame(f, fatal)
			}
		case <-a.extsSig:
			a.subscribeAll(sctx)
		case <-health.C:
			if err := a.checkSameAsterisk(sctx); err != nil {
				return true, err
			}
		}
	}
}

// checkSameAsterisk asks Asterisk who it is; a failure or a different
// identity (restart behind a proxy that kept the websocket) ends the session.
func (a *Adapter) checkSameAsterisk(ctx context.Context) error {
	var info *ari.AsteriskInfo
	err := a.rest(ctx, func(c ari.Client) (err error) { info, err = c.Asterisk().Info(nil); return })
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if id := asteriskIdentity(info); a.pbxID != "" && id != a.pbxID {
		return errors.New("asterisk restarted")
	}
	return nil
}

func asteriskIdentity(info *ari.AsteriskInfo) string {
	return info.SystemInfo.EntityID + "@" + time.Time(info.StatusInfo.StartupTime).UTC().Format(time.RFC3339Nano)
}

// spawn runs REST work the event handler decided on, off the reader path.
func (a *Adapter) spawn(name string, fn func(ctx context.Context) error) {
	ctx := a.bgCtx
	if ctx.Err() != nil {
		return // shutting down
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("ARI action failed", "action", name, "err", err)
		}
	}()
}

// wake notifies goroutines waiting for a change of channel id. Callers hold a.mu.
func (a *Adapter) wake(id string) {
	for _, w := range a.waiters[id] {
		close(w)
	}
	delete(a.waiters, id)
}

// waitFor waits until cond (called with a.mu held) is true for channel id,
// or ctx ends.
func (a *Adapter) waitFor(ctx context.Context, id string, cond func(ch *channel) (done bool, err error)) error {
	for {
		a.mu.Lock()
		done, err := cond(a.chans[id])
		if done || err != nil {
			a.mu.Unlock()
			return err
		}
		w := make(chan struct{})
		a.waiters[id] = append(a.waiters[id], w)
		a.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *Adapter) newID(prefix string) string {
	return fmt.Sprintf("csta-%s-%d-%d", prefix, time.Now().UnixMilli(), a.seq.Add(1))
}
