package httpauth

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

const realm = "csta-bridge"

var alice = Credentials{User: "alice", Pass: "s3cr:t ü", Scheme: Digest}

// clock is a settable fake time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func h(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }

// digest is one client-side Digest Authorization, computed by hand from
// RFC 7616 §3.4.1 (and RFC 2069 when qop is empty).
type digest struct {
	method, uri, user, pass, realm, nonce, nc, cnonce, qop, opaque string
	extra                                                          string // appended verbatim
}

func (d digest) header() string {
	ha1 := h(d.user + ":" + d.realm + ":" + d.pass)
	ha2 := h(d.method + ":" + d.uri)
	var resp string
	if d.qop == "" {
		resp = h(ha1 + ":" + d.nonce + ":" + ha2)
	} else {
		resp = h(ha1 + ":" + d.nonce + ":" + d.nc + ":" + d.cnonce + ":" + d.qop + ":" + ha2)
	}
	s := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s"`,
		d.user, d.realm, d.nonce, d.uri, resp)
	if d.qop != "" {
		s += fmt.Sprintf(`, qop=%s, nc=%s, cnonce="%s"`, d.qop, d.nc, d.cnonce)
	}
	if d.opaque != "" {
		s += `, opaque="` + d.opaque + `"`
	}
	return s + d.extra
}

// challenge asks a for a Digest challenge and returns its parameters.
func challenge(t testing.TB, a *Authenticator, r *http.Request, c Credentials) params {
	t.Helper()
	if r == nil {
		r = httptest.NewRequest("POST", "/csta", nil)
	}
	w := httptest.NewRecorder()
	a.Challenge(w, r, c)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("Challenge wrote %d, want 401", w.Code)
	}
	hdr := w.Header().Get("WWW-Authenticate")
	scheme, rest, _ := strings.Cut(hdr, " ")
	if scheme != "Digest" {
		t.Fatalf("WWW-Authenticate = %q, want Digest", hdr)
	}
	p, ok := parseParams(rest)
	if !ok {
		t.Fatalf("cannot parse WWW-Authenticate %q", hdr)
	}
	return p
}

func good(p params) digest {
	return digest{method: "POST", uri: "/csta", user: alice.User, pass: alice.Pass, realm: realm,
		nonce: p["nonce"], nc: "00000001", cnonce: "0a4f113b", qop: "auth", opaque: p["opaque"]}
}

