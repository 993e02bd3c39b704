package fakeesl

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Reply is the fake's answer to one api or bgapi command.
type Reply struct {
	Body    string        // api/response body, or the BACKGROUND_JOB result for bgapi
	Delay   time.Duration // before the api reply, or before the BACKGROUND_JOB event
	NoReply bool          // never answer (a hung FreeSWITCH)
	// JobFirst sends the BACKGROUND_JOB event before the bgapi command/reply.
	JobFirst bool
	// Before is sent to every event subscriber before the reply (events of
	// a bgapi originate typically precede its BACKGROUND_JOB).
	Before []Event
	// After is sent to every event subscriber once the reply went out (for
	// bgapi: after the BACKGROUND_JOB event).
	After []Event
	// AfterDelay is a pause between the reply (for bgapi: the
	// BACKGROUND_JOB event) and the After events, as when FreeSWITCH reports
	// what a command did a moment after it answered.
	AfterDelay time.Duration
	// Then, when set, runs once the reply went out, in place of After and
	// (for bgapi) the BACKGROUND_JOB: a call model reports what the
	// command does from there on itself, in order with its other events,
	// and sends the job's result (JobEvent) when the job is done. jobUUID
	// is "" for api.
	Then func(jobUUID string)
}

// Handler answers api/bgapi commands; cmd is the line without "api "/"bgapi ".
type Handler func(cmd string, background bool) Reply

// Server is a fake FreeSWITCH event socket on 127.0.0.1.
type Server struct {
	Password string

	ln     net.Listener
	closed chan struct{}

	mu       sync.Mutex
	conns    map[*conn]struct{}
	cmds     []string
	changed  chan struct{}
	handler  Handler
	greeting string
	mute     bool
	refuse   bool
	seq      uint64
	accepted int
}

type conn struct {
	c          net.Conn
	wmu        sync.Mutex
	subscribed bool
}

// New starts a fake on 127.0.0.1:0 with password ClueCon.
func New() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		Password: "ClueCon",
		ln:       ln,
		closed:   make(chan struct{}),
		conns:    map[*conn]struct{}{},
		changed:  make(chan struct{}),
		greeting: "auth/request",
		seq:      900000,
	}
	go s.accept()
	return s, nil
}

// Addr is the host:port to dial.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and drops every connection.
func (s *Server) Close() {
	select {
	case <-s.closed:
		return
	default:
	}
	close(s.closed)
	s.ln.Close()
	s.DropAll()
}

// SetHandler installs the api/bgapi answers (nil restores the defaults).
func (s *Server) SetHandler(h Handler) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// SetGreeting makes new connections greet with another Content-Type
// ("text/rude-rejection" as for an ACL reject), or with nothing at all ("").
func (s *Server) SetGreeting(contentType string) {
	s.mu.Lock()
	s.greeting = contentType
	s.mu.Unlock()
}

// Mute stops (true) or resumes answering commands on every connection, as a
// FreeSWITCH that hangs or a network path that silently drops packets.
func (s *Server) Mute(m bool) {
	s.mu.Lock()
	s.mute = m
	s.mu.Unlock()
}

// Refuse makes the server close every new connection at once (true), as
// when FreeSWITCH is down or restarting, or accept them again (false).
// Connections already open are not touched; see DropAll.
func (s *Server) Refuse(r bool) {
	s.mu.Lock()
	s.refuse = r
	s.mu.Unlock()
}

// WaitAccepted waits until at least n connections were accepted (refused
// ones included).
func (s *Server) WaitAccepted(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch := s.accepted, s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for connection %d: %w (accepted %d)", n, ctx.Err(), got)
		}
	}
}

// Accepted is how many connections were accepted so far.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Subscribers is how many connections have an event subscription.
func (s *Server) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.subscribed {
			n++
		}
	}
	return n
}

// DropAll closes every connection without a disconnect notice (FreeSWITCH
// crashed, or the network went away).
func (s *Server) DropAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = map[*conn]struct{}{}
	s.mu.Unlock()
	for c := range conns {
		c.c.Close()
	}
}

