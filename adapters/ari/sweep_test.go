package ari

import (
	"fmt"
	"testing"
)

// sweepPlan hangs up only this application's channels whose call lost its
// other side, and destroys only this application's bridges whose call has
// ended; live calls, calls being set up, channels the dialplan has just
// sent in, and everything of another application stay.
func TestSweepPlan(t *testing.T) {
	a, err := New(Options{URL: "http://127.0.0.1:1/ari", Username: "u", Password: "p", Application: "csta-bridge", Context: "from-internal"})
	if err != nil {
		t.Fatal(err)
	}
	in := func(args string) rawChannel {
		var c rawChannel
		c.Dialplan.AppName, c.Dialplan.AppData = "Stasis", args
		return c
	}
	ch := func(id, args string) rawChannel { c := in(args); c.ID, c.Name = id, "PJSIP/"+id; return c }
	call := func(id string, pending int, members ...string) *call {
		c := &call{id: id, bridge: id, members: map[string]bool{}, pending: pending}
		for _, m := range members {
			c.members[m] = true
			a.chans[m] = &channel{id: m, name: "PJSIP/" + m}
			a.callOf[m] = c
		}
		a.calls[id] = c
		return c
	}
	call("live", 0, "l1", "l2")
	call("alone", 0, "x1")
	call("setup", 1, "s1")
	call("other", 0, "o1") // another application's (its CSTA_CALL looks the same)
	call("routing", 1, "r1").bridge = ""
	chans := []rawChannel{
		ch("l1", "csta-bridge,dial,1001"), ch("l2", "csta-bridge,outbound,live"),
		ch("x1", "csta-bridge,dial,1001"),
		ch("s1", "csta-bridge,dial,1002"), ch("r1", "csta-bridge,dial,1003"),
		ch("new", "csta-bridge,dial,1003"),        // StasisStart still queued
		ch("orphan", "csta-bridge,outbound,gone"), // made for a call that ended
		ch("o1", "csta-other,dial,1001"),
		{ID: "plain", Name: "PJSIP/plain"},
	}
	bridges := []rawBridge{
		{ID: "live", Name: "csta-bridge/live", Channels: []string{"l1", "l2"}},
		{ID: "alone", Name: "csta-bridge/alone", Channels: []string{"x1"}},
		{ID: "setup", Name: "csta-bridge/setup", Channels: []string{"s1"}},
		{ID: "routing", Name: "csta-bridge/routing"}, // created, not yet noted on its call
		{ID: "empty", Name: "csta-bridge/empty"},
		{ID: "theirs", Name: "csta-other/empty"},
		{ID: "old", Name: "csta-csta-call-1"},
	}
	hang, drop := a.sweepPlan(chans, bridges)
	if got := fmt.Sprint(ids(hang)); got != "[orphan x1]" {
		t.Errorf("hung up %s, want [orphan x1]", got)
	}
	if got := fmt.Sprint(ids(drop)); got != "[alone empty]" {
		t.Errorf("destroyed %s, want [alone empty]", got)
	}
}

func ids(items []sweepItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.id)
	}
	return out
}
