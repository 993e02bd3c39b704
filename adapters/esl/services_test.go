package esl

import (
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Channels of the captures used below.
const (
	basicA = "700db6d0-01ad-49cf-8440-0287c48decad" // 1001 calls (a_basic_call)
	basicB = "6a4221cb-ba73-4987-8985-90c9b8abfe28" // 1002 answers
	cancA  = "7af8ca3d-c35b-4e9f-ad2b-95918ad7ec73" // 1001 calls (b_cancel)
	cancB  = "cb1d83e5-d68a-47a2-8d4d-498fac014164" // 1002 rings
)

// script answers commands from a table of prefixes; unknown commands get
// the idle FreeSWITCH answers.
type script struct {
	mu    sync.Mutex
	rules []rule
}

type rule struct {
	prefix string
	reply  func(cmd string) fakeesl.Reply
}

func (s *script) on(prefix string, reply func(cmd string) fakeesl.Reply) {
	s.mu.Lock()
	s.rules = append(s.rules, rule{prefix, reply})
	s.mu.Unlock()
}

func (s *script) handle(cmd string, _ bool) fakeesl.Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.rules) - 1; i >= 0; i-- {
		if strings.HasPrefix(cmd, s.rules[i].prefix) {
			return s.rules[i].reply(cmd)
		}
	}
	return fakeesl.DefaultReply(cmd)
}

func body(b string, after ...fakeesl.Event) func(string) fakeesl.Reply {
	return func(string) fakeesl.Reply { return fakeesl.Reply{Body: b, After: after} }
}

// startScripted starts a harness whose fake answers from a script.
func startScripted(t *testing.T, mod func(*Options)) (*harness, *script) {
	sc := &script{}
	h := start(t, func(o *Options, srv *fakeesl.Server) {
		srv.SetHandler(sc.handle)
		if mod != nil {
			mod(o)
		}
	})
	h.up()
	return h, sc
}

// retag gives a captured event another channel (and a fresh sequence).
func (h *harness) retag(e fakeesl.Event, uuid string) fakeesl.Event {
	return e.With("Unique-ID", uuid).With("Event-Sequence", itoa(h.srv.NextSeq()))
}

func itoa(n uint64) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{digits[n%10]}, b...)
	}
	return string(b)
}

// connectedCall replays a_basic_call up to the bridge: 1001 (basicA) and
// 1002 (basicB) are connected.
func (h *harness) connectedCall() []fakeesl.Event {
	h.t.Helper()
	evs := loadEvents(h.t, "a_basic_call")
	h.srv.Emit(upTo(h.t, evs, "CALL_UPDATE", basicA[:8])...)
	h.barrier()
	return evs
}

// barrier waits until every event emitted so far has been processed: it
// rings 1003 on a new channel (with a higher Event-Sequence than any
// captured event) and waits for the Offered.
func (h *harness) barrier() {
	h.t.Helper()
	id := newUUID()
	e := h.retag(find(h.t, loadEvents(h.t, "a_basic_call"), "CHANNEL_CREATE", basicB[:8]), id).
		With("Channel-Presence-ID", "1003@127.0.0.1").With("variable_dialed_user", "1003").
		With("Channel-Name", "sofia/internal/1003@127.0.0.1:5183").With("Other-Leg-Unique-ID", "")
	// As in the capture, the channel that calls a phone learns its SIP
	// Call-ID only with the 180 (CHANNEL_PROGRESS): Offered waits for it.
	p := h.retag(find(h.t, loadEvents(h.t, "a_basic_call"), "CHANNEL_PROGRESS", basicB[:8]), id).
		With("Channel-Presence-ID", "1003@127.0.0.1").With("variable_dialed_user", "1003").
		With("Channel-Name", "sofia/internal/1003@127.0.0.1:5183").With("Other-Leg-Unique-ID", "").
		With("variable_sip_call_id", id+"@barrier")
	h.srv.Emit(e, p)
	h.want(pbx.EventOffered, func(e pbx.Event) bool { return e.Call.ID == id && e.SIPCallID == id+"@barrier" })
}

