package ari

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// confCalls is 1002 with two routed calls: from 1001 (held by the bridge)
// and from 1003 (connected).
type confCalls struct {
	h              *harness
	far1, far3     string      // the callers' channels
	held, active   pbx.CallRef // 1002's connections
	caller1, call3 pbx.CallRef // the callers' own connections
}

func twoCalls(t *testing.T) *confCalls {
	t.Helper()
	h := newHarness(t)
	far1, held := ownedConnected(t, h, "1001")
	far3, active := ownedConnected(t, h, "1003")
	if err := h.a.Hold(ctxT(t), held); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	h.waitKind("1002", pbx.EventHeld)
	return &confCalls{h: h, far1: far1, far3: far3, held: held, active: active,
		caller1: pbx.CallRef{Ext: "1001", ID: far1}, call3: pbx.CallRef{Ext: "1003", ID: far3}}
}

// conference joins the two calls and checks Asterisk's side: one bridge
// with the four channels, the held call's device channel muted both ways,
// no music.
func (c *confCalls) conference(t *testing.T) string {
	t.Helper()
	h := c.h
	if err := h.a.Conference(ctxT(t), c.held, c.active); err != nil {
		t.Fatalf("Conference: %v", err)
	}
	if ev := h.waitKind("1002", pbx.EventRetrieved); ev.Call != c.held || ev.ByPhone {
		t.Errorf("retrieved %+v", ev)
	}
	want := []string{c.far1, c.far3, c.held.ID, c.active.ID}
	slices.Sort(want)
	var conf string
	waitFake(t, h.fake, "one bridge with the four channels", func() bool {
		bs := h.fake.Bridges()
		if len(bs) != 1 {
			return false
		}
		got := h.fake.BridgeChannels(bs[0])
		slices.Sort(got)
		conf = bs[0]
		return slices.Equal(got, want)
	})
	if ch := h.fake.Channel(c.held.ID); ch.Muted != "both" {
		t.Errorf("the held call's device channel is muted %q, want both", ch.Muted)
	}
	for _, id := range []string{c.active.ID, c.far1, c.far3} {
		if ch := h.fake.Channel(id); ch.Muted != "" || ch.MOH {
			t.Errorf("channel %s: muted %q, music %v", id, ch.Muted, ch.MOH)
		}
	}
	return conf
}

func noBridgesLeft(t *testing.T, f *fakeari.Server) {
	t.Helper()
	waitFake(t, f, "every bridge deleted", func() bool { return len(f.Bridges()) == 0 })
}

// ClearConnection of one conferenced connection drops that far party only;
// the extension talks on with the other in the same bridge.
func TestConferenceClearOneConnection(t *testing.T) {
	c := twoCalls(t)
	h := c.h
	conf := c.conference(t)
	if err := h.a.ClearConnection(ctxT(t), c.held); err != nil {
		t.Fatalf("ClearConnection: %v", err)
	}
	evs := h.cleared(c.held, c.caller1)
	for _, ev := range evs {
		if ev.Cause != pbx.CauseNormal {
			t.Errorf("%s cleared %s", ev.Call, ev.Cause)
		}
	}
	waitFake(t, h.fake, "the other call talks on in the conference bridge", func() bool {
		got := h.fake.BridgeChannels(conf)
		slices.Sort(got)
		want := []string{c.far3, c.active.ID}
		slices.Sort(want)
		return slices.Equal(got, want) && len(h.fake.Channels()) == 2
	})
	nothingAbout(t, h.barrier(), c.active, c.call3)
	if err := h.fake.Hangup(c.far3, 16); err != nil {
		t.Fatal(err)
	}
	h.cleared(c.active, c.call3)
	noChannelsLeft(t, h.fake)
	noBridgesLeft(t, h.fake)
}

// A far party that hangs up ends its connection only; when it was the
// party of the speaking device channel, the held call's device channel is
// heard again, and the call left is an ordinary one (hold, retrieve, clear).
func TestConferenceFarPartyHangsUp(t *testing.T) {
	c := twoCalls(t)
	h := c.h
	conf := c.conference(t)
	if err := h.fake.Hangup(c.far3, 16); err != nil {
		t.Fatal(err)
	}
	h.cleared(c.active, c.call3)
	waitFake(t, h.fake, "the held call's device channel unmuted", func() bool {
		ch := h.fake.Channel(c.held.ID)
		return ch != nil && ch.Muted == ""
	})
	if got := h.fake.BridgeChannels(conf); len(got) != 2 || !slices.Contains(got, c.far1) || !slices.Contains(got, c.held.ID) {
		t.Errorf("conference bridge holds %v, want the first call's two channels", got)
	}
	ctx := ctxT(t)
	if err := h.a.Hold(ctx, c.held); err != nil {
		t.Fatalf("Hold after the conference: %v", err)
	}
	if ch := h.fake.Channel(c.far1); !ch.MOH || ch.Bridge != "" {
		t.Errorf("held far party: music %v, bridge %q", ch.MOH, ch.Bridge)
	}
	if err := h.a.Retrieve(ctx, c.held); err != nil {
		t.Fatalf("Retrieve after the conference: %v", err)
	}
	if ch := h.fake.Channel(c.far1); ch.MOH || ch.Bridge != conf {
		t.Errorf("retrieved far party: music %v, bridge %q", ch.MOH, ch.Bridge)
	}
	if err := h.a.ClearConnection(ctx, c.held); err != nil {
		t.Fatal(err)
	}
	h.cleared(c.held, c.caller1)
	noChannelsLeft(t, h.fake)
	noBridgesLeft(t, h.fake)
}

