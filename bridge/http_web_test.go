package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// get sends a GET to the shared listener as the p4irin/remote_phone_control
// client does (Basic auth, no redirects followed).
func (h *harness) get(path string, auth func(*http.Request)) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+h.app.SharedAddr()+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if auth != nil {
		auth(req)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (h *harness) lastCommand() string {
	c := h.pbx.calls()
	if len(c) == 0 {
		return ""
	}
	return c[len(c)-1]
}

// waitCommand waits until the PBX has seen n commands (command.htm answers
// before some of its actions finish, as a phone does).
func (h *harness) waitCommands(n int) {
	h.t.Helper()
	deadline := time.After(waitFor)
	for len(h.pbx.calls()) < n {
		select {
		case <-h.pbx.entered:
		case <-deadline:
			h.t.Fatalf("PBX saw %d commands, want %d: %q", len(h.pbx.calls()), n, h.pbx.calls())
		}
	}
}

// TestRemotePhoneControlClient replays what p4irin/remote_phone_control sends
// (research/snom.md §4 #1): it installs its own action URLs, then dials,
// answers, hangs up and releases all calls through /command.htm.
func TestRemotePhoneControlClient(t *testing.T) {
	h := start(t, nil)
	bob := func(r *http.Request) { r.SetBasicAuth("bob", "pw") }
	sink := h.sink.srv.URL
	// The client percent-encodes values but leaves $ as is.
	for _, ev := range []string{"incoming", "connected", "disconnected"} {
		v := sink + "/event?ext=$active_user&ip=$phone_ip&event=" + ev + "&local=$local&remote=$remote&csta_id=$csta_id"
		enc := url.QueryEscape(v)
		enc = strings.ReplaceAll(enc, "%24", "$")
		resp, _ := h.get("/dummy.htm?settings=save&action_"+ev+"_url="+enc+"&store_settings=save", bob)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("dummy.htm: %d", resp.StatusCode)
		}
	}
	// Unknown settings are accepted and ignored.
	if resp, _ := h.get("/1002/dummy.htm?settings=save&fkey1=url%20http://x", bob); resp.StatusCode != http.StatusOK {
		t.Fatalf("unknown setting: %d", resp.StatusCode)
	}

	h.offer("1002", "c1", "+4930111")
	got := h.sink.next(t, "1002", "event")[0].Query
	if got.Get("event") != "incoming" || got.Get("remote") != "sip:+4930111@pbx.test" || got.Get("local") != "sip:1002@pbx.test" ||
		got.Get("ip") != "127.0.0.1" {
		t.Fatalf("incoming action URL query %v", got)
	}
	if resp, _ := h.get("/command.htm?key=ENTER", bob); resp.StatusCode != http.StatusOK {
		t.Fatalf("key=ENTER: %d", resp.StatusCode)
	}
	if c := h.lastCommand(); c != "Answer 1002/c1" {
		t.Fatalf("ENTER did %q", c)
	}
	if q := h.sink.next(t, "1002", "event")[0].Query; q.Get("event") != "connected" || q.Get("csta_id") != "-1" {
		t.Fatalf("connected query %v", q)
	}
	h.get("/command.htm?key=CANCEL", bob)
	if c := h.lastCommand(); c != "ClearConnection 1002/c1" {
		t.Fatalf("CANCEL did %q", c)
	}
	if q := h.sink.next(t, "1002", "event")[0].Query; q.Get("event") != "disconnected" {
		t.Fatalf("disconnected query %v", q)
	}

	// Click-to-dial answers 302 to index.htm, as the client checks.
	resp, _ := h.get("/command.htm?number=0301234567&outgoing_uri=1002@pbx.test", bob)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/index.htm" {
		t.Fatalf("number=: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := h.lastCommand(); c != "MakeCall 1002 1 0301234567 true" {
		t.Fatalf("number= did %q", c)
	}
	resp, _ = h.get("/1002/command.htm?number=0307654321", bob)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/1002/index.htm" {
		t.Fatalf("number= by path: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := h.get("/1002/index.htm", bob); resp.StatusCode != http.StatusOK || !strings.Contains(body, "<html") {
		t.Fatalf("index.htm: %d %s", resp.StatusCode, body)
	}
	n := len(h.pbx.calls())
	h.get("/command.htm?RELEASE_ALL_CALLS", bob)
	h.waitCommands(n + 2)
	rel := strings.Join(h.pbx.calls()[n:], ",")
	if !strings.Contains(rel, "ClearConnection 1002/mc-") || strings.Count(rel, "ClearConnection") != 2 {
		t.Fatalf("RELEASE_ALL_CALLS did %q", rel)
	}

	// Stored settings survive a restart: a new bridge on the same state file.
	st, err := os.ReadFile(filepath.Join(h.dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sf stateFile
	if err := json.Unmarshal(st, &sf); err != nil || !strings.Contains(sf.Extensions["1002"]["action_incoming_url"], "$remote") {
		t.Fatalf("state file %s (%v)", st, err)
	}
	if _, ok := sf.Extensions["1002"]["fkey1"]; ok {
		t.Error("unknown setting was stored")
	}
	h.app.Stop(context.Background())
	h2 := restart(t, h)
	h2.offer("1002", "c9", "+4930999")
	if q := h2.sink.next(t, "1002", "event")[0].Query; q.Get("event") != "incoming" {
		t.Fatalf("after restart: %v", q)
	}
}

// restart runs a second App on h's config and state file.
func restart(t *testing.T, h *harness) *harness {
	t.Helper()
	h2 := &harness{t: t, pbx: newFakePBX(), sink: h.sink, dir: h.dir}
	app, err := New(Options{ConfigPath: filepath.Join(h.dir, "config.yaml"), Logger: slog.New(slog.DiscardHandler),
		NewPBX: func(*config.Config, *slog.Logger) (pbx.PBX, error) { return h2.pbx, nil }})
	if err != nil {
		t.Fatal(err)
	}
	h2.app = app
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Stop(context.Background()) })
	h2.waitReady()
	return h2
}