// DisconnectAll sends text/disconnect-notice on every connection and closes it.
func (s *Server) DisconnectAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = map[*conn]struct{}{}
	s.mu.Unlock()
	for c := range conns {
		body := "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
		c.write(Frame{Headers: []Header{{"Content-Type", "text/disconnect-notice"}}, Body: []byte(body)}.Bytes())
		c.c.Close()
	}
}

// Commands returns every command line received so far (auth excluded).
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

// WaitCommand waits for a command starting with prefix received after the
// first skip such commands, and returns it.
func (s *Server) WaitCommand(ctx context.Context, prefix string, skip int) (string, error) {
	for {
		s.mu.Lock()
		n := 0
		for _, c := range s.cmds {
			if strings.HasPrefix(c, prefix) {
				if n == skip {
					s.mu.Unlock()
					return c, nil
				}
				n++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for command %q: %w (got %q)", prefix, ctx.Err(), s.Commands())
		}
	}
}

// Emit sends events to every subscribed connection, in the given order.
func (s *Server) Emit(evs ...Event) {
	s.mu.Lock()
	var subs []*conn
	for c := range s.conns {
		if c.subscribed {
			subs = append(subs, c)
		}
	}
	s.mu.Unlock()
	for _, e := range evs {
		frame := Frame{Headers: []Header{{"Content-Type", "text/event-plain"}}, Body: e.Bytes()}.Bytes()
		for _, c := range subs {
			c.write(frame)
		}
	}
}

// NextSeq returns a fresh Event-Sequence number for synthetic events.
func (s *Server) NextSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		cn := &conn{c: c}
		s.mu.Lock()
		s.accepted++
		s.notifyLocked()
		refuse := s.refuse
		if !refuse {
			s.conns[cn] = struct{}{}
		}
		greeting := s.greeting
		s.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		go s.serve(cn, greeting)
	}
}

func (c *conn) write(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.c.Write(b)
}

func (c *conn) reply(text string, extra ...Header) {
	h := append([]Header{{"Content-Type", "command/reply"}, {"Reply-Text", text}}, extra...)
	c.write(Frame{Headers: h}.Bytes())
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.c.Close()
}

func (s *Server) serve(c *conn, greeting string) {
	defer s.forget(c)
	switch greeting {
	case "":
		// Say nothing: a client must give up by itself.
		<-s.closed
		return
	case "auth/request":
		c.write(Frame{Headers: []Header{{"Content-Type", "auth/request"}}}.Bytes())
	default:
		c.write(Frame{Headers: []Header{{"Content-Type", greeting}}}.Bytes())
		return
	}
	r := bufio.NewReader(c.c)
	authed := false
	for {
		line, err := readCommand(r)
		if err != nil {
			return
		}
		s.mu.Lock()
		muted := s.mute
		s.mu.Unlock()
		if muted {
			continue
		}
		if !authed {
			if line == "auth "+s.Password {
				authed = true
				c.reply("+OK accepted")
				continue
			}
			c.reply("-ERR invalid")
			return
		}
		s.record(line)
		switch {
		case strings.HasPrefix(line, "event plain"):
			s.mu.Lock()
			c.subscribed = true
			s.mu.Unlock()
			c.reply("+OK event listener enabled plain")
		case line == "exit":
			c.reply("+OK bye")
			body := "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
			c.write(Frame{Headers: []Header{{"Content-Type", "text/disconnect-notice"}}, Body: []byte(body)}.Bytes())
			return
		case strings.HasPrefix(line, "api "):
			rep := s.answer(strings.TrimSpace(strings.TrimPrefix(line, "api ")), false)
			if rep.NoReply {
				continue
			}
			s.Emit(rep.Before...)
			if !s.sleep(rep.Delay) {
				return
			}
			c.write(Frame{Headers: []Header{{"Content-Type", "api/response"}}, Body: []byte(rep.Body)}.Bytes())
			if rep.Then != nil {
				rep.Then("")
				continue
			}
			if rep.AfterDelay > 0 {
				go func() {
					if s.sleep(rep.AfterDelay) {
						s.Emit(rep.After...)
					}
				}()
			} else {
				s.Emit(rep.After...)
			}
		case strings.HasPrefix(line, "bgapi "):
			cmd := strings.TrimSpace(strings.TrimPrefix(line, "bgapi "))
			rep := s.answer(cmd, true)
			if rep.NoReply {
				continue
			}
			id := uuid()
			s.Emit(rep.Before...)
			if rep.Then != nil {
				c.reply("+OK Job-UUID: "+id, Header{"Job-UUID", id})
				rep.Then(id)
				continue
			}
			// The job's Event-Sequence is taken only when it is sent: one
			// never sent would leave a gap in the sequence, which holds an
			// adapter's events back for its whole reorder window.
			if rep.JobFirst {
				s.Emit(s.jobEvent(id, cmd, rep.Body))
				c.reply("+OK Job-UUID: "+id, Header{"Job-UUID", id})
				s.Emit(rep.After...)
				continue
			}
			c.reply("+OK Job-UUID: "+id, Header{"Job-UUID", id})
			go func() {
				if s.sleep(rep.Delay) {
					s.Emit(s.jobEvent(id, cmd, rep.Body))
					if s.sleep(rep.AfterDelay) {
						s.Emit(rep.After...)
					}
				}
			}()
		default:
			c.reply("-ERR command not found")
		}
	}
}

