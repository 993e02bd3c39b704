package actionurl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

const (
	maxRetryBackoff = 5 * time.Second
	// maxDrain bounds how much of a response body is read to keep the connection reusable; a larger body
	// costs a new connection, not memory.
	maxDrain = 64 << 10
)

// deliver sends j with its retries and reports the outcome exactly once.
func (n *Notifier) deliver(j Job) {
	start := time.Now()
	timeout := j.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	client, err := n.client(j.LocalAddr, j.TLS)
	if err != nil {
		n.failed(j, 0, 1, time.Since(start), err)
		return
	}
	var status int
	attempt := 0
	for ; ; attempt++ {
		var retry bool
		status, retry, err = n.try(client, j, timeout, attempt == 0)
		if err == nil {
			elapsed := time.Since(start)
			n.debug("action URL delivered", j, slog.Int("status", status),
				slog.Int("attempts", attempt+1), slog.Duration("elapsed", elapsed))
			n.obs.Delivered(j, status, elapsed, nil)
			return
		}
		if n.stop.Err() != nil {
			n.dropped(j, DropShutdown)
			return
		}
		if !retry || attempt >= j.Retries {
			break
		}
		delay := n.backoff(attempt)
		n.debug("action URL attempt failed, retrying", j, slog.Int("status", status),
			slog.Int("attempt", attempt+1), slog.Duration("retry_in", delay), slog.Any("err", err))
		if !n.wait(delay) {
			n.dropped(j, DropShutdown)
			return
		}
	}
	n.failed(j, status, attempt+1, time.Since(start), err)
}

func (n *Notifier) failed(j Job, status, attempts int, elapsed time.Duration, err error) {
	if errors.Is(err, errSinkDown) {
		// The refusal that opened the breaker was logged at Warn; one line
		// per URL while the CTI server is down would flood the journal.
		n.debug("action URL not sent", j, slog.Any("err", err))
		n.obs.Delivered(j, status, elapsed, err)
		return
	}
	n.log.Warn("action URL failed", jobAttrs(j, slog.Int("status", status), slog.Int("attempts", attempts),
		slog.Duration("elapsed", elapsed), slog.Any("err", err))...)
	n.obs.Delivered(j, status, elapsed, err)
}

// try makes one attempt (first: the job's first). retry reports whether a failure is worth another attempt (network error, 5xx).
// Errors never carry the URL: it may hold tokens, and callers log it redacted.
func (n *Notifier) try(client *http.Client, j Job, timeout time.Duration, first bool) (status int, retry bool, err error) {
	ctx, cancel := context.WithTimeoutCause(n.stop, timeout,
		fmt.Errorf("action URL timeout reached (%s)", timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.URL, nil)
	if err != nil {
		return 0, false, fmt.Errorf("invalid URL: %w", unwrapURLError(err))
	}
	req.Header.Set("User-Agent", n.userAgent)
	sink := j.LocalAddr + ">" + req.URL.Host
	// A job's own retries are spaced by its backoff and still dial; the
	// breaker spares the jobs queued behind a refusal.
	if until, down := n.sinkDown(sink); down && first {
		return 0, false, fmt.Errorf("%w (not retried until %s)", errSinkDown, until.Format("15:04:05.000"))
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, true, context.Cause(ctx)
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			n.markSinkDown(sink)
		}
		return 0, true, unwrapURLError(err)
	}
	// The body is ignored (a phone would treat it as minibrowser XML); reading it lets the connection be
	// reused. The attempt's context bounds the read.
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
	status = resp.StatusCode
	switch {
	case status >= 200 && status < 400:
		return status, false, nil
	case status >= 500 && status < 600:
		return status, true, fmt.Errorf("HTTP %d %s", status, http.StatusText(status))
	default:
		return status, false, fmt.Errorf("HTTP %d %s", status, http.StatusText(status))
	}
}

// errSinkDown fails a job at once while its CTI server refuses connections:
// without it a dead sink costs one TCP dial per event (docs/BENCHMARKS.md).
var errSinkDown = errors.New("CTI server refused connections just before")

// sinkDownFor is how long a refused sink is not dialled.
const sinkDownFor = time.Second

func (n *Notifier) sinkDown(sink string) (time.Time, bool) {
	n.downMu.Lock()
	defer n.downMu.Unlock()
	until, ok := n.down[sink]
	if !ok {
		return time.Time{}, false
	}
	if time.Now().After(until) {
		delete(n.down, sink)
		return time.Time{}, false
	}
	return until, true
}

func (n *Notifier) markSinkDown(sink string) {
	n.downMu.Lock()
	n.down[sink] = time.Now().Add(sinkDownFor)
	n.downMu.Unlock()
}

// unwrapURLError strips the *url.Error wrapper, whose message repeats the full URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// backoff returns the delay before retry number attempt+1: exponential, capped, with jitter so that many
// extensions retrying against a recovering CTI server spread out.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.retryBackoff
	for i := 0; i < attempt && d < maxRetryBackoff; i++ {
		d *= 2
	}
	d = min(d, maxRetryBackoff)
	return d/2 + rand.N(d/2+1)
}

// wait sleeps for d unless the Notifier is being shut down; it reports whether the full delay passed.
func (n *Notifier) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.stop.Done():
		return false
	}
}

// clientKey: a source address (normalised) and the TLS settings of a job.
type clientKey struct {
	addr string
	tls  *tls.Config
}

// client returns the HTTP client for a source address and TLS settings. Each source address gets its own
// transport so its kept-alive connections stay bound to that address; each TLS setting its own, so a
// connection checked against one extension's CA is never reused for another's.
func (n *Notifier) client(localAddr string, tlsConfig *tls.Config) (*http.Client, error) {
	ip, err := parseLocalAddr(localAddr)
	if err != nil {
		return nil, err
	}
	key := clientKey{tls: tlsConfig}
	if ip.IsValid() {
		key.addr = ip.String()
	}
	if tlsConfig == nil {
		tlsConfig = n.tlsConfig
	}
	n.clientsMu.Lock()
	defer n.clientsMu.Unlock()
	if c := n.clients[key]; c != nil {
		return c, nil
	}
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	if ip.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
	}
	tr := &http.Transport{
		// No proxy from the environment: the request must leave from the extension's address, as the
		// phone's would.
		Proxy:               nil,
		DialContext:         d.DialContext,
		TLSClientConfig:     tlsConfig.Clone(),
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: n.maxInFlight,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // the body is discarded; no point asking for gzip
	}
	c := &http.Client{
		Transport: tr,
		// A phone does not follow redirects; a 3xx is the CTI server's answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	n.clients[key] = c
	return c, nil
}

// parseLocalAddr accepts "", an IP, or IP:port (the extension's listen address; the port is ignored, the
// source port is ephemeral). An unspecified address means any, like "".
func parseLocalAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return netip.Addr{}, fmt.Errorf("invalid source address %q: not an IP address", s)
		}
		ip = ap.Addr()
	}
	if ip.IsUnspecified() {
		return netip.Addr{}, nil
	}
	return ip.Unmap(), nil
}