// Transfer of the two conferenced connections is the extension leaving:
// the far parties talk on in a bridge of their own, which ends with them.
func TestConferenceExtensionLeaves(t *testing.T) {
	c := twoCalls(t)
	h := c.h
	c.conference(t)
	if err := h.a.Transfer(ctxT(t), c.held, c.active); err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	for _, ev := range h.cleared(c.held, c.active) {
		if ev.Cause != pbx.CauseTransferred {
			t.Errorf("%s cleared %s", ev.Call, ev.Cause)
		}
	}
	waitFake(t, h.fake, "the far parties alone in one bridge", func() bool {
		bs := h.fake.Bridges()
		if len(bs) != 1 || len(h.fake.Channels()) != 2 {
			return false
		}
		got := h.fake.BridgeChannels(bs[0])
		return len(got) == 2 && slices.Contains(got, c.far1) && slices.Contains(got, c.far3)
	})
	if err := h.fake.Hangup(c.far1, 16); err != nil {
		t.Fatal(err)
	}
	h.cleared(c.caller1, c.call3)
	noChannelsLeft(t, h.fake)
	noBridgesLeft(t, h.fake)
}

// Only a call held by the bridge joins a connected one.
func TestConferenceRefusals(t *testing.T) {
	c := twoCalls(t)
	h := c.h
	ctx := ctxT(t)
	refused(t, h.a.Conference(ctx, c.active, c.held), pbx.ErrInvalidState, "conference", c.active, "state connected")
	if err := h.a.Conference(ctx, c.held, c.held); !errors.Is(err, pbx.ErrInvalidState) {
		t.Errorf("conference of one call with itself = %v", err)
	}
	if err := h.a.Conference(ctx, c.held, c.caller1); !errors.Is(err, pbx.ErrInvalidState) {
		t.Errorf("conference of two extensions' calls = %v", err)
	}
	// The phone's own hold cannot be taken back by the bridge.
	if err := h.fake.PhoneHold(c.active.ID, true); err != nil {
		t.Fatal(err)
	}
	h.waitKind("1002", pbx.EventHeld)
	if err := h.a.Retrieve(ctx, c.held); err != nil {
		t.Fatal(err)
	}
	refused(t, h.a.Conference(ctx, c.active, c.held), pbx.ErrNotSupported, "conference", c.active, "the phone put this call on hold itself")
}

// A conference whose last request fails (refused, unanswered though
// Asterisk did it, or lost) leaves both calls as they were: the held
// call's device channel heard in its own bridge, its far party outside on
// music on hold, nothing reported. A later ConferenceCall works.
func TestConferenceFailureKeepsBothCalls(t *testing.T) {
	for _, how := range []lostHow{refusedWith500, replyHeld, dropped} {
		t.Run(how.String(), func(t *testing.T) {
			c := twoCalls(t)
			h := c.h
			before := h.fake.Bridges()
			heldBridge := h.fake.Channel(c.held.ID).Bridge
			activeBridge := h.fake.Channel(c.active.ID).Bridge
			match := func(r fakeari.Request) bool {
				return r.Method == "POST" && strings.HasSuffix(r.Path, "/addChannel") && r.Params["channel"] == c.far1
			}
			err, _ := failOnce(t, h, how, match, func(ctx context.Context) error { return h.a.Conference(ctx, c.held, c.active) })
			if err == nil {
				t.Fatal("Conference succeeded")
			}
			waitFake(t, h.fake, "the calls as they were", func() bool {
				d, f := h.fake.Channel(c.held.ID), h.fake.Channel(c.far1)
				return d.Bridge == heldBridge && d.Muted == "" && f.Bridge == "" && f.MOH &&
					slices.Equal(h.fake.Bridges(), before) && len(h.fake.BridgeChannels(activeBridge)) == 2
			})
			if how == dropped {
				h.fake.ClearFaults()
			}
			for _, ev := range h.barrier() {
				if ev.Call == c.held || ev.Call == c.active {
					t.Errorf("%s %s reported after a failed conference", ev.Kind, ev.Call)
				}
			}
			c.conference(t)
		})
	}
}
