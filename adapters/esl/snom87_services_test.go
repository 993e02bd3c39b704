package esl

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// hangupOf is the capture's hang-up of channel prefix given to uuid, with
// the cause FreeSWITCH gave it.
func (h *harness) hangupOf(evs []fakeesl.Event, prefix, uuid, cause string) []fakeesl.Event {
	h.t.Helper()
	var out []fakeesl.Event
	for _, name := range []string{"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"} {
		out = append(out, h.retag(find(h.t, evs, name, prefix), uuid).With("Hangup-Cause", cause))
	}
	return out
}

// DeflectCall: 1001 (cancA) calls 1002 (cancB rings). The caller is
// transferred to the destination; FreeSWITCH then cancels the ringing
// channel with ORIGINATOR_CANCEL (seen on a real 1.10.12), which is a
// deflected call, not a missed one.
func TestDeflect(t *testing.T) {
	h, sc := startScripted(t, nil)
	evs := h.ringingCall()
	cancel := h.hangupOf(evs, cancB[:8], cancB, "ORIGINATOR_CANCEL")
	sc.on("uuid_transfer "+cancA+" 1003 XML default", body("+OK\n", cancel...))

	if err := h.a.Deflect(ctxT(t), ref("1001", cancA), "1003"); !errors.Is(err, pbx.ErrInvalidState) {
		t.Errorf("deflect the calling side: %v, want ErrInvalidState", err)
	}
	if err := h.a.Deflect(ctxT(t), ref("1002", cancB), "10 03"); !errors.Is(err, pbx.ErrInvalidDestination) {
		t.Errorf("bad destination: %v, want ErrInvalidDestination", err)
	}
	if err := h.a.Deflect(ctxT(t), ref("1002", cancB), "sip:1003@127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	got := describe(h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventCleared }))
	if w := []string{"cleared deflected"}; !equal(got[ref("1002", cancB)], w) {
		t.Errorf("events %q, want %q", got[ref("1002", cancB)], w)
	}
	for _, c := range h.srv.Commands() {
		if strings.HasPrefix(c, "api uuid_kill") {
			t.Errorf("%q: the ringing channel had ended already", c)
		}
	}
	if err := h.a.Deflect(ctxT(t), ref("1002", cancB), "1003"); !errors.Is(err, pbx.ErrNoSuchCall) {
		t.Errorf("deflect a call that is gone: %v, want ErrNoSuchCall", err)
	}
}

// Channels of j_phone_refer_attended: 1001 has a held call a1 (with b1)
// and an active one a2 (with b2).
const (
	jA1 = "13d892aa-df33-4f17-808f-8689c2b9ef3b"
	jB1 = "28c7ab0a-2492-442a-b587-ea89d32ccaf6"
	jA2 = "bb1c1bb4-092f-4573-8595-5f116300ba6f"
	jB2 = "9fc43248-dd87-4a5a-9893-95544e4b2660"
)

var confTarget = regexp.MustCompile(`^api uuid_transfer (\S+) -both conference:(csta-[0-9a-f-]{36})@default inline$`)

// conferenced joins 1001's two calls of j_phone_refer_attended. On a real
// FreeSWITCH 1.10.12, `uuid_transfer <leg> -both conference:…` answers +OK
// and the a-leg of each bridge reports CHANNEL_UNBRIDGE, often without
// naming its partner; a1 is taken off hold first (uuid_hold off).
func conferenced(t *testing.T) (*harness, *script, []fakeesl.Event) {
	h, sc := startScripted(t, func(o *Options) { o.PhoneEvents = PhoneEventsNever; o.CommandTimeout = 3 * time.Second })
	evs := loadEvents(t, "j_phone_refer_attended")
	h.srv.Emit(upTo(t, evs, "CALL_UPDATE", jA2[:8])...)
	h.barrier()
	var unhold fakeesl.Event
	for _, e := range evs {
		if strings.HasPrefix(e.Get("Unique-ID"), jA1[:8]) && e.Get("Channel-Call-State") == "UNHELD" {
			unhold = e.With("Event-Name", "CHANNEL_UNHOLD")
			break
		}
	}
	if unhold.Headers == nil {
		t.Fatal("j_phone_refer_attended has no UNHELD state of the held call")
	}
	sc.on("uuid_exists", body("true\n"))
	sc.on("uuid_hold off "+jA1, body("+OK Success\n", h.retag(unhold, jA1)))
	unbridge := find(t, loadEvents(t, "a_basic_call"), "CHANNEL_UNBRIDGE", basicA[:8])
	for _, x := range [][2]string{{jA1, jB1}, {jA2, jB2}} {
		// The far party is the a-leg of either call in the capture or
		// not: the unbridge names only the channel it is about.
		sc.on("uuid_transfer "+x[0]+" -both conference:", body("+OK\n",
			h.retag(unbridge, x[1]).With("Other-Leg-Unique-ID", "").With("variable_signal_bond", "")))
	}
	if err := h.a.Conference(ctxT(t), ref("1001", jA1), ref("1001", jA2)); err != nil {
		t.Fatal(err)
	}
	var rooms []string
	for _, c := range h.srv.Commands() {
		if m := confTarget.FindStringSubmatch(c); m != nil {
			rooms = append(rooms, m[2])
		}
	}
	if len(rooms) != 2 || rooms[0] != rooms[1] {
		t.Fatalf("calls moved to rooms %q, want both to one room", rooms)
	}
	got := describe(h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventRetrieved }))
	if w := []string{"retrieved byPhone=false"}; !equal(got[ref("1001", jA1)], w) {
		t.Errorf("a1: %q, want %q", got[ref("1001", jA1)], w)
	}
	if err := h.a.Conference(ctxT(t), ref("1001", jA1), ref("1001", jA2)); !errors.Is(err, pbx.ErrInvalidState) {
		t.Errorf("conference twice: %v, want ErrInvalidState", err)
	}
	return h, sc, evs
}

