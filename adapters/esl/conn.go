package esl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"

	"github.com/percipia/eslgo"
	"github.com/percipia/eslgo/command"
)

// subscription is what the event connection listens to (plain format only:
// eslgo v1.4.1 leaves the headers of JSON and XML events empty).
const subscription = "event plain CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER " +
	"CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HOLD CHANNEL_UNHOLD CHANNEL_CALLSTATE CHANNEL_HANGUP " +
	"CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY CALL_UPDATE CHANNEL_EXECUTE PLAYBACK_START BACKGROUND_JOB HEARTBEAT " +
	"CUSTOM sofia::transferor sofia::transferee sofia::replaced sofia::register sofia::unregister sofia::expire"

// rawCommand is an ESL command line sent as is.
type rawCommand string

func (c rawCommand) BuildMessage() string { return string(c) }

// errAuth marks a rejected password; it is logged as a configuration
// problem but retried (the password may be fixed on the FreeSWITCH side).
var errAuth = errors.New("authentication failed (check pbx.esl.password and event_socket.conf.xml)")

// eslLogger adapts eslgo's printf logger to slog at Debug: its messages are
// internal details (and eslgo logs every auth at Info).
//
// It is also the only way to learn that eslgo's reader has stopped. eslgo
// v1.4.1 reports a connection closed without a disconnect notice (FreeSWITCH
// killed or crashed, the socket reset) by nothing but this warning from its
// receive loop, after which the connection delivers nothing ever again;
// without it a lost connection would only be found by the next liveness
// probe, up to PingInterval+CommandTimeout later. TestDropNoticedWithoutProbe
// fails if a new eslgo version words it differently.
type eslLogger struct {
	log  *slog.Logger
	dead func(reason string) // called when the receive loop ends; may be nil
}

// readerStopped is the format eslgo's receiveLoop logs when it gives up.
const readerStopped = "Error receiving message: %s\n"

func (l eslLogger) msg(level, format string, args ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "eslgo", "eslgo_level", level)
}
func (l eslLogger) Debug(format string, args ...any) { l.msg("debug", format, args...) }
func (l eslLogger) Info(format string, args ...any)  { l.msg("info", format, args...) }
func (l eslLogger) Warn(format string, args ...any) {
	l.msg("warn", format, args...)
	if format == readerStopped && l.dead != nil {
		l.dead("connection to FreeSWITCH lost: " + strings.TrimSpace(fmt.Sprint(args...)))
	}
}
func (l eslLogger) Error(format string, args ...any) { l.msg("error", format, args...) }

// probe checks that the server greets with auth/request. eslgo.Dial blocks
// forever on any other greeting (an ACL rejection is text/rude-rejection)
// and its net.Dial has no timeout, so this is done first, with deadlines.
func probe(ctx context.Context, addr string, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	h, err := textproto.NewReader(bufio.NewReader(c)).ReadMIMEHeader()
	if err != nil {
		return fmt.Errorf("reading the greeting: %w", err)
	}
	switch ct := h.Get("Content-Type"); ct {
	case "auth/request":
		return nil
	case "text/rude-rejection":
		return errors.New("FreeSWITCH rejected the connection (text/rude-rejection): allow this host in the apply-inbound-acl of event_socket.conf.xml")
	default:
		return fmt.Errorf("unexpected greeting %q: is this a FreeSWITCH event socket?", ct)
	}
}

// dial opens one authenticated ESL connection with a deadline. onGone is
// called when the connection is lost: FreeSWITCH sent a disconnect notice,
// or the socket was closed or failed.
func (a *Adapter) dial(ctx context.Context, onGone func(reason string)) (*eslgo.Conn, error) {
	timeout := a.opts.CommandTimeout
	if err := probe(ctx, a.opts.Address, timeout); err != nil {
		return nil, err
	}
	// eslgo also calls OnDisconnect when authentication fails; only a
	// connection that was up can be lost. A loss during the handshake is
	// remembered and turns the dial into a failure.
	var armed, lost atomic.Bool
	var lostWhy atomic.Value
	notify := func(reason string) {
		if lost.CompareAndSwap(false, true) {
			lostWhy.Store(reason)
		}
		if armed.Load() {
			onGone(reason)
		}
	}
	opts := eslgo.InboundOptions{
		Options: eslgo.Options{
			Context:     ctx,
			Logger:      eslLogger{log: a.log, dead: notify},
			ExitTimeout: timeout,
		},
		Network:      "tcp",
		Password:     a.opts.Password,
		OnDisconnect: func() { notify("FreeSWITCH closed the connection (disconnect notice)") },
		AuthTimeout:  timeout,
	}
	type result struct {
		c   *eslgo.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := opts.Dial(a.opts.Address)
		ch <- result{c, err}
	}()
	abandon := func() {
		// eslgo.Dial cannot be cancelled; release whatever it returns later.
		go func() {
			if r := <-ch; r.c != nil {
				release(r.c)
			}
		}()
	}
	timer := time.NewTimer(2 * timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			if strings.Contains(r.err.Error(), "failed to auth") {
				return nil, errAuth
			}
			return nil, r.err
		}
		armed.Store(true)
		if lost.Load() {
			release(r.c)
			return nil, fmt.Errorf("connection lost right after authentication: %v", lostWhy.Load())
		}
		return r.c, nil
	case <-timer.C:
		abandon()
		return nil, fmt.Errorf("no authentication within %v", 2*timeout)
	case <-ctx.Done():
		abandon()
		return nil, ctx.Err()
	}
}

