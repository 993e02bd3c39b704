package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestEndToEnd builds the real binary, runs it on the simulator PBX and plays
// whole calls through /sim/calls and /csta, checking every reply and every
// action URL in order.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "csta-bridge")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}

	sink := newSink(t)
	var settings strings.Builder
	for _, ev := range []string{"incoming_url", "outgoing_url", "connected_url", "disconnected_url", "missed_url",
		"offhook_url", "onhook_url", "hold", "unhold", "transfer", "blind_transfer", "attended_transfer"} {
		fmt.Fprintf(&settings, "    action_%s: %s/%s?ext=$active_user&csta_id=$csta_id&remote=$remote&call_id=$call-id\n",
			ev, sink.URL, strings.TrimSuffix(ev, "_url"))
	}
	cfg := fmt.Sprintf(`pbx:
  type: sim
  sim: {answer_after: never}
http: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
state_file: state.json
defaults:
  domain: pbx.example.com
  settings:
%sextensions:
  "1001": {display_name: Alice}
  "1002": {display_name: Bob, http_user: bob, http_pass: secret, http_scheme: basic}
`, settings.String())
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-check-config", "-config", cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("-check-config: %v\n%s", err, out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-config", cfgPath, "-log-level", "debug")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan map[string]string, 1)
	connected := make(chan struct{})
	linkUp := connected
	reloads := make(chan string, 4) // "config reloaded" / "config reload failed" lines
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		found := map[string]string{}
		re := regexp.MustCompile(`msg=listening listener=(\w+) addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if testing.Verbose() {
				t.Log(line)
			}
			if m := re.FindStringSubmatch(line); m != nil {
				found[m[1]] = m[2]
			}
			if strings.Contains(line, `msg="config reload`) {
				reloads <- line
			}
			if connected != nil && strings.Contains(line, `msg="PBX connected"`) {
				close(connected)
				connected = nil
			}
			if !sent && found["shared"] != "" && found["admin"] != "" {
				addrs <- found
				sent = true
			}
		}
	}()
	var a map[string]string
	select {
	case a = <-addrs:
	case <-time.After(30 * time.Second):
		t.Fatal("the bridge did not report its listeners")
	}
	e := &e2e{t: t, cmd: cmd, shared: "http://" + a["shared"], admin: "http://" + a["admin"], sink: sink}
	select { // the bridge logs the PBX link before /-/ready turns OK
	case <-linkUp:
	case <-time.After(30 * time.Second):
		t.Fatal("the bridge never connected to the simulator")
	}
	if resp, err := http.Get(e.admin + "/-/ready"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/-/ready: %v %v", resp, err)
	}

	// 1. An outside caller rings 1001; AnswerCall, HoldCall, RetrieveCall.
	call := e.simCall("+4930123456", "1001")
	if call.CSTAID != -1 {
		t.Fatalf("first incoming call csta_id = %d, want -1", call.CSTAID)
	}
	in := sink.expect(t, "1001", "incoming:-1")
	if r := in[0].Get("remote"); r != "sip:+4930123456@pbx.example.com" {
		t.Errorf("$remote = %q", r)
	}
	e.csta("1001", "AnswerCall", "<csta:callToBeAnswered>-1</csta:callToBeAnswered>", "")
	sink.expect(t, "1001", "offhook", "connected:-1")
	e.csta("1001", "HoldCall", "<csta:callToBeHeld>-1</csta:callToBeHeld>", "")
	sink.expect(t, "1001", "hold:-1")
	e.csta("1001", "RetrieveCall", "<csta:callToBeRetrieved>-1</csta:callToBeRetrieved>", "")
	sink.expect(t, "1001", "unhold:-1")
	e.csta("1001", "RetrieveCall", "<csta:callToBeRetrieved>-1</csta:callToBeRetrieved>", "invalidObjectState")

	// 2. SingleStepTransferCall to 1002: the caller now rings at Bob.
	e.csta("1001", "SingleStepTransferCall", "<csta:activeCall>-1</csta:activeCall><csta:transferredTo>sip:1002@pbx.example.com</csta:transferredTo>", "")
	sink.expect(t, "1001", "transfer:-1", "blind_transfer:-1", "disconnected:-1", "onhook")
	sink.expect(t, "1002", "incoming:-1")
	e.csta("1002", "AnswerCall", "<csta:callToBeAnswered>-1</csta:callToBeAnswered>", "")
	sink.expect(t, "1002", "offhook", "connected:-1")

	// 3. Bob consults: HoldCall, MakeCall to an outside number, TransferCall.
	e.csta("1002", "HoldCall", "<csta:callToBeHeld>-1</csta:callToBeHeld>", "")
	sink.expect(t, "1002", "hold:-1")
	body := e.csta("1002", "MakeCall", "<csta:callingDevice>sip:1002@pbx.example.com</csta:callingDevice><csta:calledDirectoryNumber>+4930999</csta:calledDirectoryNumber>", "")
	if !strings.Contains(body, "<csta:callID>1</csta:callID>") {
		t.Fatalf("MakeCallResponse: %s", body)
	}
	sink.expect(t, "1002", "outgoing:1")
	far := e.findSimCall("+4930999")
	e.simPost("/sim/calls/" + far.ID + "/answer")
	sink.expect(t, "1002", "connected:1")
	e.csta("1002", "TransferCall", "<csta:heldCall>-1</csta:heldCall><csta:activeCall>1</csta:activeCall>", "")
	sink.expect(t, "1002", "transfer:-1", "attended_transfer:-1", "transfer:1", "attended_transfer:1",
		"disconnected:-1", "disconnected:1", "onhook")

	// 4. ClearConnection of a connected call, ClearCall of a ringing one, a missed call.
	e.simCall("+4930555", "1001")
	sink.expect(t, "1001", "incoming:-2")
	e.csta("1001", "AnswerCall", "<csta:callToBeAnswered>-2</csta:callToBeAnswered>", "")
	sink.expect(t, "1001", "offhook", "connected:-2")
	e.csta("1001", "ClearConnection", "<csta:connectionToBeCleared>-2</csta:connectionToBeCleared>", "")
	sink.expect(t, "1001", "disconnected:-2", "onhook")
	e.simCall("+4930556", "1001")
	sink.expect(t, "1001", "incoming:-3")
	e.csta("1001", "ClearCall", "<csta:callToBeCleared>-3</csta:callToBeCleared>", "")
	c := e.simCall("+4930557", "1001")
	sink.expect(t, "1001", "incoming:-4")
	e.simPost("/sim/calls/" + c.ID + "/hangup")
	sink.expect(t, "1001", "missed:-4")
	e.csta("1001", "ClearConnection", "<csta:connectionToBeCleared>-4</csta:connectionToBeCleared>", "invalidConnectionID")

	// 5. SIGHUP reloads: a broken file is refused and the bridge keeps
	// serving; a good one adds extension 1003 without touching the rest.
	if err := os.WriteFile(cfgPath, []byte(cfg+"  \"1003\": {display_name: Carol, bogus: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.hup(reloads, "config reload failed")
	if err := os.WriteFile(cfgPath, []byte(cfg+"  \"1003\": {display_name: Carol}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.hup(reloads, "config reloaded")
	e.simCall("+4930558", "1003")
	sink.expect(t, "1003", "incoming:-1")
	e.csta("1003", "AnswerCall", "<csta:callToBeAnswered>-1</csta:callToBeAnswered>", "")
	sink.expect(t, "1003", "offhook", "connected:-1")

	// 6. SIGTERM: a clean exit.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-logDone
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

type e2e struct {
	t             *testing.T
	cmd           *exec.Cmd
	shared, admin string
	sink          *sink
}

// hup sends SIGHUP and waits for the reload's log line.
func (e *e2e) hup(reloads chan string, want string) {
	e.t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		e.t.Fatal(err)
	}
	select {
	case line := <-reloads:
		if !strings.Contains(line, want) {
			e.t.Fatalf("after SIGHUP: %s, want %q", line, want)
		}
	case <-time.After(10 * time.Second):
		e.t.Fatalf("no reload log line after SIGHUP")
	}
}

type simCall struct {
	ID     string `json:"id"`
	From   string `json:"from"`
	To     string `json:"to"`
	CSTAID int    `json:"csta_id"`
}

func (e *e2e) simCall(from, to string) simCall {
	e.t.Helper()
	resp, err := http.Post(e.admin+"/sim/calls", "application/json",
		strings.NewReader(fmt.Sprintf(`{"from":%q,"to":%q}`, from, to)))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var c simCall
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("POST /sim/calls: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *e2e) findSimCall(party string) simCall {
	e.t.Helper()
	resp, err := http.Get(e.admin + "/sim/calls")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var calls []simCall
	if err := json.Unmarshal(b, &calls); err != nil {
		var wrapped struct{ Calls []simCall }
		if err2 := json.Unmarshal(b, &wrapped); err2 != nil {
			e.t.Fatalf("GET /sim/calls: %v: %s", err, b)
		}
		calls = wrapped.Calls
	}
	for _, c := range calls {
		if c.From == party || c.To == party {
			return c
		}
	}
	e.t.Fatalf("no sim call with %s in %s", party, b)
	return simCall{}
}

func (e *e2e) simPost(path string) {
	e.t.Helper()
	resp, err := http.Post(e.admin+path, "application/json", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		e.t.Fatalf("POST %s: %d", path, resp.StatusCode)
	}
}

// csta posts a request like the Snom wiki template; fault "" means success expected.
func (e *e2e) csta(ext, service, inner, fault string) string {
	e.t.Helper()
	body := `<?xml version="1.0" encoding="UTF-8"?> <SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"xmlns:csta="http://www.ecma-international.org/standards/ecma-323/csta/ed4"> <SOAP-ENV:Body> <csta:` +
		service + `> ` + inner + ` </csta:` + service + `> </SOAP-ENV:Body> </SOAP-ENV:Envelope>`
	path := e.shared + "/" + ext + "/csta"
	req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/xml")
	if ext == "1002" {
		req.SetBasicAuth("bob", "secret")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if fault == "" {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "<csta:"+service+"Response>") {
			e.t.Fatalf("%s on %s: %d %s", service, ext, resp.StatusCode, b)
		}
	} else if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), "<csta:operation>"+fault+"</csta:operation>") {
		e.t.Fatalf("%s on %s: want fault %s, got %d %s", service, ext, fault, resp.StatusCode, b)
	}
	return string(b)
}

// sink is the CTI server receiving action URLs.
type sink struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]chan url.Values
}

