package pbxtest

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// A step that a phone's user takes.
type phoneStep struct {
	who  Role
	what string
	to   Role
	act  func(p *play, ph Phone) error
}

func (s phoneStep) String() string {
	if s.what == "dials" {
		return fmt.Sprintf("%s dials %s", s.who, s.to)
	}
	return fmt.Sprintf("%s's phone %s", s.who, s.what)
}

func (s phoneStep) do(p *play) {
	p.t.Helper()
	if err := s.act(p, p.rig.Phone(s.who)); err != nil {
		p.fatalf("%s: %v", s, err)
	}
}

// Dial: the phone of from calls to's extension.
func Dial(from, to Role) Step {
	return phoneStep{who: from, what: "dials", to: to, act: func(p *play, ph Phone) error {
		return ph.Dial(p.ctx, p.rig.Ext(to))
	}}
}

// PickUp: the phone's user answers the ringing call.
func PickUp(r Role) Step {
	return phoneStep{who: r, what: "picks up", act: func(p *play, ph Phone) error { return ph.Answer(p.ctx) }}
}

// HangUp: the phone's user hangs up its newest call.
func HangUp(r Role) Step {
	return phoneStep{who: r, what: "hangs up", act: func(p *play, ph Phone) error { return ph.Hangup(p.ctx) }}
}

// PhoneHold: the phone's user presses hold.
func PhoneHold(r Role) Step {
	return phoneStep{who: r, what: "holds", act: func(p *play, ph Phone) error { return ph.Hold(p.ctx) }}
}

// PhoneUnhold: the phone's user resumes the call it held.
func PhoneUnhold(r Role) Step {
	return phoneStep{who: r, what: "resumes", act: func(p *play, ph Phone) error { return ph.Unhold(p.ctx) }}
}

// Shows waits until the phone shows st.
func Shows(r Role, st Showing) Step {
	return phoneStep{who: r, what: "shows " + st.String(), act: func(p *play, ph Phone) error { return ph.Wait(p.ctx, st) }}
}

// OutsideCalls: the PBX calls r from a party that is no mapped phone.
func OutsideCalls(r Role) Step {
	return phoneStep{who: r, what: "rings from outside", act: func(p *play, _ Phone) error {
		return p.rig.OutsideCall(p.ctx, p.rig.Ext(r))
	}}
}

type ignoreStep struct {
	who Role
	on  bool
}

// IgnoreAutoAnswer switches the phone's auto-answer policy off (on=true)
// or back on.
func IgnoreAutoAnswer(r Role, on bool) Step { return ignoreStep{r, on} }

func (s ignoreStep) String() string { return fmt.Sprintf("%s ignores auto-answer: %v", s.who, s.on) }
func (s ignoreStep) do(p *play)     { p.rig.SetIgnoreAutoAnswer(s.who, s.on) }

// urlStep expects action URLs of one extension.
type urlStep struct {
	who      Role
	want     []string
	anyOrder bool
}

// URLs expects the next action URLs of r's extension, in this order.
// "incoming:a1" is the URL of action_incoming_url with csta_id a1 (a label
// bound by the first URL or response that carries it); events without a
// call ("offhook", "onhook") have no label.
func URLs(r Role, want ...string) Step { return urlStep{who: r, want: want} }

// URLsAnyOrder expects these next action URLs of r's extension in any
// order: the URLs of two calls that end together have no order between
// them (those of each call keep theirs: checked when they are labelled).
func URLsAnyOrder(r Role, want ...string) Step { return urlStep{who: r, want: want, anyOrder: true} }

func (s urlStep) String() string {
	return fmt.Sprintf("%s's action URLs %s", s.who, strings.Join(s.want, ", "))
}

func (s urlStep) do(p *play) {
	p.t.Helper()
	ext := p.rig.Ext(s.who)
	sink := p.rig.Sink()
	left := slices.Clone(s.want)
	var got []string
	for len(left) > 0 {
		h, ok := sink.next(ext, p.ctx)
		if !ok {
			p.fatalf("%s: got %v, no more within the row's time; still waiting for %v", s, got, left)
		}
		got = append(got, h.String())
		i := 0
		if s.anyOrder {
			i = firstMatch(p, left, h)
		}
		if i < 0 || !matches(p, left[i], h) {
			p.fatalf("%s: got %v, the last one unexpected (wanted next: %v)", s, got, left)
		}
		event, label, _ := strings.Cut(left[i], ":")
		p.bind(s.who, label, h.CSTAID, event+" URL")
		left = slices.Delete(left, i, i+1)
	}
}

