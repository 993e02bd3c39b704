package esl

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// swapScene is an AnswerCall by swap on 1002's ringing call of b_cancel
// (cancB, caller cancA) that is under way when the link is lost.
type swapScene struct {
	h      *harness
	sc     *script
	ring   []fakeesl.Event // b_cancel up to 1002 ringing
	newLeg string          // the auto-answer channel's uuid, once originated
	answer chan error      // Answer's result
}

// swapEvent is an event of the auto-answer channel id calling 1002 (the
// 1002 leg of a_basic_call renamed); other is its partner ("" = parked).
func (x *swapScene) swapEvent(name, id, other string) fakeesl.Event {
	return x.h.retag(find(x.h.t, loadEvents(x.h.t, "a_basic_call"), name, basicB[:8]), id).
		With("Other-Leg-Unique-ID", other).With("variable_signal_bond", other)
}

// startSwap rings 1002 and starts Answer; originate is the fake's reply to
// the auto-answer originate, given the new channel's uuid.
func startSwap(t *testing.T, originate func(x *swapScene, id string) fakeesl.Reply) *swapScene {
	h, sc := startScripted(t, nil)
	x := &swapScene{h: h, sc: sc, ring: h.ringingCall(), answer: make(chan error, 1)}
	newLeg := make(chan string, 1)
	sc.on("originate", func(cmd string) fakeesl.Reply {
		m := originateUUID.FindStringSubmatch(cmd)
		if m == nil {
			return fakeesl.Reply{Body: "-ERR no origination_uuid\n"}
		}
		newLeg <- m[1]
		return originate(x, m[1])
	})
	go func() { x.answer <- h.a.Answer(ctxT(t), ref("1002", cancB)) }()
	select {
	case x.newLeg = <-newLeg:
	case <-time.After(waitFor):
		t.Fatal("no auto-answer originate")
	}
	return x
}

