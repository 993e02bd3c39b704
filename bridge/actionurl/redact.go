package actionurl

import (
	"net/url"
	"strings"
)

// redactedValue replaces secrets in logged URLs.
const redactedValue = "redacted"

// secretWords mark a query parameter as secret when its name contains one of them (ASCII case-insensitive).
// Over-matching ("author", "keyboard") only hides a value from a log line; under-matching leaks a token.
var secretWords = []string{"pass", "pwd", "secret", "token", "key", "auth", "sig", "session", "cred", "jwt"}

// secretNames are short secret parameter names that are too generic for substring matching.
var secretNames = []string{"sid", "pin", "otp"}

// Redact returns u fit for logs: userinfo password removed and values of query params whose name looks secret
// (pass, pwd, secret, token, key, auth, sig, session … case-insensitive substring) replaced by "redacted".
// Key=value pairs in the fragment are treated the same way, since Snom substitutes variables there too.
// Never fails: unparsable input is returned with anything after '?' or '#' and any userinfo cut.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return redactUnparsable(u)
	}
	v := *p
	if v.User != nil {
		if _, has := v.User.Password(); has {
			v.User = url.User(v.User.Username())
		}
	}
	// "user:pass@host/x" parses as scheme "user" with opaque "pass@host/x".
	if at := strings.LastIndexByte(v.Opaque, '@'); at >= 0 {
		v.Opaque = v.Opaque[at+1:]
	}
	v.RawQuery, v.ForceQuery = "", false
	v.Fragment, v.RawFragment = "", ""
	s := v.String()
	if p.RawQuery != "" || p.ForceQuery {
		s += "?" + redactPairs(p.RawQuery)
	}
	if p.Fragment != "" {
		s += "#" + redactPairs(p.EscapedFragment())
	}
	return s
}

func redactUnparsable(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	start := 0
	if i := strings.Index(u, "://"); i >= 0 {
		start = i + 3
	}
	end := len(u)
	if i := strings.IndexByte(u[start:], '/'); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndexByte(u[start:end], '@'); at >= 0 {
		u = u[:start] + u[start+at+1:]
	}
	return u
}

// redactPairs rewrites "a=1&token=x" as "a=1&token=redacted", keeping everything else byte for byte.
func redactPairs(raw string) string {
	if raw == "" || !strings.Contains(raw, "=") {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw))
	first := true
	for part := range strings.SplitSeq(raw, "&") {
		if !first {
			b.WriteByte('&')
		}
		first = false
		name, value, ok := strings.Cut(part, "=")
		if ok && value != "" && isSecretName(name) {
			b.WriteString(name)
			b.WriteString("=" + redactedValue)
			continue
		}
		b.WriteString(part)
	}
	return b.String()
}

func isSecretName(raw string) bool {
	name := raw
	if strings.ContainsAny(raw, "%+") {
		if d, err := url.QueryUnescape(raw); err == nil {
			name = d
		}
	}
	name = strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	for _, w := range secretNames {
		if name == w {
			return true
		}
	}
	return false
}