// firstMatch is the index of the wanted URL h is, among those that may
// come next: the first of each label (a call's own URLs keep their order),
// or -1.
func firstMatch(p *play, left []string, h Hit) int {
	seen := map[string]bool{}
	for i, w := range left {
		_, label, _ := strings.Cut(w, ":")
		if seen[label] {
			continue
		}
		seen[label] = true
		if matches(p, w, h) {
			return i
		}
	}
	return -1
}

// matches: the URL is the wanted event, and its csta_id fits the label
// (same as bound, or not yet bound).
func matches(p *play, want string, h Hit) bool {
	event, label, _ := strings.Cut(want, ":")
	if h.Event != event {
		return false
	}
	if label == "" {
		return h.CSTAID == ""
	}
	b, ok := p.ids[label]
	return !ok || b.id == h.CSTAID
}

// Arg is one element of a CSTA request's body.
type Arg func(p *play) string

// Conn is a ConnectionID element with the csta_id of a label, in Snom's
// bare-text form.
func Conn(elem, label string) Arg {
	return func(p *play) string { return fmt.Sprintf("<csta:%s>%s</csta:%s>", elem, p.id(label), elem) }
}

// Number is an element holding a role's extension number.
func Number(elem string, r Role) Arg {
	return func(p *play) string { return fmt.Sprintf("<csta:%s>%s</csta:%s>", elem, p.rig.Ext(r), elem) }
}

// AppNumber is an element holding the number of a dialplan application
// (Rig.Application); a rig without it cannot play the row (see
// NeedApplication).
func AppNumber(elem, kind string) Arg {
	return func(p *play) string {
		n := p.rig.Application(kind)
		if n == "" {
			p.fatalf("the rig has no %s to dial", kind)
		}
		return fmt.Sprintf("<csta:%s>%s</csta:%s>", elem, n, elem)
	}
}

// Text is an element with literal content ("" for an empty element), in
// which "{a1}" and "{A}" are expanded as in ReqStep.Has.
func Text(elem, v string) Arg {
	return func(p *play) string { return fmt.Sprintf("<csta:%s>%s</csta:%s>", elem, p.expand(v), elem) }
}

// ReqStep is a CSTA request sent to an extension's /csta.
type ReqStep struct {
	who     Role
	service string
	args    []Arg
	fault   string   // the CSTA error code wanted; "" for success
	binds   string   // label the response's callID binds
	has     []string // what the response must contain (see Has)
	hasNot  []string
}

// Req sends a CSTA request (in the SOAP envelope of Snom's templates) to
// r's extension; it must succeed unless Fault says otherwise.
func Req(r Role, service string, args ...Arg) ReqStep {
	return ReqStep{who: r, service: service, args: args}
}

// Fault: the request must fail with this ECMA-269 error value.
func (s ReqStep) Fault(code string) ReqStep { s.fault = code; return s }

// Binds: the response's callID (MakeCall's new call, a transfer's
// transferredCall) is label's csta_id.
func (s ReqStep) Binds(label string) ReqStep { s.binds = label; return s }

// Has: the response contains each of these, after "{a1}" is replaced by
// label a1's csta_id and "{A}" by role A's extension number.
func (s ReqStep) Has(parts ...string) ReqStep { s.has = append(s.has, parts...); return s }

// HasNot: the response contains none of these (expanded as in Has).
func (s ReqStep) HasNot(parts ...string) ReqStep { s.hasNot = append(s.hasNot, parts...); return s }

var placeholder = regexp.MustCompile(`\{([A-Za-z0-9]+)\}`)

