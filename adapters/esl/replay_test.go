package esl

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// untilCleared stops collecting after n Cleared events.
func untilCleared(n int) func(pbx.Event) bool {
	seen := 0
	return func(e pbx.Event) bool {
		if e.Kind == pbx.EventCleared {
			seen++
		}
		return seen == n
	}
}

// replayOptions: the whole capture is sent at once, and a loaded machine
// may run eslgo's goroutines for its events far apart; the captures'
// filtered event sequences have gaps, so they wait the whole window.
func replayOptions(o *Options, _ *fakeesl.Server) { o.ReorderWindow = reorderSlack }

// Phone-driven calls, replayed from real FreeSWITCH captures.
func TestReplayCaptures(t *testing.T) {
	tests := []struct {
		capture string
		cleared int
		want    map[pbx.CallRef][]string
	}{
		{"a_basic_call", 2, map[pbx.CallRef][]string{
			ref("1001", "700db6d0-01ad-49cf-8440-0287c48decad"): {"originated 1002", "connected 1002", "cleared normal"},
			ref("1002", "6a4221cb-ba73-4987-8985-90c9b8abfe28"): {"offered 1001", "connected 1001", "cleared normal"},
		}},
		{"b_cancel", 2, map[pbx.CallRef][]string{
			ref("1001", "7af8ca3d-c35b-4e9f-ad2b-95918ad7ec73"): {"originated 1002", "cleared normal"},
			ref("1002", "cb1d83e5-d68a-47a2-8d4d-498fac014164"): {"offered 1001", "cleared cancelled"},
		}},
		{"d_hold", 2, map[pbx.CallRef][]string{
			ref("1001", "fe0f41bc-5169-4e6f-a195-f0befe484a73"): {"originated 1002", "connected 1002",
				"held byPhone=true", "retrieved byPhone=true", "held byPhone=true", "retrieved byPhone=true", "cleared normal"},
			ref("1002", "330b58b6-e04a-480c-a164-e01b5fe3c1dc"): {"offered 1001", "connected 1001",
				"held byPhone=true", "retrieved byPhone=true", "cleared normal"},
		}},
		{"i_phone_refer_blind", 3, map[pbx.CallRef][]string{
			ref("1001", "f4f8ea56-0ae4-4213-9a71-28667df03bf2"): {"originated 1002", "connected 1002", "party-changed 1003", "cleared normal"},
			ref("1002", "1d20d1c5-1a9f-4849-95e5-cbf34beba908"): {"offered 1001", "connected 1001",
				"transferred blind byPhone=true", "cleared transferred"},
			ref("1003", "554263e5-3207-4f7d-a07d-3c514e7a31aa"): {"offered 1001", "connected 1001", "cleared normal"},
		}},
		{"j_phone_refer_attended", 4, map[pbx.CallRef][]string{
			ref("1001", "13d892aa-df33-4f17-808f-8689c2b9ef3b"): {"originated 1002", "connected 1002", "held byPhone=true",
				"transferred attended byPhone=true", "cleared transferred"},
			ref("1001", "bb1c1bb4-092f-4573-8595-5f116300ba6f"): {"originated 1003", "connected 1003",
				"transferred attended byPhone=true", "cleared transferred"},
			ref("1002", "28c7ab0a-2492-442a-b587-ea89d32ccaf6"): {"offered 1001", "connected 1001", "party-changed 1003", "cleared normal"},
			ref("1003", "9fc43248-dd87-4a5a-9893-95544e4b2660"): {"offered 1001", "connected 1001", "party-changed 1002", "cleared normal"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.capture, func(t *testing.T) {
			t.Parallel()
			h := start(t, replayOptions)
			h.up()
			h.srv.Emit(loadEvents(t, tc.capture)...)
			got := describe(h.collect(untilCleared(tc.cleared)))
			checkCalls(t, got, tc.want)
		})
	}
}

// eslgo hands events to goroutines in any order, and FreeSWITCH itself
// sends some slightly out of sequence: the adapter must see them sorted.
func TestReplayShuffled(t *testing.T) {
	evs := loadEvents(t, "a_basic_call")
	want := map[pbx.CallRef][]string{
		ref("1001", "700db6d0-01ad-49cf-8440-0287c48decad"): {"originated 1002", "connected 1002", "cleared normal"},
		ref("1002", "6a4221cb-ba73-4987-8985-90c9b8abfe28"): {"offered 1001", "connected 1001", "cleared normal"},
	}
	orders := map[string][]fakeesl.Event{"reversed": slices.Clone(evs), "shuffled": slices.Clone(evs)}
	slices.Reverse(orders["reversed"])
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(orders["shuffled"]), func(i, j int) {
		o := orders["shuffled"]
		o[i], o[j] = o[j], o[i]
	})
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := start(t, replayOptions)
			h.up()
			h.srv.Emit(order...)
			checkCalls(t, describe(h.collect(untilCleared(2))), want)
		})
	}
}

// Registration events carry the same user headers as the captured
// sofia::register_attempt (sofia_reg.c); refreshes are not news.
func TestDeviceRegistration(t *testing.T) {
	h := start(t, nil)
	h.up()
	reg := func(subclass, user string) fakeesl.Event {
		return fakeesl.Event{Headers: []fakeesl.Header{
			{Name: "Event-Subclass", Value: "sofia%3A%3A" + subclass[len("sofia::"):]},
			{Name: "Event-Name", Value: "CUSTOM"},
			{Name: "Event-Calling-File", Value: "sofia_reg.c"},
			{Name: "Event-Sequence", Value: itoa(h.srv.NextSeq())},
			{Name: "profile-name", Value: "internal"},
			{Name: "from-user", Value: user},
			{Name: "from-host", Value: "127.0.0.1"},
			{Name: "username", Value: user},
			{Name: "realm", Value: "127.0.0.1"},
		}}
	}
	h.srv.Emit(reg("sofia::register", "1001"), reg("sofia::register", "1001"), reg("sofia::register", "4711"),
		reg("sofia::unregister", "1001"), reg("sofia::expire", "1002"))
	var got []string
	for len(got) < 3 {
		e := h.want(pbx.EventDevice, nil)
		got = append(got, e.Call.Ext+"="+map[bool]string{true: "up", false: "down"}[e.Registered])
	}
	if want := []string{"1001=up", "1001=down", "1002=down"}; !equal(got, want) {
		t.Errorf("device events %q, want %q", got, want)
	}
}
