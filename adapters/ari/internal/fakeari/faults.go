package fakeari

// ClearFaults forgets every failure armed with Fail that has not been used
// up yet: the end of an outage the test chose the length of.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}
