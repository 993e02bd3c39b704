package fakeari

import (
	"fmt"
	"sort"
	"strings"
)

// What a bridge that is away leaves in Asterisk, and what Asterisk itself
// does about it (issue 20): channels stay in the application after its
// websocket has gone (the rest of the fake already keeps them), and three
// pieces of Asterisk behave as on Asterisk 22.10.1:
//   - BRIDGEPEER: a channel in a two-party bridge names the other, one in a
//     bigger bridge the others; the channel that leaves a bridge loses it,
//     the one left behind keeps the old name;
//   - a hangup handler pushed with CHANNEL(hangup_handler_push) runs when
//     the channel ends; the dialplan's [csta-bridge-hangup]
//     (configs/asterisk/extensions_csta-bridge.conf) is modelled: it hangs
//     up the channel named CSTA_PEER if that one's BRIDGEPEER is still the
//     ending channel;
//   - a Local channel to a mapped extension (Local/1002@ctx/n) that the
//     application dials reaches the route: its ;2 half enters
//     Stasis(app,dial,1002) (or, with no application connected, dials the
//     phone plainly); the two halves answer and end together. With
//     Options.Route a channel continued to a mapped extension comes back
//     into the application the same way.

// peers sets BRIDGEPEER of b's channels after a change. Called with s.mu held.
func (s *Server) peers(b *bridge) {
	if len(b.Channels) < 2 {
		return
	}
	for _, id := range b.Channels {
		c := s.channels[id]
		if c == nil {
			continue
		}
		var others []string
		for _, o := range b.Channels {
			if oc := s.channels[o]; oc != nil && o != id {
				others = append(others, oc.Name)
			}
		}
		c.bridgePeer = strings.Join(others, ",")
	}
}

// left notes that c left bridge b: c loses its BRIDGEPEER, those still in
// b get theirs set again when two or more remain.
func (s *Server) left(c *Channel, b *bridge) {
	c.bridgePeer = ""
	s.peers(b)
}

// BridgePeer is a channel's BRIDGEPEER ("" for none or no such channel).
func (s *Server) BridgePeer(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.channels[id]; c != nil {
		return c.bridgePeer
	}
	return ""
}

// hangupHandler runs the handler pushed on c, which has just ended.
func (s *Server) hangupHandler(c *Channel) {
	if s.opts.HangupContext == "" || c.Vars["CHANNEL(hangup_handler_push)"] != s.opts.HangupContext+",s,1" {
		return
	}
	peer := c.Vars["CSTA_PEER"]
	if peer == "" {
		return
	}
	for _, p := range s.channels {
		if p.Name == peer && p.bridgePeer == c.Name {
			// SoftHangup(): a hangup request, then the channel ends with
			// normal clearing.
			s.emitIf("ChannelHangupRequest", p, map[string]any{"soft": true})
			s.destroy(p, 16)
			return
		}
	}
}

// localMapped gives the extension a Local channel to a mapped phone
// dials ("Local/1002@from-internal/n" → "1002"), if it is one.
func (s *Server) localMapped(endpoint string) (string, string, bool) {
	rest, ok := strings.CutPrefix(endpoint, "Local/")
	if !ok {
		return "", "", false
	}
	rest = strings.TrimSuffix(rest, "/n")
	num, ctx, ok := strings.Cut(rest, "@")
	if !ok || !s.known["PJSIP/"+num] {
		return "", "", false
	}
	return num, ctx, true
}

// localRoute makes the ;2 half of a Local channel l1 the application has
// just dialled, and sends it through the route. Called with s.mu held.
func (s *Server) localRoute(l1 *Channel, caller *Channel) {
	num, ctx, ok := s.localMapped(l1.Endpoint)
	if !ok || l1.localPeer != "" {
		return
	}
	l2 := s.newChannel(l1.ID+";2", l1.Endpoint, "Ring")
	l2.Name = strings.TrimSuffix(l1.Name, ";1") + ";2"
	l2.CallerName, l2.CallerNum = l1.CallerName, l1.CallerNum
	if caller != nil {
		l2.CallerName, l2.CallerNum = caller.CallerName, caller.CallerNum
	}
	l2.Exten, l2.Context = num, ctx
	l1.localPeer, l2.localPeer = l2.ID, l1.ID
	if s.ws == nil {
		s.plainDialFrom(l2, "PJSIP/"+num)
		return
	}
	l2.AppName, l2.AppData, l2.InStasis, l2.Priority = "Stasis", s.opts.App+",dial,"+num, true, 2
	s.chanEvent("StasisStart", l2, map[string]any{"args": []string{"dial", num}})
}

// continueRoute brings a channel continued to a mapped extension back
// into the application (Options.Route); one continued to an application
// number runs it (apps.go).
func (s *Server) continueRoute(c *Channel) {
	if s.runApp(c, c.Exten) {
		return
	}
	if !s.opts.Route || s.ws == nil || !s.known["PJSIP/"+c.Exten] {
		return
	}
	c.AppName, c.AppData, c.InStasis, c.Priority = "Stasis", s.opts.App+",dial,"+c.Exten, true, 2
	s.chanEvent("StasisStart", c, map[string]any{"args": []string{"dial", c.Exten}})
}

// localUp answers the other half of a Local pair whose half c answered.
func (s *Server) localUp(c *Channel) {
	if p := s.channels[c.localPeer]; p != nil && p.State != "Up" {
		s.answer(p)
	}
}

// localGone ends the other half of a Local pair with the same cause.
func (s *Server) localGone(c *Channel, cause int) {
	if p := s.channels[c.localPeer]; p != nil {
		s.emitIf("ChannelHangupRequest", p, map[string]any{"cause": cause})
		s.destroy(p, cause)
	}
}

// Leftovers describes the channels and bridges the fake has ("" when none).
func (s *Server) Leftovers() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.channels) == 0 && len(s.bridges) == 0 {
		return ""
	}
	var chans, bridges []string
	for _, c := range s.channels {
		chans = append(chans, fmt.Sprintf("%s(%s %s in %q)", c.Name, c.ID, c.State, c.Bridge))
	}
	for _, b := range s.bridges {
		bridges = append(bridges, fmt.Sprintf("%s(%s %v)", b.Name, b.ID, b.Channels))
	}
	sort.Strings(chans)
	sort.Strings(bridges)
	return fmt.Sprintf("channels %v, bridges %v", chans, bridges)
}

// OtherAppChannel puts a channel of endpoint into another application's
// Stasis with the given variables, as another bridge on the same Asterisk
// would (its events do not reach this application). It returns its id.
func (s *Server) OtherAppChannel(endpoint, app string, vars map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.newChannel("", endpoint, "Up")
	c.AppName, c.AppData, c.Priority = "Stasis", app+",dial,1001", 2
	for k, v := range vars {
		c.Vars[k] = v
	}
	s.bump()
	return c.ID
}