// expand replaces {label} and {A}/{B}/{C} in a pattern.
func (p *play) expand(pattern string) string {
	p.t.Helper()
	return placeholder.ReplaceAllStringFunc(pattern, func(m string) string {
		name := m[1 : len(m)-1]
		for _, r := range []Role{A, B, C} {
			if name == r.String() {
				return p.rig.Ext(r)
			}
		}
		return p.id(name)
	})
}

func (s ReqStep) String() string {
	out := fmt.Sprintf("%s %s", s.who, s.service)
	if s.fault != "" {
		out += " → " + s.fault
	}
	return out
}

var callIDElem = regexp.MustCompile(`<(?:\w+:)?callID>(-?\d+)</(?:\w+:)?callID>`)

func (s ReqStep) do(p *play) {
	p.t.Helper()
	var inner strings.Builder
	for _, a := range s.args {
		inner.WriteString(a(p))
	}
	status, body, took := p.rig.Bridge().CSTA(p.rig.Ext(s.who), s.service, inner.String())
	switch {
	case s.fault == "" && (status != http.StatusOK || !strings.Contains(body, s.service+"Response")):
		p.fatalf("%s: status %d after %s, body %s", s, status, took.Round(time.Millisecond), body)
	case s.fault != "" && (status != http.StatusInternalServerError || !strings.Contains(body, "<csta:operation>"+s.fault+"</csta:operation>")):
		p.fatalf("%s: status %d after %s, body %s", s, status, took.Round(time.Millisecond), body)
	}
	for _, part := range s.has {
		if want := p.expand(part); !strings.Contains(body, want) {
			p.fatalf("%s: response without %s: %s", s, want, body)
		}
	}
	for _, part := range s.hasNot {
		if bad := p.expand(part); strings.Contains(body, bad) {
			p.fatalf("%s: response with %s: %s", s, bad, body)
		}
	}
	if s.binds != "" {
		m := callIDElem.FindStringSubmatch(body)
		if m == nil {
			p.fatalf("%s: no callID in %s", s, body)
		}
		p.bind(s.who, s.binds, m[1], s.service+"Response")
	}
}

type quirkStep struct {
	q     Quirk
	has   bool
	steps []Step
}

// If plays steps only on a PBX with quirk q.
func If(q Quirk, steps ...Step) Step { return quirkStep{q: q, has: true, steps: steps} }

// Unless plays steps only on a PBX without quirk q.
func Unless(q Quirk, steps ...Step) Step { return quirkStep{q: q, steps: steps} }

func (s quirkStep) String() string {
	if s.has {
		return fmt.Sprintf("where %s: %d steps", s.q, len(s.steps))
	}
	return fmt.Sprintf("unless %s: %d steps", s.q, len(s.steps))
}

func (s quirkStep) do(p *play) {
	p.t.Helper()
	if p.rig.Has(s.q) == s.has {
		p.steps(s.steps)
	}
}

type bridgeStep struct {
	name string
	act  func(b *Bridge)
}

func (s bridgeStep) String() string { return s.name }
func (s bridgeStep) do(p *play)     { p.t.Helper(); s.act(p.rig.Process()) }

// BridgeStops: the bridge stops as on SIGTERM; the PBX and the phones go
// on.
func BridgeStops() Step { return bridgeStep{"the bridge stops", (*Bridge).Stop} }

// BridgeStarts: it starts again on the same configuration and state file;
// the step returns once it is ready and every extension fired
// action_setup_url (a restarted phone's boot).
func BridgeStarts() Step { return bridgeStep{"the bridge starts", (*Bridge).Start} }

// BridgeRestarts is BridgeStops and BridgeStarts at once.
func BridgeRestarts() Step {
	return bridgeStep{"the bridge restarts", func(b *Bridge) { b.Stop(); b.Start() }}
}

type pauseStep time.Duration

// Pause lets d pass: a step of a row's timing (restart 200 ms after the
// connect), never a way to wait for something.
func Pause(d time.Duration) Step { return pauseStep(d) }

func (s pauseStep) String() string { return "pause " + time.Duration(s).String() }
func (s pauseStep) do(p *play) {
	select {
	case <-time.After(time.Duration(s)):
	case <-p.ctx.Done():
		p.fatalf("%s: the row ran out of time", s)
	}
}