func req(method, target, auth string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

func TestBasic(t *testing.T) {
	a := New(realm, nil)
	c := Credentials{User: "alice", Pass: "pa:ss", Scheme: Basic}
	basic := func(u, p string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
	}
	for _, tc := range []struct {
		name, auth string
		want       bool
	}{
		{"good", basic("alice", "pa:ss"), true},
		{"lower-case scheme", "basic " + base64.StdEncoding.EncodeToString([]byte("alice:pa:ss")), true},
		{"wrong pass", basic("alice", "pa:sS"), false},
		{"pass prefix", basic("alice", "pa"), false},
		{"wrong user", basic("bob", "pa:ss"), false},
		{"empty", basic("", ""), false},
		{"no header", "", false},
		{"not base64", "Basic !!!", false},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alicepa:ss")[:5]), false},
		{"digest to basic", `Digest username="alice", realm="csta-bridge", nonce="x", uri="/csta", response="0"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Check(req("POST", "/csta", tc.auth), c); got != tc.want {
				t.Errorf("Check = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("two headers", func(t *testing.T) {
		r := req("POST", "/csta", basic("alice", "pa:ss"))
		r.Header.Add("Authorization", basic("bob", "x"))
		if a.Check(r, c) {
			t.Error("Check accepted two Authorization headers")
		}
	})
	t.Run("challenge", func(t *testing.T) {
		w := httptest.NewRecorder()
		a.Challenge(w, req("GET", "/csta", ""), c)
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Basic realm="csta-bridge"` {
			t.Errorf("got %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	})
}

func TestNoneAndUnknownScheme(t *testing.T) {
	a := New(realm, nil)
	if !a.Check(req("GET", "/csta", ""), Credentials{Scheme: None}) {
		t.Error("None refused a request")
	}
	odd := Credentials{User: "alice", Pass: "x", Scheme: "ntlm"}
	r := req("GET", "/csta", "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:x")))
	if a.Check(r, odd) {
		t.Error("unknown scheme accepted a request")
	}
	w := httptest.NewRecorder()
	a.Challenge(w, r, odd)
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("unknown scheme challenge: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestDigestChallengeHeader(t *testing.T) {
	a := New(`a "quoted" realm`, nil)
	w := httptest.NewRecorder()
	a.Challenge(w, req("GET", "/", ""), Credentials{Scheme: Digest})
	hdr := w.Header().Get("WWW-Authenticate")
	if !strings.HasPrefix(hdr, `Digest realm="a \"quoted\" realm", qop="auth", algorithm=MD5, nonce="`) {
		t.Fatalf("WWW-Authenticate = %q", hdr)
	}
	p, ok := parseParams(strings.TrimPrefix(hdr, "Digest "))
	if !ok || p["realm"] != `a "quoted" realm` || p["opaque"] == "" || p["nonce"] == "" || p["stale"] != "" {
		t.Fatalf("params %v from %q", p, hdr)
	}
	if p2 := challenge(t, a, nil, Credentials{Scheme: Digest}); p2["nonce"] == p["nonce"] {
		t.Error("two challenges carried the same nonce")
	}
}

func TestDigest(t *testing.T) {
	clk := newClock()
	a := New(realm, clk.now)
	other := New(realm, clk.now)
	for _, tc := range []struct {
		name      string
		method    string // request method, default POST
		host      string // request Host, default example.com
		target    string // request target, default /csta
		edit      func(d *digest)
		raw       string // used instead of the computed header when set
		want      verdict
		challenge Credentials // default alice
	}{
		{name: "good", want: verdictOK},
		{name: "good without opaque", edit: func(d *digest) { d.opaque = "" }, want: verdictOK},
		{name: "good rfc2069 no qop", edit: func(d *digest) { d.qop = "" }, want: verdictOK},
		{name: "good algorithm param", edit: func(d *digest) { d.extra = ", algorithm=MD5" }, want: verdictOK},
		{name: "good query", target: "/csta?x=1&y=%20", edit: func(d *digest) { d.uri = "/csta?x=1&y=%20" }, want: verdictOK},
		{name: "good absolute uri", host: "EXAMPLE.com", edit: func(d *digest) { d.uri = "http://example.com/csta" }, want: verdictOK},
		{name: "good GET", method: "GET", edit: func(d *digest) { d.method = "GET" }, want: verdictOK},
		{name: "good userhash=false", edit: func(d *digest) { d.extra = ", userhash=false" }, want: verdictOK},
		{name: "upper-case response", want: verdictOK, raw: "UPPER"},
		{name: "username* form", want: verdictOK, raw: "EXT"},
		{name: "wrong pass", edit: func(d *digest) { d.pass = "s3cr:t u" }, want: verdictBad},
		{name: "wrong user", edit: func(d *digest) { d.user = "bob" }, want: verdictBad},
		{name: "wrong realm", edit: func(d *digest) { d.realm = "other" }, want: verdictBad},
		{name: "wrong uri", edit: func(d *digest) { d.uri = "/admin" }, want: verdictBad},
		{name: "uri without query", target: "/csta?x=1", want: verdictBad},
		{name: "absolute uri other host", edit: func(d *digest) { d.uri = "http://evil.example/csta" }, want: verdictBad},
		{name: "wrong method", method: "GET", want: verdictBad},
		{name: "opaque of another process", edit: func(d *digest) { d.opaque = "00" }, want: verdictStale},
		{name: "wrong opaque wrong pass", edit: func(d *digest) { d.opaque = "00"; d.pass = "x" }, want: verdictBad},
		{name: "sha-256", edit: func(d *digest) { d.extra = ", algorithm=SHA-256" }, want: verdictBad},
		{name: "md5-sess", edit: func(d *digest) { d.extra = ", algorithm=MD5-sess" }, want: verdictBad},
		{name: "userhash", edit: func(d *digest) { d.extra = ", userhash=true" }, want: verdictBad},
		{name: "auth-int", edit: func(d *digest) { d.qop = "auth-int" }, want: verdictBad},
		{name: "nc zero", edit: func(d *digest) { d.nc = "00000000" }, want: verdictBad},
		{name: "nc short", edit: func(d *digest) { d.nc = "1" }, want: verdictBad},
		{name: "nc not hex", edit: func(d *digest) { d.nc = "0000000g" }, want: verdictBad},
		{name: "no cnonce", edit: func(d *digest) { d.cnonce = "" }, want: verdictBad},
		{name: "forged nonce", edit: func(d *digest) { d.nonce = base64.RawURLEncoding.EncodeToString(make([]byte, 32)) },
			want: verdictStale}, // right password: only the nonce is off
		{name: "forged nonce wrong pass", edit: func(d *digest) { d.nonce = "abc"; d.pass = "x" }, want: verdictBad},
		{name: "nonce of another process", raw: "OTHER", want: verdictStale},
		{name: "empty nonce", edit: func(d *digest) { d.nonce = "" }, want: verdictBad},
		{name: "basic to digest", raw: "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cr:t ü")), want: verdictBad},
		{name: "no header", raw: "-", want: verdictBad},
		{name: "bare scheme", raw: "Digest", want: verdictBad},
		{name: "scheme only", raw: "Digest ", want: verdictBad},
		{name: "unterminated quote", raw: `Digest username="alice, realm="csta-bridge"`, want: verdictBad},
		{name: "dangling escape", raw: `Digest username="alice\`, want: verdictBad},
		{name: "duplicate param", raw: "DUP", want: verdictBad},
		{name: "missing equals", raw: `Digest username "alice"`, want: verdictBad},
		{name: "junk after value", raw: `Digest username="alice" x, realm="csta-bridge"`, want: verdictBad},
		{name: "empty token value", raw: `Digest username=, realm="csta-bridge"`, want: verdictBad},
		{name: "oversized", raw: "Digest username=\"" + strings.Repeat("a", maxAuthorization) + "\"", want: verdictBad},
		{name: "binary junk", raw: "Digest \x00\xff=\x01", want: verdictBad},
		{name: "both user forms", edit: func(d *digest) { d.extra = `, username*=UTF-8''alice` }, want: verdictBad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := challenge(t, a, nil, alice)
			d := good(p)
			if tc.edit != nil {
				tc.edit(&d)
			}
			auth := d.header()
			switch tc.raw {
			case "":
			case "-":
				auth = ""
			case "UPPER":
				i := strings.Index(auth, `response="`) + len(`response="`)
				auth = auth[:i] + strings.ToUpper(auth[i:i+32]) + auth[i+32:]
			case "EXT":
				u := Credentials{User: "jäsøn", Pass: "pw", Scheme: Digest}
				d.user, d.pass = u.User, u.Pass
				auth = strings.Replace(d.header(), `username="jäsøn"`, `username*=UTF-8''j%C3%A4s%C3%B8n`, 1)
				tc.challenge = u
			case "OTHER":
				d.nonce = challenge(t, other, nil, alice)["nonce"]
				auth = d.header()
			case "DUP":
				auth += `, nc=00000002`
			default:
				auth = tc.raw
			}
			c := tc.challenge
			if c.Scheme == "" {
				c = alice
			}
			method, target := tc.method, tc.target
			if method == "" {
				method = "POST"
			}
			if target == "" {
				target = "/csta"
			}
			r := req(method, target, auth)
			if tc.host != "" {
				r.Host = tc.host
			}
			if got := a.verifyDigest(r, c, false); got != tc.want {
				t.Fatalf("verify = %v, want %v (header %q)", got, tc.want, auth)
			}
			if got := a.Check(r, c); got != (tc.want == verdictOK) {
				t.Errorf("Check = %v", got)
			}
			if tc.want != verdictOK {
				p := challenge(t, a, r, c)
				if stale := p["stale"] == "true"; stale != (tc.want == verdictStale) {
					t.Errorf("challenge stale=%q, want stale %v", p["stale"], tc.want == verdictStale)
				}
			}
		})
	}
}

func TestDigestStale(t *testing.T) {
	clk := newClock()
	a := New(realm, clk.now)
	d := good(challenge(t, a, nil, alice))
	if !a.Check(req("POST", "/csta", d.header()), alice) {
		t.Fatal("fresh nonce refused")
	}
	clk.add(nonceLifetime - time.Second)
	d.nc = "00000002"
	if !a.Check(req("POST", "/csta", d.header()), alice) {
		t.Fatal("nonce refused before its lifetime ended")
	}
	clk.add(2 * time.Second)
	d.nc = "00000003"
	r := req("POST", "/csta", d.header())
	if a.Check(r, alice) {
		t.Fatal("expired nonce accepted")
	}
	p := challenge(t, a, r, alice)
	if p["stale"] != "true" {
		t.Errorf("expired nonce with right password: stale=%q, want true", p["stale"])
	}
	d.pass = "wrong"
	if p := challenge(t, a, req("POST", "/csta", d.header()), alice); p["stale"] != "" {
		t.Errorf("expired nonce with wrong password: stale=%q, want none", p["stale"])
	}
	// The client follows stale=true with the new nonce.
	d = good(p)
	if !a.Check(req("POST", "/csta", d.header()), alice) {
		t.Error("new nonce after stale refused")
	}
	// A nonce from the future (the clock was stepped back) past the lifetime.
	clk.add(-2 * nonceLifetime)
	d.nc = "00000002"
	if a.Check(req("POST", "/csta", d.header()), alice) {
		t.Error("nonce issued far in the future accepted")
	}
}

func TestDigestReplay(t *testing.T) {
	a := New(realm, nil)
	d := good(challenge(t, a, nil, alice))
	try := func(nc uint64) bool {
		d.nc = fmt.Sprintf("%08x", nc)
		return a.Check(req("POST", "/csta", d.header()), alice)
	}
	for _, step := range []struct {
		nc   uint64
		want bool
	}{
		{1, true}, {1, false}, // replay
		{3, true}, {2, true}, {2, false}, {3, false}, // out of order, then replays
		{200, true}, {200 - replayWindow + 1, true}, {200 - replayWindow, false}, // window edge
		{137, false}, {199, true}, {0xffffffff, true}, {0xfffffffe, true}, {0xffffffff, false},
	} {
		if got := try(step.nc); got != step.want {
			t.Errorf("nc=%d: Check = %v, want %v", step.nc, got, step.want)
		}
	}
	// A replay is not stale: the client must not be invited to carry on.
	d.nc = "00000001"
	r := req("POST", "/csta", d.header())
	if p := challenge(t, a, r, alice); p["stale"] != "" {
		t.Errorf("replayed nc: stale=%q", p["stale"])
	}
}

func TestDigestNoQopIsSingleUse(t *testing.T) {
	a := New(realm, nil)
	d := good(challenge(t, a, nil, alice))
	d.qop = ""
	r := req("POST", "/csta", d.header())
	// Challenge must not spend the nonce.
	if p := challenge(t, a, r, alice); p["stale"] != "" {
		t.Fatalf("unused nonce: stale=%q", p["stale"])
	}
	if !a.Check(r, alice) {
		t.Fatal("first use refused")
	}
	if a.Check(req("POST", "/csta", d.header()), alice) {
		t.Fatal("second qop-less use of a nonce accepted")
	}
	if p := challenge(t, a, r, alice); p["stale"] != "true" {
		t.Errorf("reused qop-less nonce: stale=%q, want true", p["stale"])
	}
	// Nor can the spent nonce be used with qop.
	d.qop = "auth"
	if a.Check(req("POST", "/csta", d.header()), alice) {
		t.Error("spent nonce accepted with qop")
	}
	// And a nonce used with qop cannot be reused without.
	d = good(challenge(t, a, nil, alice))
	if !a.Check(req("POST", "/csta", d.header()), alice) {
		t.Fatal("qop use refused")
	}
	d.qop = ""
	if a.Check(req("POST", "/csta", d.header()), alice) {
		t.Error("qop nonce accepted again without qop")
	}
}

func TestReplayTableIsBounded(t *testing.T) {
	clk := newClock()
	a := New(realm, clk.now)
	first := good(challenge(t, a, nil, alice))
	if !a.Check(req("POST", "/csta", first.header()), alice) {
		t.Fatal("first nonce refused")
	}
	// Distinct issue times, all within the lifetime, so only the cap frees room.
	for i := 0; i < maxReplayEntries+10; i++ {
		clk.add(time.Millisecond)
		d := good(challenge(t, a, nil, alice))
		if !a.Check(req("POST", "/csta", d.header()), alice) {
			t.Fatalf("nonce %d refused", i)
		}
	}
	a.mu.Lock()
	n := len(a.replay.entries)
	a.mu.Unlock()
	if n > maxReplayEntries {
		t.Fatalf("replay table holds %d entries, cap %d", n, maxReplayEntries)
	}
	// The first nonce was forgotten: its next nc cannot be told from a
	// replay, so it is stale, not accepted.
	first.nc = "00000002"
	r := req("POST", "/csta", first.header())
	if a.Check(r, alice) {
		t.Error("forgotten nonce accepted")
	}
	if p := challenge(t, a, r, alice); p["stale"] != "true" {
		t.Errorf("forgotten nonce: stale=%q, want true", p["stale"])
	}
	// After the lifetime, expired entries are swept.
	clk.add(nonceLifetime + time.Second)
	d := good(challenge(t, a, nil, alice))
	if !a.Check(req("POST", "/csta", d.header()), alice) {
		t.Fatal("nonce after sweep refused")
	}
	a.mu.Lock()
	n = len(a.replay.entries)
	a.mu.Unlock()
	if n != 1 {
		t.Errorf("after sweep: %d entries, want 1", n)
	}
}

func TestConcurrentChecks(t *testing.T) {
	a := New(realm, nil)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := good(challenge(t, a, nil, alice))
			for i := 1; i <= 50; i++ {
				d.nc = fmt.Sprintf("%08x", i)
				if !a.Check(req("POST", "/csta", d.header()), alice) {
					errs <- fmt.Sprintf("nc %d refused", i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestUserName(t *testing.T) {
	for _, tc := range []struct{ auth, want string }{
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw")), "alice"},
		{`Digest username="bob", realm="r", nonce="n", uri="/", response="x"`, "bob"},
		{`digest realm="r", username="b\"ob"`, `b"ob`},
		{`Digest username*=UTF-8''j%C3%A4s%C3%B8n, realm="r"`, "jäsøn"},
		{`Digest username*=ISO-8859-1''j%E4s, realm="r"`, ""},
		{`Digest username="bob`, ""},
		{"Bearer abc", ""},
		{"", ""},
	} {
		if got := UserName(req("GET", "/csta", tc.auth)); got != tc.want {
			t.Errorf("UserName(%q) = %q, want %q", tc.auth, got, tc.want)
		}
	}
}

func TestAllowList(t *testing.T) {
	l := AllowList{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("fe80::/10")}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.1.2.3:5060", true},
		{"11.1.2.3:5060", false},
		{"192.168.1.7:80", true},
		{"192.168.1.8:80", false},
		{"[::ffff:10.9.9.9]:80", true},
		{"[fd12::1]:443", true},
		{"[fe80::1%eth0]:80", true},
		{"[2001:db8::1]:80", false},
		{"10.1.2.3", true},
		{"garbage", false},
		{"", false},
	} {
		if got := l.Permits(tc.addr); got != tc.want {
			t.Errorf("Permits(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if !(AllowList{}).Permits("garbage") || !(AllowList(nil)).Permits("1.2.3.4:5") {
		t.Error("empty list must permit everyone")
	}
}

func TestParseParams(t *testing.T) {
	p, ok := parseParams(` a=1 ,B="x\\y\"z",, c = "" ,d=tok`)
	if !ok || len(p) != 4 || p["a"] != "1" || p["b"] != `x\y"z` || p["c"] != "" || p["d"] != "tok" {
		t.Errorf("parseParams = %v, %v", p, ok)
	}
}

func BenchmarkCheckDigest(b *testing.B) {
	a := New(realm, nil)
	const batch = 4096
	var reqs []*http.Request
	i := 0
	for b.Loop() {
		if i == len(reqs) {
			b.StopTimer()
			d := good(challenge(b, a, nil, alice))
			reqs = reqs[:0]
			for n := 1; n <= batch; n++ {
				d.nc = fmt.Sprintf("%08x", n)
				reqs = append(reqs, req("POST", "/csta", d.header()))
			}
			i = 0
			b.StartTimer()
		}
		r := reqs[i]
		i++
		if !a.Check(r, alice) {
			b.Fatal("Check refused a good request")
		}
	}
}