// ringingCall replays b_cancel up to 1002 ringing (cancB, caller cancA).
func (h *harness) ringingCall() []fakeesl.Event {
	h.t.Helper()
	evs := loadEvents(h.t, "b_cancel")
	h.srv.Emit(upTo(h.t, evs, "CHANNEL_CALLSTATE", cancB[:8])...)
	h.barrier()
	return evs
}

// Phones that take BroadSoft "talk" NOTIFYs are answered through the phone:
// by configuration, or because their channel says so (the directory
// variable csta_allow_events, see configs/freeswitch/directory_user.xml).
func TestAnswerByPhoneEvent(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode PhoneEvents
		vars bool
		// lookup: the variable is only in the directory. That is how a
		// real FreeSWITCH shows it: user/ copies a user's <variables> onto
		// the channel only once the phone has answered.
		lookup bool
	}{
		{"always", PhoneEventsAlways, false, false},
		{"channel-variable", PhoneEventsAuto, true, false},
		{"directory-lookup", PhoneEventsAuto, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, sc := startScripted(t, func(o *Options) { o.PhoneEvents = tc.mode })
			if tc.lookup {
				sc.on("user_data 1002@127.0.0.1 var csta_allow_events", body("talk,hold\n"))
			}
			if tc.vars {
				evs := loadEvents(t, "b_cancel")
				ring := upTo(t, evs, "CHANNEL_CALLSTATE", cancB[:8])
				last := len(ring) - 1
				ring = append(ring[:last:last], ring[last].With("variable_csta_allow_events", "talk,hold"))
				h.srv.Emit(ring...)
				h.barrier()
			} else {
				h.ringingCall()
			}
			answer := h.retag(find(t, loadEvents(t, "a_basic_call"), "CHANNEL_ANSWER", basicB[:8]), cancB)
			sc.on("uuid_phone_event "+cancB+" talk", body("+OK\n", answer))

			if err := h.a.Answer(ctxT(t), ref("1002", cancB)); err != nil {
				t.Fatalf("Answer: %v", err)
			}
			e := h.want(pbx.EventConnected, nil)
			if e.Call != ref("1002", cancB) || e.Remote.Number != "1001" {
				t.Errorf("connected event %+v", e)
			}
			if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_phone_event "+cancB+" talk", 0); err != nil {
				t.Error(err)
			}
			for _, c := range h.srv.Commands() {
				if strings.HasPrefix(c, "bgapi originate") {
					t.Errorf("unexpected fallback: %q", c)
				}
			}
		})
	}
}

var originateUUID = regexp.MustCompile(`origination_uuid=([0-9a-f-]{36})`)