// reconnect drops the link (Answer must fail for it) and reconnects with
// FreeSWITCH listing the given channels (uuid → its events so far); it
// returns the sync.
func (x *swapScene) reconnect(channels map[string][]fakeesl.Event) pbx.Event {
	t := x.h.t
	var rows []map[string]json.RawMessage
	for _, u := range []string{cancA, cancB, x.newLeg} {
		evs, ok := channels[u]
		if !ok {
			continue
		}
		rows = append(rows, listingRow(rowTemplate(t), fieldsOf(t, evs, u)))
		x.sc.on("uuid_dump "+u, body(dumpOf(t, evs, u)))
	}
	x.sc.on("show channels as json", body(listingReply(t, rows)))
	x.h.srv.DropAll()
	select {
	case err := <-x.answer:
		if !errors.Is(err, pbx.ErrUnavailable) {
			t.Errorf("Answer: %v, want ErrUnavailable", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Answer did not return when the link was lost")
	}
	x.h.want(pbx.EventLink, isDown)
	return x.h.up()
}

// call1002 returns 1002's connection in a sync, and fails on any other
// connection of 1002.
func call1002(t *testing.T, s pbx.Event) pbx.CallInfo {
	t.Helper()
	var found []pbx.CallInfo
	for _, c := range s.Calls {
		if c.Call.Ext == "1002" {
			found = append(found, c)
		}
	}
	if len(found) != 1 || found[0].Call != ref("1002", cancB) {
		t.Fatalf("1002's connections in the sync: %+v, want just %v", found, ref("1002", cancB))
	}
	return found[0]
}

func (x *swapScene) noEventsFor1002(evs []pbx.Event) {
	x.h.t.Helper()
	for _, e := range evs {
		if e.Call.Ext == "1002" {
			x.h.t.Errorf("event for 1002: %v %v", e.Kind, e.Call)
		}
	}
}

// The link is lost while the device is being called. The auto-answer
// channel is not listed by the resync (it was not in FreeSWITCH's database
// yet); the ringing call still is the connection. The auto-answer channel
// is hung up as soon as it shows up, and never reported.
func TestSwapPendingAcrossReconnectShowsUpLater(t *testing.T) {
	x := startSwap(t, func(x *swapScene, id string) fakeesl.Reply {
		// The device rings; the job result would come when it answers.
		return fakeesl.Reply{Body: "+OK " + id + "\n", Delay: time.Minute,
			Before: []fakeesl.Event{x.swapEvent("CHANNEL_CREATE", id, "")}}
	})
	x.noEventsFor1002(x.h.flush()) // the CHANNEL_CREATE is in
	ringing := upTo(t, x.ring, "CHANNEL_CALLSTATE", cancB[:8])
	s := x.reconnect(map[string][]fakeesl.Event{cancA: ringing, cancB: ringing})
	if c := call1002(t, s); c.State != pbx.StateAlerting {
		t.Errorf("1002's call is %v, want alerting", c.State)
	}
	// The phone answers the auto-answer call after the reconnect.
	x.sc.on("uuid_kill "+cancB, body("+OK\n"))
	x.sc.on("uuid_kill "+x.newLeg, body("+OK\n", x.swapEvent("CHANNEL_HANGUP_COMPLETE", x.newLeg, "")))
	x.h.srv.Emit(x.swapEvent("CHANNEL_ANSWER", x.newLeg, ""))
	if _, err := x.h.srv.WaitCommand(ctxT(t), "api uuid_kill "+x.newLeg, 0); err != nil {
		t.Fatal(err)
	}
	x.noEventsFor1002(x.h.flush())
	// The connection is the ringing channel.
	if err := x.h.a.ClearConnection(ctxT(t), ref("1002", cancB)); err != nil {
		t.Fatal(err)
	}
	if _, err := x.h.srv.WaitCommand(ctxT(t), "api uuid_kill "+cancB+" CALL_REJECTED", 0); err != nil {
		t.Fatal(err)
	}
	if n := countCommands(x.h.srv, "api uuid_kill "+x.newLeg); n != 1 {
		t.Errorf("%d hang-ups of the auto-answer channel, want 1", n)
	}
}

// The link is lost after the device answered the auto-answer call, while
// uuid_bridge was under way: whether FreeSWITCH made the bridge decides
// which channel is the connection, and the other one is hung up.
func TestSwapHandedOverAcrossReconnect(t *testing.T) {
	for _, bridged := range []bool{true, false} {
		t.Run(map[bool]string{true: "bridge made", false: "bridge not made"}[bridged], func(t *testing.T) {
			x := startSwap(t, func(x *swapScene, id string) fakeesl.Reply {
				return fakeesl.Reply{Body: "+OK " + id + "\n", Before: []fakeesl.Event{
					x.swapEvent("CHANNEL_CREATE", id, ""), x.swapEvent("CHANNEL_ANSWER", id, "")}}
			})
			x.sc.on("uuid_bridge", func(string) fakeesl.Reply { return fakeesl.Reply{NoReply: true} })
			if _, err := x.h.srv.WaitCommand(ctxT(t), "api uuid_bridge "+cancA+" "+x.newLeg, 0); err != nil {
				t.Fatal(err)
			}
			ringing := upTo(t, x.ring, "CHANNEL_CALLSTATE", cancB[:8])
			partner := ""
			if bridged {
				partner = cancA
			}
			newLeg := []fakeesl.Event{x.swapEvent("CHANNEL_CREATE", x.newLeg, ""), x.swapEvent("CHANNEL_ANSWER", x.newLeg, partner)}
			s := x.reconnect(map[string][]fakeesl.Event{cancA: ringing, cancB: ringing, x.newLeg: newLeg})

			c := call1002(t, s)
			// Whichever channel lost is hung up.
			x.sc.on("uuid_kill", body("+OK\n"))
			if bridged {
				if c.State != pbx.StateConnected || c.Remote.Number != "1001" {
					t.Errorf("1002's call %+v, want connected to 1001", c)
				}
				if _, err := x.h.srv.WaitCommand(ctxT(t), "api uuid_kill "+cancB+" LOSE_RACE", 0); err != nil {
					t.Fatal(err)
				}
				// The ringing channel's end is not the connection's.
				cancel := x.h.retag(find(t, x.ring, "CHANNEL_HANGUP_COMPLETE", cancB[:8]), cancB)
				x.h.srv.Emit(cancel)
				x.noEventsFor1002(x.h.flush())
				if err := x.h.a.ClearConnection(ctxT(t), ref("1002", cancB)); err != nil {
					t.Fatal(err)
				}
				if _, err := x.h.srv.WaitCommand(ctxT(t), "api uuid_kill "+x.newLeg, 0); err != nil {
					t.Fatal(err)
				}
				return
			}
			if c.State != pbx.StateAlerting {
				t.Errorf("1002's call is %v, want alerting", c.State)
			}
			if _, err := x.h.srv.WaitCommand(ctxT(t), "api uuid_kill "+x.newLeg, 0); err != nil {
				t.Fatal(err)
			}
			x.h.srv.Emit(x.swapEvent("CHANNEL_HANGUP_COMPLETE", x.newLeg, ""))
			x.noEventsFor1002(x.h.flush())
			if err := x.h.a.ClearConnection(ctxT(t), ref("1002", cancB)); err != nil {
				t.Fatal(err)
			}
			if _, err := x.h.srv.WaitCommand(ctxT(t), "api uuid_kill "+cancB+" CALL_REJECTED", 0); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range x.h.srv.Commands() {
				if cmd == "api uuid_kill "+cancB+" LOSE_RACE" {
					t.Error("the ringing channel was hung up although the swap was not made")
				}
			}
		})
	}
}

// The recheck lists the auto-answer channel the resync missed: it is hung
// up then, not reported as a new call.
func TestSwapPendingFoundByRecheck(t *testing.T) {
	clk := newManualClock()
	sc := &script{}
	h := start(t, func(o *Options, s *fakeesl.Server) {
		s.SetHandler(sc.handle)
		o.newTimer = clk.newTimer
	})
	h.up()
	clk.next(t)
	x := &swapScene{h: h, sc: sc, ring: h.ringingCall(), answer: make(chan error, 1)}
	newLeg := make(chan string, 1)
	sc.on("originate", func(cmd string) fakeesl.Reply {
		id := originateUUID.FindStringSubmatch(cmd)[1]
		newLeg <- id
		return fakeesl.Reply{Body: "+OK " + id + "\n", Delay: time.Minute,
			Before: []fakeesl.Event{x.swapEvent("CHANNEL_CREATE", id, "")}}
	})
	go func() { x.answer <- h.a.Answer(ctxT(t), ref("1002", cancB)) }()
	x.newLeg = <-newLeg
	x.noEventsFor1002(h.flush())
	ringing := upTo(t, x.ring, "CHANNEL_CALLSTATE", cancB[:8])
	s := x.reconnect(map[string][]fakeesl.Event{cancA: ringing, cancB: ringing})
	call1002(t, s)

	// The recheck's listing has it (answered by the phone meanwhile).
	answered := []fakeesl.Event{x.swapEvent("CHANNEL_CREATE", x.newLeg, ""), x.swapEvent("CHANNEL_ANSWER", x.newLeg, "")}
	rows := []map[string]json.RawMessage{}
	for u, evs := range map[string][]fakeesl.Event{cancA: ringing, cancB: ringing, x.newLeg: answered} {
		rows = append(rows, listingRow(rowTemplate(t), fieldsOf(t, evs, u)))
	}
	sc.on("show channels as json", body(listingReply(t, rows)))
	sc.on("uuid_dump "+x.newLeg, body(dumpOf(t, answered, x.newLeg)))
	sc.on("uuid_kill "+x.newLeg, body("+OK\n"))
	clk.next(t).fire()
	if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_kill "+x.newLeg, 0); err != nil {
		t.Fatal(err)
	}
	x.noEventsFor1002(h.flush())
}
