package testphone

import (
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// maxAnswerDelay caps the delay an INVITE may ask for, so a typo in a
// header cannot leave a test waiting for an hour.
const maxAnswerDelay = 30 * time.Second

// autoAnswerDelay reports whether the INVITE asks the phone to answer by
// itself, and after how long. Recognised, as desk phones do:
//
//	Call-Info: <uri>;answer-after=N      (Snom, Polycom, RFC 7462 drafts)
//	Alert-Info: <uri>;info=alert-autoanswer[;delay=N]  (Snom, Gigaset)
//	P-Auto-Answer: normal                (Gigaset, Yealink)
func autoAnswerDelay(req *sip.Request) (time.Duration, bool) {
	for _, h := range req.GetHeaders("Call-Info") {
		for _, entry := range splitEntries(h.Value()) {
			if v, ok := param(entry, "answer-after"); ok {
				return seconds(v), true
			}
		}
	}
	for _, h := range req.GetHeaders("Alert-Info") {
		for _, entry := range splitEntries(h.Value()) {
			if v, ok := param(entry, "info"); ok && strings.EqualFold(v, "alert-autoanswer") {
				d, _ := param(entry, "delay")
				return seconds(d), true
			}
		}
	}
	if h := req.GetHeader("P-Auto-Answer"); h != nil {
		return 0, true
	}
	return 0, false
}

// splitEntries splits a header value into its comma-separated entries,
// leaving commas inside <…> alone.
func splitEntries(v string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range v {
		switch r {
		case '<':
			depth++
		case '>':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				out = append(out, v[start:i])
				start = i + 1
			}
		}
	}
	return append(out, v[start:])
}

// param finds a ;name=value parameter after the <uri> of an entry.
func param(entry, name string) (string, bool) {
	if i := strings.LastIndexByte(entry, '>'); i >= 0 {
		entry = entry[i+1:]
	}
	for _, p := range strings.Split(entry, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.Trim(strings.TrimSpace(v), `"`), true
		}
	}
	return "", false
}

func seconds(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxAnswerDelay)
}
