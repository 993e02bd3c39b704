// Package httpauth authenticates requests the way a Snom phone's web server
// does: settings http_user/http_pass with http_scheme Basic or Digest (RFC
// 7616, MD5, qop=auth), plus an optional list of permitted client networks.
//
// Credentials never leave this package in logs or errors: it has no logger,
// and Check answers only yes or no.
package httpauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Scheme is an extension's http_scheme.
type Scheme string

// The schemes a virtual phone offers.
const (
	None   Scheme = "none"
	Basic  Scheme = "basic"
	Digest Scheme = "digest"
)

// Credentials are one extension's http_user, http_pass and http_scheme.
type Credentials struct {
	User, Pass string
	Scheme     Scheme
}

// Authenticator verifies requests and issues challenges. Create one per
// listener or per process with New; it is safe for concurrent use.
//
// Digest nonces are stateless (an HMAC over their issue time under a key
// drawn at start), so any number may be handed out; only nonces a client
// has authenticated with are remembered, in a bounded table, to refuse
// replayed nonce counts.
type Authenticator struct {
	realm  string
	now    func() time.Time
	key    []byte // HMAC key for nonces
	opaque string

	mu     sync.Mutex
	replay replayTable
}

// New returns an Authenticator for realm. now is the clock (nil means
// time.Now); tests pass a fake one to age nonces.
func New(realm string, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand aborts the process instead)
	op := make([]byte, 16)
	rand.Read(op)
	return &Authenticator{realm: realm, now: now, key: key, opaque: hex.EncodeToString(op),
		replay: replayTable{entries: make(map[string]*nonceUse)}}
}

// Check reports whether r carries valid credentials for c. It is always true
// for None, and always false for a scheme it does not know (fail closed).
// A request authenticated with the other scheme than c.Scheme fails.
func (a *Authenticator) Check(r *http.Request, c Credentials) bool {
	switch c.Scheme {
	case None:
		return true
	case Basic:
		return checkBasic(r, c)
	case Digest:
		return a.verifyDigest(r, c, true) == verdictOK
	}
	return false
}

// Challenge answers 401 Unauthorized with the WWW-Authenticate header for
// c.Scheme. A Digest challenge carries a fresh nonce, and stale=true when r
// had the right credentials but a nonce that is no longer good, so the client
// retries without asking its user again. For None or an unknown scheme it
// writes a bare 401 (there is nothing the client could send).
func (a *Authenticator) Challenge(w http.ResponseWriter, r *http.Request, c Credentials) {
	switch c.Scheme {
	case Basic:
		w.Header().Set("WWW-Authenticate", `Basic realm=`+quote(a.realm))
	case Digest:
		var b strings.Builder
		b.WriteString(`Digest realm=`)
		b.WriteString(quote(a.realm))
		b.WriteString(`, qop="auth", algorithm=MD5, nonce="`)
		b.WriteString(a.newNonce())
		b.WriteString(`", opaque="`)
		b.WriteString(a.opaque)
		b.WriteString(`"`)
		if a.verifyDigest(r, c, false) == verdictStale {
			b.WriteString(`, stale=true`)
		}
		w.Header().Set("WWW-Authenticate", b.String())
	}
	http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
}

// UserName returns the user name in r's Authorization header, Basic or
// Digest, or "" when there is none or it cannot be read. It says nothing
// about whether the credentials are right.
func UserName(r *http.Request) string {
	if u, _, ok := r.BasicAuth(); ok {
		return u
	}
	p, ok := digestParams(r)
	if !ok {
		return ""
	}
	u, _ := p.user()
	return u
}

// equal compares two secrets in time that depends on neither their content
// nor their lengths: both are hashed first, since ConstantTimeCompare
// returns early when the lengths differ.
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return hmac.Equal(g[:], w[:])
}

// checkBasic compares user and password both, without short-circuiting, so
// the time taken does not tell whether the user name was right.
func checkBasic(r *http.Request, c Credentials) bool {
	if len(r.Header.Values("Authorization")) != 1 {
		return false
	}
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	uok, pok := equal(u, c.User), equal(p, c.Pass)
	return subtle.ConstantTimeByteEq(b2u(uok)&b2u(pok), 1) == 1
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// quote makes s an HTTP quoted-string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
