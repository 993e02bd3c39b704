package esl

import (
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// channels reads FreeSWITCH's channels for the resync after a connect.
// `show channels as json` lists them; each channel of a mapped extension is
// then read with `uuid_dump <uuid> json`, which also carries the csta_id
// variable the bridge stored (TagCall). The listing is read until it has
// caught up with the channels FreeSWITCH has (see settledRows).
func (a *Adapter) channels(s *session) ([]chEvent, error) {
	rows, err := a.settledRows(s)
	if err != nil {
		return nil, err
	}
	return a.dumpRows(s, rows, a.state.wants)
}

// dumpChannels lists FreeSWITCH's channels and dumps those that keep
// accepts.
func (a *Adapter) dumpChannels(s *session, keep func(channelRow) bool) ([]chEvent, error) {
	rows, err := a.listRows(s)
	if err != nil {
		return nil, err
	}
	return a.dumpRows(s, rows, keep)
}

// listRows reads `show channels as json`.
func (a *Adapter) listRows(s *session) ([]channelRow, error) {
	body, err := s.api(s.ctx, "show", "channels as json")
	if err != nil {
		return nil, err
	}
	return parseShowChannels(body)
}

// dumpRows dumps the listed channels that keep accepts.
func (a *Adapter) dumpRows(s *session, rows []channelRow, keep func(channelRow) bool) ([]chEvent, error) {
	var dumps []chEvent
	for _, r := range rows {
		if !keep(r) {
			continue
		}
		out, err := s.api(s.ctx, "uuid_dump", r.UUID+" json")
		if isNoSuchCall(err) {
			continue // ended in between
		}
		if err != nil {
			return nil, err
		}
		ev, err := parseDump(out)
		if err != nil {
			return nil, err
		}
		dumps = append(dumps, ev)
	}
	return dumps, nil
}

// fillFromDump takes what a channel dump knows about a leg.
func (s *callState) fillFromDump(l *leg, ev chEvent) {
	if ev.Other != "" {
		l.other = ev.Other
	}
	if ev.SIPCallID != "" {
		l.sipID = ev.SIPCallID
	}
	l.takeStoredID(ev.CSTAID)
	l.takeHeaders(ev)
	if advertisesTalk(ev.AllowEvents) {
		l.talk = true
	}
	if ev.Presence != "" {
		l.presence = ev.Presence
	}
	if p := s.remoteOf(l, ev); p.Number != "" {
		l.remote = p
	}
}

// wants reports whether a row of `show channels` may be a connection of a
// mapped extension (or one the adapter originated).
func (s *callState) wants(r channelRow) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.legs[r.UUID] != nil || s.expect[r.UUID] != nil || s.doomed[r.UUID] != nil || s.mappedRow(r)
}

// mappedRow reports whether a row names a device user of a mapped
// extension; s.mu is held.
func (s *callState) mappedRow(r channelRow) bool {
	for _, u := range []string{userPart(r.PresenceID), userPart(r.Name)} {
		if _, ok := s.users[u]; ok && u != "" {
			return true
		}
	}
	return false
}

// applySync replaces the channel table with what FreeSWITCH reported and
// emits EventSync. Channels already known keep their CallRef.
func (s *callState) applySync(dumps []chEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	listed := make(map[string]chEvent, len(dumps))
	for _, ev := range dumps {
		if ev.Answer != "hangup" && ev.State != "HANGUP" {
			listed[ev.UUID] = ev
		}
	}
	// A new session: hang-ups asked for in the last one may not have been
	// sent; they are asked for again for the doomed channels still there.
	s.kills = nil
	for _, d := range s.doomed {
		d.asked = false
	}
	s.settleSwaps(listed)

	legs := make(map[string]*leg, len(dumps))
	var calls []pbx.CallInfo
	for _, ev := range dumps {
		if _, live := listed[ev.UUID]; !live {
			continue
		}
		if s.doomed[ev.UUID] != nil {
			s.askKill(ev.UUID)
			continue
		}
		l := s.legs[ev.UUID]
		if l == nil {
			l = s.expect[ev.UUID]
			delete(s.expect, ev.UUID)
		}
		if l == nil {
			ext := s.extOf(ev)
			if ext == "" {
				continue
			}
			l = newLeg(ev, ext)
		}
		if l.swapped {
			continue
		}
		s.fillFromDump(l, ev)
		syncedState(l, ev)
		l.offerPending = false // the sync reports it
		if l.orphan && !l.answered {
			// Announced only once the device answers (see leg.orphan).
			legs[l.uuid] = l
			continue
		}
		legs[l.uuid] = l
		calls = append(calls, callInfo(l))
	}
	now := s.now()
	for u, l := range s.legs {
		if legs[u] == nil {
			l.ended = true
			s.gone[u] = now
			s.notify(u, sigGone)
		}
	}
	s.legs = legs
	s.refs = make(map[pbx.CallRef]string, len(legs))
	for u, l := range legs {
		s.refs[l.ref()] = u
	}
	for u, l := range s.expect {
		if l.makeCall && !l.orphan {
			s.refs[l.ref()] = u
		}
	}
	s.emit(pbx.Event{Kind: pbx.EventSync, Calls: calls})
}

