package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A discovered cluster (ari-proxy announces its Asterisks) starts with no
// node: not ready, and why; an extension pinned to a node not seen yet is
// served by no other node; nodes that come later serve their own.
func TestDiscoveredNodes(t *testing.T) {
	c, err := New(Options{Server: "Asterisk", Discovered: true})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, c: c, nodes: map[string]*stubNode{}, events: make(chan pbx.Event, 16)}
	handled := make(chan struct{})
	r.handled = handled
	c.handled = func() {
		select {
		case handled <- struct{}{}:
		case <-time.After(10 * time.Second):
		}
	}
	c.SetExtensions([]pbx.Extension{{Name: "1001", Node: "ast1"}, {Name: "1002"}, {Name: "1003", Node: "ast2"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, r.events) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	if ev := r.next(); ev.Kind != pbx.EventLink || ev.Up || !strings.Contains(ev.Reason, "no Asterisk node known yet") {
		t.Fatalf("first event %+v, want the link down for want of a node", ev)
	}
	err = c.MakeCall(ctx, pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1001", ID: "m1"}, Destination: "1002"})
	if !errors.Is(err, pbx.ErrDeviceUnreachable) || !strings.Contains(err.Error(), "node ast1 has not been seen yet") {
		t.Fatalf("MakeCall before ast1 is known: %v", err)
	}

	add := func(name string) *stubNode {
		s := newStub(name)
		r.nodes[name] = s
		if err := c.Add(Node{Name: name, PBX: s}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1 := add("ast1")
	if err := c.Add(Node{Name: "ast1", PBX: newStub("ast1")}); err == nil {
		t.Error("a second node named ast1 was added")
	}
	s1.mu.Lock()
	got := slices.Clone(s1.exts)
	s1.mu.Unlock()
	if !slices.Equal(got, []string{"1001", "1002"}) {
		t.Errorf("ast1 serves %v, want its pin and the unpinned 1002 (not 1003, pinned to ast2)", got)
	}
	r.start("ast1")
	if err := c.MakeCall(ctx, pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1001", ID: "m1"}, Destination: "1002"}); err != nil {
		t.Fatalf("MakeCall on ast1: %v", err)
	}
	// 1003's calls on ast1 (a trunk leg that looks like it) are not its.
	r.feed("ast1", pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "1003", ID: "x"}})

	s2 := add("ast2")
	s2.mu.Lock()
	got = slices.Clone(s2.exts)
	s2.mu.Unlock()
	if !slices.Equal(got, []string{"1002", "1003"}) {
		t.Errorf("ast2 serves %v", got)
	}
	r.feed("ast2", pbx.Event{Kind: pbx.EventSync})
	if ev := r.next(); ev.Kind != pbx.EventSync || len(ev.Calls) != 1 || ev.Calls[0].Call.ID != "m1" {
		t.Fatalf("ast2's first sync reached the core as %s %v, want ast1's call kept", ev.Kind, refs(ev.Calls))
	}
	r.feedThrough("ast2", pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "1003", ID: "y"}})
	names := []string{}
	for _, n := range c.Nodes() {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, []string{"ast1", "ast2"}) {
		t.Errorf("nodes %v", names)
	}
}