func newSink(t *testing.T) *sink {
	s := &sink{got: map[string]chan url.Values{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		q.Set("event", strings.TrimPrefix(r.URL.Path, "/"))
		s.ch(q.Get("ext")) <- q
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) ch(ext string) chan url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got[ext] == nil {
		s.got[ext] = make(chan url.Values, 256)
	}
	return s.got[ext]
}

func (s *sink) expect(t *testing.T, ext string, want ...string) []url.Values {
	t.Helper()
	var out []url.Values
	for _, w := range want {
		select {
		case q := <-s.ch(ext):
			got := q.Get("event")
			if strings.Contains(w, ":") {
				got += ":" + q.Get("csta_id")
			}
			if got != w {
				t.Fatalf("ext %s: action URL %s, want %s (%v)", ext, got, w, q)
			}
			out = append(out, q)
		case <-time.After(10 * time.Second):
			t.Fatalf("ext %s: no action URL %s", ext, w)
		}
	}
	return out
}

func TestVersion(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"-version"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if v := out.String(); !strings.HasPrefix(v, "csta-bridge ") || !strings.Contains(v, "go1.") {
		t.Errorf("-version printed %q", v)
	}
}

func TestCheckConfig(t *testing.T) {
	var out, errOut strings.Builder
	// The shipped configs pass the same checks as start-up, adapters included.
	for _, path := range []string{"../../configs/example.yaml", "../../configs/asterisk/csta-bridge.yaml",
		"../../configs/freeswitch/csta-bridge.yaml", "../../configs/freeswitch/csta-bridge-cluster.yaml",
		"../../configs/asterisk/csta-bridge-cluster.yaml"} {
		if code := run([]string{"-check-config", "-config", path}, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", path, code, errOut.String())
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("pbx: {type: sim}\nextensions:\n  \"1001\": {http_schem: digest}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-check-config", "-config", bad}, &out, &errOut); code != 1 {
		t.Fatalf("bad config: exit %d", code)
	}
	if msg := errOut.String(); !strings.Contains(msg, "bad.yaml:3") || !strings.Contains(msg, "http_schem") {
		t.Errorf("error does not name file, line and key: %q", msg)
	}
}
