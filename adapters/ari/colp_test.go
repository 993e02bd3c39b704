package ari

import (
	"context"
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// The waiting caller is answered only once the answered party is in its
// bridge: joining gives the caller that party's identity, which a ringing
// channel gets in its 200 OK and an answered one in a re-INVITE right
// behind the 200 OK, which a slow phone answers 481, and Asterisk hangs
// the call up (fakeari/colp.go; seen on the real Asterisk 22.10.1 with 10
// test phones under load, issue 15). Both ways a routed call connects: the
// device answers itself, and AnswerCall's auto-answer call. Fails on
// 9f520dc: the caller is answered first, then hung up, and the call ends
// right after it connected.
func TestCallerAnsweredAfterBridging(t *testing.T) {
	for _, how := range []string{"the phone answers", "AnswerCall"} {
		t.Run(how, func(t *testing.T) {
			r := newRaceRig(t, 1)
			r.fake.SetSlowPhones(true)
			ctx := context.Background()
			aID := r.fake.PhoneDials("PJSIP/2101", "1101")
			off, err := r.next("1101", false)
			if err != nil || off.Kind != pbx.EventOffered {
				t.Fatalf("first event %v (%v), want offered", off.Kind, err)
			}
			if how == "AnswerCall" {
				r.fake.SetAutoAnswer("PJSIP/1101", true)
				if err := r.a.Answer(ctx, off.Call); err != nil {
					t.Fatal(err)
				}
			} else {
				var dev string
				waitFake(t, r.fake, "device ringing", func() bool {
					for _, c := range r.fake.Channels() {
						if strings.HasPrefix(c.Name, "PJSIP/1101-") && c.State == "Ringing" {
							dev = c.ID
						}
					}
					return dev != ""
				})
				if err := r.fake.Answer(dev); err != nil {
					t.Fatal(err)
				}
			}
			if ev, err := r.next("1101", false); err != nil || ev.Kind != pbx.EventConnected {
				t.Fatalf("after the answer: %v (%v), want connected", ev.Kind, err)
			}
			// The call goes on: a hold finds the caller, which is there
			// and answered.
			if err := r.a.Hold(ctx, off.Call); err != nil {
				t.Fatalf("HoldCall on the connected call: %v", err)
			}
			if c := r.fake.Channel(aID); c == nil || c.State != "Up" {
				t.Fatalf("caller %s after the answer: %+v, want up", aID, c)
			}
			if err := r.a.ClearConnection(ctx, off.Call); err != nil {
				t.Fatal(err)
			}
			var got []pbx.Event
			for {
				ev, err := r.next("1101", true)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ev)
				if ev.Kind == pbx.EventCleared {
					break
				}
			}
			if k := kinds(got); k != "held cleared(normal)" {
				t.Errorf("events after connected: %s, want held cleared(normal)", k)
			}
		})
	}
}
