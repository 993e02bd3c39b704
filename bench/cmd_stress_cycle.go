package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// stressLoop is one of the parallel loops: its subject phone (and, in the
// transfer mix, its transfer target) belong to it alone; the caller phone
// is shared with other loops.
type stressLoop struct {
	run     *stressRun
	n       int
	subject *stressPhone
	target  *stressPhone // transfer mix only
	caller  *stressPhone
	cursor  map[string]int // next unread URL of each own extension
}

// cycle is one call, start to end, and what happened on it.
type cycle struct {
	l      *stressLoop
	n      int
	kind   string // basic, single-step, transfer
	origin string // "pbx" or the caller phone's extension
	ctx    context.Context
	start  time.Time
	ids    labels
	steps  []string
	// incoming calls of the loop's phones before the cycle
	inBefore map[string]int
	// the caller phone's call, when a phone placed it
	callerCall *testphone.Call
}

func (c *cycle) logf(format string, args ...any) {
	c.steps = append(c.steps, fmt.Sprintf("+%7.3fs ", time.Since(c.start).Seconds())+fmt.Sprintf(format, args...))
}

// stepErr is a cycle's failure: the step that failed and why.
type stepErr struct{ f failure }

func (e *stepErr) Error() string { return e.f.Step + ": " + e.f.Msg }

func fail(step, format string, args ...any) error {
	return &stepErr{failure{Step: step, Msg: fmt.Sprintf(format, args...)}}
}

// bounded is a step's context: a real PBX on a shared machine is slow, but
// a hung step must fail, not hang the run.
func (c *cycle) bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.l.run.o.StepTimeout)
}

// place starts the call to the subject: the PBX calls it from a channel
// that is no phone, or the caller phone dials it.
func (c *cycle) place() error {
	ext := c.l.subject.ext
	if c.origin == "pbx" {
		c.logf("PBX calls %s from outside", ext)
		if err := c.l.run.p.Originate(c.ctx, ext); err != nil {
			return fail("originate", "%v", err)
		}
		return nil
	}
	c.logf("phone %s dials %s", c.origin, ext)
	call, err := c.l.caller.p.Dial(c.ctx, ext)
	if err != nil {
		return fail("dial", "phone %s: %v", c.origin, err)
	}
	c.callerCall = call
	return nil
}

var callIDElem = regexp.MustCompile(`<(?:\w+:)?callID>(-?\d+)</(?:\w+:)?callID>`)

// req sends a CSTA request to ext; it must answer 200 with the service's
// Response. bind, when set, is the label the response's callID binds.
func (c *cycle) req(ext, service, bind string, args ...string) error {
	var inner strings.Builder
	for i := 0; i+1 < len(args); i += 2 {
		v := args[i+1]
		if label, ok := strings.CutPrefix(v, "$"); ok { // a label: its csta_id
			id, bound := c.ids[label]
			if !bound {
				return fail(service, "label %s used before any URL or response carried it", label)
			}
			v = id
		}
		fmt.Fprintf(&inner, "<csta:%s>%s</csta:%s>", args[i], v, args[i])
	}
	c.logf("→ %s %s %s", ext, service, inner.String())
	ctx, cancel := c.bounded()
	defer cancel()
	r, err := c.l.run.br.csta(ctx, ext, service, inner.String())
	c.l.run.request(service, r, err == nil && r.Status == http.StatusOK && strings.Contains(r.Body, service+"Response"))
	if err != nil {
		c.logf("← no answer after %s: %v", r.Took.Round(time.Millisecond), err)
		return fail(service, "no answer after %s: %v", r.Took.Round(time.Millisecond), err)
	}
	c.logf("← %d after %s: %s", r.Status, r.Took.Round(time.Millisecond), truncate(soapBody(r.Body), 600))
	if r.Status != http.StatusOK || !strings.Contains(r.Body, service+"Response") {
		return fail(service, "status %d: %s", r.Status, truncate(faultText(r.Body), 400))
	}
	if bind != "" {
		m := callIDElem.FindStringSubmatch(r.Body)
		if m == nil {
			return fail(service, "no callID in the response")
		}
		if err := c.ids.bind(bind, m[1]); err != nil {
			return fail(service, "response callID: %v", err)
		}
	}
	return nil
}

var (
	wsRE    = regexp.MustCompile(`\s+`)
	faultRE = regexp.MustCompile(`<(?:\w+:)?(?:operation|systemResourceAvailability|securityError|privateErrorCode)>([^<]*)<|<!--(.*?)-->`)
)

