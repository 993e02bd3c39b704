// Package fakefs is a fake FreeSWITCH with calls, on top of the fake
// event socket (fakeesl): registered phones that dial, ring, answer (by
// hand, or by themselves when the INVITE asks for auto-answer), hold by
// re-INVITE, hang up, register and unregister; a vanilla-like dialplan
// (a number of a registered user rings that user through a bridge, and a
// few numbers run applications); and the API commands the ESL adapter
// sends, with their effect on the channels (originate, uuid_bridge,
// uuid_transfer including conference rooms, uuid_hold, uuid_kill,
// uuid_setvar, uuid_dump, show channels, show registrations, strepoch,
// status, uuid_send_dtmf). Every event and reply is shaped after
// FreeSWITCH 1.10.12 captures (see events.go, registrations.go and
// testdata/README.md); the call flows follow the captures'
// (traces/freeswitch/README.md): hangup_after_bridge, a b-leg that loses
// its partner hangs up, only the a-leg of a bridge reports
// CHANNEL_BRIDGE/UNBRIDGE, `show channels` lists a channel only a while
// after it was created.
package fakefs

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
)

// Options configure the fake.
type Options struct {
	// Captures is the directory of the FreeSWITCH captures the events
	// are shaped after (adapters/esl/testdata).
	Captures string
	// Users are the phones registered from the start (directory users
	// 1001, ...); Register and Unregister change that.
	Users []string
	// Static are directory users whose phones do not register: the
	// directory dials them at a fixed address (a dial-string), so they
	// call and are called like registered ones, but `show registrations`
	// does not list them and no registration event names them.
	Static []string
	// Apps maps dialplan numbers to applications: AppEcho, AppMusic,
	// AppConference (the vanilla 9196, 9664, 3000), and prefixes to
	// AppTransfer, AppRingGroup and AppHeader.
	Apps map[string]string
	// Domain is the SIP domain (presence ids user@Domain); default
	// 127.0.0.1 as in the captures.
	Domain string
	// Context is the dialplan context; default "default".
	Context string
	// ListDelay: `show channels` lists a channel only this long after it
	// was created (FreeSWITCH's SQL thread writes the core database in
	// batches, up to about 200 ms late), while `status` counts it at once;
	// `show registrations` shows a registration's change this long after
	// it was reported.
	ListDelay time.Duration
}

// Applications the dialplan numbers may run.
const (
	AppEcho       = "echo"
	AppMusic      = "music"
	AppConference = "conference"
	// AppTransfer is a prefix: <prefix><user> answers, plays a prompt and
	// transfers the caller to <user> (an IVR or queue handing a caller
	// over; the test dialplan's 78<ext>).
	AppTransfer = "transfer"
	// AppRingGroup is a prefix: <prefix><user1><user2> rings both users at
	// once (`bridge user/<user1>,user/<user2>`, what group_call makes; the
	// test dialplan's 79<ext><ext>). The first to answer is bridged; the
	// other's channel ends with LOSE_RACE.
	AppRingGroup = "ring group"
	// AppHeader is a prefix: <prefix><user> calls <user> with the SIP
	// header HeaderName: HeaderValue set by the dialplan (the test
	// dialplan's 76<ext>).
	AppHeader = "header"
)

// The header AppHeader's dialplan sets.
const (
	HeaderName  = "X-Customer"
	HeaderValue = "4711"
)

// FS is the fake FreeSWITCH.
type FS struct {
	opts Options
	srv  *fakeesl.Server
	tpl  *templates

	mu       sync.Mutex
	chans    map[string]*Chan
	order    []string // live channels in creation order
	changed  chan struct{}
	ignore   map[string]bool // user → rings despite auto-answer headers
	closed   bool
	timers   []*time.Timer
	dtmf     map[string]string // uuid → digits sent
	listWait time.Duration

	reg     *regTemplates
	regs    map[string]*registration // by user (registrations.go)
	regPort int                      // the last phone port handed out
	static  map[string]bool          // Options.Static
}

// Chan is one channel.
type Chan struct {
	UUID string
	// User is the phone the channel talks to (a sofia channel of a
	// registered user), "" for none.
	User string

	name, dir        string
	state, prevState string // Channel-Call-State
	answer           string // Answer-State: ringing, early, answered, hangup
	callerNum        string
	callerName       string
	calleeNum        string
	calleeName       string
	dest             string
	sipCallID        string
	dialed           bool // created by user/<user>: dialed_user is set
	vars             map[string]string
	varOrder         []string
	born             time.Time

	other, otherType string   // Other-Leg-Unique-ID and Other-Type as reported
	partner          string   // bridged to
	aleg             bool     // the a-leg of its bridge (reports CHANNEL_BRIDGE/UNBRIDGE)
	calling          []string // the ringing channels this one's bridge calls (several for a ring group)
	originator       string   // the channel that calls this ringing one
	continueOnCancel bool     // uuid_bridge_continue_on_cancel: outlives a ringing partner's refusal

	app, appData string
	room         string // conference room
	heldByPhone  bool   // the phone itself holds (re-INVITE)
	held         bool   // FreeSWITCH has it held (the phone's or uuid_hold)

	// job is the originate this channel was created by, reported once it
	// answered or ended; plan is what it then runs.
	job     func(body string)
	plan    string // "park" or a destination number
	timeout time.Duration
	ended   bool
}