// session is one pair of ESL connections; it ends on the first failure.
type session struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	events *eslgo.Conn
	cmds   *eslgo.Conn
	rx     *reorderer
	a      *Adapter
}

func (s *session) fail(err error) { s.cancel(err) }

func (s *session) close() {
	s.cancel(errors.New("session closed"))
	for _, c := range []*eslgo.Conn{s.events, s.cmds} {
		if c != nil {
			release(c)
		}
	}
}

// release ends an eslgo connection whose Options.Context was cancelled.
// eslgo v1.4.1's Close deletes from its channel map while its authLoop and
// disconnectLoop goroutines read that map without the lock (a data race
// that can crash with "concurrent map read and map write"), so Close is
// never called: the cancelled context stops eslgo's goroutines, and "exit"
// makes FreeSWITCH close the socket, which ends eslgo's reader. A peer that
// is gone is detected by TCP keep-alive, which net.Dial enables.
func release(c *eslgo.Conn) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = c.SendCommand(ctx, command.Exit{})
	}()
}

// send runs one command on conn with the command timeout. The caller's ctx
// only stops the waiting: a command that did not get its reply in time
// poisons the connection (eslgo would hand the late reply to the next
// command), so the whole session is restarted instead.
func (s *session) send(ctx context.Context, conn *eslgo.Conn, cmd command.Command) (*eslgo.RawResponse, error) {
	type result struct {
		r   *eslgo.RawResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		began := time.Now()
		cctx, cancel := context.WithTimeout(s.ctx, s.a.opts.CommandTimeout)
		r, err := conn.SendCommand(cctx, cmd)
		cancel()
		if err == nil && r == nil {
			err = errors.New("connection closed")
		}
		if s.a.debug() {
			reply := ""
			if r != nil {
				if reply = string(r.Body); reply == "" {
					reply = r.GetReply()
				}
			}
			s.a.logCommand(cmd.BuildMessage(), reply, time.Since(began), err)
		}
		if err != nil {
			s.fail(fmt.Errorf("command %q: %w", firstWords(cmd.BuildMessage(), 2), err))
		}
		ch <- result{r, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("esl: %s: %v: %w", firstWords(cmd.BuildMessage(), 2), r.err, errLinkDown)
		}
		return r.r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// api runs `api <cmd> <args>` on the command connection and checks the
// reply. It returns the reply body.
func (s *session) api(ctx context.Context, cmd, args string) (string, error) {
	return s.apiOn(ctx, s.cmds, cmd, args)
}

func (s *session) apiOn(ctx context.Context, conn *eslgo.Conn, cmd, args string) (string, error) {
	if strings.ContainsAny(cmd+args, "\r\n") {
		return "", fmt.Errorf("esl: %s: line break in arguments", cmd)
	}
	r, err := s.send(ctx, conn, command.API{Command: cmd, Arguments: args})
	if err != nil {
		return "", err
	}
	body := string(r.Body)
	if err := checkReply(cmd, body); err != nil {
		return body, err
	}
	return body, nil
}

// bgapi runs `bgapi <cmd> <args>` and returns the job's result channel.
func (s *session) bgapi(ctx context.Context, cmd, args string) (string, <-chan string, error) {
	if strings.ContainsAny(cmd+args, "\r\n") {
		return "", nil, fmt.Errorf("esl: %s: line break in arguments", cmd)
	}
	r, err := s.send(ctx, s.cmds, command.API{Command: cmd, Arguments: args, Background: true})
	if err != nil {
		return "", nil, err
	}
	reply := r.GetReply()
	if err := checkReply(cmd, reply); err != nil {
		return "", nil, err
	}
	id := r.GetHeader("Job-UUID")
	if id == "" {
		id = strings.TrimSpace(strings.TrimPrefix(reply, "+OK Job-UUID:"))
	}
	if id == "" {
		return "", nil, fmt.Errorf("esl: %s: no Job-UUID in reply %q: %w", cmd, reply, errLinkDown)
	}
	return id, s.a.jobs.wait(id), nil
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}
