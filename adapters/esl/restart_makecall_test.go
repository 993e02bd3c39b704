package esl

import (
	"encoding/json"
	"testing"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A restarted bridge finds the calls MakeCall started as calls the
// extension placed, with the csta_id stored on the device's channel. The
// device's channel is one FreeSWITCH called (Call-Direction outbound), as
// for a call to the extension; only the mark the originate left on it
// (csta_makecall) tells them apart.
func TestResyncFindsMakeCallAsPlaced(t *testing.T) {
	const id = "5f0c6a52-8d4e-4b7e-9a51-2b1f0d0c9e11"
	var talking, dialing []fakeesl.Event
	for _, e := range deviceLeg(t, id, "7") {
		e = e.With("variable_csta_makecall", "true")
		if e.Get("Unique-ID") != id {
			continue
		}
		talking = append(talking, e)
		if dialing == nil && e.Get("Channel-Call-State") == "RING_WAIT" {
			dialing = talking[:len(talking):len(talking)]
		}
		if e.Name() == "CHANNEL_BRIDGE" {
			break
		}
	}
	for _, tc := range []struct {
		name  string
		evs   []fakeesl.Event
		state pbx.State
	}{
		{"connected", talking, pbx.StateConnected},
		// The device answered (it places the call), the destination rings.
		{"destination ringing", dialing, pbx.StateInitiated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := &script{}
			sc.on("show channels as json", body(listingReply(t, []map[string]json.RawMessage{
				listingRow(rowTemplate(t), fieldsOf(t, tc.evs, id))})))
			sc.on("uuid_dump "+id, body(dumpOf(t, tc.evs, id)))
			h := start(t, func(_ *Options, s *fakeesl.Server) { s.SetHandler(sc.handle) })
			sync := h.up()
			if len(sync.Calls) != 1 {
				t.Fatalf("sync %+v, want one call", sync.Calls)
			}
			c := sync.Calls[0]
			if c.Call != ref("1001", id) || c.Direction != pbx.Outgoing || c.State != tc.state || c.CSTAID != 7 || c.Remote.Number != "1002" {
				t.Errorf("sync %+v, want 1001's outgoing call to 1002, %v, csta_id 7", c, tc.state)
			}
		})
	}
}
