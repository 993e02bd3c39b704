package bridge

import (
	"crypto/tls"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/actionurl"
	"github.com/csta-bridge/csta-bridge/bridge/config"
)

// actionSender turns a phone event into the action URL GETs a Snom phone
// would send: it looks the setting up, expands the $variables at the moment
// of the event and hands the URL to the notifier, which never blocks.
type actionSender struct {
	log      *slog.Logger
	notifier *actionurl.Notifier
	metrics  *metrics
	hostIP   func() string // IP of the shared listener, for $phone_ip of phones without their own
	recent   *recentLog[actionRecord]
	// tls: the tls.Config of each action_url.tls setting in force.
	tls atomic.Pointer[map[config.ActionURLTLS]*tls.Config]
}

// actionRecord is one action URL as shown on the status page.
type actionRecord struct {
	At     time.Time
	Ext    string
	Event  string
	CSTAID int
	URL    string // redacted
	Result string // "sent", "ok 200", "failed: …", "dropped: …"
}

// fire sends setting's action URL for phone p (and call c, nil for phone
// events such as on-hook). reason is the PBX's cause text for $cancel_reason.
func (a *actionSender) fire(p *phone, c *call, setting, reason string) {
	tmpl, ok := p.setting(setting)
	if !ok || strings.TrimSpace(tmpl) == "" {
		return
	}
	id := 0
	if c != nil {
		id = c.id
	}
	u, err := actionurl.Expand(tmpl, a.lookup(p, c, reason))
	if err != nil {
		a.log.Warn("action URL not sent: bad template", "ext", p.cfg.Name, "csta_id", id, "event", setting,
			"url", actionurl.Redact(tmpl), "err", err)
		a.metrics.actionFailed(setting, "bad-template")
		a.recent.add(actionRecord{At: time.Now(), Ext: p.cfg.Name, Event: setting, CSTAID: id,
			URL: actionurl.Redact(tmpl), Result: "failed: " + err.Error()})
		return
	}
	timeout := p.cfg.ActionURL.Timeout
	job := actionurl.Job{Key: p.cfg.Name, Event: setting, URL: u, Timeout: timeout,
		Retries: p.cfg.ActionURL.Retries, LocalAddr: p.localIP, CSTAID: id, TLS: a.tlsFor(p.cfg.ActionURL.TLS)}
	a.notifier.Enqueue(job)
}

// lookup resolves Snom's variables for one event (research/snom.md §1.3).
func (a *actionSender) lookup(p *phone, c *call, reason string) actionurl.Lookup {
	return func(name string) (string, bool) {
		switch name {
		case "local", "active_url", "context_url":
			return p.localURI(), true
		case "active_user", "user_name1":
			return p.cfg.Name, true
		case "active_host", "user_host1":
			return p.cfg.Domain, true
		case "display_local", "user_realname1":
			return p.cfg.DisplayName, true
		case "phone_ip", "local_ip":
			if p.localIP != "" {
				return p.localIP, true
			}
			return a.hostIP(), true
		case "nr_ongoing_calls":
			return strconv.Itoa(len(p.calls)), true
		case "mac":
			if v, ok := p.setting("mac"); ok {
				return v, true
			}
			return p.mac, true
		case "cancel_reason":
			return reason, true
		case "active_key", "expansion_module":
			return "", true
		}
		if c != nil {
			switch name {
			case "remote":
				return remoteURI(p, c), true
			case "display_remote":
				return c.remote.Name, true
			case "csta_id":
				return strconv.Itoa(c.id), true
			case "call-id":
				return c.sipCallID, true
			}
			if h, ok := strings.CutPrefix(name, "sip_header("); ok && strings.HasSuffix(h, ")") {
				h = strings.TrimSuffix(h, ")")
				for k, v := range c.headers {
					if strings.EqualFold(k, h) {
						return v, true
					}
				}
				return "", true
			}
		}
		switch name {
		case "remote", "display_remote", "csta_id", "call-id":
			return "", true
		}
		if v, ok := p.setting(name); ok {
			if secretSetting(name) {
				return "", true // the phone expands passwords to nothing
			}
			return v, true
		}
		return "", false
	}
}

// secretSetting reports settings a Snom phone never reveals in action URLs.
func secretSetting(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "pass") || strings.Contains(n, "pwd") || strings.Contains(n, "secret")
}

// remoteURI is $remote: the far party as sip:user@host.
func remoteURI(p *phone, c *call) string {
	if c.remote.URI != "" {
		return c.remote.URI
	}
	if c.remote.Number == "" {
		return ""
	}
	if strings.Contains(c.remote.Number, "@") {
		if strings.HasPrefix(c.remote.Number, "sip:") || strings.HasPrefix(c.remote.Number, "sips:") {
			return c.remote.Number
		}
		return "sip:" + c.remote.Number
	}
	return "sip:" + c.remote.Number + "@" + p.cfg.Domain
}

// observer feeds the notifier's outcomes into metrics, logs and the status page.
type actionObserver struct{ a *actionSender }

func (o actionObserver) Delivered(j actionurl.Job, status int, elapsed time.Duration, err error) {
	res := "ok " + strconv.Itoa(status)
	if err != nil {
		res = "failed: " + err.Error()
		o.a.metrics.actionFailed(j.Event, "error")
	} else if status >= 400 {
		res = "failed: HTTP " + strconv.Itoa(status)
		o.a.metrics.actionFailed(j.Event, "http-"+strconv.Itoa(status/100)+"xx")
	} else {
		o.a.metrics.actionOK(j.Event, elapsed)
	}
	o.a.recent.add(actionRecord{At: time.Now(), Ext: j.Key, Event: j.Event, CSTAID: j.CSTAID,
		URL: actionurl.Redact(j.URL), Result: res})
}

func (o actionObserver) Dropped(j actionurl.Job, reason string) {
	o.a.metrics.actionDropped(j.Event, reason)
	o.a.recent.add(actionRecord{At: time.Now(), Ext: j.Key, Event: j.Event, CSTAID: j.CSTAID,
		URL: actionurl.Redact(j.URL), Result: "dropped: " + reason})
}

// ring keeps the last n records for the status page.
type ring[T any] struct {
	mu   sync.Mutex
	buf  []T
	next int
	full bool
}

func newRing[T any](n int) *ring[T] { return &ring[T]{buf: make([]T, n)} }

func (r *ring[T]) add(v T) {
	r.mu.Lock()
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

// list returns the records, oldest first.
func (r *ring[T]) list() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]T(nil), r.buf[:r.next]...)
	}
	return append(append([]T(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}
