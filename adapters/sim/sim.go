package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// DefaultAnswerAfter is the ring time of outside destinations when
// Options.AnswerAfter is negative (zero is a valid "answer at once").
const DefaultAnswerAfter = time.Second

// defaultTagWait bounds how long POST /sim/calls waits for the core to number
// the new call (TagCall) so that the reply can carry the csta_id.
const defaultTagWait = 2 * time.Second

// Options configure the simulator.
type Options struct {
	// AnswerAfter is how long an outside destination (MakeCall, transfer
	// target) rings before it answers. Zero answers at once; negative means
	// DefaultAnswerAfter (config sim.answer_after).
	AnswerAfter time.Duration
	// NeverAnswer keeps outside destinations ringing (sim.answer_after: never).
	NeverAnswer bool
	// Logger receives debug and info records; nil discards them.
	Logger *slog.Logger
}

// PBX is the simulated PBX. Create it with New.
type PBX struct {
	log         *slog.Logger
	answerAfter time.Duration
	neverAnswer bool
	handler     http.Handler
	actions     *actionLog

	// Test hooks: the clock, and the wait for TagCall in POST /sim/calls.
	now     func() time.Time
	tagWait time.Duration

	mu       sync.Mutex
	after    func(d time.Duration, f func()) (stop func() bool) // AnswerAfter timers; a test hook
	exts     map[string]pbx.Extension
	calls    map[string]*call
	legs     map[pbx.CallRef]*leg
	nextCall uint64
	nextLeg  uint64
	sess     *session // nil while Run is not active
}

var (
	_ pbx.PBX        = (*PBX)(nil)
	_ pbx.Tagger     = (*PBX)(nil)
	_ pbx.DTMFSender = (*PBX)(nil)
)

// New returns a simulator with no extensions; call SetExtensions, then Run.
func New(opts Options) *PBX {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	answerAfter := opts.AnswerAfter
	if answerAfter < 0 {
		answerAfter = DefaultAnswerAfter
	}
	p := &PBX{
		log:         log,
		answerAfter: answerAfter,
		neverAnswer: opts.NeverAnswer,
		actions:     newActionLog(actionLogSize),
		after: func(d time.Duration, f func()) func() bool {
			return time.AfterFunc(d, f).Stop
		},
		now:     time.Now,
		tagWait: defaultTagWait,
		exts:    map[string]pbx.Extension{},
		calls:   map[string]*call{},
		legs:    map[pbx.CallRef]*leg{},
	}
	p.handler = p.routes()
	return p
}

// Handler serves the control API and the action URL sink under /sim/ (full
// paths: mount it at "/sim/" without stripping the prefix).
func (p *PBX) Handler() http.Handler { return p.handler }

// session is one Run: its event queue and the pump's wake-up signal.
type session struct {
	queue []pbx.Event
	wake  chan struct{}
}

// Run reports the link up and a Sync of every live call, then delivers
// events until ctx is done. The simulator keeps its calls between Runs, the
// way a PBX keeps them while the bridge restarts; events that happen while no
// Run is active are not delivered (the next Run's Sync covers them).
func (p *PBX) Run(ctx context.Context, events chan<- pbx.Event) error {
	if events == nil {
		return errors.New("sim: run: nil events channel")
	}
	s := &session{wake: make(chan struct{}, 1)}
	p.mu.Lock()
	if p.sess != nil {
		p.mu.Unlock()
		return errors.New("sim: run: already running")
	}
	p.sess = s
	p.emit(pbx.Event{Kind: pbx.EventLink, Up: true})
	p.emit(pbx.Event{Kind: pbx.EventSync, Calls: p.syncList()})
	p.mu.Unlock()
	p.log.Info("simulated PBX running")

	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pump(ctx, s, events)
	}()
	<-ctx.Done()
	p.mu.Lock()
	p.sess = nil
	p.mu.Unlock()
	<-done
	p.log.Info("simulated PBX stopped")
	return ctx.Err()
}

// pump moves events from the session's queue to the core, in order, until
// ctx is done. It is the only place that may block on the events channel.
func (p *PBX) pump(ctx context.Context, s *session, events chan<- pbx.Event) {
	for {
		p.mu.Lock()
		batch := s.queue
		s.queue = nil
		p.mu.Unlock()
		for _, ev := range batch {
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

// emit queues ev for the core. Callers hold p.mu, so the queue order is the
// order in which the simulator's state changed.
func (p *PBX) emit(ev pbx.Event) {
	s := p.sess
	if s == nil {
		return
	}
	s.queue = append(s.queue, ev)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// syncList lists every live connection, oldest first. Callers hold p.mu.
func (p *PBX) syncList() []pbx.CallInfo {
	legs := make([]*leg, 0, len(p.legs))
	for _, l := range p.legs {
		legs = append(legs, l)
	}
	slices.SortFunc(legs, func(a, b *leg) int { return compareSeq(a.seq, b.seq) })
	out := make([]pbx.CallInfo, 0, len(legs))
	for _, l := range legs {
		out = append(out, pbx.CallInfo{Call: l.ref, State: l.state, Direction: l.dir, Remote: l.remote,
			SIPCallID: l.sipCallID, CSTAID: l.cstaID})
	}
	return out
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SetExtensions replaces the configured extensions. Calls of extensions that
// are no longer configured end: the other end sees the far party hang up, or
// the destination unreachable when it was still calling it.
func (p *PBX) SetExtensions(exts []pbx.Extension) {
	next := make(map[string]pbx.Extension, len(exts))
	for _, e := range exts {
		if e.Name == "" {
			p.log.Warn("ignoring an extension without a name")
			continue
		}
		next[e.Name] = e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exts = next
	for _, c := range p.sortedCalls() {
		for _, e := range c.ends {
			if e.ext != "" {
				if _, ok := next[e.ext]; !ok {
					p.log.Info("clearing call of a removed extension", "call", c.id, "ext", e.ext)
					p.endCallAs(c, e, pbx.CauseUnreachable)
					break
				}
			}
		}
	}
}

// sortedCalls returns the live calls, oldest first. Callers hold p.mu.
func (p *PBX) sortedCalls() []*call {
	out := make([]*call, 0, len(p.calls))
	for _, c := range p.calls {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *call) int { return compareSeq(a.seq, b.seq) })
	return out
}

// running fails with pbx.ErrUnavailable outside Run. Callers hold p.mu.
func (p *PBX) running(op string, c pbx.CallRef) error {
	if p.sess == nil {
		return fmt.Errorf("sim: %s %s: %w", op, c, pbx.ErrUnavailable)
	}
	return nil
}