// TestTAPIClientClosesSocket replays the Conzept16 TAPI driver (research/snom.md
// §4 #5): a raw GET with Basic auth, socket closed without reading the reply.
func TestTAPIClientClosesSocket(t *testing.T) {
	h := start(t, nil)
	release := make(chan struct{})
	h.pbx.mu.Lock()
	h.pbx.block = release
	h.pbx.mu.Unlock()
	c, err := net.Dial("tcp", h.app.SharedAddr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /command.htm?number=0301111 HTTP/1.1\r\nHost: phone\r\nAuthorization: Basic Ym9iOnB3\r\n\r\n")
	select {
	case <-h.pbx.entered:
	case <-time.After(waitFor):
		t.Fatal("no MakeCall reached the PBX")
	}
	c.Close()
	close(release)
	h.sink.expect(t, "1002", "offhook", "outgoing:1")
}

func TestKeyPresses(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "a", "555")
	h.sink.expect(t, "1001", "incoming:-1")
	h.get("/1001/command.htm?key=OFFHOOK", nil)
	h.sink.expect(t, "1001", "offhook", "connected:-1")
	h.get("/1001/command.htm?key=F_HOLD", nil)
	h.sink.expect(t, "1001", "hold:-1")
	h.get("/1001/command.htm?key=F_HOLD", nil)
	h.sink.expect(t, "1001", "unhold:-1")
	// TRANSFER, digits with the Key,ms,pause form, ENTER: a blind transfer.
	h.get("/1001/command.htm?key=TRANSFER", nil)
	h.get("/1001/command.htm?key=1,100,100;0,100,100;0;3", nil)
	h.get("/1001/command.htm?key=ENTER", nil)
	if c := h.lastCommand(); c != "SingleStepTransfer 1001/a 1003" {
		t.Fatalf("transfer by keys did %q", c)
	}
	h.sink.expect(t, "1001", "transfer:-1", "blind:-1", "disconnected:-1", "onhook")
	// Unknown keys are ignored; VOLUME_UP changes nothing.
	if resp, _ := h.get("/1001/command.htm?key=VOLUME_UP;MENU", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("unknown key: %d", resp.StatusCode)
	}
	// Ringing call rejected with ONHOOK: no missed call.
	h.offer("1001", "b", "556")
	h.sink.expect(t, "1001", "incoming:-2")
	h.get("/1001/command.htm?key=ONHOOK", nil)
	if c := h.lastCommand(); c != "ClearConnection 1001/b" {
		t.Fatalf("ONHOOK did %q", c)
	}
	h.sink.none(t, h, "1001")
}

// TestSettingsClientsWithCurl replays two more public clients with the real
// curl: the dockerised contact lookup (curl -G --data-urlencode, research/
// snom.md §4 #10) and the Python client that POSTs settings.htm with Digest
// (§4 #3).
func TestSettingsClientsWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (.ci/run installs it)")
	}
	h := start(t, nil)
	base := "http://" + h.app.SharedAddr()
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"-s", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).CombinedOutput()
		if err != nil || string(out) != "200" {
			t.Fatalf("curl %v: %v %s", args, err, out)
		}
	}
	run("-G", "--data-urlencode", "settings=save",
		"--data-urlencode", "action_incoming_url="+h.sink.srv.URL+"/lookup?ext=$active_user&number=$remote",
		base+"/1001/dummy.htm")
	run("--digest", "-u", "carol:pw", "-X", "POST",
		"--data", "settings=save&action_connected_url="+url.QueryEscape(h.sink.srv.URL+"/conn?ext=$active_user&csta_id=$csta_id")+"&store_settings=save",
		base+"/1003/settings.htm")

	h.offer("1001", "a", "+4930777")
	if q := h.sink.next(t, "1001", "lookup")[0].Query; q.Get("number") != "sip:+4930777@pbx.test" {
		t.Errorf("lookup query %v", q)
	}
	h.offer("1003", "c", "555")
	h.sink.next(t, "1003", "incoming")
	run("--digest", "-u", "carol:pw", base+"/1003/command.htm?key=ENTER")
	if q := h.sink.next(t, "1003", "conn")[0].Query; q.Get("csta_id") != "-1" {
		t.Errorf("connected query %v", q)
	}
}

func TestKeyDTMF(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "a", "555")
	h.get("/1001/command.htm?key=ENTER", nil)
	h.sink.expect(t, "1001", "incoming:-1", "offhook", "connected:-1")
	h.get("/1001/command.htm?key_dtmf=12%23", nil)
	if c := h.lastCommand(); c != "SendDTMF 1001/a 12#" {
		t.Fatalf("key_dtmf did %q", c)
	}
	// Digit keys during a connected call are DTMF too, as on the phone.
	h.get("/1001/command.htm?key=5", nil)
	if c := h.lastCommand(); c != "SendDTMF 1001/a 5" {
		t.Fatalf("key=5 did %q", c)
	}
}