// A phone without "talk" support (the pjsua phones of the captures answer
// uuid_phone_event with SIP 500 while FreeSWITCH says +OK) is answered by
// calling it again with auto-answer and swapping the channels.
func TestAnswerBySwap(t *testing.T) {
	for _, mode := range []PhoneEvents{PhoneEventsAuto, PhoneEventsAlways} {
		t.Run(map[PhoneEvents]string{PhoneEventsAuto: "not-advertised", PhoneEventsAlways: "talk-ignored"}[mode], func(t *testing.T) {
			h, sc := startScripted(t, func(o *Options) { o.PhoneEvents = mode })
			evs := h.ringingCall()
			basic := loadEvents(t, "a_basic_call")
			var newLeg string
			sc.on("uuid_phone_event", body("+OK\n")) // the phone does nothing
			sc.on("originate", func(cmd string) fakeesl.Reply {
				m := originateUUID.FindStringSubmatch(cmd)
				if m == nil {
					return fakeesl.Reply{Body: "-ERR no origination_uuid"}
				}
				newLeg = m[1]
				// The auto-answer call carries its own headers; they are
				// not what the phone was offered the call with.
				const callInfo = "<sip:127.0.0.1>;answer-after=0"
				create := h.retag(find(t, basic, "CHANNEL_CREATE", basicB[:8]), newLeg).With("Other-Leg-Unique-ID", "").
					With("variable_sip_h_Call-Info", callInfo)
				ans := h.retag(find(t, basic, "CHANNEL_ANSWER", basicB[:8]), newLeg).With("variable_sip_h_Call-Info", callInfo)
				return fakeesl.Reply{Body: "+OK " + newLeg + "\n", After: []fakeesl.Event{create, ans}}
			})
			sc.on("uuid_bridge "+cancA, func(cmd string) fakeesl.Reply {
				bridge := h.retag(find(t, basic, "CHANNEL_BRIDGE", basicA[:8]), cancA).With("Other-Leg-Unique-ID", newLeg)
				callerAnswer := h.retag(find(t, basic, "CHANNEL_ANSWER", basicA[:8]), cancA)
				return fakeesl.Reply{Body: "+OK\n", After: []fakeesl.Event{callerAnswer, bridge}}
			})
			sc.on("uuid_kill "+cancB, body("+OK\n", h.retag(find(t, evs, "CHANNEL_HANGUP", cancB[:8]), cancB)))

			if err := h.a.Answer(ctxT(t), ref("1002", cancB)); err != nil {
				t.Fatalf("Answer: %v", err)
			}
			after := h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventConnected && e.Call.Ext == "1002" })
			got := describe(after)
			if w := []string{"connected 1001"}; !equal(got[ref("1002", cancB)], w) {
				t.Errorf("1002 events %q, want %q", got[ref("1002", cancB)], w)
			}
			for _, e := range after {
				if e.Headers != nil {
					t.Errorf("%v of %v carries the auto-answer call's headers %v", e.Kind, e.Call, e.Headers)
				}
			}
			cmd, err := h.srv.WaitCommand(ctxT(t), "bgapi originate", 0)
			if err != nil {
				t.Fatal(err)
			}
			want := "bgapi originate [origination_uuid=" + newLeg + ",originate_timeout=1,sip_copy_custom_headers=false,sip_auto_answer=true,sip_auto_answer_suppress_notify=true," +
				`sip_h_Call-Info=<sip:127.0.0.1>;answer-after=0,sip_h_X-Test=a\,b,origination_caller_id_name='Extension 1001',origination_caller_id_number=1001]user/1002 &park()`
			if cmd != want {
				t.Errorf("originate\n got  %q\n want %q", cmd, want)
			}
			if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_bridge "+cancA+" "+newLeg, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_kill "+cancB, 0); err != nil {
				t.Fatal(err)
			}
			// The connection keeps its id but is now the new channel.
			sc.on("uuid_kill "+newLeg, body("+OK\n"))
			if err := h.a.ClearConnection(ctxT(t), ref("1002", cancB)); err != nil {
				t.Fatalf("ClearConnection after swap: %v", err)
			}
			if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_kill "+newLeg, 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAnswerErrors(t *testing.T) {
	h, sc := startScripted(t, nil)
	h.connectedCall()
	if err := h.a.Answer(ctxT(t), ref("1002", basicB)); !errors.Is(err, pbx.ErrInvalidState) {
		t.Errorf("answer connected call: %v, want ErrInvalidState", err)
	}
	if err := h.a.Answer(ctxT(t), ref("1002", "nope")); !errors.Is(err, pbx.ErrNoSuchCall) {
		t.Errorf("answer unknown call: %v, want ErrNoSuchCall", err)
	}
	h.ringingCall()
	sc.on("originate", body("-ERR USER_NOT_REGISTERED\n"))
	if err := h.a.Answer(ctxT(t), ref("1002", cancB)); !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Errorf("answer with unreachable device: %v, want ErrDeviceUnreachable", err)
	}
}

