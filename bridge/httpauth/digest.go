package httpauth

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxAuthorization bounds the Digest header this package parses; a genuine
// one is a few hundred bytes.
const maxAuthorization = 8 << 10

type verdict int

const (
	verdictBad   verdict = iota // wrong or unreadable credentials
	verdictOK                   // authenticated
	verdictStale                // right credentials, but the nonce is no longer good
)

// verifyDigest checks a Digest Authorization header against c.
//
// Two client styles are accepted:
//   - RFC 7616/2617 with qop=auth: nc and cnonce are required, and each nc
//     is accepted once per nonce (out of order within a window, since a
//     client may race requests on several connections);
//   - RFC 2069 without qop, as sent by old CTI clients: there is no nc to
//     tell a replay from a retry, so such a nonce is good for one request
//     only, and a reuse is answered stale=true, making the client fetch a
//     fresh nonce without asking its user again.
//
// qop=auth-int, MD5-sess, SHA-256 and userhash are refused: the challenge
// offers none of them.
//
// The response is checked before the nonce's age, so stale=true is only
// ever said to a client that knows the password; a nonce from an earlier
// process (wrong MAC) with a right response is stale, not bad, so clients
// recover silently from a restart (the opaque is judged the same way).
// With commit false nothing is recorded (Challenge uses it to decide on
// stale).
func (a *Authenticator) verifyDigest(r *http.Request, c Credentials, commit bool) verdict {
	if len(r.Header.Values("Authorization")) != 1 {
		return verdictBad
	}
	p, ok := digestParams(r)
	if !ok {
		return verdictBad
	}
	user, ok := p.user()
	if !ok {
		return verdictBad
	}
	realm, rok := p["realm"]
	nonce, nok := p["nonce"]
	uri, uok := p["uri"]
	resp, sok := p["response"]
	if !rok || !nok || !uok || !sok || realm != a.realm || nonce == "" {
		return verdictBad
	}
	if alg, ok := p["algorithm"]; ok && !strings.EqualFold(alg, "MD5") {
		return verdictBad
	}
	if uh, ok := p["userhash"]; ok && !strings.EqualFold(uh, "false") {
		return verdictBad
	}
	qop, hasQop := p["qop"]
	var nc uint64
	var cnonce string
	if hasQop {
		if qop != "auth" {
			return verdictBad
		}
		ncs := p["nc"]
		if len(ncs) != 8 {
			return verdictBad
		}
		var err error
		if nc, err = strconv.ParseUint(ncs, 16, 32); err != nil || nc == 0 {
			return verdictBad
		}
		if cnonce = p["cnonce"]; cnonce == "" {
			return verdictBad
		}
	}
	if !uriMatches(uri, r) {
		return verdictBad
	}

	ha1 := md5hex(c.User + ":" + a.realm + ":" + c.Pass)
	ha2 := md5hex(r.Method + ":" + uri)
	var want string
	if hasQop {
		want = md5hex(ha1 + ":" + nonce + ":" + p["nc"] + ":" + cnonce + ":" + qop + ":" + ha2)
	} else {
		want = md5hex(ha1 + ":" + nonce + ":" + ha2)
	}
	uok, rsok := equal(user, c.User), subtle.ConstantTimeCompare([]byte(strings.ToLower(resp)), []byte(want)) == 1
	if !uok || !rsok {
		return verdictBad
	}

	// opaque is only echoed back (RFC 2069 clients may leave it out); a
	// different one, like a nonce with a wrong MAC, was issued by an
	// earlier process.
	issued, good := a.openNonce(nonce)
	if op, ok := p["opaque"]; !good || ok && op != a.opaque {
		return verdictStale
	}
	now := a.now()
	if age := now.Sub(issued); age > nonceLifetime || age < -nonceLifetime {
		return verdictStale
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch a.replay.use(nonce, issued.UnixNano(), nc, now, commit) {
	case useOK:
		return verdictOK
	case useForgotten:
		return verdictStale
	default: // useReplay
		if !hasQop {
			return verdictStale
		}
		return verdictBad
	}
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// uriMatches reports whether the digest uri names the request's target
// (RFC 7616 §3.4.6): verbatim, or the same path and query where one side
// is in absolute form.
func uriMatches(uri string, r *http.Request) bool {
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	if uri == target {
		return true
	}
	du, err := url.ParseRequestURI(uri)
	if err != nil {
		return false
	}
	tu, err := url.ParseRequestURI(target)
	if err != nil {
		return false
	}
	if du.Host != "" && !strings.EqualFold(du.Host, r.Host) {
		return false
	}
	return du.EscapedPath() == tu.EscapedPath() && du.RawQuery == tu.RawQuery
}

// params are the auth-params of a Digest header, names lower-cased.
type params map[string]string

// user returns the user name, from username or RFC 7616's username*
// (charset'language'percent-encoded, UTF-8 only) form; having both is an error.
func (p params) user() (string, bool) {
	u, ok := p["username"]
	ext, eok := p["username*"]
	switch {
	case ok && !eok:
		return u, true
	case eok && !ok:
		charset, rest, found := strings.Cut(ext, "'")
		if !found || !strings.EqualFold(charset, "UTF-8") {
			return "", false
		}
		_, enc, found := strings.Cut(rest, "'") // skip the language tag
		if !found {
			return "", false
		}
		v, err := url.PathUnescape(enc)
		if err != nil {
			return "", false
		}
		return v, true
	}
	return "", false
}

// digestParams parses r's Authorization header if it is Digest.
func digestParams(r *http.Request) (params, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > maxAuthorization {
		return nil, false
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Digest") {
		return nil, false
	}
	return parseParams(rest)
}

// parseParams parses a comma-separated list of name=token or
// name="quoted string" (RFC 9110 §11.2). A duplicate or empty name is an
// error, as is anything left over.
func parseParams(s string) (params, bool) {
	p := make(params)
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
		if i == len(s) {
			break
		}
		start := i
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		name := strings.ToLower(s[start:i])
		if name == "" {
			return nil, false
		}
		i = skipSpace(s, i)
		if i == len(s) || s[i] != '=' {
			return nil, false
		}
		i = skipSpace(s, i+1)
		var val string
		if i < len(s) && s[i] == '"' {
			var ok bool
			if val, i, ok = quotedString(s, i); !ok {
				return nil, false
			}
		} else {
			start := i
			for i < len(s) && isTokenChar(s[i]) {
				i++
			}
			if i == start {
				return nil, false
			}
			val = s[start:i]
		}
		if _, dup := p[name]; dup {
			return nil, false
		}
		p[name] = val
		i = skipSpace(s, i)
		if i < len(s) && s[i] != ',' {
			return nil, false
		}
	}
	return p, len(p) > 0
}

// quotedString reads the quoted-string starting at s[i] == '"' and returns
// its unescaped value and the index after it.
func quotedString(s string, i int) (string, int, bool) {
	i++
	start := i
	for i < len(s) && s[i] != '"' && s[i] != '\\' {
		i++
	}
	if i < len(s) && s[i] == '"' {
		return s[start:i], i + 1, true // the common case: no escapes, no copy
	}
	var b strings.Builder
	b.WriteString(s[start:i])
	for i < len(s) {
		switch c := s[i]; c {
		case '"':
			return b.String(), i + 1, true
		case '\\':
			if i+1 == len(s) {
				return "", 0, false
			}
			b.WriteByte(s[i+1])
			i += 2
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, false // unterminated
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
