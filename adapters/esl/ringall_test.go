package esl

import (
	"errors"
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A ring group (bridge user/2001,user/2002, group_call) rings two
// extensions; the one that does not get the call ends without a missed
// call (FreeSWITCH ends its leg with LOSE_RACE when the other answers). A
// caller who gives up leaves a missed call at both (issue 13).
func TestRingAllLoser(t *testing.T) {
	ringBoth := func(t *testing.T) (*harness, *callModel, *router, [2]pbx.CallRef, string) {
		t.Helper()
		h, m, r := startModel(t, 2)
		phones, caller := m.ringAll([]string{"2001", "2002"}, "3999")
		c := [2]pbx.CallRef{ref("2001", phones[0]), ref("2002", phones[1])}
		for _, x := range c {
			if _, err := r.until(x.Ext, func(e pbx.Event) bool { return e.Kind == pbx.EventOffered && e.Call == x }); err != nil {
				t.Fatal(err)
			}
		}
		return h, m, r, c, caller
	}
	cleared := func(t *testing.T, r *router, c pbx.CallRef) pbx.Event {
		t.Helper()
		evs, err := r.until(c.Ext, func(e pbx.Event) bool { return e.Kind == pbx.EventCleared })
		if err != nil {
			t.Fatal(err)
		}
		e := evs[len(evs)-1]
		if e.Call != c || len(evs) != 1 {
			t.Errorf("%v: events %s, want its clearing only", c, kinds(evs))
		}
		return e
	}

	t.Run("AnswerCall at one", func(t *testing.T) {
		// FreeSWITCH 1.10.12 drops a caller whose ring-all bridge
		// uuid_bridge takes away, so the swap is refused and the call
		// rings on; the phone's own answer then takes it.
		h, m, r, c, _ := ringBoth(t)
		if err := h.a.Answer(ctxT(t), c[0]); !errors.Is(err, pbx.ErrNotSupported) {
			t.Fatalf("Answer by swap of a ring group's call: %v, want ErrNotSupported", err)
		}
		for _, cmd := range h.srv.Commands() {
			if strings.HasPrefix(cmd, "bgapi originate") || strings.HasPrefix(cmd, "api uuid_bridge") {
				t.Errorf("the swap was tried: %s", cmd)
			}
		}
		m.pickUp(c[0].ID)
		if e := cleared(t, r, c[1]); e.Cause != pbx.CauseAnsweredElsewhere {
			t.Errorf("the other phone's call ended %v (%s), want answered elsewhere", e.Cause, e.Reason)
		}
		if _, err := r.until("2001", func(e pbx.Event) bool { return e.Kind == pbx.EventConnected && e.Call == c[0] }); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("picked up on the phone", func(t *testing.T) {
		_, m, r, c, _ := ringBoth(t)
		m.pickUp(c[1].ID)
		if e := cleared(t, r, c[0]); e.Cause != pbx.CauseAnsweredElsewhere || e.Reason != "LOSE_RACE" {
			t.Errorf("the other phone's call ended %v (%s), want answered elsewhere (LOSE_RACE)", e.Cause, e.Reason)
		}
		if _, err := r.until("2002", func(e pbx.Event) bool { return e.Kind == pbx.EventConnected && e.Call == c[1] }); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("caller gives up", func(t *testing.T) {
		_, m, r, c, caller := ringBoth(t)
		m.drop(caller, "NORMAL_CLEARING")
		for _, x := range c {
			if e := cleared(t, r, x); e.Cause != pbx.CauseCancelled {
				t.Errorf("%v ended %v (%s), want cancelled (a missed call)", x, e.Cause, e.Reason)
			}
		}
	})
}