func TestHoldRetrievePBXSide(t *testing.T) {
	h, sc := startScripted(t, nil)
	h.connectedCall()
	hold := loadEvents(t, "d_hold")
	held := find(t, hold, "CHANNEL_HOLD", "fe0f41bc")
	unheld := find(t, hold, "CHANNEL_UNHOLD", "fe0f41bc")
	sc.on("uuid_exists "+basicA, body("true"))
	sc.on("uuid_hold "+basicA, func(string) fakeesl.Reply {
		return fakeesl.Reply{Body: "+OK Success\n", After: []fakeesl.Event{h.retag(held, basicA)}}
	})
	sc.on("uuid_hold off "+basicA, func(string) fakeesl.Reply {
		return fakeesl.Reply{Body: "+OK Success\n", After: []fakeesl.Event{h.retag(unheld, basicA)}}
	})

	if err := h.a.Retrieve(ctxT(t), ref("1001", basicA)); !errors.Is(err, pbx.ErrInvalidState) {
		t.Errorf("retrieve unheld call: %v, want ErrInvalidState", err)
	}
	if err := h.a.Hold(ctxT(t), ref("1001", basicA)); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	if e := h.want(pbx.EventHeld, nil); e.ByPhone || e.Call != ref("1001", basicA) {
		t.Errorf("held event %+v, want by the bridge", e)
	}
	if err := h.a.Retrieve(ctxT(t), ref("1001", basicA)); err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if e := h.want(pbx.EventRetrieved, nil); e.ByPhone {
		t.Errorf("retrieved event %+v, want by the bridge", e)
	}
	// Now the phone holds by itself.
	h.srv.Emit(h.retag(held, basicA))
	if e := h.want(pbx.EventHeld, nil); !e.ByPhone {
		t.Errorf("held event %+v, want by the phone", e)
	}
	for _, c := range h.srv.Commands() {
		if strings.HasPrefix(c, "api uuid_phone_event") {
			t.Errorf("phone event sent to a phone that did not advertise talk: %q", c)
		}
	}
}

// A held call whose far party hangs up ends without an unhold: FreeSWITCH
// 1.10.12 takes the held channel off hold (CHANNEL_UNHOLD) after the
// partner's CHANNEL_HANGUP and just before its own, which a Snom never
// reports.
func TestHeldCallEndedByFarParty(t *testing.T) {
	h, _ := startScripted(t, nil)
	evs := h.connectedCall()
	hold := loadEvents(t, "d_hold")
	h.srv.Emit(h.retag(find(t, hold, "CHANNEL_HOLD", "fe0f41bc"), basicA).With("Other-Leg-Unique-ID", basicB))
	if e := h.want(pbx.EventHeld, nil); e.Call != ref("1001", basicA) {
		t.Fatalf("held event %+v, want 1001's call", e)
	}
	h.srv.Emit(h.retag(find(t, evs, "CHANNEL_HANGUP", basicB[:8]), basicB),
		h.retag(find(t, hold, "CHANNEL_UNHOLD", "fe0f41bc"), basicA).With("Other-Leg-Unique-ID", basicB),
		h.retag(find(t, evs, "CHANNEL_HANGUP", basicA[:8]), basicA))
	got := describe(h.collect(untilCleared(2)))
	if w := []string{"cleared normal"}; !equal(got[ref("1001", basicA)], w) {
		t.Errorf("1001: %q, want %q", got[ref("1001", basicA)], w)
	}
}

// HoldCall and RetrieveCall return once the hold change was seen, so the
// next request finds the new state; without an event within ConfirmTimeout
// FreeSWITCH's +OK is taken for it.
func TestHoldWithoutEvent(t *testing.T) {
	h, sc := startScripted(t, nil)
	h.connectedCall()
	sc.on("uuid_exists "+basicA, body("true"))
	sc.on("uuid_hold", body("+OK Success\n"))
	start := time.Now()
	if err := h.a.Hold(ctxT(t), ref("1001", basicA)); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	if took := time.Since(start); took < testOptions("").ConfirmTimeout {
		t.Errorf("Hold returned after %v, before ConfirmTimeout without an event", took)
	}
	if err := h.a.Retrieve(ctxT(t), ref("1001", basicA)); err != nil {
		t.Fatalf("Retrieve right after Hold: %v", err)
	}
	if err := h.a.Retrieve(ctxT(t), ref("1001", basicA)); !errors.Is(err, pbx.ErrInvalidState) {
		t.Errorf("second Retrieve: %v, want ErrInvalidState", err)
	}
}

