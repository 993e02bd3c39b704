package ari

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

// The debug log explains a race after the fact: every event with the
// channel it is about and what the adapter made of it, every REST request
// with its arguments, answer and duration. All of it is built only when
// the logger has debug on: an event is handled on the reader's path, and
// Asterisk sends hundreds a second on a busy PBX.

// debugOn says whether debug records are wanted at all.
func debugOn(l *slog.Logger) bool { return l.Enabled(context.Background(), slog.LevelDebug) }

// eventChannelID is the channel an event is mainly about ("" if none).
func eventChannelID(ev *wireEvent) string {
	switch {
	case ev.Channel != nil:
		return ev.Channel.ID
	case ev.Peer != nil:
		return ev.Peer.ID
	case ev.FirstLeg != nil:
		return ev.FirstLeg.ID
	}
	return ""
}

// logEvent writes the debug record of an event the adapter has just
// applied. before is the channel as it was known before the event (a
// ChannelDestroyed removes it). Called with a.mu held.
func (a *Adapter) logEvent(ev *wireEvent, before *channel) {
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("type", ev.Type))
	id := eventChannelID(ev)
	if id != "" {
		name := ""
		switch {
		case ev.Channel != nil:
			name = ev.Channel.Name
			attrs = append(attrs, slog.String("channel", id), slog.String("name", name), slog.String("state", ev.Channel.State))
		case ev.Peer != nil:
			name = ev.Peer.Name
			attrs = append(attrs, slog.String("channel", id), slog.String("name", name), slog.String("state", ev.Peer.State))
		default:
			attrs = append(attrs, slog.String("channel", id), slog.String("name", ev.FirstLeg.Name))
		}
	}
	switch ev.Type {
	case "Dial":
		if ev.Caller != nil {
			attrs = append(attrs, slog.String("caller", ev.Caller.ID))
		}
		attrs = append(attrs, slog.String("dialstatus", ev.DialStatus))
	case "StasisStart":
		attrs = append(attrs, slog.Any("args", ev.Args))
		if ev.ReplaceChannel != nil {
			attrs = append(attrs, slog.String("replaces", ev.ReplaceChannel.ID))
		}
	case "ChannelVarset":
		// The value may be anything the dialplan set; the name is enough.
		attrs = append(attrs, slog.String("variable", ev.Variable))
	case "ChannelHangupRequest", "ChannelDestroyed":
		attrs = append(attrs, slog.Int("cause", ev.Cause))
	}
	if ev.Bridge != nil {
		attrs = append(attrs, slog.String("bridge", ev.Bridge.ID))
	}
	if ev.Endpoint != nil {
		attrs = append(attrs, slog.String("endpoint", ev.Endpoint.Technology+"/"+ev.Endpoint.Resource), slog.String("endpoint_state", ev.Endpoint.State))
	}
	if id != "" {
		ch := a.chans[id]
		if ch == nil {
			ch = before
		}
		attrs = append(attrs, a.attribution(id, ch)...)
	}
	a.log.LogAttrs(context.Background(), slog.LevelDebug, "ARI event", attrs...)
}

// attribution says whose the channel is: an extension's connection (and
// whether it is the one the connection is on now), a party of an owned
// call, or nobody's. Called with a.mu held.
func (a *Adapter) attribution(id string, ch *channel) []slog.Attr {
	var out []slog.Attr
	if ch != nil && ch.leg != nil {
		l := ch.leg
		out = append(out, slog.String("ext", l.ref.Ext), slog.String("leg", l.ref.ID), slog.String("leg_state", l.state.String()))
		switch {
		case l.ch != ch:
			out = append(out, slog.String("leg_channel", l.ch.id)) // a swapped-out channel: its events are ignored
		case !a.live(l):
			out = append(out, slog.Bool("leg_ended", true))
		}
	}
	if c := a.callOf[id]; c != nil {
		out = append(out, slog.String("call", c.id))
	} else if l := a.swaps[id]; l != nil {
		out = append(out, slog.String("swap_for", l.ref.String()))
	}
	if len(out) == 0 {
		out = append(out, slog.Bool("not_ours", true))
	}
	return out
}

// logTransport logs every ARI REST request at debug: method, path, query
// and body (the command and its arguments; credentials travel in the
// Authorization header, which is never logged, and an api_key in the query
// is redacted), the answer's status and the time it took.
type logTransport struct {
	next http.RoundTripper
	log  *slog.Logger
}

// maxLoggedBody bounds a logged request body: originate's variables are the
// largest the adapter sends.
const maxLoggedBody = 2048

func (t *logTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.log.Enabled(req.Context(), slog.LevelDebug) {
		return t.next.RoundTrip(req)
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	attrs := []slog.Attr{slog.String("method", req.Method), slog.String("path", req.URL.Path)}
	if q := redactQuery(req.URL.Query()); q != "" {
		attrs = append(attrs, slog.String("query", q))
	}
	if b := requestBody(req); b != "" {
		attrs = append(attrs, slog.String("body", b))
	}
	attrs = append(attrs, slog.Duration("took", time.Since(start)))
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	} else {
		attrs = append(attrs, slog.Int("status", resp.StatusCode))
	}
	t.log.LogAttrs(req.Context(), slog.LevelDebug, "ARI request", attrs...)
	return resp, err
}

var secretParam = regexp.MustCompile(`(?i)(api_key|password|secret)`)

func redactQuery(q url.Values) string {
	for k := range q {
		if secretParam.MatchString(k) {
			q[k] = []string{"REDACTED"}
		}
	}
	return q.Encode()
}

// requestBody is a copy of the request's body, secrets redacted.
func requestBody(req *http.Request) string {
	if req.GetBody == nil {
		return ""
	}
	rc, err := req.GetBody()
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, maxLoggedBody))
	b = bytes.TrimSpace(b)
	return secretValue.ReplaceAllString(string(b), `${1}"REDACTED"`)
}

// secretValue finds "key":"value" pairs whose key names a secret.
var secretValue = regexp.MustCompile(`(?i)("[^"]*(?:api_key|password|secret)[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"`)