// New starts a fake FreeSWITCH on 127.0.0.1:0.
func New(opts Options) (*FS, error) {
	if opts.Domain == "" {
		opts.Domain = "127.0.0.1"
	}
	if opts.Context == "" {
		opts.Context = "default"
	}
	tpl, err := loadTemplates(opts.Captures)
	if err != nil {
		return nil, err
	}
	reg, err := loadRegTemplates(opts.Captures)
	if err != nil {
		return nil, err
	}
	srv, err := fakeesl.New()
	if err != nil {
		return nil, err
	}
	f := &FS{opts: opts, srv: srv, tpl: tpl, chans: map[string]*Chan{}, changed: make(chan struct{}),
		ignore: map[string]bool{}, dtmf: map[string]string{}, listWait: opts.ListDelay,
		reg: reg, regs: map[string]*registration{}, static: map[string]bool{}}
	for _, u := range opts.Users {
		r := f.newRegistration()
		r.on = true
		f.regs[u] = r
	}
	for _, u := range opts.Static {
		f.static[u] = true
	}
	srv.SetHandler(f.handle)
	return f, nil
}

// Addr is the event socket's host:port; the password is ClueCon.
func (f *FS) Addr() string { return f.srv.Addr() }

// Server is the event socket underneath, for its faults (Mute, DropAll,
// Refuse) and its command log.
func (f *FS) Server() *fakeesl.Server { return f.srv }

// Close stops the fake.
func (f *FS) Close() {
	f.mu.Lock()
	f.closed = true
	for _, t := range f.timers {
		t.Stop()
	}
	f.mu.Unlock()
	f.srv.Close()
}

// SetListDelay changes how long after its creation a channel is listed by
// `show channels`.
func (f *FS) SetListDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listWait = d
}

// SetIgnoreAutoAnswer makes the user's phone ring on calls that ask it to
// answer by itself (true), or honour them again.
func (f *FS) SetIgnoreAutoAnswer(user string, ignore bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ignore[user] = ignore
}

// DTMF returns the digits sent to a channel with uuid_send_dtmf.
func (f *FS) DTMF(uuid string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dtmf[uuid]
}

// Channels are the live channels, oldest first.
func (f *FS) Channels() []ChannelInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ChannelInfo, 0, len(f.order))
	for _, u := range f.order {
		c := f.chans[u]
		out = append(out, ChannelInfo{UUID: u, User: c.User, Name: c.name, State: c.state, Answer: c.answer,
			Partner: c.partner, App: c.app, Room: c.room, Vars: cloneMap(c.vars)})
	}
	return out
}

// ChannelInfo describes a live channel.
type ChannelInfo struct {
	UUID, User, Name, State, Answer, Partner, App, Room string
	Vars                                                map[string]string
}

// Changed is closed at the next change of the channels.
func (f *FS) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// WaitIdle waits until the fake has no channel left.
func (f *FS) WaitIdle(ctx context.Context) error {
	for {
		ch := f.Changed()
		left := f.Channels()
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakefs: channels left %+v: %w", left, ctx.Err())
		}
	}
}

// HangupAll ends every channel, as its phone or FreeSWITCH would.
func (f *FS) HangupAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range append([]string(nil), f.order...) {
		if c := f.chans[u]; c != nil && !c.ended {
			f.hangup(c, "NORMAL_CLEARING")
		}
	}
	clear(f.ignore)
}

// notifyLocked wakes the waiters of Changed; f.mu is held.
func (f *FS) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// emit sends events in order, each with the next Event-Sequence; f.mu is
// held, so that the model's events go out in the order it made them.
func (f *FS) emit(evs ...fakeesl.Event) {
	for _, e := range evs {
		f.srv.Emit(e.With("Event-Sequence", fmt.Sprint(f.srv.NextSeq())))
	}
}

// send emits an event of c.
func (f *FS) send(c *Chan, name string, extra ...hdr) { f.emit(f.event(c, name, extra...)) }

// after runs fn under f.mu once d has passed, unless the fake is closed.
func (f *FS) after(d time.Duration, fn func()) {
	t := time.AfterFunc(d, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.closed {
			fn()
		}
	})
	f.timers = append(f.timers, t)
}

// newChan makes a channel and reports its CHANNEL_CREATE; f.mu is held.
func (f *FS) newChan(c *Chan) *Chan {
	if c.UUID == "" {
		c.UUID = newUUID()
	}
	if c.vars == nil {
		c.vars = map[string]string{}
	}
	c.sipCallID = newUUID()
	c.state, c.answer, c.born = "DOWN", "ringing", time.Now()
	f.chans[c.UUID] = c
	f.order = append(f.order, c.UUID)
	f.notifyLocked()
	f.send(c, "CHANNEL_CREATE")
	return c
}

func (c *Chan) setVar(k, v string) {
	if c.vars == nil {
		c.vars = map[string]string{}
	}
	if _, ok := c.vars[k]; !ok {
		c.varOrder = append(c.varOrder, k)
	}
	c.vars[k] = v
}

// callState changes the channel's call state and reports it.
func (f *FS) callState(c *Chan, state string) {
	c.prevState, c.state = c.state, state
	f.notifyLocked()
	f.send(c, "CHANNEL_CALLSTATE")
}

// answered: FreeSWITCH's side of c is answered (CHANNEL_ANSWER, then the
// call state ACTIVE).
func (f *FS) answered(c *Chan) {
	if c.answer == "answered" {
		return
	}
	c.answer = "answered"
	f.send(c, "CHANNEL_ANSWER")
	f.callState(c, "ACTIVE")
}

func (f *FS) showsLocked(user string) []Showing {
	var out []Showing
	for _, u := range f.order {
		if c := f.chans[u]; c.User == user && !c.ended {
			out = append(out, c.showing())
		}
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// directoryUser says whether n is a user of the directory: one whose phone
// is registered or was, or a static one; f.mu is held.
func (f *FS) directoryUser(n string) bool {
	return f.static[n] || f.regs[n] != nil
}