// uuid_hold answers +OK even for a channel that does not exist.
func TestHoldVanishedChannel(t *testing.T) {
	h, sc := startScripted(t, nil)
	h.connectedCall()
	sc.on("uuid_exists", body("false"))
	if err := h.a.Hold(ctxT(t), ref("1001", basicA)); !errors.Is(err, pbx.ErrNoSuchCall) {
		t.Fatalf("Hold: %v, want ErrNoSuchCall", err)
	}
	for _, c := range h.srv.Commands() {
		if strings.HasPrefix(c, "api uuid_hold") {
			t.Errorf("uuid_hold sent for a missing channel: %q", c)
		}
	}
}

func TestClearConnectionRejects(t *testing.T) {
	h, sc := startScripted(t, nil)
	evs := h.ringingCall()
	hangup := find(t, evs, "CHANNEL_HANGUP", cancB[:8]).With("Hangup-Cause", "CALL_REJECTED")
	sc.on("uuid_kill "+cancB+" CALL_REJECTED", body("+OK\n", hangup))
	if err := h.a.ClearConnection(ctxT(t), ref("1002", cancB)); err != nil {
		t.Fatal(err)
	}
	if e := h.want(pbx.EventCleared, nil); e.Cause != pbx.CauseRejected || e.Call != ref("1002", cancB) {
		t.Errorf("cleared %+v, want rejected", e)
	}
	// The channel is gone now.
	if err := h.a.ClearConnection(ctxT(t), ref("1002", cancB)); !errors.Is(err, pbx.ErrNoSuchCall) {
		t.Errorf("second clear: %v, want ErrNoSuchCall", err)
	}
}

func TestClearConnectionGoneAtPBX(t *testing.T) {
	h, _ := startScripted(t, nil)
	h.connectedCall()
	// The default answer for uuid_kill is "-ERR No such channel!".
	if err := h.a.ClearConnection(ctxT(t), ref("1001", basicA)); !errors.Is(err, pbx.ErrNoSuchCall) {
		t.Errorf("clear: %v, want ErrNoSuchCall", err)
	}
}

func TestClearCall(t *testing.T) {
	h, sc := startScripted(t, nil)
	h.connectedCall()
	sc.on("uuid_kill", body("+OK\n"))
	if err := h.a.ClearCall(ctxT(t), ref("1001", basicA)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"api uuid_kill " + basicB, "api uuid_kill " + basicA} {
		if _, err := h.srv.WaitCommand(ctxT(t), want, 0); err != nil {
			t.Error(err)
		}
	}
}