// settleSwaps decides, for every answer swap (Adapter.answerBySwap) under
// way when the link was lost, which channel stands for the connection.
// The command gave up with its session; FreeSWITCH's channels say how far
// it got. If the caller was bridged to the auto-answer channel, the swap
// is done: that channel is the connection and the ringing one is hung up
// (FreeSWITCH cancels it anyway once its caller is bridged away).
// Otherwise the ringing channel still is the connection, and the
// auto-answer channel, which the phone may have answered by now, is hung
// up. Either way the channel that lost is never reported. s.mu is held.
func (s *callState) settleSwaps(listed map[string]chEvent) {
	var swaps []*leg
	for _, m := range []map[string]*leg{s.legs, s.expect} {
		for _, l := range m {
			if l.swapLeg {
				swaps = append(swaps, l)
			}
		}
	}
	for _, x := range swaps {
		d, ok := listed[x.uuid]
		old := s.legs[x.replaces]
		if x.connected || ok && d.Answer == "answered" && d.Other != "" && d.Other == x.other {
			x.swapLeg = false
			if old != nil {
				s.doomLocked(old.uuid, "LOSE_RACE")
			}
			continue
		}
		s.doomLocked(x.uuid, "")
		if old != nil {
			old.swapped = false
		}
	}
}

// The recheck: FreeSWITCH adds a channel to the core database that
// `show channels` reads a moment after the channel exists (the database
// is written by a queue of its own), so a channel created just before a
// connect can be missing from the resync. Its CHANNEL_CREATE went out
// before the event subscription and was lost; it would only be picked up
// by its next event, which for a ringing call may be its end. The
// channels are therefore listed once more a little later (Options.
// RecheckDelay); channels found only then are reported as if seen now.

// lateChannels lists, for the recheck, the channels of mapped extensions
// the adapter does not know, and doomed channels the resync did not list.
func (a *Adapter) lateChannels(s *session) ([]chEvent, error) {
	return a.dumpChannels(s, a.state.unknown)
}

// unknown reports whether a row of `show channels` may be a channel of a
// mapped extension that the adapter neither tracks, nor expects, nor has
// seen end, or is a doomed channel.
func (s *callState) unknown(r channelRow) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.untracked(r.UUID) && s.mappedRow(r) || s.doomed[r.UUID] != nil
}

// untracked: neither tracked, nor expected, nor seen to end, nor doomed;
// s.mu is held.
func (s *callState) untracked(uuid string) bool {
	_, ended := s.gone[uuid]
	return s.legs[uuid] == nil && s.expect[uuid] == nil && s.doomed[uuid] == nil && !ended
}

// applyLate reports the channels the recheck found. The dumps were taken
// before events the state machine may have applied since, so each channel
// is checked again here, under the lock: one that an event has made known,
// or whose end was seen, is left alone. For the others no event has been
// applied since the dump, so the dump is the latest word on them; events
// still on their way are applied on top (the state machine ignores
// repeats). It returns how many connections were reported.
func (s *callState) applyLate(dumps []chEvent) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	var takeover *leg
	defer func() {
		if takeover != nil {
			s.takeOver(takeover)
		}
	}()
	for _, ev := range dumps {
		if ev.Answer == "hangup" || ev.State == "HANGUP" {
			continue
		}
		if s.doomed[ev.UUID] != nil {
			s.askKill(ev.UUID)
			continue
		}
		if !s.untracked(ev.UUID) {
			continue
		}
		ext := s.extOf(ev)
		if ext == "" {
			continue
		}
		l := newLeg(ev, ext)
		s.fillFromDump(l, ev)
		s.legs[l.uuid] = l
		s.refs[l.ref()] = l.uuid
		n++
		if storedTakeover(l) {
			// A call the CTI software knows (takeover.go).
			syncedState(l, ev)
			takeover = l
			continue
		}
		// As the first events would have: offered or placed, then
		// answered and held as the dump says.
		if l.makeCall {
			// Placed once the device answered, connected once bridged
			// (see leg.makeCall); nothing while the device rings.
			if ev.Answer == "answered" {
				s.answered(l)
				if l.other != "" {
					s.connected(l)
				}
			}
		} else {
			kind := pbx.EventOffered
			if l.dir == pbx.Outgoing {
				kind = pbx.EventOriginated
			}
			s.emit(pbx.Event{Kind: kind, Call: l.ref(), Remote: l.remote, SIPCallID: l.sipID,
				Headers: l.offerHeaders(), CSTAID: l.cstaID})
			if ev.Answer == "answered" {
				s.answered(l)
			}
		}
		if ev.State == "HELD" {
			s.heldEv(l)
		}
	}
	return n
}
