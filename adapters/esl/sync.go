package esl

import (
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// channels reads FreeSWITCH's channels for the resync after a connect.
// `show channels as json` lists them; each channel of a mapped extension is
// then read with `uuid_dump <uuid> json`, which also carries the csta_id
// variable the bridge stored (TagCall).
func (a *Adapter) channels(s *session) ([]chEvent, error) {
	body, err := s.api(s.ctx, "show", "channels as json")
	if err != nil {
		return nil, err
	}
	rows, err := parseShowChannels(body)
	if err != nil {
		return nil, err
	}
	var dumps []chEvent
	for _, r := range rows {
		if !a.state.wants(r) {
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

// wants reports whether a row of `show channels` may be a connection of a
// mapped extension (or one the adapter originated).
func (s *callState) wants(r channelRow) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.legs[r.UUID] != nil || s.expect[r.UUID] != nil {
		return true
	}
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
	legs := make(map[string]*leg, len(dumps))
	var calls []pbx.CallInfo
	for _, ev := range dumps {
		if ev.Answer == "hangup" || ev.State == "HANGUP" {
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
			l = &leg{uuid: ev.UUID, ext: ext, id: ev.UUID, dir: pbx.Incoming}
			if ev.Dir == "inbound" {
				l.dir = pbx.Outgoing
			}
		}
		if l.swapped {
			continue
		}
		if ev.Other != "" {
			l.other = ev.Other
		}
		if ev.SIPCallID != "" {
			l.sipID = ev.SIPCallID
		}
		if ev.CSTAID != 0 {
			l.cstaID = ev.CSTAID
		}
		if advertisesTalk(ev.AllowEvents) {
			l.talk = true
		}
		if ev.Presence != "" {
			l.presence = ev.Presence
		}
		if p := s.remoteOf(l, ev); p.Number != "" {
			l.remote = p
		}
		l.answered = ev.Answer == "answered"
		l.held = ev.State == "HELD"
		l.connected = l.answered && (!l.makeCall && !l.swapLeg || l.other != "")

		st := pbx.StateInitiated
		switch {
		case l.held:
			st = pbx.StateHeld
		case l.connected:
			st = pbx.StateConnected
		case l.dir == pbx.Incoming && !l.makeCall:
			st = pbx.StateAlerting
		}
		if l.swapLeg && !l.connected {
			// The old ringing channel still stands for this connection.
			continue
		}
		l.swapLeg = false
		l.offerPending = false // the sync reports it
		legs[l.uuid] = l
		calls = append(calls, pbx.CallInfo{Call: l.ref(), State: st, Direction: l.dir, Remote: l.remote,
			SIPCallID: l.sipID, CSTAID: l.cstaID})
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
		if l.makeCall {
			s.refs[l.ref()] = u
		}
	}
	s.emit(pbx.Event{Kind: pbx.EventSync, Calls: calls})
}
