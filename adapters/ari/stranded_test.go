package ari

import (
	"context"
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A caller the dialplan sent into the application just as the connection
// went, whose StasisStart Asterisk handed to the closing websocket, is
// routed when the adapter connects again: the phone rings, the call
// connects and ends like any other (issue 19; fakeari/lost.go). Fails on
// 1ac627d: nothing rings, the caller waits in Stasis for good.
func TestStrandedCallerRoutedOnReconnect(t *testing.T) {
	r := newRaceRig(t, 1)
	ctx := context.Background()
	r.fake.LoseStasisStart(1)
	aID := r.fake.PhoneDials("PJSIP/2101", "1101")
	r.fake.DropWebsocket()
	off, err := r.next("1101", false)
	if err != nil || off.Kind != pbx.EventOffered {
		t.Fatalf("after the reconnect: %v (%v), want the phone offered the stranded call", off.Kind, err)
	}
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
	if ev, err := r.next("1101", false); err != nil || ev.Kind != pbx.EventConnected {
		t.Fatalf("after the answer: %v (%v), want connected", ev.Kind, err)
	}
	if c := r.fake.Channel(aID); c == nil || c.State != "Up" {
		t.Fatalf("caller %s: %+v, want answered", aID, c)
	}
	if err := r.a.ClearConnection(ctx, off.Call); err != nil {
		t.Fatal(err)
	}
	if ev, err := r.next("1101", true); err != nil || ev.Kind != pbx.EventCleared {
		t.Fatalf("after ClearConnection: %v (%v), want cleared", ev.Kind, err)
	}
	waitFake(t, r.fake, "caller gone", func() bool { r.fake.FlushLate(); return r.fake.Channel(aID) == nil })
}
