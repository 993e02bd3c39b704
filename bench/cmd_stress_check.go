package main

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The pure part of bench stress: matching action URLs against what a
// cycle expects, grouping failures, and the summary. Nothing here touches
// the network, so stress_check_test.go covers it in CI.

// urlHit is one action URL the sink received: the event (the URL's path)
// and its $csta_id ("" for device events such as offhook).
type urlHit struct {
	Event, ID string
	At        time.Time
}

func (h urlHit) String() string {
	if h.ID == "" {
		return h.Event
	}
	return h.Event + ":" + h.ID
}

// labels binds the labels of a cycle's expectations ("a1": the subject's
// first call) to csta_ids. A label is bound by the first URL or response
// that carries it and checked against every later one; two labels of the
// same extension never share an id. The label's first letter names the
// party (a, b, c), so one map serves every extension of a cycle.
type labels map[string]string

// bind learns or checks label's csta_id.
func (l labels) bind(label, id string) error {
	if label == "" {
		if id != "" {
			return fmt.Errorf("csta_id %s on an event that has none", id)
		}
		return nil
	}
	if id == "" {
		return fmt.Errorf("no csta_id for %s", label)
	}
	if have, ok := l[label]; ok {
		if have != id {
			return fmt.Errorf("csta_id %s, but %s is %s", id, label, have)
		}
		return nil
	}
	for _, other := range slices.Sorted(maps.Keys(l)) {
		if other[0] == label[0] && l[other] == id {
			return fmt.Errorf("csta_id %s for %s is already %s's", id, label, other)
		}
	}
	l[label] = id
	return nil
}

// fits says whether h can be the wanted "event" or "event:label".
func (l labels) fits(want string, h urlHit) bool {
	event, label, _ := strings.Cut(want, ":")
	if h.Event != event {
		return false
	}
	if label == "" {
		return h.ID == ""
	}
	id, ok := l[label]
	return !ok || id == h.ID
}

