package sim

import (
	"fmt"
	"strings"
)

// cleanNumber reduces a number or URI as a CTI client writes it to the user
// part the simulator dials: "sip:1002@pbx;user=phone" → "1002",
// "<tel:+4930123456>" → "+4930123456".
func cleanNumber(s string) (string, error) {
	n := strings.TrimSpace(s)
	n = strings.TrimSuffix(strings.TrimPrefix(n, "<"), ">")
	if i := strings.IndexByte(n, ':'); i >= 0 {
		switch strings.ToLower(n[:i]) {
		case "sip", "sips", "tel":
			n = n[i+1:]
		}
	}
	if i := strings.IndexAny(n, "@;?"); i >= 0 {
		n = n[:i]
	}
	if n == "" {
		return "", fmt.Errorf("empty number %q", s)
	}
	for _, r := range n {
		if !validNumberRune(r) {
			return "", fmt.Errorf("invalid character %q in number %q", r, s)
		}
	}
	return n, nil
}

func validNumberRune(r rune) bool {
	switch {
	case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		return true
	}
	return strings.ContainsRune("+*#._-", r)
}

// validDigits reports whether s is a non-empty DTMF string.
func validDigits(s string) error {
	if s == "" {
		return fmt.Errorf("no DTMF digits")
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789*#ABCDabcd", r) {
			return fmt.Errorf("invalid DTMF digit %q", r)
		}
	}
	return nil
}
