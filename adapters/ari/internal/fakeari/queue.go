package fakeari

import (
	"fmt"
	"strings"
)

// Ring-all calls as Asterisk 22.10.1 plays them (captured in
// adapters/ari/testdata/queue_*.jsonl): the caller's channel runs Queue()
// (strategy ringall) or a Dial() of several destinations, and every member
// is rung through a Local channel Local/<ext>@csta-bridge-route/n whose ;2
// half enters the application with Stasis(app,dial,<ext>). The ;1 half
// stays with the queue and is never seen by the application. When the
// application answers one ;2 half, the caller is answered and the other
// members' Local channels are hung up with cause 26 (answered elsewhere);
// when the caller gives up, every member's ;2 half gets a hangup request
// with cause 0 and ends with 16.

// ringAll is one caller ringing several members.
type ringAll struct {
	caller   string
	members  map[string]string // ;2 half id → its ;1 half id
	answered string            // the ;2 half that answered
}

// RouteContext is the context of the dialplan snippet the members' Local
// channels run.
const RouteContext = "csta-bridge-route"

// CallRingAll simulates the device of endpoint dialling number, whose
// dialplan (application app, "Queue" or "Dial") rings the extensions
// members through the bridge's route. It returns the caller's channel id.
func (s *Server) CallRingAll(endpoint, number, app string, members ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.newChannel("", endpoint, "Ring")
	c.Exten, c.Context = number, "from-internal"
	s.emitIf("ChannelCreated", c, nil)
	c.AppName, c.AppData, c.Priority = app, "", 2
	s.emitIf("ChannelDialplan", c, nil)
	g := &ringAll{caller: c.ID, members: map[string]string{}}
	if s.rings == nil {
		s.rings = map[string]*ringAll{}
	}
	s.rings[c.ID] = g
	for _, m := range members {
		one := s.newChannel("", "Local/"+m+"@"+RouteContext+"/n", "Ringing")
		one.Context, one.Exten, one.AppName = RouteContext, number, "App"+app
		two := s.newChannel("", one.Endpoint, "Ring")
		two.Name = strings.TrimSuffix(one.Name, ";1") + ";2"
		two.CallerName, two.CallerNum = c.CallerName, c.CallerNum
		two.ConnNum = number
		two.Context, two.Exten, two.Priority = RouteContext, m, 2
		two.AppName, two.AppData, two.InStasis = "Stasis", s.opts.App+",dial,"+m, true
		// Entering Stasis subscribed the application to the channel
		// until it ends (its ChannelDestroyed comes after StasisEnd).
		two.app = true
		g.members[two.ID] = one.ID
		s.rings[two.ID] = g
		s.chanEvent("StasisStart", two, map[string]any{"args": []string{"dial", m}})
	}
	return c.ID
}

// CallWithHeaders simulates the device of endpoint dialling a number whose
// dialplan sets CSTA_SIP_HEADERS to headers and goes to the extension to
// through the bridge's route. It returns the caller's channel id.
func (s *Server) CallWithHeaders(endpoint, to, headers string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.newChannel("", endpoint, "Ring")
	c.Exten, c.Context = to, "from-internal"
	c.Vars["CSTA_SIP_HEADERS"] = headers
	s.emitIf("ChannelCreated", c, nil)
	c.AppName, c.AppData, c.InStasis, c.Priority = "Stasis", s.opts.App+",dial,"+to, true, 2
	s.chanEvent("StasisStart", c, map[string]any{"args": []string{"dial", to}})
	return c.ID
}

// ringAllAnswered: the application answered c. If c is a member's ;2
// half, the queue connects the caller to it and drops the other members as
// answered elsewhere. Called with s.mu held.
func (s *Server) ringAllAnswered(c *Channel) {
	g := s.rings[c.ID]
	if g == nil || g.answered != "" || g.members[c.ID] == "" {
		return
	}
	g.answered = c.ID
	if one := s.channels[g.members[c.ID]]; one != nil {
		one.State = "Up"
	}
	for two, one := range g.members {
		if two == c.ID {
			continue
		}
		s.dropMember(g, two, one, 26, 26)
	}
	if caller := s.channels[g.caller]; caller != nil && caller.State != "Up" {
		caller.State = "Up"
		caller.ConnName, caller.ConnNum = "", c.Exten
		s.emitIf("ChannelConnectedLine", caller, nil)
		s.emitIf("ChannelStateChange", caller, nil)
	}
}

// dropMember hangs up a member's Local channel: its ;1 half goes silently,
// its ;2 half with the hangup request and end causes Asterisk reports.
func (s *Server) dropMember(g *ringAll, two, one string, requestCause, endCause int) {
	delete(g.members, two)
	delete(s.rings, two)
	delete(s.channels, one)
	if c := s.channels[two]; c != nil {
		s.emitIf("ChannelHangupRequest", c, map[string]any{"cause": requestCause})
		s.destroy(c, endCause)
	}
}

// ringAllGone: channel c ended. The caller's end drops every member (cause
// 0, then 16, as for an abandoned queue call); the answered member's end
// hangs the caller up. Called with s.mu held, from destroy.
func (s *Server) ringAllGone(c *Channel) {
	g := s.rings[c.ID]
	if g == nil {
		return
	}
	delete(s.rings, c.ID)
	if c.ID == g.caller {
		g.caller = ""
		for two, one := range g.members {
			if two == g.answered {
				s.dropMember(g, two, one, 16, 16)
			} else {
				s.dropMember(g, two, one, 0, 16)
			}
		}
		return
	}
	delete(s.channels, g.members[c.ID])
	delete(g.members, c.ID)
	if c.ID == g.answered && g.caller != "" {
		if caller := s.channels[g.caller]; caller != nil {
			s.emitIf("ChannelHangupRequest", caller, map[string]any{"cause": 16})
			s.destroy(caller, 16)
		}
	}
}

// RingAllMembers returns the ids of the ;2 halves still ringing or
// connected for the caller's channel (for tests).
func (s *Server) RingAllMembers(caller string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.rings[caller]
	if g == nil {
		return nil, fmt.Errorf("fakeari: %s rings no queue", caller)
	}
	var out []string
	for two := range g.members {
		out = append(out, two)
	}
	return out, nil
}