func TestSingleStepTransfer(t *testing.T) {
	h, sc := startScripted(t, nil)
	evs := h.connectedCall()
	unbridge := find(t, evs, "CHANNEL_UNBRIDGE", basicA[:8])
	hangup := find(t, evs, "CHANNEL_HANGUP", basicA[:8])
	sc.on("uuid_transfer "+basicA+" -bleg 1003 XML default", body("+OK\n", unbridge))
	sc.on("uuid_kill "+basicA, body("+OK\n", hangup))

	if err := h.a.SingleStepTransfer(ctxT(t), ref("1001", basicA), "sip:1003@127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	got := describe(h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventCleared }))
	if w := []string{"transferred blind byPhone=false", "cleared transferred"}; !equal(got[ref("1001", basicA)], w) {
		t.Errorf("events %q, want %q", got[ref("1001", basicA)], w)
	}
	if err := h.a.SingleStepTransfer(ctxT(t), ref("1002", basicB), "10 03"); !errors.Is(err, pbx.ErrInvalidDestination) {
		t.Errorf("bad destination: %v, want ErrInvalidDestination", err)
	}
	sc.on("uuid_transfer", body("-ERR No such channel!\n"))
	if err := h.a.SingleStepTransfer(ctxT(t), ref("1002", basicB), "1003"); !errors.Is(err, pbx.ErrNoSuchCall) {
		t.Errorf("transfer of a vanished channel: %v, want ErrNoSuchCall", err)
	}
}

// 1001 has a held call with 1002 and an active one with 1003 (the first
// part of j_phone_refer_attended); the bridge joins 1002 and 1003.
func TestTransfer(t *testing.T) {
	const (
		a1 = "13d892aa-df33-4f17-808f-8689c2b9ef3b"
		b1 = "28c7ab0a-2492-442a-b587-ea89d32ccaf6"
		a2 = "bb1c1bb4-092f-4573-8595-5f116300ba6f"
		b2 = "9fc43248-dd87-4a5a-9893-95544e4b2660"
	)
	// The wait for CHANNEL_BRIDGE is bounded by CommandTimeout: long enough
	// here that the check below cannot race it.
	h, sc := startScripted(t, func(o *Options) { o.CommandTimeout = 3 * time.Second })
	evs := loadEvents(t, "j_phone_refer_attended")
	h.srv.Emit(upTo(t, evs, "CALL_UPDATE", a2[:8])...)
	h.barrier()
	hang1 := find(t, evs, "CHANNEL_HANGUP", a1[:8])
	hang2 := find(t, evs, "CHANNEL_HANGUP", a2[:8])
	// uuid_bridge says +OK before the bridge exists; the extension's legs
	// may be released only once CHANNEL_BRIDGE shows the far parties joined.
	sc.on("uuid_bridge "+b1+" "+b2, body("+OK\n"))
	// hangup_after_bridge already released them.
	sc.on("uuid_kill", body("-ERR No such channel!\n"))
	bridged := h.retag(find(t, loadEvents(t, "a_basic_call"), "CHANNEL_BRIDGE", basicA[:8]), b1).
		With("Other-Leg-Unique-ID", b2)

	done := make(chan error, 1)
	go func() { done <- h.a.Transfer(ctxT(t), ref("1001", a1), ref("1001", a2)) }()
	if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_bridge "+b1+" "+b2, 0); err != nil {
		t.Fatal(err)
	}
	h.barrier()
	for _, c := range h.srv.Commands() {
		if strings.HasPrefix(c, "api uuid_kill") {
			t.Fatalf("%q before the far parties were bridged", c)
		}
	}
	// a1 was held (j_phone_refer_attended holds it before the consultation);
	// FreeSWITCH takes it off hold as its partner is bridged away, just
	// before it ends (seen on a real 1.10.12): no unhold for a call the
	// bridge transfers.
	var unheld fakeesl.Event
	for _, e := range evs {
		if strings.HasPrefix(e.Get("Unique-ID"), a1[:8]) && e.Get("Channel-Call-State") == "UNHELD" {
			unheld = e.With("Event-Name", "CHANNEL_UNHOLD")
			break
		}
	}
	if unheld.Headers == nil {
		t.Fatal("j_phone_refer_attended has no UNHELD state of the held call")
	}
	h.srv.Emit(bridged, unheld, hang1, hang2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctxT(t).Done():
		t.Fatal("Transfer did not return")
	}
	if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_kill", 0); err != nil {
		t.Fatal(err)
	}
	got := describe(h.collect(untilCleared(2)))
	for _, c := range []string{a1, a2} {
		if w := []string{"transferred attended byPhone=false", "cleared transferred"}; !equal(got[ref("1001", c)], w) {
			t.Errorf("%s: %q, want %q", c, got[ref("1001", c)], w)
		}
	}
	sc.on("uuid_bridge", body("-ERR Invalid uuid\n"))
	h.srv.Emit(upTo(t, loadEvents(t, "a_basic_call"), "CALL_UPDATE", basicA[:8])...)
	h.barrier()
	if err := h.a.Transfer(ctxT(t), ref("1001", basicA), ref("1001", basicA)); !errors.Is(err, pbx.ErrInvalidState) {
		t.Errorf("transfer a call to itself: %v, want ErrInvalidState", err)
	}
}

