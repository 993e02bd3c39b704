package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/percipia/eslgo"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Adapter is the FreeSWITCH implementation of pbx.PBX.
type Adapter struct {
	opts  Options
	log   *slog.Logger
	state *callState
	jobs  *jobTable
	out   *outQueue
	confs confTable // conferences the bridge made (conference.go)
	// relist asks the session to read the registrations again: a reload
	// mapped extensions whose devices were not known (registrations.go).
	relist chan struct{}

	running atomic.Bool
	sess    atomic.Pointer[session]
	tags    inflight       // TagCall commands under way
	wg      sync.WaitGroup // per-session goroutines
}

var (
	_ pbx.PBX        = (*Adapter)(nil)
	_ pbx.Tagger     = (*Adapter)(nil)
	_ pbx.DTMFSender = (*Adapter)(nil)
)

// New validates the options; it does no I/O.
func New(opts Options) (*Adapter, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	out := newOutQueue()
	log := opts.Logger.With("pbx", "esl")
	return &Adapter{
		opts:   opts,
		log:    log,
		state:  newCallState(log, out),
		jobs:   newJobTable(),
		out:    out,
		relist: make(chan struct{}, 1),
	}, nil
}

// Ready reports whether the adapter is connected to FreeSWITCH now.
func (a *Adapter) Ready() bool { return a.sess.Load() != nil }

// SetExtensions replaces the set of mapped extensions; it does not block.
func (a *Adapter) SetExtensions(exts []pbx.Extension) {
	clean := make([]pbx.Extension, 0, len(exts))
	for _, x := range exts {
		if err := checkEndpoint(x.Endpoint); err != nil {
			a.log.Error("extension not mapped", "ext", x.Name, "err", err)
			continue
		}
		if _, err := autoAnswerVars(x.AutoAnswerHeaders); err != nil {
			// Answer by re-originate and MakeCall with auto-answer will fail
			// for this extension with a clear error.
			a.log.Error("auto answer headers unusable", "ext", x.Name, "err", err)
		}
		clean = append(clean, x)
	}
	a.state.setExtensions(clean)
	select {
	case a.relist <- struct{}{}:
	default:
	}
}

// Run connects to FreeSWITCH and delivers events until ctx is done.
func (a *Adapter) Run(ctx context.Context, events chan<- pbx.Event) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("esl: Run called twice")
	}
	defer a.running.Store(false)

	fwdDone := make(chan struct{})
	go func() {
		defer close(fwdDone)
		a.out.run(ctx, events)
	}()

	reported := false // a link down was reported since the last link up
	attempt := 0
	for ctx.Err() == nil {
		s, err := a.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			a.log.Warn("cannot connect to FreeSWITCH", "addr", a.opts.Address, "err", err)
			if !reported {
				a.out.push(pbx.Event{Kind: pbx.EventLink, Up: false, Reason: err.Error()})
				reported = true
			}
		} else {
			began := time.Now()
			served, cause := a.serve(s)
			if ctx.Err() != nil {
				break
			}
			switch {
			case served:
				if time.Since(began) > a.opts.MaxBackoff {
					attempt = 0 // a session that lasted; a flapping one keeps backing off
				}
				a.log.Warn("FreeSWITCH connection lost", "addr", a.opts.Address, "err", cause)
				a.out.push(pbx.Event{Kind: pbx.EventLink, Up: false, Reason: cause.Error()})
				reported = true
			case !reported:
				a.log.Warn("cannot resync with FreeSWITCH", "addr", a.opts.Address, "err", cause)
				a.out.push(pbx.Event{Kind: pbx.EventLink, Up: false, Reason: cause.Error()})
				reported = true
			default:
				a.log.Warn("cannot resync with FreeSWITCH", "addr", a.opts.Address, "err", cause)
			}
		}
		d := backoff(a.opts.MinBackoff, a.opts.MaxBackoff, attempt)
		attempt++
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	<-fwdDone
	return ctx.Err()
}

// backoff is capped exponential backoff with jitter (between half and all
// of the nominal delay), so many bridges do not reconnect in step.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	if d > hi {
		d = hi
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// connect opens the event and command connections of a new session.
func (a *Adapter) connect(ctx context.Context) (*session, error) {
	// The session outlives ctx by the csta_ids still being stored: the
	// core tags a call in the background just after it announced it, and
	// a bridge stopped (restarted) meanwhile would otherwise lose the id,
	// so that the next bridge reported the call as a new one (issue 19).
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stopAfter := context.AfterFunc(ctx, func() {
		a.tags.drain(a.opts.CommandTimeout)
		cancel(context.Cause(ctx))
	})
	s := &session{ctx: sctx, cancel: func(err error) { stopAfter(); cancel(err) }, a: a,
		rx: newReorderer(a.opts.ReorderWindow)}
	gone := func(reason string) { cancel(errors.New(reason)) }

	ev, err := a.dial(sctx, gone)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("event connection: %w", err)
	}
	s.events = ev
	ev.RegisterEventListener(eslgo.EventListenAll, func(e *eslgo.Event) {
		ce := decodeEvent(e.Headers, e.Body)
		switch ce.Name {
		case "BACKGROUND_JOB":
			if a.debug() {
				a.log.Debug("esl event", "event", ce.Name, "seq", ce.Seq, "job", ce.JobUUID, "result", shorten(ce.Body))
			}
			a.jobs.complete(ce.JobUUID, ce.Body)
			s.rx.pass(ce.Seq)
		case "HEARTBEAT":
			s.rx.pass(ce.Seq)
		case "":
		default:
			s.rx.push(ce)
		}
	})
	r, err := s.send(sctx, ev, rawCommand(subscription))
	if err == nil && !r.IsOk() {
		err = fmt.Errorf("FreeSWITCH answered %q", r.GetReply())
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("event subscription: %w", err)
	}
	cmds, err := a.dial(sctx, gone)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("command connection: %w", err)
	}
	s.cmds = cmds
	return s, nil
}

