package fakefs

import (
	"slices"
	"strings"
	"time"
)

// The call flows. Every function here runs with f.mu held and reports
// what it does as it does it, so the events go out in FreeSWITCH's order.

// number is how the channel's party shows as a caller, and its name.
func (c *Chan) number() (num, name string) {
	if c.User != "" {
		return c.User, "Extension " + c.User
	}
	return c.callerNum, c.callerName
}

// route runs the dialplan for dest on c, as if c had dialled it: a
// registered (or static) user is called (Local_Extension's bridge to
// user/<dest>), one whose phone is not registered is not, an application
// number runs the application, anything else fails.
func (f *FS) route(c *Chan, dest string) {
	c.dest = dest
	switch {
	case f.reachable(dest):
		f.bridgeTo(c, dest)
	case f.directoryUser(dest):
		f.hangup(c, "USER_NOT_REGISTERED") // its phone unregistered
	case f.opts.Apps[dest] != "" && f.opts.Apps[dest] != AppTransfer && f.opts.Apps[dest] != AppRingGroup &&
		f.opts.Apps[dest] != AppHeader:
		f.runApp(c, dest, f.opts.Apps[dest])
	case len(f.ringGroup(dest)) > 0:
		f.bridgeTo(c, f.ringGroup(dest)...)
	case f.withHeader(dest) != "":
		// export nolocal:sip_h_X-Customer=4711, then the user's bridge.
		user := f.withHeader(dest)
		c.setVar("sip_h_"+HeaderName, HeaderValue)
		f.send(c, "CHANNEL_EXECUTE", hdr{"Application", "export"}, hdr{"Application-Data", "nolocal:sip_h_" + HeaderName + "=" + HeaderValue})
		f.route(c, user)
	case f.handOver(dest) != "":
		// answer, playback of a prompt, transfer to the user.
		user := f.handOver(dest)
		f.answered(c)
		f.send(c, "CHANNEL_EXECUTE", hdr{"Application", "answer"})
		f.send(c, "CHANNEL_EXECUTE", hdr{"Application", "playback"}, hdr{"Application-Data", "tone_stream://%(300,0,440)"})
		f.send(c, "CHANNEL_EXECUTE", hdr{"Application", "transfer"}, hdr{"Application-Data", user + " XML " + f.opts.Context})
		f.route(c, user)
	default:
		f.hangup(c, "NO_ROUTE_DESTINATION")
	}
}

// withHeader is the user a number of an AppHeader prefix calls, "" for
// other numbers.
func (f *FS) withHeader(dest string) string {
	for prefix, kind := range f.opts.Apps {
		if user, ok := strings.CutPrefix(dest, prefix); ok && kind == AppHeader && f.reachable(user) {
			return user
		}
	}
	return ""
}

// handOver is the user a number of an AppTransfer prefix hands its caller
// to, "" for other numbers.
func (f *FS) handOver(dest string) string {
	for prefix, kind := range f.opts.Apps {
		if user, ok := strings.CutPrefix(dest, prefix); ok && kind == AppTransfer && f.reachable(user) {
			return user
		}
	}
	return ""
}

// ringGroup is the users a number of an AppRingGroup prefix rings, nil
// for other numbers.
func (f *FS) ringGroup(dest string) []string {
	for prefix, kind := range f.opts.Apps {
		rest, ok := strings.CutPrefix(dest, prefix)
		if !ok || kind != AppRingGroup || len(rest)%2 != 0 {
			continue
		}
		a, b := rest[:len(rest)/2], rest[len(rest)/2:]
		if f.reachable(a) && f.reachable(b) && a != b {
			return []string{a, b}
		}
	}
	return nil
}

