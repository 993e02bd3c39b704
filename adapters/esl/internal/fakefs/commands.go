package fakefs

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
)

// Replies as FreeSWITCH 1.10.12 words them (traces/freeswitch/README.md;
// uuid_setvar and uuid_send_dtmf are mod_commands' "+OK" and
// "+OK Success").
const (
	noChannel   = "-ERR No such channel!\n"
	invalidUUID = "-ERR Invalid uuid\n"
)

// handle answers one api or bgapi command. What a command changes on the
// channels happens after its reply went out (Reply.Then), as FreeSWITCH
// answers first and reports a moment later; only its checks are made
// before the reply.
func (f *FS) handle(cmd string, bg bool) fakeesl.Reply {
	name, args, _ := strings.Cut(cmd, " ")
	fields := strings.Fields(args)
	arg := func(i int) string {
		if i < len(fields) {
			return fields[i]
		}
		return ""
	}
	switch {
	case cmd == "status":
		return fakeesl.Reply{Body: f.status()}
	case cmd == "show channels as json":
		return fakeesl.Reply{Body: f.showChannels()}
	case cmd == "show registrations as json":
		return fakeesl.Reply{Body: f.showRegistrations()}
	case name == "originate" && bg:
		return f.originate(args)
	case name == "uuid_exists":
		return fakeesl.Reply{Body: strconv.FormatBool(f.live(arg(0)) != nil)}
	case name == "uuid_dump":
		f.mu.Lock()
		defer f.mu.Unlock()
		if c := f.chans[arg(0)]; c != nil {
			return fakeesl.Reply{Body: f.dump(c)}
		}
		return fakeesl.Reply{Body: noChannel}
	case name == "uuid_setvar" && len(fields) >= 2:
		f.mu.Lock()
		defer f.mu.Unlock()
		c := f.chans[fields[0]]
		if c == nil {
			return fakeesl.Reply{Body: noChannel}
		}
		v := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(args, fields[0]), " "+fields[1]))
		c.setVar(fields[1], v)
		if fields[1] == "uuid_bridge_continue_on_cancel" {
			c.continueOnCancel = v == "true"
		}
		return fakeesl.Reply{Body: "+OK\n"}
	case name == "uuid_send_dtmf" && len(fields) == 2:
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.chans[fields[0]] == nil {
			return fakeesl.Reply{Body: noChannel}
		}
		f.dtmf[fields[0]] += fields[1]
		return fakeesl.Reply{Body: "+OK Success\n"}
	case name == "uuid_hold":
		// "+OK Success" whether or not the channel exists.
		mode, u := "", arg(0)
		if len(fields) == 2 {
			mode, u = fields[0], fields[1]
		}
		return fakeesl.Reply{Body: "+OK Success\n", Then: f.locked(func() {
			c := f.chans[u]
			if c == nil {
				return
			}
			switch {
			case mode == "off", mode == "toggle" && c.held:
				f.unhold(c, false)
			default:
				f.hold(c)
			}
		})}
	case name == "uuid_phone_event":
		// The phone (like pjsua in the captures) does not act on it.
		if f.live(arg(0)) == nil {
			return fakeesl.Reply{Body: "-ERR Operation failed\n"}
		}
		return fakeesl.Reply{Body: "+OK Success\n"}
	case name == "uuid_kill":
		u, cause := arg(0), arg(1)
		if cause == "" {
			cause = "NORMAL_CLEARING"
		}
		if f.live(u) == nil {
			return fakeesl.Reply{Body: noChannel}
		}
		return fakeesl.Reply{Body: "+OK\n", Then: f.locked(func() {
			if c := f.chans[u]; c != nil {
				f.hangup(c, cause)
			}
		})}
	case name == "uuid_transfer":
		return f.transfer(fields)
	case name == "uuid_bridge" && len(fields) == 2:
		return f.uuidBridge(fields[0], fields[1])
	}
	return fakeesl.DefaultReply(cmd)
}

