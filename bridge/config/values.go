package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Validators return "" when the value is fine, else a message that never
// contains a secret.

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// checkListen accepts "IP:port" and ":port" (all interfaces). Host names are
// refused: a listener must not depend on DNS at start-up, and the address is
// also the source IP of the extension's action URLs. Port 0 (a free port) is
// accepted for tests.
func checkListen(s string) (listener, string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return listener{}, fmt.Sprintf("must be IP:port such as 127.0.0.1:8080 (got %q)", s)
	}
	var l listener
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return listener{}, fmt.Sprintf("host must be an IP address, not a name (got %q)", s)
		}
		if a.Zone() != "" {
			return listener{}, fmt.Sprintf("IPv6 zones are not supported (got %q)", s)
		}
		l.addr = a.Unmap()
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return listener{}, fmt.Sprintf("port must be a number from 1 to 65535 (got %q)", s)
	}
	l.port = uint16(p)
	return l, ""
}

func checkHostPort(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Sprintf("must be host:port such as 127.0.0.1:8021 (got %q)", s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Sprintf("port must be a number from 1 to 65535 (got %q)", s)
	}
	if hasControl(host) || strings.ContainsAny(host, " /@") {
		return fmt.Sprintf("must be host:port such as 127.0.0.1:8021 (got %q)", s)
	}
	return ""
}

// checkHTTPURL accepts an absolute http or https URL without credentials
// (those belong in their own settings, where they are kept out of logs).
func checkHTTPURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || hasControl(s) || strings.ContainsAny(s, " \t") {
		return "must be an http or https URL such as http://127.0.0.1:8088/ari"
	}
	if u.User != nil {
		return fmt.Sprintf("must not contain credentials; use username and password (got %q)", u.Redacted())
	}
	if sc := strings.ToLower(u.Scheme); sc != "http" && sc != "https" || u.Host == "" {
		return fmt.Sprintf("must be an http or https URL such as http://127.0.0.1:8088/ari (got %q)", u.Redacted())
	}
	return ""
}

// actionVar matches the $variables of a Snom action URL: $local, $call-id,
// $sip_header(X-Foo), any setting name.
var actionVar = regexp.MustCompile(`\$[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*(?:\([^)]*\))?`)

// checkActionURL accepts "" (disabled) or an absolute http(s) URL once its
// $variables are substituted.
func checkActionURL(s string) string {
	if s == "" {
		return ""
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Sprintf("must not contain spaces or control characters; write %%20 (got %q)", redactURL(s))
	}
	u, err := url.Parse(actionVar.ReplaceAllString(s, "x"))
	if err != nil {
		return fmt.Sprintf("must be empty or an absolute http or https URL (got %q)", redactURL(s))
	}
	if sc := strings.ToLower(u.Scheme); sc != "http" && sc != "https" || u.Host == "" {
		return fmt.Sprintf("must be empty or an absolute http or https URL (got %q)", redactURL(s))
	}
	return ""
}

// redactURL hides the password of a URL's userinfo without needing the URL
// to parse (it may still hold $variables or be malformed).
func redactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return s
	}
	user := rest[:at]
	if c := strings.Index(user, ":"); c >= 0 {
		user = user[:c] + ":xxxxx"
	}
	return s[:i+3] + user + rest[at:]
}

// headerLine is `Name: value` with an RFC 9110 token as the name.
var headerLine = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+:[ \t]*[^ \t].*$")

func checkHeader(s string) string {
	if hasControl(s) || !headerLine.MatchString(s) {
		return fmt.Sprintf("must look like \"Name: value\" (got %q)", s)
	}
	return ""
}

// checkDomain accepts what can stand after the @ of a SIP URI: a host name
// or IP, optionally with a port.
func checkDomain(s string) string {
	if hasControl(s) || strings.ContainsAny(s, " \t@/<>;?\"#,") {
		return fmt.Sprintf("must be a host name or IP address such as pbx.example.com (got %q)", s)
	}
	return ""
}

// checkExtensionName: names appear in URL paths (/<extension>/csta) and in
// SIP URIs, so only characters safe in both are allowed.
func checkExtensionName(s string) string {
	if s == "" || s == "." || s == ".." || !plainKey(s) {
		return "name must be made of letters, digits and _ . + - (it appears in URL paths)"
	}
	return ""
}

// checkSettingName: setting names double as $variables in action URLs.
func checkSettingName(s string) string {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
	}) {
		return "setting names are made of letters, digits and _ (Snom setting names such as action_incoming_url)"
	}
	return ""
}

// parseAllow accepts a CIDR prefix or a bare IP (a /32 or /128).
func parseAllow(s string) (netip.Prefix, string) {
	bad := fmt.Sprintf("must be an IP address or CIDR prefix such as 10.0.0.0/8 (got %q)", s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, bad
		}
		return p.Masked(), ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, bad
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), ""
}

// listener is a parsed listen address; addr is invalid for ":port".
type listener struct {
	addr netip.Addr
	port uint16
}

// overlaps reports whether two listeners cannot both bind: same port and
// the same address, or one of them is a wildcard that covers the other.
func (l listener) overlaps(o listener) bool {
	if l.port != o.port || l.port == 0 {
		return false
	}
	return l.addr == o.addr || l.covers(o.addr) || o.covers(l.addr)
}

func (l listener) covers(a netip.Addr) bool {
	switch {
	case !l.addr.IsValid(), l.addr == netip.IPv6Unspecified():
		return true // ":port" and "[::]:port" take every address on Linux
	case l.addr == netip.IPv4Unspecified():
		return !a.IsValid() || a.Is4() || a == netip.IPv6Unspecified()
	}
	return false
}
