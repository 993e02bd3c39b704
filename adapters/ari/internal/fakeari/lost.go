package fakeari

// LoseStasisStart makes the next n StasisStart events go nowhere, as when
// the dialplan sends a channel into the application just as the
// application's websocket closes: Asterisk hands the event to the closing
// connection and does not send it again to the next one. The channel
// stays in Stasis.
func (s *Server) LoseStasisStart(n int) {
	s.mu.Lock()
	s.loseStasis = n
	s.mu.Unlock()
}

// lost says the event is one LoseStasisStart drops. Called with s.mu held.
func (s *Server) lost(typ string) bool {
	if typ != "StasisStart" || s.loseStasis <= 0 {
		return false
	}
	s.loseStasis--
	return true
}