// bridgeTo has c call the users' phones at once (the bridge application;
// c is the a-leg), as a_basic_call and c_click_to_call show it for one.
func (f *FS) bridgeTo(c *Chan, users ...string) {
	var data []string
	for _, u := range users {
		data = append(data, "user/"+u+"@"+f.opts.Domain)
	}
	c.app, c.appData = "bridge", strings.Join(data, ",")
	if c.answer == "answered" {
		f.callState(c, "RING_WAIT")
	}
	num, name := c.number()
	for _, user := range users {
		b := &Chan{UUID: newUUID(), User: user, name: f.sofiaName(user, true), dir: "outbound", callerNum: num, callerName: name,
			calleeNum: user, calleeName: "Outbound Call", dest: user, dialed: true,
			originator: c.UUID, other: c.UUID, otherType: "originator"}
		// mod_sofia copies the caller's sip_h_* headers onto the INVITE
		// unless the caller has sip_copy_custom_headers=false.
		if c.vars["sip_copy_custom_headers"] != "false" {
			for _, k := range c.varOrder {
				if strings.HasPrefix(k, "sip_h_") {
					b.setVar(k, c.vars[k])
				}
			}
		}
		c.calling = append(c.calling, b.UUID)
		f.newChan(b)
		f.ringing(b)
	}
	if c.answer != "answered" {
		c.answer = "early"
		f.callState(c, "EARLY")
	}
}

// ringing: the phone of c (an outbound channel) rings, and answers by
// itself when the INVITE asks it to.
func (f *FS) ringing(c *Chan) {
	f.send(c, "CHANNEL_PROGRESS")
	f.callState(c, "RINGING")
	if f.autoAnswerAsked(c) && !f.ignore[c.User] {
		// The phone answers a moment later, as a real one does (its 200
		// OK follows the 180).
		f.after(2*time.Millisecond, func() {
			if !c.ended && c.answer != "answered" {
				f.answerLeg(c)
			}
		})
	}
	if c.timeout > 0 {
		f.after(c.timeout, func() {
			if !c.ended && c.answer != "answered" {
				f.hangup(c, "NO_ANSWER")
			}
		})
	}
}

// autoAnswerAsked: the INVITE to c's phone carries an auto-answer request
// the test phones honour (sip_auto_answer makes mod_sofia add Call-Info
// answer-after=0; or the bridge's own headers).
func (f *FS) autoAnswerAsked(c *Chan) bool {
	if c.vars["sip_auto_answer"] == "true" {
		return true
	}
	for k, v := range c.vars {
		lk := strings.ToLower(k)
		switch {
		case lk == "sip_h_call-info" && strings.Contains(v, "answer-after"),
			lk == "sip_h_alert-info" && strings.Contains(strings.ToLower(v), "alert-autoanswer"),
			lk == "sip_h_p-auto-answer":
			return true
		}
	}
	return false
}

// answerLeg: the phone of an outbound channel answers; the channel
// calling it is bridged to it, or the originate that made it reports and
// goes on.
func (f *FS) answerLeg(b *Chan) {
	f.answered(b)
	if o := f.chans[b.originator]; o != nil && o.calls(b.UUID) {
		// The other phones of a ring group lose the race.
		for _, u := range o.calling {
			if x := f.chans[u]; x != nil && u != b.UUID {
				x.originator = ""
				f.hangup(x, "LOSE_RACE")
			}
		}
		o.calling, b.originator = nil, ""
		f.bridge(o, b)
	}
	if b.job != nil {
		job := b.job
		b.job = nil
		job("+OK " + b.UUID + "\n")
		f.runPlan(b)
	}
}

// runPlan: an originated channel that answered runs what the originate
// named: park, or the dialplan for a number (c_click_to_call: the
// caller-id swaps, CALL_UPDATE, then the destination is called).
func (f *FS) runPlan(c *Chan) {
	switch c.plan {
	case "", "park":
		c.app = "park"
	default:
		c.callerNum, c.callerName = c.User, "Outbound Call"
		c.calleeNum, c.calleeName = c.plan, c.plan
		c.dest = c.plan
		f.send(c, "CALL_UPDATE")
		f.route(c, c.plan)
	}
}