// seqMatch takes one URL against the URLs still wanted and returns what is
// left. In order, h must be the first; in any order, h must be the first
// wanted URL of its label (each call's own URLs keep their order: the
// URLs of two calls that end together have no order between them).
func seqMatch(l labels, left []string, anyOrder bool, h urlHit) ([]string, error) {
	if len(left) == 0 {
		return nil, fmt.Errorf("unexpected %s", h)
	}
	i := -1
	if !anyOrder {
		if l.fits(left[0], h) {
			i = 0
		}
	} else {
		seen := map[string]bool{}
		for j, w := range left {
			_, label, _ := strings.Cut(w, ":")
			if seen[label] {
				continue
			}
			seen[label] = true
			if l.fits(w, h) {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return left, fmt.Errorf("got %s, wanted next %s", h, strings.Join(nextWanted(left, anyOrder), " or "))
	}
	_, label, _ := strings.Cut(left[i], ":")
	if err := l.bind(label, h.ID); err != nil {
		return left, fmt.Errorf("%s: %w", h, err)
	}
	return slices.Delete(slices.Clone(left), i, i+1), nil
}

func nextWanted(left []string, anyOrder bool) []string {
	if !anyOrder {
		return left[:1]
	}
	seen := map[string]bool{}
	var out []string
	for _, w := range left {
		_, label, _ := strings.Cut(w, ":")
		if !seen[label] {
			seen[label] = true
			out = append(out, w)
		}
	}
	return out
}

// failure is one failed cycle: the step that failed and why.
type failure struct {
	Step string // "HoldCall", "URLs of 1004", "phone 1004 idle", …
	Msg  string
}

var (
	uuidRE  = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	stampRE = regexp.MustCompile(`\b\d{9,}\.\d+\b`)    // Asterisk unique ids (1733339988.123)
	hexRE   = regexp.MustCompile(`\b[0-9a-f]{8,}\b`)   // other generated ids
	numRE   = regexp.MustCompile(`\b\d{4,}\b`)         // extensions, ports, counters
	durRE   = regexp.MustCompile(`\b\d+(\.\d+)?m?s\b`) // how long something took
	tagRE   = regexp.MustCompile(`<csta:(\w+)>[^<]*</csta:\w+>`)
	tailRE  = regexp.MustCompile(`(<hex>|#)(-(\d+|#))+`) // a generated id's counter (csta-out-<ms>-61)
	negRE   = regexp.MustCompile(`(\s)-\d+\b`)           // a bare csta_id ("no call -39")
	idRE    = regexp.MustCompile(`\b([a-z_]+):-?\d+\b`)  // a URL's csta_id (hold:-16)
)

// normalize strips what differs between two failures of the same kind
// (ids, extensions, durations), so that failures group by cause.
func normalize(msg string) string {
	msg = uuidRE.ReplaceAllString(msg, "<uuid>")
	msg = stampRE.ReplaceAllString(msg, "<id>")
	msg = hexRE.ReplaceAllString(msg, "<hex>")
	msg = numRE.ReplaceAllString(msg, "#")
	msg = tailRE.ReplaceAllString(msg, "$1")
	msg = idRE.ReplaceAllString(msg, "$1:<id>")
	msg = negRE.ReplaceAllString(msg, "$1<id>")
	msg = durRE.ReplaceAllString(msg, "<t>")
	msg = tagRE.ReplaceAllString(msg, "<csta:$1>…")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// failureGroup is how often one kind of failure happened, with the first
// one verbatim.
type failureGroup struct {
	Key     string // step: normalized message
	Count   int
	Example string
}

func groupFailures(fs []failure) []failureGroup {
	byKey := map[string]*failureGroup{}
	var order []string
	for _, f := range fs {
		k := normalize(f.Step) + ": " + normalize(f.Msg)
		g := byKey[k]
		if g == nil {
			g = &failureGroup{Key: k, Example: f.Step + ": " + f.Msg}
			byKey[k] = g
			order = append(order, k)
		}
		g.Count++
	}
	out := make([]failureGroup, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	slices.SortStableFunc(out, func(a, b failureGroup) int { return b.Count - a.Count })
	return out
}

// stressResult is what one run of the stress core measured.
type stressResult struct {
	PBX, Mix     string
	Phones       int // parallel loops, each with its own phone(s)
	Cycles       int // per loop
	Exts         []string
	OK, Failed   int
	NotRun       int // cycles a deadline or an interrupt cut off
	Elapsed      time.Duration
	Requests     map[string]latencies // by CSTA service, answered 200
	RequestFails map[string]int       // by CSTA service, any other answer
	Failures     []failure
	LeftChannels []string // the PBX's channels of the run after the grace period
	LeftBridges  []string
	LeftOther    int    // channels and bridges of others (not counted as left)
	LeftErr      string // the PBX could not be asked
	BridgeCalls  float64
	BridgeQueued float64
	Cleaned      int // channels the run hung up after failed cycles
	RTP          string
}

// Pass: every cycle ran and passed, and nothing was left.
func (r *stressResult) Pass() bool {
	return r.Failed == 0 && r.NotRun == 0 && r.OK > 0 && len(r.LeftChannels)+len(r.LeftBridges) == 0 &&
		r.LeftErr == "" && r.BridgeCalls == 0 && r.BridgeQueued == 0
}

// serviceOrder is the order the summary lists request types in.
var serviceOrder = []string{"AnswerCall", "HoldCall", "RetrieveCall", "ClearConnection", "MakeCall",
	"SingleStepTransferCall", "TransferCall"}

// summaryLines is the report's summary: the lines to paste into
// docs/BENCHMARKS.md.
func (r *stressResult) summaryLines() []string {
	total := r.OK + r.Failed
	rate := 0.0
	if r.Elapsed > 0 {
		rate = float64(total) / r.Elapsed.Seconds()
	}
	verdict := "PASS"
	if !r.Pass() {
		verdict = "FAIL"
	}
	out := []string{fmt.Sprintf("STRESS %s pbx=%s mix=%s phones=%d cycles=%d: %d ok, %d failed, %d not run; %.2f cycles/s over %s",
		verdict, r.PBX, r.Mix, r.Phones, r.Cycles, r.OK, r.Failed, r.NotRun, rate, r.Elapsed.Round(10*time.Millisecond))}
	services := slices.Clone(serviceOrder)
	for s := range r.Requests {
		if !slices.Contains(services, s) {
			services = append(services, s)
		}
	}
	for s := range r.RequestFails {
		if !slices.Contains(services, s) {
			services = append(services, s)
		}
	}
	for _, s := range services {
		l, nf := r.Requests[s], r.RequestFails[s]
		if len(l) == 0 && nf == 0 {
			continue
		}
		sum := summarize(l)
		out = append(out, fmt.Sprintf("  %-23s p50 %s  p99 %s  max %s  (200: %d, failed: %d)", s, ms(sum.P50), ms(sum.P99),
			ms(sum.Max), sum.N, nf))
	}
	left := fmt.Sprintf("  left on the PBX: %d channels, %d bridges", len(r.LeftChannels), len(r.LeftBridges))
	if r.LeftErr != "" {
		left += " (could not ask: " + r.LeftErr + ")"
	}
	if r.LeftOther > 0 {
		left += fmt.Sprintf(" (+%d of other users, not counted)", r.LeftOther)
	}
	left += fmt.Sprintf("; bridge: %g calls, %g action URLs queued", r.BridgeCalls, r.BridgeQueued)
	if r.Cleaned > 0 {
		left += fmt.Sprintf("; %d channels hung up after failed cycles", r.Cleaned)
	}
	out = append(out, left)
	for _, c := range r.LeftChannels {
		out = append(out, "    channel "+c)
	}
	for _, b := range r.LeftBridges {
		out = append(out, "    bridge "+b)
	}
	if r.RTP != "" {
		out = append(out, "  rtp: "+r.RTP)
	}
	for _, g := range groupFailures(r.Failures) {
		out = append(out, fmt.Sprintf("  %4d× %s", g.Count, g.Key))
		if g.Example != g.Key {
			out = append(out, "        e.g. "+truncate(g.Example, 400))
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// parseExts reads "1001-1012" or "1001,1002,1005" (or a mix).
func parseExts(spec string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			if !isDigits(part) {
				return nil, fmt.Errorf("extension %q: want digits", part)
			}
			out = append(out, part)
			continue
		}
		var a, b int
		if !isDigits(lo) || !isDigits(hi) || len(lo) != len(hi) {
			return nil, fmt.Errorf("range %q: want two numbers of the same length, e.g. 1001-1012", part)
		}
		fmt.Sscan(lo, &a)
		fmt.Sscan(hi, &b)
		if b < a || b-a > 10000 {
			return nil, fmt.Errorf("range %q: empty or too large", part)
		}
		for n := a; n <= b; n++ {
			out = append(out, fmt.Sprintf("%0*d", len(lo), n))
		}
	}
	seen := map[string]bool{}
	for _, e := range out {
		if seen[e] {
			return nil, fmt.Errorf("extension %s listed twice", e)
		}
		seen[e] = true
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no extensions in %q", spec)
	}
	return out, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// stressPlan assigns the extensions: each loop's subject (and, in the
// transfer mix, its transfer target) are its own; the callers that dial
// the subjects are shared and not configured in the bridge (an outside
// phone: no action URLs of their own to interleave).
type stressPlan struct {
	Subjects, Targets, Callers []string
}

func planExts(exts []string, mix string, phones int) (stressPlan, error) {
	per := 1
	if mix == "transfer" {
		per = 2
	}
	need := phones*per + 1
	if phones < 1 {
		return stressPlan{}, fmt.Errorf("-phones %d: want at least 1", phones)
	}
	if len(exts) < need {
		return stressPlan{}, fmt.Errorf("mix %s with %d phones needs %d extensions (%d per loop and at least one caller phone), have %d",
			mix, phones, need, per, len(exts))
	}
	p := stressPlan{Subjects: exts[:phones]}
	rest := exts[phones:]
	if per == 2 {
		p.Targets, rest = rest[:phones], rest[phones:]
	}
	// More callers than loops would only sit idle.
	p.Callers = rest[:min(len(rest), phones)]
	return p, nil
}
