package ari

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// dialOfDevice matches the Dial of the channel the adapter created to a
// routed call's destination.
func dialOfDevice(r fakeari.Request) bool {
	return r.Method == "POST" && strings.HasPrefix(r.Path, "/channels/"+bridgePrefix+"out-") && strings.HasSuffix(r.Path, "/dial")
}

// A stopped adapter sends Asterisk nothing (issue 19): neither a request
// whose context ended with the stop (a command the stop cut short, undoing
// what it did) nor one made with a context of its own (an undo that must
// not be lost to a caller going away). Before, the library call went out
// all the same: the ringing channel below was hung up.
func TestStoppedAdapterSendsNothing(t *testing.T) {
	h := newHarness(t)
	_, ref := ownedRinging(t, h, "1001")
	// The connection's client, as a command still under way holds it.
	cl, err := h.a.tr.client()
	if err != nil {
		t.Fatal(err)
	}
	h.stop()

	cut, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"context ended with the stop", cut}, {"context of its own", context.Background()}} {
		var called atomic.Bool
		err := h.a.restWith(c.ctx, cl, func(x ari.Client) error {
			called.Store(true)
			return x.Channel().Hangup(chanKey(ref.ID), "normal")
		})
		// The bare sentinel says the request was never sent (mayHaveRun).
		if err != pbx.ErrUnavailable || called.Load() {
			t.Errorf("%s: hang-up after the stop returned %v (sent: %v), want it never sent", c.name, err, called.Load())
		}
	}
	if ch := h.fake.Channel(ref.ID); ch == nil || ch.State != "Ringing" {
		t.Errorf("the stopped adapter ended the ringing channel: %+v", ch)
	}
}

// The bridge stops while the answer to the Dial of a routed call is on
// its way (the restart rows' flake on a loaded machine, about 1 run in
// 16): the stop cut the Dial short, the adapter took it for failed and
// hung the ringing channel up, so the next bridge found the call gone and
// the core reported it missed. The call is left to the next bridge, which
// reports it ringing with its csta_id and connects it when the device
// answers.
func TestStopWhileDialAnswerOnItsWay(t *testing.T) {
	h := newHarness(t)
	g := h.fake.HoldReply(dialOfDevice)
	t.Cleanup(g.Release)
	aID, ref := ownedRinging(t, h, "1001")
	arrived(t, g, "the Dial of 1002")
	caller := pbx.CallRef{Ext: "1001", ID: aID}
	if err := h.a.TagCall(ctxT(t), ref, -10); err != nil {
		t.Fatal(err)
	}
	h.stop()
	g.Release()

	h2 := startAdapter(t, h.fake, testOptions(t, h.fake))
	sync := h2.expectKind(pbx.EventSync)
	h2.expectKind(pbx.EventLink)
	var ringing bool
	for _, ci := range sync.Calls {
		ringing = ringing || ci.Call == ref && ci.State == pbx.StateAlerting && ci.CSTAID == -10
	}
	if !ringing {
		t.Fatalf("the next adapter's sync %+v lacks %s alerting with csta_id -10", sync.Calls, ref)
	}
	if err := h2.fake.Answer(ref.ID); err != nil {
		t.Fatalf("the device cannot answer: %v", err)
	}
	h2.waitBothConnected(ref, caller)
	if b := h2.fake.Bridges(); len(b) != 1 || len(h2.fake.BridgeChannels(b[0])) != 2 {
		t.Errorf("bridges %v after the answer, want the call's one with both parties", b)
	}
}
