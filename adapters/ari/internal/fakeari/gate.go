package fakeari

import (
	"context"
	"net/http"
	"sync"
)

// Gate holds one REST request until the test releases it, so a test can
// make something happen (a hangup, another command) at an exact point of
// a command's requests without sleeping.
type Gate struct {
	match       func(Request) bool
	afterEffect bool
	used        bool // taken by a request; guarded by Server.mu

	arrived chan struct{}
	release chan struct{}
	once    sync.Once
	dropped bool // set by Drop before release is closed
}

// HoldRequest makes the next request match accepts wait before it takes
// effect: Asterisk has not seen it yet. match runs with the server's lock
// held, so it must not call the Server.
func (s *Server) HoldRequest(match func(Request) bool) *Gate { return s.addGate(match, false) }

// HoldReply makes the next request match accepts take effect at once (its
// events go out) but keeps its answer back: Asterisk has done it and the
// reply is still on its way.
func (s *Server) HoldReply(match func(Request) bool) *Gate { return s.addGate(match, true) }

func (s *Server) addGate(match func(Request) bool, afterEffect bool) *Gate {
	g := &Gate{match: match, afterEffect: afterEffect,
		arrived: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.gates = append(s.gates, g)
	s.mu.Unlock()
	return g
}

// Arrived is closed once a request is held at the gate.
func (g *Gate) Arrived() <-chan struct{} { return g.arrived }

// Release lets the held request go on (or the next one through, if none
// has arrived yet). It may be called more than once; the first of Release
// and Drop decides.
func (g *Gate) Release() { g.once.Do(func() { close(g.release) }) }

// Drop loses the held request (or the next one, if none has arrived yet):
// the connection breaks without an answer. A request held by HoldRequest
// is then never carried out; one held by HoldReply was. It may be called
// more than once; the first of Release and Drop decides.
func (g *Gate) Drop() {
	g.once.Do(func() {
		g.dropped = true
		close(g.release)
	})
}

// takeGate picks the gate for a request; called with s.mu held.
func (s *Server) takeGate(r Request) *Gate {
	for _, g := range s.gates {
		if !g.used && g.match(r) {
			g.used = true
			return g
		}
	}
	return nil
}

// hold waits for the release; false when the client gave up first. A
// dropped request ends the handler with the connection broken.
func (g *Gate) hold(ctx context.Context) bool {
	close(g.arrived)
	select {
	case <-g.release:
		if g.dropped {
			panic(http.ErrAbortHandler)
		}
		return true
	case <-ctx.Done():
		return false
	}
}
