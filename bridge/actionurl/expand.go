package actionurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Lookup returns a variable's value; ok=false means unknown.
type Lookup func(name string) (value string, ok bool)

// sipHeaderPrefix starts the one parameterised Snom variable, $sip_header(NAME).
const sipHeaderPrefix = "sip_header("

// Expand substitutes Snom variables in an action URL template.
//
// The rules are the phone's: $name is replaced in the query and the fragment, and in the path only where
// the name is terminated by '&' (the '&' is consumed); scheme, userinfo and host stay literal. A name is
// made of letters, digits, '_' and '-'; a hyphen belongs to the name only if vars knows the longer name, so
// "$call-id" is one variable while "$remote-x" is $remote followed by "-x". $sip_header(NAME) is looked up
// under the full name "sip_header(NAME)". Unknown variables expand to the empty string and "$$" is a literal
// '$'. Values are percent-encoded as query components (space is %20). Literal bytes of the template that may
// not appear raw in a request target (controls, space, non-ASCII, a '%' that starts no escape) are
// percent-encoded too.
//
// The result must be an absolute http or https URL with a host; otherwise Expand returns an error that says
// why. Error messages never contain the query or the userinfo of the template.
func Expand(tmpl string, vars Lookup) (string, error) {
	if tmpl == "" {
		return "", errors.New("actionurl: empty URL")
	}
	if vars == nil {
		vars = func(string) (string, bool) { return "", false }
	}
	colon := strings.IndexByte(tmpl, ':')
	if colon <= 0 || !validScheme(tmpl[:colon]) {
		return "", errors.New("actionurl: not an absolute URL (no scheme)")
	}
	scheme := tmpl[:colon]
	if !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
		return "", fmt.Errorf("actionurl: scheme %q is not http or https", scheme)
	}
	rest, ok := strings.CutPrefix(tmpl[colon+1:], "//")
	if !ok {
		return "", errors.New("actionurl: not an absolute URL (no // after the scheme)")
	}
	// Same split order as net/url: the authority ends at the first '/', '?' or '#'; the fragment is cut
	// before the query.
	authEnd := strings.IndexAny(rest, "/?#")
	if authEnd < 0 {
		authEnd = len(rest)
	}
	authority := rest[:authEnd]
	if host := authority[strings.LastIndexByte(authority, '@')+1:]; host == "" {
		return "", errors.New("actionurl: URL has no host")
	}
	beforeFrag, frag, hasFrag := strings.Cut(rest[authEnd:], "#")
	path, query, hasQuery := strings.Cut(beforeFrag, "?")

	var b strings.Builder
	b.Grow(len(tmpl) + 64)
	b.WriteString(tmpl[:colon+3])
	b.WriteString(authority)
	expandPath(&b, path, vars)
	if hasQuery {
		b.WriteByte('?')
		expandQuery(&b, query, vars)
	}
	if hasFrag {
		b.WriteByte('#')
		expandQuery(&b, frag, vars)
	}
	out := b.String()

	u, err := url.Parse(out)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("actionurl: invalid URL %s: %v", Redact(out), err)
	}
	if u.Hostname() == "" {
		return "", errors.New("actionurl: URL has no host")
	}
	return out, nil
}

// expandPath substitutes only "$name&" (and "$$"): elsewhere a '$' in a path is an ordinary character.
func expandPath(b *strings.Builder, s string, vars Lookup) {
	for i := 0; i < len(s); {
		if s[i] != '$' {
			writeLiteral(b, s, i)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i += 2
			continue
		}
		name, n := pathVar(s[i+1:])
		if n == 0 {
			b.WriteByte('$')
			i++
			continue
		}
		v, _ := vars(name)
		escapeValue(b, v)
		i += 1 + n
	}
}

// pathVar recognises "NAME&" at the start of s and returns NAME and the length consumed including the '&'.
// The '&' delimits the name, so the whole run of name characters is the name.
func pathVar(s string) (name string, n int) {
	if hn := sipHeaderLen(s); hn > 0 {
		if hn < len(s) && s[hn] == '&' {
			return s[:hn], hn + 1
		}
		return "", 0
	}
	run := nameRun(s)
	if run > 0 && run < len(s) && s[run] == '&' {
		return s[:run], run + 1
	}
	return "", 0
}

// expandQuery substitutes variables in a query or a fragment.
func expandQuery(b *strings.Builder, s string, vars Lookup) {
	for i := 0; i < len(s); {
		if s[i] != '$' {
			writeLiteral(b, s, i)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i += 2
			continue
		}
		v, n := queryVar(s[i+1:], vars)
		if n == 0 {
			b.WriteByte('$')
			i++
			continue
		}
		escapeValue(b, v)
		i += 1 + n
	}
}

// queryVar resolves the variable at the start of s and returns its value and the length of its name; n=0
// means s starts with no variable name at all.
func queryVar(s string, vars Lookup) (value string, n int) {
	if hn := sipHeaderLen(s); hn > 0 {
		v, _ := vars(s[:hn])
		return v, hn
	}
	run := nameRun(s)
	if run == 0 {
		return "", 0
	}
	// Longest known name first, shortening only at hyphens: "$local_ip" unknown must not become $local.
	for k := run; k > 0; {
		if v, ok := vars(s[:k]); ok {
			return v, k
		}
		k = strings.LastIndexByte(s[:k], '-')
	}
	// Unknown: the name ends at its first hyphen (hyphens only join names the phone knows).
	if h := strings.IndexByte(s[:run], '-'); h >= 0 {
		return "", h
	}
	return "", run
}

// sipHeaderLen returns the length of "sip_header(NAME)" at the start of s, or 0. NAME must be a non-empty
// SIP token (RFC 3261 §25.1), which keeps "$sip_header(" followed by arbitrary text from swallowing it.
func sipHeaderLen(s string) int {
	if !strings.HasPrefix(s, sipHeaderPrefix) {
		return 0
	}
	for i := len(sipHeaderPrefix); i < len(s); i++ {
		c := s[i]
		if c == ')' {
			if i == len(sipHeaderPrefix) {
				return 0
			}
			return i + 1
		}
		if !isTokenChar(c) {
			return 0
		}
	}
	return 0
}

func nameRun(s string) int {
	i := 0
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	return i
}

func isNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func isTokenChar(c byte) bool {
	return isNameChar(c) || strings.IndexByte(".!%*+`'~", c) >= 0
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

const upperHex = "0123456789ABCDEF"

// escapeValue percent-encodes v as a query component: only RFC 3986 unreserved bytes stay raw, so a value
// can neither add parameters nor path segments, and a space is %20 rather than '+'.
func escapeValue(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// writeLiteral copies template byte s[i], percent-encoding what cannot go raw into an HTTP request target.
// Browsers do the same with a typed URL; it turns an admin's "name=John Doe" into a request that works
// instead of one the receiver rejects.
func writeLiteral(b *strings.Builder, s string, i int) {
	c := s[i]
	switch {
	case c == '%':
		if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(c)
			return
		}
	case c > ' ' && c < 0x7f && strings.IndexByte("\"<>\\^`{|}", c) < 0:
		b.WriteByte(c)
		return
	}
	b.WriteByte('%')
	b.WriteByte(upperHex[c>>4])
	b.WriteByte(upperHex[c&15])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
