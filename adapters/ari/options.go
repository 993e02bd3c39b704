package ari

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Options configures the adapter. URL, Username, Password, Application and
// Context come from the pbx.ari section of the configuration.
type Options struct {
	URL, Username, Password, Application, Context string // URL like http://127.0.0.1:8088/ari

	Logger *slog.Logger // nil discards

	// RequestTimeout bounds every REST call (default 5s).
	RequestTimeout time.Duration
	// DialTimeout is how long a device or destination may ring before the
	// bridge gives up on it (default 30s).
	DialTimeout time.Duration
	// AnswerTimeout is how long AnswerCall waits for the device to pick up
	// the auto-answer call that replaces the ringing one (default 8s).
	AnswerTimeout time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay (defaults 500ms, 4s: a PBX that is back is
	// reconnected within 5 s, the product promise, with a second left for the handshake and resync).
	MinBackoff, MaxBackoff time.Duration
	// MOHClass is the music-on-hold class for PBX-side hold ("" = default).
	MOHClass string
	// HangupHandler is the dialplan context of the hangup handler that
	// keeps a connected call's two-party rule while the bridge is away
	// (sweep_rule.go; "" = csta-bridge-hangup, "-" = none).
	HangupHandler string
}

func (o *Options) setDefaults() {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 30 * time.Second
	}
	if o.AnswerTimeout <= 0 {
		o.AnswerTimeout = 8 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 4 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.MOHClass == "" {
		o.MOHClass = "default"
	}
	if o.HangupHandler == "" {
		o.HangupHandler = "csta-bridge-hangup"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

func (o *Options) validate() error {
	var errs []error
	u, err := url.Parse(o.URL)
	switch {
	case o.URL == "":
		errs = append(errs, errors.New("url is required (e.g. http://127.0.0.1:8088/ari)"))
	case err != nil:
		errs = append(errs, fmt.Errorf("url: %w", err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url %q: scheme must be http or https", redactURL(u)))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("url %q: no host", redactURL(u)))
	case u.User != nil:
		errs = append(errs, errors.New("url: put credentials in username/password, not in the URL"))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("url %q: no query or fragment allowed", redactURL(u)))
	}
	if o.Username == "" {
		errs = append(errs, errors.New("username is required"))
	}
	if o.Password == "" {
		errs = append(errs, errors.New("password is required"))
	}
	if o.Application == "" {
		errs = append(errs, errors.New("application is required"))
	} else if strings.ContainsAny(o.Application, ",/?&#= \t") {
		errs = append(errs, fmt.Errorf("application %q: must not contain separators or spaces", o.Application))
	}
	if o.Context == "" {
		errs = append(errs, errors.New("context is required (the dialplan context MakeCall and transfers dial into)"))
	}
	return errors.Join(errs...)
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// wsURL derives the event websocket URL from the REST URL.
func (o *Options) wsURL() string {
	u, _ := url.Parse(strings.TrimRight(o.URL, "/"))
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path += "/events"
	q := url.Values{}
	q.Set("app", o.Application)
	u.RawQuery = q.Encode()
	return u.String()
}

func (o *Options) originURL() string {
	u, _ := url.Parse(o.URL)
	return u.Scheme + "://" + u.Host + "/"
}
