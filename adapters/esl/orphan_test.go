package esl

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// clickDevice is 1001's channel in c_click_to_call: the device leg of a
// MakeCall to 1002.
const clickDevice = "1cff0516-fb9d-46dc-a9dd-f707af882849"

// deviceLeg returns the events of c_click_to_call's device leg, renamed to
// id and carrying the csta_id the originate stored on it (FreeSWITCH sends
// channel variables with every event).
func deviceLeg(t *testing.T, id string, cstaID string) []fakeesl.Event {
	t.Helper()
	var out []fakeesl.Event
	for _, e := range loadEvents(t, "c_click_to_call") {
		if e.Get("Unique-ID") == clickDevice {
			e = e.With("Unique-ID", id).With("variable_csta_id", cstaID)
		}
		if e.Get("Other-Leg-Unique-ID") == clickDevice {
			e = e.With("Other-Leg-Unique-ID", id)
		}
		out = append(out, e)
	}
	return out
}

// A MakeCall that gives up before FreeSWITCH reports the device's channel
// got a fault, so the core cleared its connection. If FreeSWITCH calls the
// device after all, the phone places that call: it is reported as a call
// the extension originates (once the device answers), under an id of its
// own and without the failed request's csta_id, never as a call ringing
// at the extension.
func TestMakeCallGivenUpDeviceCalledLater(t *testing.T) {
	for _, tc := range []struct {
		name    string
		giveUp  func(cancel context.CancelFunc)
		wantErr error
	}{
		{"timeout", func(context.CancelFunc) {}, pbx.ErrUnavailable},
		{"request cancelled", func(cancel context.CancelFunc) { cancel() }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, sc := startScripted(t, nil)
			// FreeSWITCH is slow: the job result and the channel come later.
			sc.on("originate", func(string) fakeesl.Reply { return fakeesl.Reply{Body: "+OK\n", Delay: time.Minute} })
			call := pbx.CallRef{Ext: "1001", ID: "mc-late"}
			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				errc <- h.a.MakeCall(ctx, pbx.MakeCallRequest{Call: call, CSTAID: 7, Destination: "1002", AutoAnswer: true})
			}()
			cmd, err := h.srv.WaitCommand(ctxT(t), "bgapi originate", 0)
			if err != nil {
				t.Fatal(err)
			}
			tc.giveUp(cancel)
			if err := <-errc; !errors.Is(err, tc.wantErr) {
				t.Fatalf("MakeCall: %v, want %v", err, tc.wantErr)
			}
			id := originateUUID.FindStringSubmatch(cmd)[1]

			h.srv.Emit(deviceLeg(t, id, "7")...)
			got := h.collect(untilCleared(2))
			checkCalls(t, describe(got), map[pbx.CallRef][]string{
				ref("1001", id): {"originated 1002", "connected 1002", "cleared normal"},
				ref("1002", "8ebb9886-bd6f-4ba7-8348-3dd37bd7a79a"): {"offered 1001", "connected 1001", "cleared normal"},
			})
			for _, e := range got {
				if e.Call.Ext == "1001" && e.CSTAID != 0 {
					t.Errorf("%v %v carries csta_id %d of the failed MakeCall", e.Kind, e.Call, e.CSTAID)
				}
			}
		})
	}
}