// locked wraps a change for Reply.Then.
func (f *FS) locked(fn func()) func(string) {
	return func(string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.closed {
			fn()
		}
	}
}

func (f *FS) live(u string) *Chan {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.chans[u]
}

// status is FreeSWITCH 1.10.12's `status`, counting the live channels as
// sessions (from memory, at once).
func (f *FS) status() string {
	f.mu.Lock()
	n := len(f.chans)
	f.mu.Unlock()
	return "UP 0 years, 0 days, 1 hour, 42 minutes, 19 seconds, 42 milliseconds, 336 microseconds\n" +
		"FreeSWITCH (Version 1.10.12-release  64bit) is ready\n" +
		"18070 session(s) since startup\n" +
		fmt.Sprintf("%d session(s) - peak 32, last 5min 4 \n", n) +
		"0 session(s) per Sec out of max 30, peak 34, last 5min 8 \n" +
		"1000 session(s) max\nmin idle cpu 0.00/97.70\nCurrent Stack Size/Max 240K/8192K\n"
}

// showChannels is `show channels as json`: the channels the core database
// has, those created at least the list delay ago.
func (f *FS) showChannels() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rows []map[string]json.RawMessage
	for _, u := range f.order {
		if c := f.chans[u]; time.Since(c.born) >= f.listWait {
			rows = append(rows, f.row(c))
		}
	}
	if len(rows) == 0 {
		return "{\"row_count\": 0}\n"
	}
	b, err := json.Marshal(map[string]any{"row_count": len(rows), "rows": rows})
	if err != nil {
		return "-ERR " + err.Error() + "\n"
	}
	return string(b) + "\n"
}

// originate: `originate {global}[leg]user/<user> <dest> XML <ctx>` or
// `… user/<user> &park()`: the user's phone is called (c_click_to_call);
// the job reports +OK <uuid> once it answered, -ERR <cause> if it did not.
func (f *FS) originate(args string) fakeesl.Reply {
	vars := map[string]string{}
	var order []string
	rest := strings.TrimSpace(args)
	for len(rest) > 0 && (rest[0] == '{' || rest[0] == '[') {
		end := strings.IndexByte(rest, map[byte]byte{'{': '}', '[': ']'}[rest[0]])
		if end < 0 {
			return fakeesl.Reply{Body: "-ERR INVALID_GATEWAY\n"}
		}
		for _, kv := range strings.Split(rest[1:end], ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			if _, seen := vars[k]; !seen {
				order = append(order, k)
			}
			vars[k] = v
		}
		rest = rest[end+1:]
	}
	endpoint, plan, _ := strings.Cut(rest, " ")
	user, ok := strings.CutPrefix(endpoint, "user/")
	if !ok {
		return fakeesl.Reply{Body: "-ERR INVALID_GATEWAY\n"}
	}
	user, _, _ = strings.Cut(user, "@")
	plan = strings.TrimSpace(plan)
	if strings.HasPrefix(plan, "&park") {
		plan = "park"
	} else {
		plan, _, _ = strings.Cut(plan, " ")
	}
	cmd := "originate " + args
	return fakeesl.Reply{Body: "+OK\n", Then: func(job string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		// JobEvent numbers the event itself (f.emit would number it twice
		// and leave a gap in the sequence).
		report := func(body string) { f.srv.Emit(f.srv.JobEvent(job, cmd, body)) }
		if f.closed {
			return
		}
		if !f.reachable(user) {
			report("-ERR USER_NOT_REGISTERED\n")
			return
		}
		c := &Chan{UUID: vars["origination_uuid"], User: user, name: f.sofiaName(user, true), dir: "outbound",
			callerNum: vars["origination_caller_id_number"], callerName: vars["origination_caller_id_name"],
			calleeNum: user, calleeName: "Outbound Call", dest: user, dialed: true, job: report, plan: plan,
			timeout: 60 * time.Second}
		if c.UUID != "" && f.chans[c.UUID] != nil {
			report("-ERR DESTINATION_OUT_OF_ORDER\n")
			return
		}
		for _, k := range order {
			if !strings.HasPrefix(k, "origination_") {
				c.setVar(k, vars[k])
			}
		}
		if s, err := strconv.Atoi(vars["originate_timeout"]); err == nil && s > 0 {
			c.timeout = time.Duration(s) * time.Second
		}
		f.newChan(c)
		f.ringing(c)
	}}
}