// serve runs a connected session until it fails; it returns whether the
// link was reported up and why the session ended.
func (a *Adapter) serve(s *session) (bool, error) {
	defer a.wg.Wait()
	defer s.close()
	ordered := make(chan chEvent, 64)
	a.wg.Add(2)
	go func() { defer a.wg.Done(); s.rx.run(s.ctx, ordered) }()
	go func() { defer a.wg.Done(); a.watchdog(s) }()

	// A reload before this point is covered by the listing below.
	select {
	case <-a.relist:
	default:
	}
	dumps, err := a.channels(s)
	if err != nil {
		s.fail(fmt.Errorf("resync: %w", err))
		return false, context.Cause(s.ctx)
	}
	regs, err := a.registeredUsers(s)
	if err != nil {
		s.fail(fmt.Errorf("resync: registrations: %w", err))
		return false, context.Cause(s.ctx)
	}
	// Events that arrived during the listing wait in the reorderer and are
	// applied on top of the snapshot; the state machine ignores repeats.
	// The core hears of the devices and the calls (EventDevice, EventSync)
	// before it hears that the link is up: it reports itself ready on the
	// link, and a request sent the moment it is ready must find the calls
	// taken over (issue 19: a HoldCall right after a restart got "no call"
	// when the core took the request between the link and the sync), and a
	// cluster must know which node a MakeCall's device is on (issue 14).
	a.state.syncDevices(regs)
	a.state.applySync(dumps)
	a.sess.Store(s)
	defer a.sess.Store(nil)
	a.log.Info("connected to FreeSWITCH", "addr", a.opts.Address)
	a.out.push(pbx.Event{Kind: pbx.EventLink, Up: true})
	a.hangUpDoomed(s)

	// The recheck lists the channels and registrations again in the
	// background, so events keep flowing meanwhile; its result is applied
	// here, in line with them. A reload's registration listing likewise.
	recheck, stopRecheck := a.opts.newTimer(a.opts.RecheckDelay)
	defer stopRecheck()
	type listing struct {
		dumps []chEvent
		err   error
		regs  map[string]bool
	}
	var late chan listing
	var relisted <-chan map[string]bool
	again := false
	for {
		select {
		case ev := <-ordered:
			a.state.handle(ev)
			a.hangUpDoomed(s)
		case <-recheck:
			recheck = nil
			late = make(chan listing, 1)
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				d, err := a.lateChannels(s)
				var regs map[string]bool
				if err == nil || isReply(err) {
					// An error here is a lost link, which ends the session.
					regs, _ = a.registeredUsers(s)
				}
				late <- listing{d, err, regs}
			}()
		case r := <-late:
			late = nil
			switch {
			case s.ctx.Err() != nil:
			case r.err != nil:
				// A lost link ends the session anyway; an error answer only
				// costs the recheck of the channels.
				a.log.Warn("cannot recheck FreeSWITCH's channels", "err", r.err)
				a.state.lateDevices(r.regs)
			default:
				a.state.lateDevices(r.regs)
				if n := a.state.applyLate(r.dumps); n > 0 {
					a.log.Info("channels found only by the recheck after connecting", "connections", n)
				}
				a.hangUpDoomed(s)
			}
		case <-a.relist:
			if relisted != nil {
				// The one under way may have been read before this
				// reload's extensions took their events.
				again = true
				continue
			}
			relisted = a.listRegistrations(s)
		case regs := <-relisted:
			relisted = nil
			if s.ctx.Err() == nil {
				a.state.lateDevices(regs)
			}
			if again {
				again = false
				relisted = a.listRegistrations(s)
			}
		case <-s.ctx.Done():
			return true, context.Cause(s.ctx)
		}
	}
}

// listRegistrations reads the registrations in the background.
func (a *Adapter) listRegistrations(s *session) <-chan map[string]bool {
	ch := make(chan map[string]bool, 1)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		regs, _ := a.registeredUsers(s) // an error is a lost link, which ends the session
		ch <- regs
	}()
	return ch
}

// hangUpDoomed sends the hang-ups the state machine asked for (doomed
// channels it has seen exist) in the background, so events keep flowing.
// One that fails for a lost link is asked for again after the reconnect.
func (a *Adapter) hangUpDoomed(s *session) {
	ks := a.state.takeKills()
	if len(ks) == 0 {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for _, k := range ks {
			a.hangUp(s.ctx, s, k)
		}
	}()
}

// hangUp hangs up a channel that stands for no connection.
func (a *Adapter) hangUp(ctx context.Context, s *session, k kill) {
	args := k.uuid
	if k.cause != "" {
		args += " " + k.cause
	}
	if _, err := s.api(ctx, "uuid_kill", args); err != nil && !isNoSuchCall(err) {
		a.log.Warn("cannot hang up a channel that stands for no connection", "uuid", k.uuid, "err", err)
	}
}

// watchdog probes both connections; eslgo does not notice a connection
// that dies without a disconnect notice.
func (a *Adapter) watchdog(s *session) {
	t := time.NewTicker(a.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		for _, c := range []*eslgo.Conn{s.events, s.cmds} {
			if _, err := s.apiOn(s.ctx, c, "status", ""); err != nil {
				if errors.Is(err, pbx.ErrUnavailable) {
					s.fail(fmt.Errorf("liveness probe: %w", err))
				}
				return
			}
		}
	}
}

// session returns the live session or errLinkDown.
func (a *Adapter) session() (*session, error) {
	if s := a.sess.Load(); s != nil && s.ctx.Err() == nil {
		return s, nil
	}
	return nil, errLinkDown
}
