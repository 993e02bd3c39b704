package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// urlLogs keeps every action URL per extension in arrival order; each
// extension is read by the one loop that owns it, through a cursor.
type urlLogs struct {
	mu     sync.Mutex
	byExt  map[string][]urlHit
	signal chan struct{} // closed and replaced at every hit
}

func newURLLogs() *urlLogs {
	return &urlLogs{byExt: map[string][]urlHit{}, signal: make(chan struct{})}
}

func (l *urlLogs) add(event, ext, id string, at time.Time) {
	l.mu.Lock()
	l.byExt[ext] = append(l.byExt[ext], urlHit{Event: event, ID: id, At: at})
	close(l.signal)
	l.signal = make(chan struct{})
	l.mu.Unlock()
}

// from returns ext's URLs from index i on, and a channel closed at the
// next hit of any extension.
func (l *urlLogs) from(ext string, i int) ([]urlHit, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.byExt[ext]
	if i > len(h) {
		i = len(h)
	}
	return h[i:], l.signal
}

func (l *urlLogs) count(ext string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byExt[ext])
}

// stressPhone is a registered test phone whose incoming calls are taken
// as they arrive (the phone rejects calls beyond its unclaimed buffer) and
// kept, so a cycle can look at the calls it caused.
type stressPhone struct {
	ext string
	p   *testphone.Phone
	mu  sync.Mutex
	in  []*testphone.Call
}

func (s *stressPhone) take(ctx context.Context) {
	for {
		c, err := s.p.Incoming(ctx)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.in = append(s.in, c)
		s.mu.Unlock()
	}
}

// incomingSince are the calls that arrived after the first n.
func (s *stressPhone) incomingSince(n int) []*testphone.Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > len(s.in) {
		n = len(s.in)
	}
	return append([]*testphone.Call(nil), s.in[n:]...)
}

func (s *stressPhone) incomingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.in)
}

// describe lists the phone's live calls for a failure report.
func (s *stressPhone) describe() string {
	var out []string
	for _, c := range s.p.Calls() {
		out = append(out, fmt.Sprintf("%s %s from/to %s", c.Direction(), c.State(), c.RemoteUser()))
	}
	if len(out) == 0 {
		return "idle"
	}
	return strings.Join(out, "; ")
}

// waitCall waits until one of the phone's calls is in state st.
func (s *stressPhone) waitCall(ctx context.Context, st testphone.State) (*testphone.Call, error) {
	for {
		changed := s.p.Changed()
		for _, c := range s.p.Calls() {
			if c.State() == st {
				return c, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("phone %s has no %s call (calls: %s)", s.ext, st, s.describe())
		}
	}
}

// waitIdle waits until the phone has no call.
func (s *stressPhone) waitIdle(ctx context.Context) error {
	for {
		changed := s.p.Changed()
		if len(s.p.Calls()) == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("phone %s not idle (calls: %s)", s.ext, s.describe())
		}
	}
}

// hangupAll ends every call of the phone (after a failed cycle).
func (s *stressPhone) hangupAll(ctx context.Context) {
	for _, c := range s.p.Calls() {
		_ = c.Hangup(ctx)
	}
}

// startPhones registers a phone for each extension, in parallel (a
// registration takes a round trip with digest each).
func startPhones(ctx context.Context, exts []string, registrar, password string, log *slog.Logger) (map[string]*stressPhone, error) {
	type res struct {
		sp  *stressPhone
		err error
	}
	ch := make(chan res, len(exts))
	for _, ext := range exts {
		go func() {
			sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			p, err := testphone.Start(sctx, testphone.Options{User: ext, Password: strings.ReplaceAll(password, "{ext}", ext),
				Registrar: registrar, Logger: log.With("phone", ext)})
			if err != nil {
				ch <- res{err: fmt.Errorf("test phone %s: %w", ext, err)}
				return
			}
			ch <- res{sp: &stressPhone{ext: ext, p: p}}
		}()
	}
	out := map[string]*stressPhone{}
	var errs []error
	for range exts {
		r := <-ch
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		out[r.sp.ext] = r.sp
	}
	if len(errs) > 0 {
		closePhones(out)
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func closePhones(phones map[string]*stressPhone) {
	var wg sync.WaitGroup
	for _, sp := range phones {
		wg.Go(func() { _ = sp.p.Close() })
	}
	wg.Wait()
}

// stressBridge is the whole bridge in-process on the real PBX, its action
// URLs going to the bench's sink.
type stressBridge struct {
	app          *bridge.App
	base, admin  string
	http         *http.Client
	stopInternal func()
}

func startStressBridge(ctx context.Context, dir string, p stressPBX, mapped []string, sinkURL string, log *slog.Logger) (*stressBridge, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "pbx:\n%s", p.BridgeYAML())
	b.WriteString("http: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\nstate_file: state.json\n")
	b.WriteString("defaults:\n  domain: 127.0.0.1\n  action_url: {timeout: 5s, retries: 0}\n  settings:\n")
	for setting, ev := range actionEvents {
		fmt.Fprintf(&b, "    %s: %s/%s?ext=$active_user&id=$csta_id\n", setting, sinkURL, ev)
	}
	b.WriteString("extensions:\n")
	for _, ext := range mapped {
		fmt.Fprintf(&b, "  %q: {endpoint: %q}\n", ext, p.Endpoint(ext))
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	app, err := bridge.New(bridge.Options{ConfigPath: path, Logger: log, Notify: func(string) {},
		NewPBX: func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) { return p.NewAdapter(cfg, log) }})
	if err != nil {
		return nil, err
	}
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	sb := &stressBridge{app: app, base: "http://" + app.SharedAddr(), admin: "http://" + app.AdminAddr(),
		http: &http.Client{Timeout: 30 * time.Second}}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for !app.Ready() {
		select {
		case <-tick.C:
		case <-deadline.C:
			sb.stop()
			return nil, fmt.Errorf("the bridge did not connect to the PBX (%s) within 20s; is it running?", p.Name())
		case <-ctx.Done():
			sb.stop()
			return nil, ctx.Err()
		}
	}
	return sb, nil
}

func (s *stressBridge) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return s.app.Stop(ctx)
}

// cstaReply is a /csta request and its answer, kept for failure reports.
type cstaReply struct {
	Status int
	Body   string
	Took   time.Duration
}

// csta posts a request for ext in the SOAP envelope of Snom's templates.
func (s *stressBridge) csta(ctx context.Context, ext, service, inner string) (cstaReply, error) {
	body := `<?xml version="1.0" encoding="UTF-8"?> <SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:csta="http://www.ecma-international.org/standards/ecma-323/csta/ed4"> <SOAP-ENV:Body> <csta:` +
		service + `> ` + inner + ` </csta:` + service + `> </SOAP-ENV:Body> </SOAP-ENV:Envelope>`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/"+ext+"/csta", strings.NewReader(body))
	if err != nil {
		return cstaReply{}, err
	}
	req.Header.Set("Content-Type", "text/xml")
	start := time.Now()
	resp, err := s.http.Do(req)
	if err != nil {
		return cstaReply{Took: time.Since(start)}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return cstaReply{Status: resp.StatusCode, Body: string(b), Took: time.Since(start)}, err
}

func (s *stressBridge) metrics(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.admin+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return string(b), err
}