// MakeCall replays c_click_to_call on the channel the adapter chose.
func TestMakeCall(t *testing.T) {
	const dev = "1cff0516-fb9d-46dc-a9dd-f707af882849" // 1001's channel in the capture
	h, sc := startScripted(t, nil)
	click := loadEvents(t, "c_click_to_call") // its BACKGROUND_JOB names a job of the capture: unclaimed
	onChannel := func(evs []fakeesl.Event, id string) []fakeesl.Event {
		var out []fakeesl.Event
		for _, e := range evs {
			if e.Get("Unique-ID") == dev {
				e = e.With("Unique-ID", id)
			}
			if e.Get("Other-Leg-Unique-ID") == dev {
				e = e.With("Other-Leg-Unique-ID", id)
			}
			out = append(out, e)
		}
		return out
	}
	const ringing = 3 // CHANNEL_CREATE, CHANNEL_PROGRESS, CHANNEL_CALLSTATE of the device
	sc.on("originate", func(cmd string) fakeesl.Reply {
		id := originateUUID.FindStringSubmatch(cmd)[1]
		// The device rings long before the job ends (when it answered):
		// MakeCall must return on the ringing, not wait for the job.
		return fakeesl.Reply{Body: "+OK " + id + "\n", Before: onChannel(click[:ringing], id), Delay: time.Minute}
	})
	call := pbx.CallRef{Ext: "1001", ID: "mc-1"}
	err := h.a.MakeCall(ctxT(t), pbx.MakeCallRequest{Call: call, CSTAID: 7, Destination: "sip:1002@127.0.0.1", AutoAnswer: true})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := h.srv.WaitCommand(ctxT(t), "bgapi originate", 0)
	if err != nil {
		t.Fatal(err)
	}
	id := originateUUID.FindStringSubmatch(cmd)[1]
	want := "bgapi originate {origination_caller_id_number=1002,origination_caller_id_name=1002}" +
		"[origination_uuid=" + id + ",csta_makecall=true,csta_id=7,sip_auto_answer=true,sip_auto_answer_suppress_notify=true,sip_h_Call-Info=<sip:127.0.0.1>;answer-after=0," +
		"sip_h_Alert-Info=<http://pbx>;info=alert-autoanswer;delay=0,sip_copy_custom_headers=false]user/1001 1002 XML default"
	if cmd != want {
		t.Errorf("originate\n got  %q\n want %q", cmd, want)
	}
	h.srv.Emit(onChannel(click[ringing:], id)...)
	evs := h.collect(untilCleared(2))
	got := describe(evs)
	if w := []string{"originated 1002", "connected 1002", "cleared normal"}; !equal(got[call], w) {
		t.Errorf("make call events %q, want %q", got[call], w)
	}
	// The phone's $sip_header() values are those of the auto-answer INVITE
	// it received (the capture's device leg has sip_h_Call-Info).
	for _, e := range evs {
		if e.Kind == pbx.EventOriginated && e.Call == call {
			if w := "<sip:127.0.0.1>;answer-after=0"; e.Headers["Call-Info"] != w || len(e.Headers) != 1 {
				t.Errorf("originated with headers %v, want Call-Info %q", e.Headers, w)
			}
		}
	}
}

func TestMakeCallErrors(t *testing.T) {
	h, sc := startScripted(t, nil)
	ctx := ctxT(t)
	req := func(id, dest string) pbx.MakeCallRequest {
		return pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1001", ID: id}, Destination: dest}
	}
	sc.on("originate", body("-ERR USER_NOT_REGISTERED\n"))
	if err := h.a.MakeCall(ctx, req("m1", "1002")); !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Errorf("unregistered device: %v", err)
	}
	// The result may come before the bgapi reply has been read.
	sc.on("originate", func(string) fakeesl.Reply {
		return fakeesl.Reply{Body: "-ERR SUBSCRIBER_ABSENT\n", JobFirst: true}
	})
	if err := h.a.MakeCall(ctx, req("m2", "1002")); !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Errorf("absent subscriber, early job result: %v", err)
	}
	sc.on("originate", body("-ERR NO_ROUTE_DESTINATION\n"))
	if err := h.a.MakeCall(ctx, req("m3", "1002")); !errors.Is(err, pbx.ErrInvalidDestination) {
		t.Errorf("no route: %v", err)
	}
	if err := h.a.MakeCall(ctx, req("m4", "1002 XML evil")); !errors.Is(err, pbx.ErrInvalidDestination) {
		t.Errorf("injection attempt: %v", err)
	}
	bad := pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "4711", ID: "m5"}, Destination: "1002"}
	if err := h.a.MakeCall(ctx, bad); !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Errorf("unmapped extension: %v", err)
	}
	// Failed attempts leave nothing behind: the ids can be used again.
	sc.on("originate", body("-ERR USER_NOT_REGISTERED\n"))
	if err := h.a.MakeCall(ctx, req("m1", "1002")); !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Errorf("retry: %v", err)
	}
}