// soapBody is the answer without its envelope.
func soapBody(s string) string {
	s = oneLine(s)
	if _, rest, ok := strings.Cut(s, "Body>"); ok {
		if inner, _, ok := strings.Cut(rest, "</SOAP-ENV:Body>"); ok {
			return strings.TrimSpace(inner)
		}
	}
	return s
}

func oneLine(s string) string { return strings.TrimSpace(wsRE.ReplaceAllString(s, " ")) }

// faultText is the readable part of a CSTA error answer.
func faultText(body string) string {
	var parts []string
	for _, m := range faultRE.FindAllStringSubmatch(body, -1) {
		if t := strings.TrimSpace(m[1] + m[2]); t != "" {
			parts = append(parts, t)
		}
	}
	if len(parts) == 0 {
		return oneLine(body)
	}
	return strings.Join(parts, ": ")
}

// expect waits for ext's next action URLs (see seqMatch).
func (c *cycle) expect(ext string, anyOrder bool, want ...string) error {
	ctx, cancel := c.bounded()
	defer cancel()
	left := want
	var got []string
	for len(left) > 0 {
		hits, signal := c.l.run.urls.from(ext, c.l.cursor[ext])
		for _, h := range hits {
			c.l.cursor[ext]++
			got = append(got, h.String())
			c.logf("%s URL %s", ext, h)
			var err error
			if left, err = seqMatch(c.ids, left, anyOrder, h); err != nil {
				return fail("action URLs of "+ext, "%v (this step so far: %s)", err, strings.Join(got, " "))
			}
			if len(left) == 0 {
				return nil
			}
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return fail("action URLs of "+ext, "still waiting for %s after %s (this step got: %s)",
				strings.Join(left, " "), c.l.run.o.StepTimeout, strings.Join(got, " "))
		}
	}
	return nil
}

// pickUp answers the ringing call of a phone by hand.
func (c *cycle) pickUp(sp *stressPhone) error {
	ctx, cancel := c.bounded()
	defer cancel()
	call, err := sp.waitCall(ctx, testphone.StateRinging)
	if err != nil {
		return fail("phone "+sp.ext+" picks up", "%v", err)
	}
	c.logf("phone %s picks up the call from %s", sp.ext, call.RemoteUser())
	if err := call.Answer(ctx); err != nil {
		return fail("phone "+sp.ext+" picks up", "%v", err)
	}
	return nil
}

// hangUp ends a phone's connected call by hand.
func (c *cycle) hangUp(sp *stressPhone) error {
	ctx, cancel := c.bounded()
	defer cancel()
	call, err := sp.waitCall(ctx, testphone.StateConnected)
	if err != nil {
		return fail("phone "+sp.ext+" hangs up", "%v", err)
	}
	c.logf("phone %s hangs up", sp.ext)
	if err := call.Hangup(ctx); err != nil && !errors.Is(err, testphone.ErrCallEnded) {
		return fail("phone "+sp.ext+" hangs up", "%v", err)
	}
	return nil
}

// finish checks the phones after the call: every phone of the loop idle,
// each having answered exactly the calls it should (answered is per
// phone: a swap answer rings the phone twice, once answered), and the
// caller phone's call over after it was connected.
func (c *cycle) finish(answered map[*stressPhone]int, callerEnd string) error {
	ctx, cancel := c.bounded()
	defer cancel()
	for sp, want := range answered {
		if err := sp.waitIdle(ctx); err != nil {
			return fail("phone "+sp.ext+" idle", "%v", err)
		}
		got := 0
		var how []string
		for _, call := range sp.incomingSince(c.inBefore[sp.ext]) {
			how = append(how, call.EndReason())
			if call.EndReason() == "hung up by the far end" || call.EndReason() == "hung up by the phone" {
				got++
			}
		}
		if got != want {
			return fail("phone "+sp.ext+" calls", "%d answered calls, want %d (the cycle's calls ended: %s)", got, want,
				strings.Join(how, "; "))
		}
	}
	if c.callerCall != nil {
		select {
		case <-c.callerCall.Done():
		case <-ctx.Done():
			return fail("phone "+c.origin+" call", "still %s after the call ended", c.callerCall.State())
		}
		if r := c.callerCall.EndReason(); r != callerEnd {
			return fail("phone "+c.origin+" call", "ended %q, want %q", r, callerEnd)
		}
	}
	return nil
}

