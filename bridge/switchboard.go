package bridge

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// switchboard owns every phone and call. One goroutine (run) applies PBX
// events and the outcome of CSTA requests in the order they arrive, so no
// call state is ever shared between goroutines.
type switchboard struct {
	log    *slog.Logger
	ops    chan func()
	events chan pbx.Event
	phones map[string]*phone
	// retired keeps the last csta_ids of extensions a reload removed, so an
	// extension added back never hands out an id twice while the bridge runs.
	retired map[string][2]int
	actions *actionSender
	tagger  func(pbx.CallRef, int) // stores csta_ids on the PBX; nil when the adapter can't
	metrics *metrics
	now     func() time.Time
	linkUp  func(up bool, detail string)
	// reported is what the previous bridge last told the CTI software
	// about the calls it left (extension → csta_id → state); the first
	// sync takes them over from there, then forgets it.
	reported map[string]map[int]pbx.State
	// divertPBX refuses or forwards a ringing call for the phone's
	// features (divert.go); nil leaves every call ringing.
	divertPBX divertFunc
	diverted  *ring[divertRecord]
	quit      <-chan struct{} // closed when run returns
}

func newSwitchboard(log *slog.Logger, actions *actionSender, m *metrics) *switchboard {
	return &switchboard{
		log:      log,
		ops:      make(chan func()),
		events:   make(chan pbx.Event, 4096),
		phones:   make(map[string]*phone),
		retired:  make(map[string][2]int),
		actions:  actions,
		metrics:  m,
		now:      time.Now,
		linkUp:   func(bool, string) {},
		diverted: newRing[divertRecord](50),
	}
}

// run is the owner goroutine.
func (s *switchboard) run(ctx context.Context) {
	s.quit = ctx.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-s.events:
			if ownHold(ev) {
				continue
			}
			s.apply(ev)
		case op := <-s.ops:
			op()
		}
	}
}

// ownHold says ev is the adapter's report of a hold or retrieve the bridge
// did: the outcome of the core's own command, which the core applied when
// the command returned. The report may reach this goroutine after the next
// command's outcome (a CTI application sends RetrieveCall as soon as
// HoldCall returned) and would then undo it: "hold" again on a connection
// that talks.
func ownHold(ev pbx.Event) bool {
	return (ev.Kind == pbx.EventHeld || ev.Kind == pbx.EventRetrieved) && !ev.ByPhone
}

// do runs f on the owner goroutine and waits for it.
func (s *switchboard) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case s.ops <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// f still runs to completion on the owner goroutine; the caller has given up.
		return ctx.Err()
	}
}

// configure installs a new extension table; calls of remaining extensions
// live on, phones of removed extensions are forgotten.
func (s *switchboard) configure(exts []config.Extension) {
	keep := make(map[string]bool, len(exts))
	for _, e := range exts {
		keep[e.Name] = true
		if p := s.phones[e.Name]; p != nil {
			p.configure(e)
			continue
		}
		p := newPhone(e)
		if ids, ok := s.retired[e.Name]; ok {
			p.lastIn, p.lastOut = ids[0], ids[1]
			delete(s.retired, e.Name)
		}
		s.phones[e.Name] = p
	}
	for name, p := range s.phones {
		if !keep[name] {
			if n := len(p.calls); n > 0 {
				s.log.Info("extension removed with live calls; forgetting them", "ext", name, "calls", n)
			}
			s.retired[name] = [2]int{p.lastIn, p.lastOut}
			for _, c := range p.calls {
				s.metrics.moveCall(c.state, pbx.StateNull)
			}
			delete(s.phones, name)
		}
	}
}

// setup fires action_setup_url for phones that have not "booted" yet.
func (s *switchboard) setup() {
	for _, name := range s.sortedNames() {
		p := s.phones[name]
		if !p.setupped {
			p.setupped = true
			s.actions.fire(p, nil, "action_setup_url", "")
		}
	}
}

