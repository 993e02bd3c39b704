package fakeari

import "fmt"

// What the adapter's conference and deflect need of the fake beyond the
// calls of fakeari.go: muting a channel, and a continued channel that the
// dialplan routes back into the application.

// mute applies POST/DELETE /channels/{id}/mute. Asterisk 22 answers 204 to
// both on a Stasis channel whatever was muted before, and sends no event.
// Called with s.mu held.
func (s *Server) mute(c *Channel, method, dir string) {
	if dir == "" {
		dir = "both"
	}
	on := map[string]bool{}
	switch c.Muted {
	case "both":
		on["in"], on["out"] = true, true
	case "in", "out":
		on[c.Muted] = true
	}
	for _, d := range []string{"in", "out"} {
		if dir == d || dir == "both" {
			on[d] = method == "POST"
		}
	}
	switch {
	case on["in"] && on["out"]:
		c.Muted = "both"
	case on["in"]:
		c.Muted = "in"
	case on["out"]:
		c.Muted = "out"
	default:
		c.Muted = ""
	}
}

// Reenter is the dialplan snippet taking a channel that was continued
// (POST /channels/{id}/continue) to a mapped number back into the
// application: Stasis(app,dial,<its extension>). Asterisk then sends
// StasisStart with the snippet's arguments, the channel at the snippet's
// priority.
func (s *Server) Reenter(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[id]
	if c == nil {
		return fmt.Errorf("fakeari: no channel %s", id)
	}
	if c.InStasis {
		return fmt.Errorf("fakeari: channel %s is in the application", id)
	}
	c.AppName, c.AppData, c.InStasis, c.Priority = "Stasis", s.opts.App+",dial,"+c.Exten, true, 2
	s.chanEvent("StasisStart", c, map[string]any{"args": []string{"dial", c.Exten}})
	return nil
}