// runApp: c runs a dialplan application (k_makecall_*: answer, then the
// application).
func (f *FS) runApp(c *Chan, number, kind string) {
	f.answered(c)
	c.calleeNum, c.calleeName = number, number
	f.send(c, "CHANNEL_EXECUTE", hdr{"Application", "answer"})
	app, data := "echo", ""
	switch kind {
	case AppMusic:
		app, data = "playback", "local_stream://moh"
	case AppConference:
		app, data = "conference", number+"-"+f.opts.Domain+"@default"
		c.room = data
	}
	c.app, c.appData = app, data
	f.send(c, "CHANNEL_EXECUTE", hdr{"Application", app}, hdr{"Application-Data", data})
}

// bridge joins a (the a-leg) and b, both answered.
func (f *FS) bridge(a, b *Chan) {
	a.partner, b.partner = b.UUID, a.UUID
	a.aleg, b.aleg = true, false
	a.room, b.room = "", ""
	a.other, a.otherType = b.UUID, "originatee"
	b.other, b.otherType = a.UUID, "originator"
	a.app, b.app = "bridge", ""
	if a.answer != "answered" {
		f.answered(a)
	} else if a.state != "ACTIVE" && !a.held {
		f.callState(a, "ACTIVE")
	}
	a.calleeNum, a.calleeName = b.number()
	f.send(a, "CHANNEL_BRIDGE")
	f.send(b, "CALL_UPDATE")
	f.send(a, "CALL_UPDATE")
}

// unbridge takes c out of its bridge (the a-leg reports it); the partner
// is returned, left without one.
func (f *FS) unbridge(c *Chan) *Chan {
	p := f.chans[c.partner]
	if p == nil {
		c.partner = ""
		return nil
	}
	a := c
	if !c.aleg {
		a = p
	}
	f.send(a, "CHANNEL_UNBRIDGE")
	c.partner, p.partner = "", ""
	c.aleg, p.aleg = false, false
	return p
}

// detach frees c for a new bridge or a transfer: it leaves its bridge
// (the partner, left alone, hangs up: hangup_after_bridge on an a-leg, a
// b-leg without its a-leg; a held partner is taken off hold first), stops
// calling a ringing channel (which is cancelled), stops being called by
// its originator (which gives up on it), and leaves its room.
func (f *FS) detach(c *Chan) {
	if p := f.unbridge(c); p != nil {
		f.unholdGone(p)
		f.hangup(p, "NORMAL_CLEARING")
	}
	calling := c.calling
	c.calling = nil
	for _, u := range calling {
		if b := f.chans[u]; b != nil {
			b.originator = ""
			f.hangup(b, "ORIGINATOR_CANCEL")
		}
	}
	if o := f.chans[c.originator]; o != nil {
		o.stopCalling(c.UUID)
	}
	c.originator, c.room = "", ""
}

// unholdGone: FreeSWITCH takes a held channel off hold when its partner
// goes (f_attended_uuid_bridge: CALLSTATE UNHELD, CHANNEL_UNHOLD).
func (f *FS) unholdGone(c *Chan) {
	if !c.held {
		return
	}
	c.held, c.heldByPhone = false, false
	f.callState(c, "UNHELD")
	f.send(c, "CHANNEL_UNHOLD")
}

// hold and unhold: FreeSWITCH's hold of c, by uuid_hold or by the phone's
// re-INVITE (d_hold: CALLSTATE HELD, CHANNEL_HOLD; off: CALLSTATE UNHELD,
// then ACTIVE and CHANNEL_UNHOLD for uuid_hold off, CHANNEL_UNHOLD then
// ACTIVE for the phone).
func (f *FS) hold(c *Chan) {
	if c.held || c.answer != "answered" {
		return
	}
	c.held = true
	f.callState(c, "HELD")
	f.send(c, "CHANNEL_HOLD")
}

func (f *FS) unhold(c *Chan, byPhone bool) {
	if !c.held {
		return
	}
	c.held = false
	f.callState(c, "UNHELD")
	if byPhone {
		f.send(c, "CHANNEL_UNHOLD")
		f.callState(c, "ACTIVE")
		return
	}
	f.callState(c, "ACTIVE")
	f.send(c, "CHANNEL_UNHOLD")
}