func (s *switchboard) sortedNames() []string {
	names := make([]string, 0, len(s.phones))
	for n := range s.phones {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// apply feeds one PBX event (or the outcome of a bridge command) through the
// ECMA-269 connection state machine. Events that do not change a call's state
// are ignored, which makes duplicate and late confirmations harmless.
func (s *switchboard) apply(ev pbx.Event) {
	switch ev.Kind {
	case pbx.EventLink:
		s.linkUp(ev.Up, ev.Reason)
		return
	case pbx.EventSync:
		s.sync(ev.Calls)
		return
	}
	p := s.phones[ev.Call.Ext]
	if p == nil {
		return // not a mapped extension (or removed by a reload)
	}
	if ev.Kind == pbx.EventDevice {
		if ev.Registered {
			s.actions.fire(p, nil, "action_log_on_url", "")
		} else {
			s.actions.fire(p, nil, "action_log_off_url", "")
		}
		return
	}
	c := p.byRef[ev.Call.ID]
	switch ev.Kind {
	case pbx.EventOffered:
		if c == nil && !s.divert(p, ev) {
			s.armNoAnswer(p, s.newCall(p, ev.Call, pbx.Incoming, pbx.StateAlerting, ev.Remote, ev.SIPCallID, ev.Headers, ev.CSTAID, true))
		}
	case pbx.EventOriginated:
		if c == nil {
			s.newCall(p, ev.Call, pbx.Outgoing, pbx.StateInitiated, ev.Remote, ev.SIPCallID, ev.Headers, ev.CSTAID, true)
			return
		}
		if c.pending {
			s.fill(c, ev)
			c.pending = false
			if c.sipCallID == "" {
				c.sipCallID = c.ref.ID
			}
			s.enter(p, c, pbx.StateInitiated)
		}
	case pbx.EventConnected:
		if c != nil {
			s.fill(c, ev)
			if c.state == pbx.StateAlerting || c.state == pbx.StateInitiated {
				s.enter(p, c, pbx.StateConnected)
			}
		}
	case pbx.EventHeld:
		if c != nil && !c.pending {
			if c.state == pbx.StateAlerting || c.state == pbx.StateInitiated {
				s.enter(p, c, pbx.StateConnected)
			}
			if c.state == pbx.StateConnected {
				s.enter(p, c, pbx.StateHeld)
			}
		}
	case pbx.EventRetrieved:
		if c != nil && c.state == pbx.StateHeld {
			s.enter(p, c, pbx.StateConnected)
		}
	case pbx.EventPartyChanged:
		if c != nil {
			s.fill(c, ev)
		}
	case pbx.EventTransferred:
		if c != nil && !c.pending && !c.transferred {
			c.transferred = true
			s.actions.fire(p, c, "action_transfer", "")
			if ev.Transfer == pbx.TransferAttended {
				s.actions.fire(p, c, "action_attended_transfer", "")
			} else {
				s.actions.fire(p, c, "action_blind_transfer", "")
			}
		}
	case pbx.EventCleared:
		if c != nil {
			s.clear(p, c, ev.Cause, ev.Reason)
		}
	}
}

// fill takes what an event knows about the far party and the SIP dialog.
func (s *switchboard) fill(c *call, ev pbx.Event) {
	if ev.Remote.Number != "" || ev.Remote.URI != "" {
		c.remote = ev.Remote
	}
	// $call-id must stay the same for all of a call's action URLs (CTI
	// software correlates by it), so it is taken once, before the call is
	// first announced or while it is still a pending MakeCall.
	if ev.SIPCallID != "" && (c.sipCallID == "" || c.pending) {
		c.sipCallID = ev.SIPCallID
	}
	if len(ev.Headers) > 0 {
		c.headers = ev.Headers
	}
}

// newCall numbers a connection the phone did not have yet and announces it.
func (s *switchboard) newCall(p *phone, ref pbx.CallRef, dir pbx.Direction, st pbx.State, remote pbx.Party,
	sipCallID string, headers map[string]string, stored int, announce bool) *call {
	c := &call{ref: ref, dir: dir, remote: remote, sipCallID: sipCallID, headers: headers, created: s.now()}
	tag := true
	if p.reserveID(stored, dir) {
		c.id = stored
		tag = false
	} else {
		c.id = p.newID(dir)
	}
	if c.sipCallID == "" {
		c.sipCallID = ref.ID
	}
	p.add(c)
	if tag && s.tagger != nil {
		s.tagger(ref, c.id)
	}
	if announce {
		s.enter(p, c, st)
	} else {
		// Taken over from a previous bridge: the CTI software knows the
		// call, and the handset it lifted.
		c.state = st
		s.metrics.moveCall(pbx.StateNull, st)
		c.answered = st == pbx.StateConnected || st == pbx.StateHeld
		p.offhook = p.offhook || c.state == pbx.StateInitiated || c.answered
	}
	return c
}

// enter moves c to state st and fires the action URLs a Snom phone fires.
func (s *switchboard) enter(p *phone, c *call, st pbx.State) {
	prev := c.state
	if prev == st {
		return
	}
	c.state = st
	s.metrics.transition(prev, st)
	switch st {
	case pbx.StateAlerting:
		s.actions.fire(p, c, "action_incoming_url", "")
	case pbx.StateInitiated:
		s.hook(p)
		s.actions.fire(p, c, "action_outgoing_url", "")
	case pbx.StateConnected:
		if prev == pbx.StateHeld {
			s.actions.fire(p, c, "action_unhold", "")
			break
		}
		c.answered = true
		s.hook(p)
		s.actions.fire(p, c, "action_connected_url", "")
	case pbx.StateHeld:
		s.actions.fire(p, c, "action_hold", "")
	}
}

// clear ends a connection: a disconnect when it was ever connected, a missed
// call when an incoming call stopped ringing without the user rejecting it.
func (s *switchboard) clear(p *phone, c *call, cause pbx.Cause, reason string) {
	p.remove(c)
	if c.noAnswer != nil {
		c.noAnswer.Stop()
	}
	if c.conf != nil {
		c.conf.conf, c.conf = nil, nil
	}
	if c.pending {
		return
	}
	s.metrics.transition(c.state, pbx.StateNull)
	switch {
	case c.answered:
		s.actions.fire(p, c, "action_disconnected_url", reason)
	case c.dir == pbx.Incoming && cause != pbx.CauseRejected && cause != pbx.CauseTransferred && cause != pbx.CauseDeflected &&
		cause != pbx.CauseAnsweredElsewhere:
		s.actions.fire(p, c, "action_missed_url", reason)
	}
	c.state = pbx.StateNull
	s.hook(p)
}

// hook fires off-hook when the first call needs the handset and on-hook when
// the last one is gone, as the phone's hook switch would.
func (s *switchboard) hook(p *phone) {
	off := false
	for _, c := range p.calls {
		if !c.pending && (c.state == pbx.StateInitiated || c.state == pbx.StateConnected || c.state == pbx.StateHeld) {
			off = true
			break
		}
	}
	if off == p.offhook {
		return
	}
	p.offhook = off
	if off {
		s.actions.fire(p, nil, "action_offhook_url", "")
	} else {
		s.actions.fire(p, nil, "action_onhook_url", "")
	}
}

// sync reconciles the phones with the PBX's list of live calls after a
// (re)connect: calls that vanished are cleared, calls we did not know are
// taken over (silently when they carry a csta_id we gave them before a
// restart), and states that changed meanwhile are applied.
func (s *switchboard) sync(list []pbx.CallInfo) {
	seen := make(map[pbx.CallRef]bool, len(list))
	for _, info := range list {
		p := s.phones[info.Call.Ext]
		if p == nil {
			continue
		}
		seen[info.Call] = true
		c := p.byRef[info.Call.ID]
		if c == nil {
			known := info.CSTAID != 0
			first := info.State
			if was, ok := s.reported[info.Call.Ext][info.CSTAID]; known && ok {
				// Taken over where the CTI software last saw it; what
				// changed since is applied below, and so reported once.
				first = was
			} else if !known && (first == pbx.StateConnected || first == pbx.StateHeld) {
				// Announce it the way the phone would have seen it start.
				first = pbx.StateAlerting
				if info.Direction == pbx.Outgoing {
					first = pbx.StateInitiated
				}
			}
			c = s.newCall(p, info.Call, info.Direction, first, info.Remote, info.SIPCallID, nil, info.CSTAID, !known)
			if known && first == info.State {
				continue
			}
		}
		if c.pending {
			continue
		}
		switch info.State {
		case pbx.StateConnected:
			if c.state == pbx.StateHeld {
				s.apply(pbx.Event{Kind: pbx.EventRetrieved, Call: info.Call})
			} else {
				s.apply(pbx.Event{Kind: pbx.EventConnected, Call: info.Call})
			}
		case pbx.StateHeld:
			s.apply(pbx.Event{Kind: pbx.EventHeld, Call: info.Call})
		}
	}
	s.endLeftCalls(seen)
	s.reported = nil
	for _, name := range s.sortedNames() {
		p := s.phones[name]
		var gone []*call
		for _, c := range p.calls {
			if !c.pending && !seen[c.ref] {
				gone = append(gone, c)
			}
		}
		slices.SortFunc(gone, func(a, b *call) int { return a.created.Compare(b.created) })
		for _, c := range gone {
			s.log.Info("call vanished while the PBX link was down", "ext", name, "csta_id", c.id)
			s.clear(p, c, pbx.CauseVanished, "")
		}
	}
}