// A device that refuses a MakeCall at once (busy, do not disturb): the
// job's -ERR overtakes the channel's events, which wait in the reorder
// window. The channel that comes and goes is not a call to the extension.
func TestMakeCallRefusedAtOnceIsNoIncomingCall(t *testing.T) {
	h, sc := startScripted(t, func(o *Options) {
		// The job result bypasses the reorder window: a wide window makes
		// it overtake the channel's events every time.
		o.ReorderWindow = 200 * time.Millisecond
	})
	sc.on("originate", func(cmd string) fakeesl.Reply {
		m := originateUUID.FindStringSubmatch(cmd)
		if m == nil {
			return fakeesl.Reply{Body: "-ERR no origination_uuid\n"}
		}
		dev := deviceLeg(t, m[1], "7")
		busy := func(e fakeesl.Event) fakeesl.Event {
			return h.retag(e, m[1]).With("Hangup-Cause", "USER_BUSY").With("Other-Leg-Unique-ID", "")
		}
		return fakeesl.Reply{Body: "-ERR USER_BUSY\n", Before: []fakeesl.Event{
			h.retag(dev[0], m[1]),
			busy(find(t, dev, "CHANNEL_HANGUP", m[1][:8])),
			busy(find(t, dev, "CHANNEL_HANGUP_COMPLETE", m[1][:8])),
		}}
	})
	call := pbx.CallRef{Ext: "1001", ID: "mc-busy"}
	err := h.a.MakeCall(ctxT(t), pbx.MakeCallRequest{Call: call, CSTAID: 7, Destination: "1002"})
	if !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Fatalf("MakeCall: %v, want ErrDeviceUnreachable", err)
	}
	for _, e := range h.flush() {
		if e.Call.Ext == "1001" {
			t.Errorf("event for the refused MakeCall's channel: %v %v cause %v", e.Kind, e.Call, e.Cause)
		}
	}
	// The connection id is free again.
	sc.on("originate", body("-ERR USER_NOT_REGISTERED\n"))
	if err := h.a.MakeCall(ctxT(t), pbx.MakeCallRequest{Call: call, Destination: "1002"}); !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Errorf("MakeCall again: %v", err)
	}
}

// An orphaned MakeCall leg still ringing at a reconnect is not in the
// sync (the core does not know it, and the phone does not place a call
// before it answers); it is reported once the device answers.
func TestMakeCallOrphanAcrossReconnect(t *testing.T) {
	h, sc := startScripted(t, nil)
	sc.on("originate", func(string) fakeesl.Reply { return fakeesl.Reply{Body: "+OK\n", Delay: time.Minute} })
	call := pbx.CallRef{Ext: "1001", ID: "mc-orphan"}
	if err := h.a.MakeCall(ctxT(t), pbx.MakeCallRequest{Call: call, CSTAID: 7, Destination: "1002"}); !errors.Is(err, pbx.ErrUnavailable) {
		t.Fatalf("MakeCall: %v, want ErrUnavailable", err)
	}
	cmd, err := h.srv.WaitCommand(ctxT(t), "bgapi originate", 0)
	if err != nil {
		t.Fatal(err)
	}
	id := originateUUID.FindStringSubmatch(cmd)[1]
	dev := deviceLeg(t, id, "7")
	const ringing = 3 // CHANNEL_CREATE, CHANNEL_PROGRESS, CHANNEL_CALLSTATE
	h.srv.Emit(dev[:ringing]...)
	for _, e := range h.flush() {
		if e.Call.Ext == "1001" {
			t.Errorf("event while the device rings: %v %v", e.Kind, e.Call)
		}
	}

	sc.on("show channels as json", body(listingReply(t, []map[string]json.RawMessage{
		listingRow(rowTemplate(t), fieldsOf(t, dev[:ringing], id))})))
	sc.on("uuid_dump "+id, body(dumpOf(t, dev[:ringing], id)))
	h.srv.DropAll()
	h.want(pbx.EventLink, isDown)
	if s := h.up(); len(s.Calls) != 0 {
		t.Errorf("sync %+v, want no calls", s.Calls)
	}
	h.srv.Emit(dev[ringing:]...)
	got := h.collect(untilCleared(2))
	checkCalls(t, describe(got), map[pbx.CallRef][]string{
		ref("1001", id): {"originated 1002", "connected 1002", "cleared normal"},
		ref("1002", "8ebb9886-bd6f-4ba7-8348-3dd37bd7a79a"): {"offered 1001", "connected 1001", "cleared normal"},
	})
	for _, e := range got {
		if e.Call.Ext == "1001" && e.CSTAID != 0 {
			t.Errorf("%v %v carries csta_id %d of the failed MakeCall", e.Kind, e.Call, e.CSTAID)
		}
	}
}