// hangup ends c with cause and whatever ends with it: its bridge partner
// (NORMAL_CLEARING), the channel it calls (ORIGINATOR_CANCEL), and the
// channel calling it, whose bridge failed (with c's cause; one that
// continues on cancel runs out of dialplan: NORMAL_CLEARING). An
// originate waiting for c fails with the cause. The events follow the
// captures: every HANGUP, then per channel its UNBRIDGE (a-leg), CALLSTATE
// HANGUP and HANGUP_COMPLETE, then the DESTROYs.
func (f *FS) hangup(first *Chan, cause string) {
	type dying struct {
		c     *Chan
		cause string
	}
	var group []dying
	in := map[*Chan]bool{}
	var add func(c *Chan, cause string)
	add = func(c *Chan, cause string) {
		if c == nil || c.ended || in[c] {
			return
		}
		in[c] = true
		group = append(group, dying{c, cause})
		add(f.chans[c.partner], "NORMAL_CLEARING")
		for _, u := range c.calling {
			add(f.chans[u], "ORIGINATOR_CANCEL")
		}
		if o := f.chans[c.originator]; o != nil && o.calls(c.UUID) {
			// The caller's bridge fails once no phone it rings is left.
			left := false
			for _, u := range o.calling {
				if x := f.chans[u]; x != nil && !in[x] && !x.ended {
					left = true
				}
			}
			oc := cause
			if o.continueOnCancel {
				oc = "NORMAL_CLEARING"
			}
			if !left {
				add(o, oc)
			}
		}
	}
	add(first, cause)
	for i, d := range group {
		c := d.c
		if i > 0 {
			f.unholdGone(c)
		}
		c.answer = "hangup"
		f.send(c, "CHANNEL_HANGUP", hdr{"Hangup-Cause", d.cause})
	}
	for _, d := range group {
		c := d.c
		if c.aleg && c.partner != "" {
			f.send(c, "CHANNEL_UNBRIDGE", hdr{"Hangup-Cause", d.cause})
		}
		f.callState1(c, "HANGUP", d.cause)
		f.send(c, "CHANNEL_HANGUP_COMPLETE", hdr{"Hangup-Cause", d.cause})
		if c.job != nil {
			job := c.job
			c.job = nil
			job("-ERR " + d.cause + "\n")
		}
	}
	for _, d := range group {
		c := d.c
		c.ended = true
		f.send(c, "CHANNEL_DESTROY", hdr{"Hangup-Cause", d.cause})
		delete(f.chans, c.UUID)
		for i, u := range f.order {
			if u == c.UUID {
				f.order = append(f.order[:i], f.order[i+1:]...)
				break
			}
		}
		delete(f.dtmf, c.UUID)
	}
	for _, d := range group {
		for _, x := range f.chans {
			if x.partner == d.c.UUID {
				x.partner, x.aleg = "", false
			}
			x.stopCalling(d.c.UUID)
			if x.originator == d.c.UUID {
				x.originator = ""
			}
		}
	}
	f.notifyLocked()
}

// callState1 is callState with a Hangup-Cause.
func (f *FS) callState1(c *Chan, state, cause string) {
	c.prevState, c.state = c.state, state
	f.send(c, "CHANNEL_CALLSTATE", hdr{"Hangup-Cause", cause})
}

// sofiaName is the channel name of a sofia channel of user: a channel the
// phone calls in on is named after the From (no port), one FreeSWITCH
// calls out on after the contact (with the phone's port).
func (f *FS) sofiaName(user string, out bool) string {
	if !out {
		return "sofia/internal/" + user + "@" + f.opts.Domain
	}
	port := 5100
	for _, r := range user {
		port = (port*31 + int(r)) % 60000
	}
	return "sofia/internal/" + user + "@" + f.opts.Domain + ":" + itoa(port+1024)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// calls reports whether c's bridge rings the channel u.
func (c *Chan) calls(u string) bool { return slices.Contains(c.calling, u) }

// stopCalling: c's bridge no longer rings u.
func (c *Chan) stopCalling(u string) {
	c.calling = slices.DeleteFunc(c.calling, func(x string) bool { return x == u })
	if len(c.calling) == 0 {
		c.calling = nil
	}
}