func TestTagCallAndDTMF(t *testing.T) {
	h, sc := startScripted(t, nil)
	h.connectedCall()
	sc.on("uuid_setvar", body("+OK\n"))
	sc.on("uuid_send_dtmf", body("+OK Success\n"))
	if err := h.a.TagCall(ctxT(t), ref("1001", basicA), -3); err != nil {
		t.Fatal(err)
	}
	if err := h.a.SendDTMF(ctxT(t), ref("1001", basicA), "12#"); err != nil {
		t.Fatal(err)
	}
	if err := h.a.SendDTMF(ctxT(t), ref("1001", basicA), "1 2"); !errors.Is(err, pbx.ErrInvalidDestination) {
		t.Errorf("bad digits: %v", err)
	}
	for _, want := range []string{"api uuid_setvar " + basicA + " csta_id -3", "api uuid_send_dtmf " + basicA + " 12#"} {
		if _, err := h.srv.WaitCommand(ctxT(t), want, 0); err != nil {
			t.Error(err)
		}
	}
	// Later events carry the csta_id.
	h.srv.Emit(find(t, loadEvents(t, "a_basic_call"), "CHANNEL_HANGUP", basicA[:8]))
	if e := h.want(pbx.EventCleared, func(e pbx.Event) bool { return e.Call.ID == basicA }); e.CSTAID != -3 {
		t.Errorf("cleared csta_id %d, want -3", e.CSTAID)
	}
}

// FreeSWITCH creates the channel that calls a phone before it sends the
// INVITE: CHANNEL_CREATE has no sip_call_id (a_basic_call, and so does a
// real 1.10.12). Offered waits for the first event that has it, so the
// core gets the Call-ID the phone sees; a call that ends before that is
// still offered, then cleared.
func TestOfferedCarriesSIPCallID(t *testing.T) {
	h, _ := startScripted(t, nil)
	evs := loadEvents(t, "a_basic_call")
	create := find(t, evs, "CHANNEL_CREATE", basicB[:8])
	if create.Get("variable_sip_call_id") != "" {
		t.Fatal("capture changed: CHANNEL_CREATE of the called phone has a Call-ID")
	}
	progress := find(t, evs, "CHANNEL_PROGRESS", basicB[:8])
	h.srv.Emit(create)
	h.barrier()
	var early []pbx.Event
	for len(h.events) > 0 {
		early = append(early, <-h.events)
	}
	for _, e := range early {
		if e.Kind == pbx.EventOffered && e.Call.ID == basicB {
			t.Fatalf("offered before the Call-ID was known: %+v", e)
		}
	}
	h.srv.Emit(progress)
	e := h.want(pbx.EventOffered, func(e pbx.Event) bool { return e.Call.ID == basicB })
	if want := progress.Get("variable_sip_call_id"); e.SIPCallID != want || want == "" {
		t.Errorf("offered with Call-ID %q, want %q", e.SIPCallID, want)
	}

	// A phone that never answers the INVITE: no 180, only the hang-up.
	id := newUUID()
	h.srv.Emit(h.retag(create, id), h.retag(find(t, evs, "CHANNEL_HANGUP", basicB[:8]), id).With("Hangup-Cause", "NO_USER_RESPONSE"))
	got := describe(h.collect(func(e pbx.Event) bool { return e.Kind == pbx.EventCleared && e.Call.ID == id }))
	if w := []string{"offered 1001", "cleared no-answer"}; !equal(got[ref("1002", id)], w) {
		t.Errorf("unanswered INVITE: %q, want %q", got[ref("1002", id)], w)
	}
}