// basic: answer → hold → retrieve → clear, each request sent as soon as
// the previous one answered and its action URL arrived.
func (c *cycle) basic() error {
	a := c.l.subject.ext
	return firstErr(
		c.place,
		func() error { return c.expect(a, false, "incoming:a1") },
		func() error { return c.req(a, "AnswerCall", "", "callToBeAnswered", "$a1") },
		func() error { return c.expect(a, false, "offhook", "connected:a1") },
		func() error { return c.req(a, "HoldCall", "", "callToBeHeld", "$a1") },
		func() error { return c.expect(a, false, "hold:a1") },
		func() error { return c.req(a, "RetrieveCall", "", "callToBeRetrieved", "$a1") },
		func() error { return c.expect(a, false, "unhold:a1") },
		func() error { return c.req(a, "ClearConnection", "", "connectionToBeCleared", "$a1") },
		func() error { return c.expect(a, false, "disconnected:a1", "onhook") },
		func() error {
			return c.finish(map[*stressPhone]int{c.l.subject: 1}, "hung up by the far end")
		},
	)
}

// singleStep: answer, single-step transfer to the target's phone, which
// answers by hand; ClearConnection there ends the call.
func (c *cycle) singleStep() error {
	a, t := c.l.subject.ext, c.l.target.ext
	return firstErr(
		c.place,
		func() error { return c.expect(a, false, "incoming:a1") },
		func() error { return c.req(a, "AnswerCall", "", "callToBeAnswered", "$a1") },
		func() error { return c.expect(a, false, "offhook", "connected:a1") },
		func() error {
			return c.req(a, "SingleStepTransferCall", "", "activeCall", "$a1", "transferredTo", t)
		},
		func() error { return c.expect(a, false, "transfer:a1", "blind:a1", "disconnected:a1", "onhook") },
		func() error { return c.expect(t, false, "incoming:c1") },
		func() error { return c.pickUp(c.l.target) },
		func() error { return c.expect(t, false, "offhook", "connected:c1") },
		func() error { return c.req(t, "ClearConnection", "", "connectionToBeCleared", "$c1") },
		func() error { return c.expect(t, false, "disconnected:c1", "onhook") },
		func() error {
			return c.finish(map[*stressPhone]int{c.l.subject: 1, c.l.target: 1}, "hung up by the far end")
		},
	)
}

// transfer: answer, hold, MakeCall to the target's phone (answered by
// hand), TransferCall; then the far parties talk until one hangs up (the
// caller phone, or the target when the PBX placed the call).
func (c *cycle) transfer() error {
	a, t := c.l.subject.ext, c.l.target.ext
	callerEnd := "hung up by the phone"
	hangs := func() error {
		if c.callerCall != nil {
			c.logf("phone %s hangs up", c.origin)
			ctx, cancel := c.bounded()
			defer cancel()
			if err := c.callerCall.Hangup(ctx); err != nil && !errors.Is(err, testphone.ErrCallEnded) {
				return fail("phone "+c.origin+" hangs up", "%v", err)
			}
			return nil
		}
		return c.hangUp(c.l.target)
	}
	return firstErr(
		c.place,
		func() error { return c.expect(a, false, "incoming:a1") },
		func() error { return c.req(a, "AnswerCall", "", "callToBeAnswered", "$a1") },
		func() error { return c.expect(a, false, "offhook", "connected:a1") },
		func() error { return c.req(a, "HoldCall", "", "callToBeHeld", "$a1") },
		func() error { return c.expect(a, false, "hold:a1") },
		func() error { return c.req(a, "MakeCall", "a2", "callingDevice", "", "calledDirectoryNumber", t) },
		func() error { return c.expect(a, false, "outgoing:a2") },
		func() error { return c.expect(t, false, "incoming:c1") },
		func() error { return c.pickUp(c.l.target) },
		func() error { return c.expect(t, false, "offhook", "connected:c1") },
		func() error { return c.expect(a, false, "connected:a2") },
		func() error { return c.req(a, "TransferCall", "", "heldCall", "$a1", "activeCall", "$a2") },
		func() error {
			return c.expect(a, true, "transfer:a1", "attended:a1", "disconnected:a1",
				"transfer:a2", "attended:a2", "disconnected:a2")
		},
		func() error { return c.expect(a, false, "onhook") },
		hangs,
		func() error { return c.expect(t, false, "disconnected:c1", "onhook") },
		func() error {
			// The subject's phone answered the swapped call and MakeCall's
			// leg.
			return c.finish(map[*stressPhone]int{c.l.subject: 2, c.l.target: 1}, callerEnd)
		},
	)
}

