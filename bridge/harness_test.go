package bridge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

const waitFor = 5 * time.Second

// actionSink is a CTI server: it records every action URL GET, per extension.
type actionSink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string]chan hit // by ext
}

type hit struct {
	Event string
	Query url.Values
	From  string
}

func newActionSink(t *testing.T) *actionSink {
	s := &actionSink{got: map[string]chan hit{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		s.ch(q.Get("ext")) <- hit{Event: strings.TrimPrefix(r.URL.Path, "/"), Query: q, From: r.RemoteAddr}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *actionSink) ch(ext string) chan hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.got[ext]
	if c == nil {
		c = make(chan hit, 256)
		s.got[ext] = c
	}
	return c
}

// expect waits for the next action URLs of ext and checks their events
// ("incoming" or "incoming:-1" to check the csta_id too).
func (s *actionSink) expect(t *testing.T, ext string, want ...string) []hit {
	t.Helper()
	var hits []hit
	for _, w := range want {
		select {
		case h := <-s.ch(ext):
			got := h.Event
			if strings.Contains(w, ":") {
				got += ":" + h.Query.Get("csta_id")
			}
			if got != w {
				t.Fatalf("ext %s: action URL %q, want %q (query %v)", ext, got, w, h.Query)
			}
			hits = append(hits, h)
		case <-time.After(waitFor):
			t.Fatalf("ext %s: no action URL %q within %s", ext, w, waitFor)
		}
	}
	return hits
}

// next waits for the next action URL of ext whose event is ev, skipping others.
func (s *actionSink) next(t *testing.T, ext, ev string) []hit {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case h := <-s.ch(ext):
			if h.Event == ev {
				return []hit{h}
			}
		case <-deadline:
			t.Fatalf("ext %s: no action URL %q within %s", ext, ev, waitFor)
		}
	}
}

// none checks nothing else arrived for ext, after a round trip through the
// switchboard has flushed everything queued before it.
func (s *actionSink) none(t *testing.T, h *harness, ext string) {
	t.Helper()
	h.flush()
	h.app.notifier.Close(context.Background()) // delivers everything already queued
	select {
	case got := <-s.ch(ext):
		t.Fatalf("ext %s: unexpected action URL %s %v", ext, got.Event, got.Query)
	default:
	}
}

type harness struct {
	t    *testing.T
	app  *App
	pbx  *fakePBX
	sink *actionSink
	dir  string
}

var actionEvents = map[string]string{
	"action_incoming_url": "incoming", "action_outgoing_url": "outgoing", "action_offhook_url": "offhook",
	"action_onhook_url": "onhook", "action_missed_url": "missed", "action_connected_url": "connected",
	"action_disconnected_url": "disconnected", "action_hold": "hold", "action_unhold": "unhold",
	"action_transfer": "transfer", "action_blind_transfer": "blind", "action_attended_transfer": "attended",
	"action_setup_url": "setup", "action_log_on_url": "logon", "action_log_off_url": "logoff",
}

// start runs an App on 127.0.0.1:0 with a fake PBX and extensions 1001
// (no auth), 1002 (basic bob/pw), 1003 (digest carol/pw). extra is appended
// under each listed extension's YAML.
func start(t *testing.T, extra map[string]string) *harness {
	t.Helper()
	return startLogged(t, extra, nil)
}

