package esl

import (
	"errors"
	"fmt"
	"strings"
)

// chanVar is one channel variable of an originate dial string.
type chanVar struct{ name, value string }

// varBlock renders {a=b,c=d} or [a=b,c=d]. FreeSWITCH splits these blocks
// at unescaped commas and the API line at spaces, so commas are escaped and
// values with spaces are single-quoted; values that cannot be written
// safely are rejected before (checkVarValue).
func varBlock(open, close string, vars []chanVar) string {
	if len(vars) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(open)
	for i, v := range vars {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(v.name)
		b.WriteByte('=')
		val := strings.ReplaceAll(v.value, ",", `\,`)
		if strings.ContainsRune(val, ' ') {
			val = "'" + val + "'"
		}
		b.WriteString(val)
	}
	b.WriteString(close)
	return b.String()
}

// checkVarValue rejects what would break out of a variable block or the
// API command line.
func checkVarValue(v string) error {
	if strings.ContainsAny(v, "'\"{}[]\\\r\n\t") {
		return fmt.Errorf("value %q contains a character that cannot be passed in a dial string", v)
	}
	return nil
}

// autoAnswerVars turns "Name: value" headers into sip_h_Name=value.
func autoAnswerVars(headers []string) ([]chanVar, error) {
	// sip_auto_answer=true also has mod_sofia send the phone an in-dialog
	// NOTIFY "Event: talk" on its 180 (sofia.c, FS-9188), which answers a
	// phone that takes remote control whatever its auto-answer policy:
	// whether to use remote control is the adapter's choice
	// (usePhoneEvents), so the auto-answer call asks by its headers only.
	vars := []chanVar{{"sip_auto_answer", "true"}, {"sip_auto_answer_suppress_notify", "true"}}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || !isHeaderName(name) {
			return nil, fmt.Errorf("auto answer header %q: want \"Name: value\"", h)
		}
		if err := checkVarValue(value); err != nil {
			return nil, fmt.Errorf("auto answer header %q: %w", h, err)
		}
		vars = append(vars, chanVar{"sip_h_" + name, value})
	}
	return vars, nil
}

func isHeaderName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return s != ""
}

// checkEndpoint accepts what may be dialled as the extension's device:
// "user/1001", "user/1001@domain", "sofia/internal/1001@host".
func checkEndpoint(ep string) error {
	if ep == "" {
		return errors.New("endpoint is empty")
	}
	if !strings.Contains(ep, "/") {
		return fmt.Errorf("endpoint %q: want a dial string such as user/1001", ep)
	}
	for _, r := range ep {
		if r <= ' ' || strings.ContainsRune(",'\"{}[]|\\", r) {
			return fmt.Errorf("endpoint %q contains %q", ep, r)
		}
	}
	return nil
}

// cleanDestination turns what the CTI client asked to call into a dialplan
// extension: a number as is, the user part of a SIP URI.
func cleanDestination(dest string) (string, error) {
	d := strings.TrimSpace(dest)
	if strings.HasPrefix(d, "sip:") || strings.HasPrefix(d, "sips:") || strings.HasPrefix(d, "tel:") {
		d = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(d, "sips:"), "sip:"), "tel:")
		if i := strings.IndexAny(d, "@;?"); i >= 0 {
			d = d[:i]
		}
	}
	if d == "" {
		return "", fmt.Errorf("destination %q is empty", dest)
	}
	for _, r := range d {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("+*#._-", r)) {
			return "", fmt.Errorf("destination %q: %q is not allowed in a dialplan extension", dest, r)
		}
	}
	return d, nil
}

// checkDTMF accepts the DTMF characters uuid_send_dtmf understands (w and W
// are pauses).
func checkDTMF(digits string) error {
	if digits == "" || len(digits) > 64 {
		return fmt.Errorf("%d DTMF digits: want 1 to 64", len(digits))
	}
	for _, r := range digits {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'D' || r >= 'a' && r <= 'd' || r == '*' || r == '#' || r == 'w' || r == 'W') {
			return fmt.Errorf("DTMF digit %q is not allowed", r)
		}
	}
	return nil
}
