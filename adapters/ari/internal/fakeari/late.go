package fakeari

import (
	"net/http"
	"strings"

	"golang.org/x/net/websocket"
)

// Events that a real Asterisk sends after the HTTP answer of the request
// that caused them. Asterisk answers a request from the HTTP thread and
// publishes its events from the channel's own thread and from each
// subscription's forwarder, so under load the answer and the events come
// in any order:
//
//   - DELETE /channels/{id} answers 204 before the channel's
//     ChannelHangupRequest and ChannelDestroyed (traces/asterisk
//     c_stasis_app_controlled: the 204 at .969, the hang-up's events after
//     it); the channel goes when its thread gets to it.
//   - An originated channel's StasisStart comes after POST /channels has
//     been answered (d2_originate_into_stasis), while the events its
//     endpoint subscription forwards (ChannelCreated, ChannelStateChange
//     Up, Dial ANSWER) come before it.
//
// The fake can reproduce both. The events keep their order among
// themselves; events of later requests may overtake them, as the other
// channels' events do on a real Asterisk.

// lateCapture collects the events of one request that go out late. from
// is the event type from which on they are late ("" for all of them).
type lateCapture struct {
	from    string
	started bool
	frames  []string
	// untilFlush: the events wait for FlushLate rather than going out just
	// after the reply.
	untilFlush bool
}

// SetLateStasisStart makes an originated channel's StasisStart (and what
// the fake says after it within the same request) go out only after the
// POST /channels answer has been written; the endpoint subscription's
// events for the new channel still come before the answer.
func (s *Server) SetLateStasisStart(on bool) {
	s.mu.Lock()
	s.lateStasis = on
	s.mu.Unlock()
}

// SetLateHangups makes the events of a channel hung up by
// DELETE /channels/{id} (ChannelHangupRequest, ChannelLeftBridge,
// StasisEnd, ChannelDestroyed) wait after the 204 until the test calls
// FlushLate: an Asterisk so busy that the channel's thread gets to the
// hang-up arbitrarily late. The channel is gone from the model at once.
func (s *Server) SetLateHangups(on bool) {
	s.mu.Lock()
	s.lateHangup = on
	s.mu.Unlock()
}

// FlushLate sends the events SetLateHangups held back, in order.
func (s *Server) FlushLate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	frames := s.late
	s.late = nil
	s.sendFrames(frames)
}

// lateFor starts capturing the events of a request that a misbehaviour
// makes late, or returns nil. Called with s.mu held.
func (s *Server) lateFor(method, path string) *lateCapture {
	switch {
	case s.lateStasis && method == "POST" && path == "/channels":
		return &lateCapture{from: "StasisStart"}
	case s.lateHangup && method == "DELETE" && strings.HasPrefix(path, "/channels/") && strings.Count(path, "/") == 2:
		return &lateCapture{started: true, untilFlush: true}
	}
	return nil
}

// captured says whether the event just marshalled is held back, and holds
// it. Called with s.mu held.
func (s *Server) captured(typ, data string) bool {
	c := s.capture
	if c == nil {
		return false
	}
	if !c.started && typ == c.from {
		c.started = true
	}
	if c.started {
		c.frames = append(c.frames, data)
	}
	return c.started
}

// afterReply sends, or queues for FlushLate, what c held back, once the
// answer (if replied) is on its way to the client.
func (s *Server) afterReply(w http.ResponseWriter, c *lateCapture, replied bool) {
	if c == nil || len(c.frames) == 0 {
		return
	}
	if fl, ok := w.(http.Flusher); ok && replied {
		fl.Flush()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.untilFlush {
		s.late = append(s.late, c.frames...)
		s.bump()
		return
	}
	s.sendFrames(c.frames)
}

// sendFrames writes frames on the websocket; called with s.mu held.
func (s *Server) sendFrames(frames []string) {
	if len(frames) == 0 {
		return
	}
	if ws := s.ws; ws != nil {
		ws.mu.Lock()
		for _, f := range frames {
			if err := websocketSend(ws, f); err != nil {
				break
			}
		}
		ws.mu.Unlock()
	}
	s.bump()
}

func websocketSend(ws *wsConn, frame string) error { return websocket.Message.Send(ws.conn, frame) }
