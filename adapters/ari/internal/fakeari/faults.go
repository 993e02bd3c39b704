package fakeari

import "strings"

// ClearFaults forgets every failure armed with Fail that has not been used
// up yet: the end of an outage the test chose the length of.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// FailRequest is Fail for the requests match accepts, for a request whose
// path the test cannot know (a bridge the adapter names itself) or that
// is told apart by its parameters. match runs with the server's lock
// held, so it must not call the Server.
func (s *Server) FailRequest(match func(Request) bool, status int, body string, times int) {
	s.mu.Lock()
	s.faults = append(s.faults, &fault{match: match, status: status, body: body, times: times})
	s.mu.Unlock()
}

func (f *fault) matches(r Request) bool {
	if f.match != nil {
		return f.match(r)
	}
	return f.method == r.Method && strings.Contains(r.Path, f.path)
}
