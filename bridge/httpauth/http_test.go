package httpauth

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// accepted lists the Digest nc values of the requests a server let in.
type accepted struct {
	mu  sync.Mutex
	ncs []string
}

func (a *accepted) list() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.ncs, ",")
}

// server starts a loopback server whose handler requires c.
func server(t *testing.T, c Credentials) (*httptest.Server, *accepted) {
	t.Helper()
	seen := &accepted{}
	a := New(realm, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Check(r, c) {
			a.Challenge(w, r, c)
			return
		}
		if p, ok := digestParams(r); ok {
			seen.mu.Lock()
			seen.ncs = append(seen.ncs, p["nc"])
			seen.mu.Unlock()
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "hello "+UserName(r))
	}))
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	return s, seen
}

// curl runs the real curl binary and returns the HTTP status of each URL,
// one per line.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not in PATH; skipping the test against a real HTTP client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args = append([]string{"--silent", "--show-error", "--noproxy", "*", "--max-time", "10",
		"--output", "/dev/null", "--write-out", "%{http_code}\n"}, args...)
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestCurl(t *testing.T) {
	basic, _ := server(t, Credentials{User: "alice", Pass: "pa:ss wörd", Scheme: Basic})
	dig, _ := server(t, Credentials{User: "alice", Pass: "pa:ss wörd", Scheme: Digest})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"basic good", []string{"--basic", "-u", "alice:pa:ss wörd", basic.URL + "/csta"}, "200"},
		{"basic wrong pass", []string{"--basic", "-u", "alice:pa:ss word", basic.URL + "/csta"}, "401"},
		{"basic wrong user", []string{"--basic", "-u", "bob:pa:ss wörd", basic.URL + "/csta"}, "401"},
		{"basic none", []string{basic.URL + "/csta"}, "401"},
		{"digest good", []string{"--digest", "-u", "alice:pa:ss wörd", dig.URL + "/csta"}, "200"},
		{"digest good POST", []string{"--digest", "-u", "alice:pa:ss wörd", "--data-binary", "<MakeCall/>",
			"-H", "Content-Type: text/xml", dig.URL + "/csta"}, "200"},
		{"digest good query", []string{"--digest", "-u", "alice:pa:ss wörd", dig.URL + "/command.htm?number=1002&x=%20"}, "200"},
		{"digest wrong pass", []string{"--digest", "-u", "alice:pa:ss word", dig.URL + "/csta"}, "401"},
		{"digest wrong user", []string{"--digest", "-u", "bob:pa:ss wörd", dig.URL + "/csta"}, "401"},
		{"basic to digest", []string{"--basic", "-u", "alice:pa:ss wörd", dig.URL + "/csta"}, "401"},
		{"digest to basic", []string{"--digest", "-u", "alice:pa:ss wörd", basic.URL + "/csta"}, "401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := curl(t, tc.args...); got != tc.want {
				t.Errorf("curl status %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCurlSeveralURLs runs one curl for several URLs on one kept-alive
// connection. (curl 7.88 negotiates afresh for each URL; later nc values
// are covered by TestGoClientDigest.)
func TestCurlSeveralURLs(t *testing.T) {
	dig, seen := server(t, Credentials{User: "alice", Pass: "pw", Scheme: Digest})
	got := curl(t, "--digest", "-u", "alice:pw", dig.URL+"/csta",
		"-o", "/dev/null", dig.URL+"/csta", "-o", "/dev/null", dig.URL+"/index.htm")
	if got != "200\n200\n200" {
		t.Fatalf("curl statuses %q, want three 200s", got)
	}
	if n := len(strings.Split(seen.list(), ",")); n != 3 {
		t.Errorf("server let in %d requests (nc %s), want 3", n, seen.list())
	}
}

// TestGoClientDigest talks to the server with net/http and a digest
// computed here by hand, as a CTI client written from the RFC would.
func TestGoClientDigest(t *testing.T) {
	s, _ := server(t, Credentials{User: "alice", Pass: "secret", Scheme: Digest})
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(auth string) (*http.Response, string) {
		t.Helper()
		r, err := http.NewRequest("POST", s.URL+"/csta?a=b", strings.NewReader("<x/>"))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	resp, _ := do("")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", resp.StatusCode)
	}
	chal := resp.Header.Get("WWW-Authenticate")
	field := func(name string) string {
		i := strings.Index(chal, name+`="`)
		if i < 0 {
			t.Fatalf("no %s in %q", name, chal)
		}
		v := chal[i+len(name)+2:]
		return v[:strings.IndexByte(v, '"')]
	}
	nonce, opaque := field("nonce"), field("opaque")
	if field("realm") != realm || field("qop") != "auth" || !strings.Contains(chal, "algorithm=MD5") {
		t.Fatalf("challenge %q", chal)
	}
	md := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	auth := func(pass, nc string) string {
		ha1 := md("alice:" + realm + ":" + pass)
		ha2 := md("POST:/csta?a=b")
		r := md(ha1 + ":" + nonce + ":" + nc + ":c0ffee:auth:" + ha2)
		return `Digest username="alice", realm="` + realm + `", nonce="` + nonce + `", uri="/csta?a=b", ` +
			`algorithm=MD5, response="` + r + `", qop=auth, nc=` + nc + `, cnonce="c0ffee", opaque="` + opaque + `"`
	}
	if resp, body := do(auth("secret", "00000001")); resp.StatusCode != 200 || body != "hello alice" {
		t.Fatalf("right digest: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(auth("secret", "00000002")); resp.StatusCode != 200 {
		t.Fatalf("nc 2: %d", resp.StatusCode)
	}
	if resp, _ := do(auth("secret", "00000002")); resp.StatusCode != 401 {
		t.Fatalf("replayed nc 2: %d", resp.StatusCode)
	}
	if resp, _ := do(auth("wrong", "00000003")); resp.StatusCode != 401 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
}
