package fakefs

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
)

// Registrations, as testdata/l_registrations captured them on FreeSWITCH
// 1.10.12: a phone's REGISTER is reported at once (sofia::register, and
// sofia::unregister for one with Expires: 0), and `show registrations as
// json` lists it from the core database, which the SQL thread writes
// about 200 ms later (the fake uses Options.ListDelay, as for channels).

// regCapture is the capture the registration events and rows are shaped
// after.
const regCapture = "l_registrations.filtered.rx.raw"

// regTemplates are the captured registration events (1002 registering and
// unregistering) and a captured row of `show registrations as json`.
type regTemplates struct {
	register, unregister fakeesl.Event
	row                  regRow
	user, callID, port   string // what the captured event names 1002's phone by
}

// regRow is a row of `show registrations as json`, its columns in
// FreeSWITCH's order.
type regRow struct {
	RegUser      string `json:"reg_user"`
	Realm        string `json:"realm"`
	Token        string `json:"token"`
	URL          string `json:"url"`
	Expires      string `json:"expires"`
	NetworkIP    string `json:"network_ip"`
	NetworkPort  string `json:"network_port"`
	NetworkProto string `json:"network_proto"`
	Hostname     string `json:"hostname"`
	Metadata     string `json:"metadata"`
}

func loadRegTemplates(dir string) (*regTemplates, error) {
	c, err := fakeesl.LoadCapture(filepath.Join(dir, regCapture))
	if err != nil {
		return nil, fmt.Errorf("fakefs: %w", err)
	}
	t := &regTemplates{}
	for _, e := range c.Events() {
		switch e.Get("Event-Subclass") {
		case "sofia::register":
			if t.user == "" {
				t.register = e
				t.user, t.callID, t.port = e.Get("from-user"), e.Get("call-id"), e.Get("network-port")
			}
		case "sofia::unregister":
			if t.unregister.Headers == nil && e.Get("from-user") == t.user {
				t.unregister = e
			}
		}
	}
	for _, r := range c.APIResponses() {
		var list struct {
			Rows []regRow `json:"rows"`
		}
		if json.Unmarshal([]byte(r), &list) == nil && len(list.Rows) > 0 {
			t.row = list.Rows[0]
			break
		}
	}
	if t.user == "" || t.unregister.Headers == nil || t.row.RegUser == "" {
		return nil, fmt.Errorf("fakefs: %s lacks a sofia::register, a sofia::unregister or a registration row", regCapture)
	}
	return t, nil
}

// registration is one directory user's phone as the registrar knows it.
type registration struct {
	on      bool
	changed time.Time // zero: registered since before the fake started
	callID  string    // the REGISTER's Call-ID (the row's token)
	port    int       // the phone's SIP port
}

// listed says whether the core database has the registration now: a
// change is written a list delay after it happened.
func (r *registration) listed(delay time.Duration) bool {
	if time.Since(r.changed) >= delay {
		return r.on
	}
	return !r.on
}

func (f *FS) newRegistration() *registration {
	f.regPort++
	return &registration{callID: newUUID(), port: 40000 + f.regPort}
}

// reachable says whether FreeSWITCH can call the user's phone: it is
// registered, or static (Options.Static); f.mu is held.
func (f *FS) reachable(user string) bool {
	if f.static[user] {
		return true
	}
	r := f.regs[user]
	return r != nil && r.on
}

// Register: the user's phone registers (or registers again after
// Unregister). FreeSWITCH reports sofia::register.
func (f *FS) Register(user string) {
	f.setRegistered(user, true)
}

// Unregister: the user's phone unregisters (a REGISTER with Expires: 0).
// FreeSWITCH reports sofia::unregister; its calls go on.
func (f *FS) Unregister(user string) {
	f.setRegistered(user, false)
}

func (f *FS) setRegistered(user string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.regs[user]
	if r == nil {
		r = f.newRegistration()
		f.regs[user] = r
	}
	if on {
		r.callID = newUUID()
	}
	r.on, r.changed = on, time.Now()
	tpl := f.reg.unregister
	if on {
		tpl = f.reg.register
	}
	f.emit(f.regEvent(tpl, user, r))
	f.notifyLocked()
}

// Registered lists the users whose phones are registered now.
func (f *FS) Registered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for u, r := range f.regs {
		if r.on {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// regEvent is a captured registration event naming user's phone instead
// of the captured one. The names are digits and the Call-ID a uuid, the
// same URL-encoded or not, so they are replaced in the values as sent.
func (f *FS) regEvent(tpl fakeesl.Event, user string, r *registration) fakeesl.Event {
	e := fakeesl.Event{Body: tpl.Body, Headers: make([]fakeesl.Header, 0, len(tpl.Headers))}
	port := strconv.Itoa(r.port)
	for _, h := range tpl.Headers {
		v := h.Value
		if !strings.HasPrefix(h.Name, "Event-") && h.Name != "Core-UUID" {
			v = strings.ReplaceAll(v, f.reg.callID, r.callID)
			v = strings.ReplaceAll(v, f.reg.port, port)
			v = strings.ReplaceAll(v, f.reg.user, user)
		}
		e.Headers = append(e.Headers, fakeesl.Header{Name: h.Name, Value: v})
	}
	return e
}

// showRegistrations is `show registrations as json`: the registrations the
// core database has. The phones refresh theirs, so a row expires the
// registration's 120 s plus the profile's 60 s late margin from now.
func (f *FS) showRegistrations() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	users := make([]string, 0, len(f.regs))
	for u, r := range f.regs {
		if r.listed(f.listWait) {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		return "{\"row_count\": 0}\n"
	}
	slices.Sort(users)
	expires := strconv.FormatInt(time.Now().Unix()+180, 10)
	rows := make([]regRow, 0, len(users))
	for _, u := range users {
		r := f.regs[u]
		row := f.reg.row
		row.RegUser, row.Realm, row.Token, row.Expires = u, f.opts.Domain, r.callID, expires
		row.NetworkPort = strconv.Itoa(r.port)
		row.URL = fmt.Sprintf("sofia/internal/sip:%s@%s:%d;transport=udp", u, row.NetworkIP, r.port)
		rows = append(rows, row)
	}
	b, err := json.Marshal(struct {
		RowCount int      `json:"row_count"`
		Rows     []regRow `json:"rows"`
	}{len(rows), rows})
	if err != nil {
		return "-ERR " + err.Error() + "\n"
	}
	// Unlike the empty list, FreeSWITCH ends a list with rows without a
	// line break.
	return string(b)
}