// A far party of the conference hangs up: the extension's channel of that
// call is released, and the other call leaves the room as a two-party
// call, so that hold and hang-up work on it as usual.
func TestConferenceFarPartyLeaves(t *testing.T) {
	h, sc, evs := conferenced(t)
	bridged := h.retag(find(t, loadEvents(t, "a_basic_call"), "CHANNEL_BRIDGE", basicA[:8]), jB1).
		With("Other-Leg-Unique-ID", jA1)
	sc.on("uuid_kill "+jA2, body("+OK\n", h.hangupOf(evs, jA2[:8], jA2, "NORMAL_CLEARING")...))
	sc.on("uuid_bridge "+jB1+" "+jA1, body("+OK\n", bridged))
	h.srv.Emit(h.hangupOf(evs, jB2[:8], jB2, "NORMAL_CLEARING")...)
	if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_bridge "+jB1+" "+jA1, 0); err != nil {
		t.Fatal(err)
	}
	// The far party may be an extension too (1003 here): its own end is
	// reported as well.
	got := describe(h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventCleared && e.Call.ID == jA2 }))
	if w := []string{"cleared normal"}; !equal(got[ref("1001", jA2)], w) {
		t.Errorf("a2: %q, want %q", got[ref("1001", jA2)], w)
	}
	h.barrier()
	// a1 is an ordinary call again.
	if l, err := h.a.state.lookup(ref("1001", jA1)); err != nil || !l.connected || l.held || l.other != jB1 {
		t.Errorf("a1 after the far party of a2 left: %+v, %v; want connected to %s", l, err, jB1)
	}
	if c := h.a.conferenced(jA1); c != nil {
		t.Errorf("a1 still in conference %s", c.room)
	}
}

// ClearConnection of one conferenced connection drops that far party; the
// extension talks on with the other.
func TestConferenceClearConnection(t *testing.T) {
	h, sc, evs := conferenced(t)
	bridged := h.retag(find(t, loadEvents(t, "a_basic_call"), "CHANNEL_BRIDGE", basicA[:8]), jB2).
		With("Other-Leg-Unique-ID", jA2)
	sc.on("uuid_kill "+jA1, body("+OK\n", h.hangupOf(evs, jA1[:8], jA1, "NORMAL_CLEARING")...))
	sc.on("uuid_kill "+jB1, body("+OK\n", h.hangupOf(evs, jB1[:8], jB1, "NORMAL_CLEARING")...))
	sc.on("uuid_bridge "+jB2+" "+jA2, body("+OK\n", bridged))
	if err := h.a.ClearConnection(ctxT(t), ref("1001", jA1)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"api uuid_kill " + jA1, "api uuid_kill " + jB1, "api uuid_bridge " + jB2 + " " + jA2} {
		if !containsCmd(h.srv.Commands(), c) {
			t.Errorf("no %q in %q", c, h.srv.Commands())
		}
	}
	got := describe(h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventCleared && e.Call.ID == jA1 }))
	if w := []string{"cleared normal"}; !equal(got[ref("1001", jA1)], w) {
		t.Errorf("a1: %q, want %q", got[ref("1001", jA1)], w)
	}
	if l, err := h.a.state.lookup(ref("1001", jA2)); err != nil || !l.connected || l.other != jB2 {
		t.Errorf("a2 after ClearConnection(a1): %+v, %v; want connected to %s", l, err, jB2)
	}
}