// readCommand reads one client command: lines up to an empty line; the
// first line is the command, further lines (sendmsg headers) are ignored.
func readCommand(r *bufio.Reader) (string, error) {
	first := ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if first == "" {
				continue
			}
			return first, nil
		}
		if first == "" {
			first = strings.TrimSpace(line)
		}
	}
}

func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.closed:
		return false
	}
}

func (s *Server) record(line string) {
	s.mu.Lock()
	s.cmds = append(s.cmds, line)
	s.notifyLocked()
	s.mu.Unlock()
}

// notifyLocked wakes WaitCommand and WaitAccepted; s.mu is held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) answer(cmd string, bg bool) Reply {
	s.mu.Lock()
	h := s.handler
	s.mu.Unlock()
	if h != nil {
		return h(cmd, bg)
	}
	return DefaultReply(cmd)
}

// DefaultReply is what an idle FreeSWITCH answers (bodies from the traces).
func DefaultReply(cmd string) Reply {
	switch {
	case cmd == "status":
		return Reply{Body: "UP 0 years, 0 days, 0 hours, 11 minutes, 50 seconds, 106 milliseconds, 125 microseconds\nFreeSWITCH (Version 1.10.12-release 64bit) is ready\n"}
	case strings.HasPrefix(cmd, "show channels as json"), strings.HasPrefix(cmd, "show calls as json"),
		strings.HasPrefix(cmd, "show registrations as json"):
		return Reply{Body: "{\"row_count\": 0}\n"}
	case cmd == "strepoch":
		// FreeSWITCH's clock in Unix seconds, without a line break.
		return Reply{Body: strconv.FormatInt(time.Now().Unix(), 10)}
	case strings.HasPrefix(cmd, "user_data"):
		// FreeSWITCH's answer for a user or variable it does not have.
		return Reply{Body: "-ERR no reply\n"}
	case strings.HasPrefix(cmd, "uuid_exists"):
		return Reply{Body: "false"}
	case strings.HasPrefix(cmd, "uuid_"):
		return Reply{Body: "-ERR No such channel!\n"}
	default:
		return Reply{Body: "+OK\n"}
	}
}

// JobEvent is the BACKGROUND_JOB event of job id (the bgapi command cmd,
// without "bgapi ") with its result body, shaped as FreeSWITCH sends it.
func (s *Server) JobEvent(id, cmd, body string) Event { return s.jobEvent(id, cmd, body) }

func (s *Server) jobEvent(id, cmd, body string) Event {
	name, arg, _ := strings.Cut(cmd, " ")
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return Event{Headers: []Header{
		{"Event-Name", "BACKGROUND_JOB"},
		{"Core-UUID", "d0304bec-b210-4345-af67-c5efc9c81397"},
		{"Event-Calling-File", "mod_event_socket.c"},
		{"Event-Calling-Function", "api_exec"},
		{"Event-Sequence", fmt.Sprint(s.NextSeq())},
		{"Job-UUID", id},
		{"Job-Command", name},
		{"Job-Command-Arg", url.PathEscape(arg)},
	}, Body: []byte(body)}
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