func firstErr(steps ...func() error) error {
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// runCycle plays cycle n of the loop: which call (the mix's kinds in
// turn) and who places it (the PBX every other time, then the caller
// phone).
func (l *stressLoop) runCycle(ctx context.Context, n int) error {
	c := &cycle{l: l, n: n, ctx: ctx, start: time.Now(), ids: labels{}, inBefore: map[string]int{}}
	c.origin = "pbx"
	if n%2 == 1 {
		c.origin = l.caller.ext
	}
	play := c.basic
	c.kind = "basic"
	if l.run.o.Mix == "transfer" {
		// single-step and transfer, each with both origins
		if (n/2)%2 == 0 {
			play, c.kind = c.singleStep, "single-step"
		} else {
			play, c.kind = c.transfer, "transfer"
		}
	}
	for _, sp := range l.own() {
		c.inBefore[sp.ext] = sp.incomingCount()
	}
	err := play()
	if err == nil {
		if l.run.o.Trace {
			l.run.trace(c)
		}
		return nil
	}
	var se *stepErr
	if !errors.As(err, &se) {
		se = &stepErr{failure{Step: "cycle", Msg: err.Error()}}
	}
	l.run.report(c, se.f, l.recover(c))
	return se
}

// own are the loop's phones (not the shared caller).
func (l *stressLoop) own() []*stressPhone {
	if l.target != nil {
		return []*stressPhone{l.subject, l.target}
	}
	return []*stressPhone{l.subject}
}

// recover ends what a failed cycle left of the loop's calls, so the next
// cycle starts clean, and says what it found: the phones' calls, channels
// on the PBX, and the action URLs that came after the failure.
func (l *stressLoop) recover(c *cycle) string {
	var notes []string
	ctx, cancel := context.WithTimeout(context.Background(), l.run.o.StepTimeout)
	defer cancel()
	var exts []string
	for _, sp := range l.own() {
		exts = append(exts, sp.ext)
		notes = append(notes, fmt.Sprintf("phone %s: %s", sp.ext, sp.describe()))
		// How each call that rang the phone this cycle went: tells a
		// phone that dropped an auto-answer call from a PBX that did.
		for i, call := range sp.incomingSince(c.inBefore[sp.ext]) {
			how := call.State().String()
			if r := call.EndReason(); r != "" {
				how += ": " + r
			}
			auto := ""
			if call.AutoAnswerRequested() {
				auto = ", auto-answer asked"
			}
			notes = append(notes, fmt.Sprintf("phone %s call %d of the cycle from %s (status %d%s): %s", sp.ext, i+1,
				call.RemoteUser(), call.Status(), auto, how))
		}
	}
	if c.callerCall != nil {
		notes = append(notes, fmt.Sprintf("caller %s's call: %s (%s)", c.origin, c.callerCall.State(), c.callerCall.EndReason()))
		_ = c.callerCall.Hangup(ctx)
	}
	for _, sp := range l.own() {
		sp.hangupAll(ctx)
	}
	if n, err := l.run.p.Clear(ctx, exts, false); err != nil || n > 0 {
		notes = append(notes, fmt.Sprintf("hung up %d channels of %v on the PBX (%v)", n, exts, err))
		l.run.cleaned(n)
	}
	for _, sp := range l.own() {
		if err := sp.waitIdle(ctx); err != nil {
			notes = append(notes, err.Error())
		}
	}
	// URLs may still be on their way; a second without one ends the wait.
	quiet := time.NewTimer(time.Second)
	defer quiet.Stop()
	var late []string
	for {
		_, signal := l.run.urls.from("", 0)
		fresh := false
		for _, e := range exts {
			hits, _ := l.run.urls.from(e, l.cursor[e])
			for _, h := range hits {
				late = append(late, e+" "+h.String())
				l.cursor[e]++
				fresh = true
			}
		}
		if fresh {
			quiet.Reset(time.Second)
		}
		select {
		case <-signal:
			continue
		case <-quiet.C:
		case <-ctx.Done():
		}
		break
	}
	if len(late) > 0 {
		notes = append(notes, "action URLs after the failure: "+strings.Join(late, " "))
	} else {
		notes = append(notes, "no action URLs after the failure")
	}
	return strings.Join(notes, "\n    ")
}