// Transfer of the two conferenced connections is the extension leaving:
// the far parties are bridged out of the room, then its channels released.
func TestConferenceExtensionLeaves(t *testing.T) {
	h, sc, evs := conferenced(t)
	bridged := h.retag(find(t, loadEvents(t, "a_basic_call"), "CHANNEL_BRIDGE", basicA[:8]), jB1).
		With("Other-Leg-Unique-ID", jB2)
	sc.on("uuid_bridge "+jB1+" "+jB2, body("+OK\n", bridged))
	sc.on("uuid_kill "+jA1, body("+OK\n", h.hangupOf(evs, jA1[:8], jA1, "NORMAL_CLEARING")...))
	sc.on("uuid_kill "+jA2, body("+OK\n", h.hangupOf(evs, jA2[:8], jA2, "NORMAL_CLEARING")...))
	if err := h.a.Transfer(ctxT(t), ref("1001", jA1), ref("1001", jA2)); err != nil {
		t.Fatal(err)
	}
	got := describe(h.collect(untilCleared(2)))
	for _, c := range []string{jA1, jA2} {
		if w := []string{"transferred attended byPhone=false", "cleared transferred"}; !equal(got[ref("1001", c)], w) {
			t.Errorf("%s: %q, want %q", c, got[ref("1001", c)], w)
		}
	}
	// The far parties' later hang-ups are theirs: nothing is killed for them.
	n := len(h.srv.Commands())
	h.srv.Emit(h.hangupOf(evs, jB2[:8], jB2, "NORMAL_CLEARING")...)
	h.barrier()
	if cmds := h.srv.Commands()[n:]; containsPrefix(cmds, "api uuid_kill") || containsPrefix(cmds, "api uuid_bridge") {
		t.Errorf("commands after the extension left: %q", cmds)
	}
}

// TransferCall while the consultation still rings (issue 18): 1001 talks
// with 1002 (a_basic_call) and has called 1002 again by MakeCall
// (c_click_to_call: its device channel dev runs the dialplan's bridge to
// far, which rings). The held party's channel is bridged to the ringing
// one (uuid_bridge), and 1001's two channels are released at once.
func TestTransferWhileRinging(t *testing.T) {
	const (
		dev = "1cff0516-fb9d-46dc-a9dd-f707af882849"
		far = "8ebb9886-bd6f-4ba7-8348-3dd37bd7a79a"
	)
	h, sc := startScripted(t, nil)
	basic := h.connectedCall()
	click := loadEvents(t, "c_click_to_call")
	var ringing []fakeesl.Event
	for _, e := range upTo(t, click, "CHANNEL_CALLSTATE", far[:8]) {
		if e.Name() == "BACKGROUND_JOB" {
			continue
		}
		if e.Get("Unique-ID") == dev {
			e = e.With("variable_csta_makecall", "true") // set by MakeCall's originate
		}
		ringing = append(ringing, e.With("Event-Sequence", itoa(h.srv.NextSeq())))
	}
	h.srv.Emit(ringing...)
	h.barrier()
	if l, err := h.a.state.lookup(ref("1001", dev)); err != nil || l.dialing != far || l.connected {
		t.Fatalf("consultation: %+v, %v; want calling %s, not connected", l, err, far)
	}
	sc.on("uuid_setvar", body("+OK\n"))
	sc.on("uuid_bridge "+basicB+" "+far, body("+OK "+far+"\n", find(t, basic, "CHANNEL_UNBRIDGE", basicA[:8])))
	sc.on("uuid_kill "+dev, body("+OK\n", h.hangupOf(click, dev[:8], dev, "NORMAL_CLEARING")...))
	sc.on("uuid_kill "+basicA, body("-ERR No such channel!\n"))
	if err := h.a.Transfer(ctxT(t), ref("1001", basicA), ref("1001", dev)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"api uuid_setvar " + basicB + " transfer_ringback " + ringbackTone,
		"api uuid_setvar " + basicB + " uuid_bridge_continue_on_cancel true",
		"api uuid_setvar " + dev + " continue_on_fail false",
		"api uuid_bridge " + basicB + " " + far,
		"api uuid_kill " + dev,
	}
	cmds := h.srv.Commands()
	for _, w := range want {
		if !containsCmd(cmds, w) {
			t.Errorf("no %q in %q", w, cmds)
		}
	}
	h.srv.Emit(h.hangupOf(basic, basicA[:8], basicA, "NORMAL_CLEARING")...)
	got := describe(h.collect(untilCleared(2)))
	for _, c := range []string{basicA, dev} {
		if w := []string{"transferred attended byPhone=false", "cleared transferred"}; !equal(got[ref("1001", c)], w) {
			t.Errorf("%s: %q, want %q", c, got[ref("1001", c)], w)
		}
	}
	// The held party gives up while the far party still rings: the
	// ringing channel is ended, FreeSWITCH would leave it ringing.
	sc.on("uuid_kill "+far, body("+OK\n"))
	h.srv.Emit(h.hangupOf(basic, basicB[:8], basicB, "NORMAL_CLEARING")...)
	if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_kill "+far, 0); err != nil {
		t.Fatal(err)
	}
}

func containsCmd(cmds []string, c string) bool {
	for _, x := range cmds {
		if x == c {
			return true
		}
	}
	return false
}

func containsPrefix(cmds []string, p string) bool {
	for _, x := range cmds {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}
