package fakeari

import "strings"

// The test dialplan's applications (adapters/ari/README.md, "Integration
// test against a real Asterisk"): 600 Answer+Echo, 602 Answer+MusicOnHold,
// 604 Answer+ConfBridge, and _78XXXX Answer, Wait(0.5),
// Goto(${CONTEXT},${EXTEN:2},1), which hands the caller to the extension
// after the prefix through the snippet. A channel reaching one of them
// never enters Stasis there: the application answers it and keeps it until
// it is hung up.

// AppKind is what a dialplan number runs (Options.Apps).
type AppKind string

const (
	AppEcho       AppKind = "echo"       // Answer, Echo
	AppMusic      AppKind = "music"      // Answer, MusicOnHold
	AppConference AppKind = "conference" // Answer, ConfBridge
	// AppTransfer is a prefix: Answer, Wait, then the extension dialled
	// after it, as if dialled in the same context.
	AppTransfer AppKind = "transfer"
)

// app says what the dialplan runs for number: the application, and for a
// transfer prefix the mapped extension after it.
func (s *Server) appAt(number string) (AppKind, string, bool) {
	for n, k := range s.opts.Apps {
		if k == AppTransfer {
			if ext, ok := strings.CutPrefix(number, n); ok && s.known["PJSIP/"+ext] {
				return k, ext, true
			}
			continue
		}
		if n == number {
			return k, "", true
		}
	}
	return "", "", false
}

// runApp runs the application at number for channel c, which the dialplan
// has just brought there (outside Stasis). It reports false if number runs
// none. Called with s.mu held.
func (s *Server) runApp(c *Channel, number string) bool {
	kind, ext, ok := s.appAt(number)
	if !ok {
		return false
	}
	c.Exten = number
	c.AppName, c.AppData = map[AppKind]string{AppEcho: "Echo", AppMusic: "MusicOnHold",
		AppConference: "ConfBridge", AppTransfer: "Wait"}[kind], ""
	s.appAnswer(c)
	if kind != AppTransfer {
		return true
	}
	// Goto(${CONTEXT},${EXTEN:2},1): the snippet of the extension, as a
	// phone dialling it, though the caller is answered already.
	c.Exten = ext
	if s.ws == nil {
		c.AppName, c.AppData = "Dial", "PJSIP/"+ext
		s.plainDialFrom(c, "PJSIP/"+ext)
		return true
	}
	c.AppName, c.AppData, c.InStasis, c.Priority = "Stasis", s.opts.App+",dial,"+ext, true, 2
	s.chanEvent("StasisStart", c, map[string]any{"args": []string{"dial", ext}})
	return true
}

// appAnswer is Answer() in the dialplan: the channel goes Up (a Local
// half brings its other half Up with it); no Dial event, as no Dial()
// runs.
func (s *Server) appAnswer(c *Channel) {
	if c.State != "Up" {
		c.State = "Up"
		s.emitIf("ChannelStateChange", c, nil)
	}
	s.localUp(c)
}

// localApp makes the ;2 half of a Local channel l1 to an application
// number and runs the application on it. Called with s.mu held.
func (s *Server) localApp(l1 *Channel, caller *Channel) bool {
	rest, ok := strings.CutPrefix(l1.Endpoint, "Local/")
	if !ok || l1.localPeer != "" {
		return false
	}
	num, ctx, ok := strings.Cut(strings.TrimSuffix(rest, "/n"), "@")
	if !ok {
		return false
	}
	if _, _, ok := s.appAt(num); !ok {
		return false
	}
	l2 := s.newChannel(l1.ID+";2", l1.Endpoint, "Ring")
	l2.Name = strings.TrimSuffix(l1.Name, ";1") + ";2"
	l2.CallerName, l2.CallerNum = l1.CallerName, l1.CallerNum
	if caller != nil {
		l2.CallerName, l2.CallerNum = caller.CallerName, caller.CallerNum
	}
	l2.Context = ctx
	l1.localPeer, l2.localPeer = l2.ID, l1.ID
	return s.runApp(l2, num)
}
