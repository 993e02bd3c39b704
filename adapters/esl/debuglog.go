package esl

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Debug logging that explains a race after the fact: every event with the
// connection it was attributed to, every command with its reply and how
// long it took. Callers check Enabled first, so with debug off nothing here
// runs and nothing is allocated (TestEventPathNoAllocsWithoutDebug).

// logEvent logs one ordered event and what the state machine made of it;
// s.mu is held.
func (s *callState) logEvent(ev chEvent, l *leg) {
	name := ev.Name
	if ev.Subclass != "" {
		name += " " + ev.Subclass
	}
	attrs := []slog.Attr{
		slog.String("event", name),
		slog.Uint64("seq", ev.Seq),
		slog.String("uuid", ev.UUID),
		slog.String("channel", ev.ChanName),
	}
	if ev.Other != "" {
		attrs = append(attrs, slog.String("other", ev.Other))
	}
	if ev.State != "" {
		attrs = append(attrs, slog.String("callstate", ev.State))
	}
	if ev.Cause != "" {
		attrs = append(attrs, slog.String("cause", ev.Cause))
	}
	switch {
	case l != nil:
		attrs = append(attrs, slog.String("ext", l.ext), slog.String("conn", l.id), slog.String("leg", legRole(l)))
	case ev.RegUser != "" && s.users[ev.RegUser] != "":
		attrs = append(attrs, slog.String("ext", s.users[ev.RegUser]), slog.String("leg", "device"))
	default:
		attrs = append(attrs, slog.String("ext", "not ours"))
	}
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "esl event", attrs...)
}

// legRole says which channel of its connection a leg is.
func legRole(l *leg) string {
	switch {
	case l.swapLeg:
		return "answer-swap call"
	case l.swapped:
		return "replaced ringing call"
	case l.orphan:
		return "orphan makecall"
	case l.makeCall:
		return "makecall device call"
	case l.dir == pbx.Outgoing:
		return "outgoing device call"
	default:
		return "incoming device call"
	}
}

// secretValue matches the values of channel variables that may carry
// credentials (sip_auth_password=…, …_pass=…, password=…).
var secretValue = regexp.MustCompile(`(?i)([a-z_]*(?:password|passwd|_pass|secret|token)[a-z_]*=)([^,\]} ]*)`)

// redact hides credentials in a command line before it is logged.
func redact(cmd string) string {
	if strings.HasPrefix(cmd, "auth ") {
		return "auth [redacted]"
	}
	if strings.HasPrefix(cmd, "userauth ") {
		return "userauth [redacted]"
	}
	return secretValue.ReplaceAllString(cmd, "${1}[redacted]")
}

// logCommand logs one api/bgapi command, its reply and its duration.
func (a *Adapter) logCommand(cmd, reply string, took time.Duration, err error) {
	attrs := []slog.Attr{
		slog.String("cmd", redact(cmd)),
		slog.Duration("took", took),
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	} else {
		attrs = append(attrs, slog.String("reply", shorten(reply)))
	}
	a.log.LogAttrs(context.Background(), slog.LevelDebug, "esl command", attrs...)
}

// shorten keeps a reply loggable: `show channels as json` can be long.
func shorten(s string) string {
	s = strings.TrimSpace(s)
	const max = 300
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func (a *Adapter) debug() bool { return a.log.Enabled(context.Background(), slog.LevelDebug) }
