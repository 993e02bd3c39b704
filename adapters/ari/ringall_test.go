package ari

import (
	"encoding/json"
	"strings"
	"testing"
)

// The ring-all rule (ringall.go) rests on what Asterisk 22.10.1 reports for
// a member's Local ;2 half that is still ringing when it ends: cause 26 when
// another member answered (queue and ring group), 0 then 16 when the caller
// gave up. The captures pin it, and lostRace reads it so.
func TestRingAllCausesInCaptures(t *testing.T) {
	for _, tc := range []struct {
		capture string
		lost    bool
	}{
		{"queue_answered_elsewhere", true},
		{"ringgroup_answered_on_phone", true},
		{"queue_abandoned", false},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			ringing := map[string]*channel{}
			ended := 0
			for _, raw := range loadEvents(t, tc.capture) {
				var ev wireEvent
				if err := json.Unmarshal(raw, &ev); err != nil {
					t.Fatal(err)
				}
				c := ev.Channel
				if c == nil || !strings.HasPrefix(c.Name, "Local/") || !strings.HasSuffix(c.Name, ";2") {
					continue
				}
				ch := ringing[c.ID]
				if ch == nil {
					ch = &channel{id: c.ID}
					ringing[c.ID] = ch
				}
				switch ev.Type {
				case "ChannelHangupRequest":
					if ch.hangupBy == 0 {
						ch.hangupBy = ev.Cause
					}
				case "ChannelDestroyed":
					ch.endCause = ev.Cause
					if c.State != "Up" {
						ended++
						if lostRace(ch) != tc.lost {
							t.Errorf("%s ended ringing with cause %d (request %d): lost race %v, want %v",
								c.Name, ev.Cause, ch.hangupBy, lostRace(ch), tc.lost)
						}
					}
				}
			}
			if want := map[bool]int{true: 1, false: 2}[tc.lost]; ended != want {
				t.Errorf("%d ringing Local halves ended, want %d", ended, want)
			}
		})
	}
}