// startLogged is start with the bridge logging to log (nil: the default).
func startLogged(t *testing.T, extra map[string]string, log *slog.Logger) *harness {
	t.Helper()
	h := &harness{t: t, pbx: newFakePBX(), sink: newActionSink(t), dir: t.TempDir()}
	var b strings.Builder
	fmt.Fprintf(&b, "pbx: {type: sim}\nhttp: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\n")
	fmt.Fprintf(&b, "state_file: state.json\ndefaults:\n  domain: pbx.test\n  settings:\n")
	for setting, ev := range actionEvents {
		fmt.Fprintf(&b, "    %s: %s/%s?ext=$active_user&csta_id=$csta_id&remote=$remote&n=$nr_ongoing_calls\n",
			setting, h.sink.srv.URL, ev)
	}
	b.WriteString("extensions:\n")
	exts := map[string]string{
		"1001": "    display_name: Alice\n",
		"1002": "    display_name: Bob\n    http_user: bob\n    http_pass: pw\n    http_scheme: basic\n",
		"1003": "    display_name: Carol\n    http_user: carol\n    http_pass: pw\n    http_scheme: digest\n",
	}
	for _, name := range []string{"1001", "1002", "1003"} {
		fmt.Fprintf(&b, "  %q:\n%s%s", name, exts[name], extra[name])
	}
	path := filepath.Join(h.dir, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	app, err := New(Options{ConfigPath: path, Logger: log, NewPBX: func(*config.Config, *slog.Logger) (pbx.PBX, error) {
		return h.pbx, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.app = app
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		app.Stop(ctx)
	})
	for _, ext := range []string{"1001", "1002", "1003"} {
		h.sink.expect(t, ext, "setup")
	}
	h.waitReady()
	return h
}

func (h *harness) waitReady() {
	deadline := time.Now().Add(waitFor)
	for !h.app.Ready() {
		if time.Now().After(deadline) {
			h.t.Fatal("bridge never became ready")
		}
		h.flush()
	}
}

// flush waits until the switchboard has applied every event sent before:
// once the channel is empty, the next op runs after the last event's apply.
func (h *harness) flush() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for {
		if err := h.app.sb.do(ctx, func() {}); err != nil {
			h.t.Fatal(err)
		}
		if len(h.app.sb.events) == 0 {
			break
		}
	}
	if err := h.app.sb.do(ctx, func() {}); err != nil {
		h.t.Fatal(err)
	}
}

// offer rings ext with a call from number. The switchboard has applied the
// offer when it returns, so a request on the call sent right after it
// finds the call (under load the request could come first).
func (h *harness) offer(ext, id, number string) {
	h.pbx.emit(pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: ext, ID: id},
		Remote: pbx.Party{Number: number}, SIPCallID: "sip-" + id})
	h.flush()
}

// post sends body to path on the shared listener and returns status and body.
func (h *harness) post(path, body string, auth func(*http.Request)) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+h.app.SharedAddr()+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml")
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// credentials authenticates as 1002 (basic); the others need none here.
func credentials(ext string) func(*http.Request) {
	if ext == "1002" {
		return func(r *http.Request) { r.SetBasicAuth("bob", "pw") }
	}
	return nil
}

// soap builds a request exactly like the Snom wiki templates.
func soap(service, inner string) string {
	return `<?xml version="1.0" encoding="UTF-8"?> <SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:csta="http://www.ecma-international.org/standards/ecma-323/csta/ed4"> <SOAP-ENV:Body> <csta:` +
		service + `> ` + inner + ` </csta:` + service + `> </SOAP-ENV:Body> </SOAP-ENV:Envelope>`
}

func conn(elem string, id int) string {
	return fmt.Sprintf("<csta:%s>%d</csta:%s>", elem, id, elem)
}

// ok posts a CSTA request that must succeed.
func (h *harness) ok(ext, service, inner string) string {
	h.t.Helper()
	code, body := h.post("/"+ext+"/csta", soap(service, inner), credentials(ext))
	if code != http.StatusOK || !strings.Contains(body, service+"Response") {
		h.t.Fatalf("%s: status %d, body %s", service, code, body)
	}
	return body
}

// fault posts a CSTA request that must fail with code.
func (h *harness) fault(ext, service, inner, code string) {
	h.t.Helper()
	status, body := h.post("/"+ext+"/csta", soap(service, inner), credentials(ext))
	if status != http.StatusInternalServerError || !strings.Contains(body, "<csta:operation>"+code+"</csta:operation>") {
		h.t.Fatalf("%s: want fault %s, got status %d body %s", service, code, status, body)
	}
}