// transfer: `uuid_transfer <uuid> [-bleg|-both] <dest> [XML <ctx>|inline]`.
// The channel transferred leaves its bridge and runs the dialplan for dest
// (e_blind_transfer_bleg: with -bleg the partner goes, and the named
// channel, left alone, hangs up); with -both both go, into the
// conference room of an inline `conference:<room>@<profile>`.
func (f *FS) transfer(fields []string) fakeesl.Reply {
	if len(fields) < 2 {
		return fakeesl.Reply{Body: "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"}
	}
	u, flag, dest := fields[0], "", fields[1]
	if strings.HasPrefix(dest, "-") && len(fields) >= 3 {
		flag, dest = dest, fields[2]
	}
	f.mu.Lock()
	c := f.chans[u]
	ok := c != nil && (flag == "" || c.partner != "")
	f.mu.Unlock()
	if !ok {
		return fakeesl.Reply{Body: noChannel}
	}
	return fakeesl.Reply{Body: "+OK\n", Then: f.locked(func() {
		c := f.chans[u]
		if c == nil {
			return
		}
		switch flag {
		case "-both":
			p := f.unbridge(c)
			room := strings.TrimPrefix(dest, "conference:")
			for _, x := range []*Chan{c, p} {
				if x != nil {
					f.join(x, room)
				}
			}
		case "-bleg":
			t := f.unbridge(c)
			if t == nil {
				return
			}
			f.hangup(c, "NORMAL_CLEARING")
			f.route(t, dest)
		default:
			f.detach(c)
			f.route(c, dest)
		}
	})}
}

// join: the channel runs the conference application in room.
func (f *FS) join(c *Chan, room string) {
	f.unholdGone(c)
	c.room, c.app, c.appData = room, "conference", room
	f.send(c, "CHANNEL_EXECUTE", hdr{"Application", "conference"}, hdr{"Application-Data", room})
	f.notifyLocked()
}

// uuidBridge: `uuid_bridge <a> <b>` (f_attended_uuid_bridge): both leave
// what they were in (their old partners hang up), and a, as the a-leg, is
// bridged to b; if b still rings, a waits for its answer (b's caller lets
// go of it).
func (f *FS) uuidBridge(a, b string) fakeesl.Reply {
	if f.live(a) == nil || f.live(b) == nil || a == b {
		return fakeesl.Reply{Body: invalidUUID}
	}
	return fakeesl.Reply{Body: "+OK " + b + "\n", Then: f.locked(func() {
		x, y := f.chans[a], f.chans[b]
		if x == nil || y == nil {
			return
		}
		if len(x.calling) > 1 {
			// FreeSWITCH 1.10.12 (the test bed): a caller whose ring-all
			// bridge still rings is dropped when uuid_bridge takes it
			// away: every phone is cancelled, the caller gets 502
			// (DESTINATION_OUT_OF_ORDER), and so does the channel it was
			// to be bridged to.
			f.detach(x)
			f.hangup(x, "DESTINATION_OUT_OF_ORDER")
			f.hangup(y, "ORIGINATOR_CANCEL")
			return
		}
		f.detach(x)
		if y.answer != "answered" {
			if o := f.chans[y.originator]; o != nil {
				o.stopCalling(y.UUID)
			}
			if p := f.unbridge(y); p != nil {
				f.hangup(p, "NORMAL_CLEARING")
			}
			x.calling, y.originator = []string{y.UUID}, x.UUID
			y.other, y.otherType = x.UUID, "originator"
			y.room = ""
			return
		}
		f.detach(y)
		if x.ended || y.ended {
			return
		}
		f.bridge(x, y)
	})}
}
