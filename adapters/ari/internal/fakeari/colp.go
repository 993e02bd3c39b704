package fakeari

import "strings"

// A phone that is slow to process a 200 OK loses a race Asterisk starts:
// when the connected line of a channel it has just answered over ARI
// changes (another channel joins its bridge), chan_pjsip sends the new
// identity in a re-INVITE right behind the 200 OK. The phone, whose dialog
// is not confirmed yet (no ACK sent), answers 481, and Asterisk hangs the
// call up with cause 127 (Interworking). Seen on Asterisk 22.10.1 with the
// Go test phones under load (issue 15): the caller's BYE carries "Reason:
// SIP ;cause=481". A channel still ringing gets the identity in its 200 OK
// instead, and a re-INVITE later than right behind the 200 OK is answered.

// SetSlowPhones makes every phone lose that race: a PJSIP channel answered
// by POST /channels/{id}/answer is hung up (cause 127) when the next
// channel to join its bridge is another one.
func (s *Server) SetSlowPhones(on bool) {
	s.mu.Lock()
	s.slowPhones = on
	s.justAnswered = map[string]bool{}
	s.mu.Unlock()
}

// answeredByApp notes a channel the application answered. Called with s.mu
// held.
func (s *Server) answeredByApp(c *Channel) {
	if s.slowPhones && strings.HasPrefix(c.Name, "PJSIP/") {
		s.justAnswered[c.ID] = true
	}
}

// joined applies the race after joiners entered bridge b: its channels
// that were just answered get the new identity now, and lose. Called with
// s.mu held.
func (s *Server) joined(b *bridge, joiners []*Channel) {
	if !s.slowPhones {
		return
	}
	in := map[string]bool{}
	for _, j := range joiners {
		in[j.ID] = true
		delete(s.justAnswered, j.ID) // its own join is no update to it
	}
	for _, id := range append([]string(nil), b.Channels...) {
		c := s.channels[id]
		if c == nil || in[id] || !s.justAnswered[id] {
			continue
		}
		delete(s.justAnswered, id)
		s.emitIf("ChannelConnectedLine", c, nil)
		s.emitIf("ChannelHangupRequest", c, map[string]any{"cause": 127})
		s.destroy(c, 127)
	}
}
