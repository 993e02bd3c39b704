package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// stubNode is a node's adapter driven by the test: it delivers what the
// test feeds it and records the commands it gets.
type stubNode struct {
	name string
	feed chan pbx.Event

	mu       sync.Mutex
	exts     []string
	cmds     []string
	makeCall error // MakeCall's answer
}

func newStub(name string) *stubNode { return &stubNode{name: name, feed: make(chan pbx.Event)} }

func (s *stubNode) Run(ctx context.Context, events chan<- pbx.Event) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-s.feed:
			select {
			case events <- ev:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func (s *stubNode) SetExtensions(exts []pbx.Extension) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exts = nil
	for _, x := range exts {
		s.exts = append(s.exts, x.Name)
	}
}

func (s *stubNode) record(cmd string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, cmd)
}

func (s *stubNode) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cmds)
}

func (s *stubNode) Answer(_ context.Context, c pbx.CallRef) error {
	s.record("answer " + c.ID)
	return nil
}
func (s *stubNode) Hold(_ context.Context, c pbx.CallRef) error { s.record("hold " + c.ID); return nil }
func (s *stubNode) Retrieve(_ context.Context, c pbx.CallRef) error {
	s.record("retrieve " + c.ID)
	return nil
}
func (s *stubNode) ClearConnection(_ context.Context, c pbx.CallRef) error {
	s.record("clear " + c.ID)
	return nil
}
func (s *stubNode) ClearCall(_ context.Context, c pbx.CallRef) error {
	s.record("clearcall " + c.ID)
	return nil
}
func (s *stubNode) SingleStepTransfer(_ context.Context, c pbx.CallRef, d string) error {
	s.record("sst " + c.ID + " " + d)
	return nil
}
func (s *stubNode) Transfer(_ context.Context, h, a pbx.CallRef) error {
	s.record("transfer " + h.ID + " " + a.ID)
	return nil
}
func (s *stubNode) MakeCall(_ context.Context, r pbx.MakeCallRequest) error {
	s.record("makecall " + r.Call.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.makeCall
}

// rig is a cluster of stub nodes running with the test as its core.
type rig struct {
	t       *testing.T
	c       *Cluster
	nodes   map[string]*stubNode
	events  chan pbx.Event
	handled <-chan struct{}
}

func newRig(t *testing.T, exts []pbx.Extension, names ...string) *rig {
	r := &rig{t: t, nodes: map[string]*stubNode{}, events: make(chan pbx.Event, 16)}
	var nodes []Node
	for _, n := range names {
		s := newStub(n)
		r.nodes[n] = s
		nodes = append(nodes, Node{Name: n, PBX: s})
	}
	c, err := New(Options{Nodes: nodes, Server: "FreeSWITCH"})
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	handled := make(chan struct{})
	r.handled = handled
	c.handled = func() {
		select {
		case handled <- struct{}{}:
		case <-time.After(10 * time.Second):
		}
	}
	c.SetExtensions(exts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, r.events) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// feed hands a node's event to the cluster and waits until it was
// handled, so that events of different nodes are handled in test order.
func (r *rig) feed(node string, ev pbx.Event) {
	r.t.Helper()
	select {
	case r.nodes[node].feed <- ev:
	case <-time.After(10 * time.Second):
		r.t.Fatalf("node %s: event %s not taken", node, ev.Kind)
	}
	select {
	case <-r.handled:
	case <-time.After(10 * time.Second):
		r.t.Fatalf("node %s: event %s not handled", node, ev.Kind)
	}
}

// next is the core's next event.
func (r *rig) next() pbx.Event {
	r.t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(10 * time.Second):
		r.t.Fatal("no event reached the core")
		return pbx.Event{}
	}
}

// feedThrough feeds an event that must reach the core unchanged.
func (r *rig) feedThrough(node string, ev pbx.Event) {
	r.t.Helper()
	r.feed(node, ev)
	if got := r.next(); got.Kind != ev.Kind || got.Call != ev.Call {
		r.t.Fatalf("core got %s %s, want %s %s", got.Kind, got.Call, ev.Kind, ev.Call)
	}
}

// start connects the nodes with no calls: the core gets one sync, then
// the link up.
func (r *rig) start(nodes ...string) {
	r.t.Helper()
	for _, n := range nodes {
		r.feed(n, pbx.Event{Kind: pbx.EventSync})
		r.feed(n, pbx.Event{Kind: pbx.EventLink, Up: true})
	}
	if ev := r.next(); ev.Kind != pbx.EventSync || len(ev.Calls) != 0 {
		r.t.Fatalf("core got %s %v, want an empty sync", ev.Kind, refs(ev.Calls))
	}
	if ev := r.next(); ev.Kind != pbx.EventLink || !ev.Up {
		r.t.Fatalf("core got %+v, want the link up", ev)
	}
}

func refs(calls []pbx.CallInfo) []string {
	var out []string
	for _, c := range calls {
		out = append(out, fmt.Sprintf("%s/%s:%s", c.Call.Ext, c.Call.ID, c.State))
	}
	return out
}

var threeExts = []pbx.Extension{{Name: "1001", Node: "fs1"}, {Name: "1002"}, {Name: "1003", Node: "fs2"}}

// A node's sync reaches the core with the other nodes' calls in it, in the
// state the core has them (a hold the bridge did comes from the command),
// so that only the syncing node's ended calls are cleared.
func TestSyncMergesOtherNodes(t *testing.T) {
	r := newRig(t, threeExts, "fs1", "fs2")
	r.start("fs1", "fs2")
	a := pbx.CallRef{Ext: "1001", ID: "a"}
	b := pbx.CallRef{Ext: "1003", ID: "b"}
	g := pbx.CallRef{Ext: "1001", ID: "gone"}
	r.feedThrough("fs1", pbx.Event{Kind: pbx.EventOffered, Call: a})
	r.feedThrough("fs1", pbx.Event{Kind: pbx.EventOffered, Call: g})
	r.feedThrough("fs2", pbx.Event{Kind: pbx.EventOriginated, Call: b})
	r.feedThrough("fs2", pbx.Event{Kind: pbx.EventConnected, Call: b})
	if err := r.c.Hold(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	// The late report of the bridge's own hold changes nothing.
	r.feedThrough("fs2", pbx.Event{Kind: pbx.EventRetrieved, Call: b})
	if got := r.nodes["fs2"].commands(); !slices.Equal(got, []string{"hold b"}) {
		t.Errorf("fs2 commands %v", got)
	}
	if got := r.nodes["fs1"].commands(); len(got) != 0 {
		t.Errorf("fs1 commands %v", got)
	}

	// fs1 reconnects: "gone" ended meanwhile, "a" is still ringing.
	r.feed("fs1", pbx.Event{Kind: pbx.EventLink, Up: false, Reason: "reset"})
	r.feed("fs1", pbx.Event{Kind: pbx.EventSync, Calls: []pbx.CallInfo{{Call: a, State: pbx.StateAlerting}}})
	ev := r.next()
	want := []string{"1001/a:alerting", "1003/b:held"}
	if ev.Kind != pbx.EventSync || !slices.Equal(refs(ev.Calls), want) {
		t.Fatalf("core got %s %v, want sync %v", ev.Kind, refs(ev.Calls), want)
	}
	// "gone" belongs to nobody now: its late end reaches no core.
	r.feed("fs1", pbx.Event{Kind: pbx.EventCleared, Call: g})
	r.feedThrough("fs1", pbx.Event{Kind: pbx.EventConnected, Call: a})
	if err := r.c.Answer(context.Background(), g); !errors.Is(err, pbx.ErrNoSuchCall) {
		t.Errorf("answer of a call that vanished: %v", err)
	}
	st := r.c.Nodes()
	if len(st) != 2 || st[0].Name != "fs1" || st[0].Up || !st[1].Up || st[0].Calls != 1 || st[1].Calls != 1 ||
		st[0].Extensions != 1 || st[1].Extensions != 1 {
		t.Errorf("nodes %+v", st)
	}
}

// The core's first sync holds the calls of every node: it waits for each
// node's sync (or its failure to connect), and the link is reported up
// only after it, and once every node that synced reported its link, so the
// core is never ready without the calls a previous bridge left, nor before
// their node takes commands.
func TestFirstSyncWaitsForEveryNode(t *testing.T) {
	r := newRig(t, threeExts, "fs1", "fs2")
	a := pbx.CallInfo{Call: pbx.CallRef{Ext: "1001", ID: "a"}, State: pbx.StateConnected, CSTAID: -3}
	b := pbx.CallInfo{Call: pbx.CallRef{Ext: "1003", ID: "b"}, State: pbx.StateHeld, CSTAID: 2}
	r.feed("fs1", pbx.Event{Kind: pbx.EventSync, Calls: []pbx.CallInfo{a}})
	r.feed("fs1", pbx.Event{Kind: pbx.EventLink, Up: true})
	// A new call on fs1 meanwhile reaches the core at once.
	r.feedThrough("fs1", pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "1001", ID: "new"}})
	r.feed("fs2", pbx.Event{Kind: pbx.EventSync, Calls: []pbx.CallInfo{b}})
	ev := r.next()
	want := []string{"1001/a:connected", "1001/new:alerting", "1003/b:held"}
	if ev.Kind != pbx.EventSync || !slices.Equal(refs(ev.Calls), want) {
		t.Fatalf("core got %s %v, want sync %v", ev.Kind, refs(ev.Calls), want)
	}
	// fs2 synced but has not reported its link: the core would send it
	// commands on b the moment it is ready.
	r.feed("fs2", pbx.Event{Kind: pbx.EventLink, Up: true})
	if ev := r.next(); ev.Kind != pbx.EventLink || !ev.Up {
		t.Fatalf("core got %+v, want the link up", ev)
	}
	r.feedThrough("fs2", pbx.Event{Kind: pbx.EventHeld, Call: b.Call, ByPhone: true})
}

// The link is up while any node is; down names every node's reason.
func TestLinkAggregate(t *testing.T) {
	r := newRig(t, threeExts, "fs1", "fs2")
	r.feed("fs1", pbx.Event{Kind: pbx.EventLink, Up: false, Reason: "refused"})
	if ev := r.next(); ev.Kind != pbx.EventLink || ev.Up || ev.Reason != "fs1: refused; fs2: connecting" {
		t.Fatalf("%+v", ev)
	}
	// fs1 is known down: fs2's sync is the first, without waiting for fs1.
	r.feed("fs2", pbx.Event{Kind: pbx.EventSync})
	if ev := r.next(); ev.Kind != pbx.EventSync {
		t.Fatalf("%+v", ev)
	}
	r.feed("fs2", pbx.Event{Kind: pbx.EventLink, Up: true})
	if ev := r.next(); !ev.Up {
		t.Fatalf("%+v", ev)
	}
	r.feed("fs1", pbx.Event{Kind: pbx.EventSync})
	if ev := r.next(); ev.Kind != pbx.EventSync {
		t.Fatalf("%+v", ev)
	}
	r.feed("fs1", pbx.Event{Kind: pbx.EventLink, Up: true})
	r.feed("fs1", pbx.Event{Kind: pbx.EventLink, Up: false, Reason: "reset"})
	r.feed("fs2", pbx.Event{Kind: pbx.EventLink, Up: false, Reason: "timeout"})
	if ev := r.next(); ev.Up || ev.Reason != "fs1: reset; fs2: timeout" {
		t.Fatalf("%+v", ev)
	}
	st := r.c.Nodes()
	if st[0].Up || st[0].Detail != "reset" || st[1].Detail != "timeout" {
		t.Errorf("nodes %+v", st)
	}
}

// An unpinned extension is served where its device registered: a leg of it
// on another node (a trunk leg that looks like it) is not its call; a move
// to another node is not a log-off; MakeCall goes to the newest node.
func TestRegistrationsDecideTheNode(t *testing.T) {
	r := newRig(t, threeExts, "fs1", "fs2", "fs3")
	for _, n := range []string{"fs1", "fs2", "fs3"} {
		if got := r.nodes[n].exts; n == "fs3" && !slices.Equal(got, []string{"1002"}) {
			t.Errorf("%s maps %v", n, got)
		}
	}
	if got := r.nodes["fs1"].exts; !slices.Equal(got, []string{"1001", "1002"}) {
		t.Errorf("fs1 maps %v", got)
	}
	dev := func(reg bool) pbx.Event {
		return pbx.Event{Kind: pbx.EventDevice, Call: pbx.CallRef{Ext: "1002"}, Registered: reg}
	}
	r.feedThrough("fs2", dev(true))
	r.feed("fs3", dev(true)) // registered on a second node: no second log-on
	r.feed("fs2", dev(false))
	r.feed("fs1", pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "1002", ID: "trunk"}})
	r.feedThrough("fs3", pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "1002", ID: "real"}})

	mc := pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1002", ID: "mc-1"}, Destination: "9196"}
	if err := r.c.MakeCall(context.Background(), mc); err != nil {
		t.Fatal(err)
	}
	if got := r.nodes["fs3"].commands(); !slices.Equal(got, []string{"makecall mc-1"}) {
		t.Errorf("fs3 commands %v", got)
	}
	r.feedThrough("fs3", dev(false))
	if st := r.c.Nodes(); st[2].Extensions != 0 || st[2].Calls != 2 {
		t.Errorf("nodes %+v", st)
	}
}

// With nothing known of an unpinned extension, MakeCall tries the nodes
// in turn while they do not have the device; any other failure ends it.
func TestMakeCallFindsTheDevice(t *testing.T) {
	r := newRig(t, threeExts, "fs1", "fs2", "fs3")
	notReg := fmt.Errorf("esl: make call: esl: originate: -ERR USER_NOT_REGISTERED: %w", pbx.ErrDeviceUnreachable)
	r.nodes["fs1"].makeCall = notReg
	r.nodes["fs2"].makeCall = fmt.Errorf("esl: originate: -ERR CALL_REJECTED: %w", pbx.ErrDeviceUnreachable)
	r.start("fs1", "fs2", "fs3")
	mc := pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1002", ID: "mc-1"}, Destination: "9196"}
	if err := r.c.MakeCall(context.Background(), mc); !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Fatalf("MakeCall: %v", err)
	}
	if got := r.nodes["fs3"].commands(); len(got) != 0 {
		t.Errorf("the device refused on fs2 but fs3 was tried too: %v", got)
	}
	r.nodes["fs2"].makeCall = notReg
	mc.Call.ID = "mc-2"
	if err := r.c.MakeCall(context.Background(), mc); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string][]string{"fs1": {"makecall mc-1", "makecall mc-2"},
		"fs2": {"makecall mc-1", "makecall mc-2"}, "fs3": {"makecall mc-2"}} {
		if got := r.nodes[n].commands(); !slices.Equal(got, want) {
			t.Errorf("%s commands %v, want %v", n, got, want)
		}
	}
	// The call is fs3's: its commands go there.
	if err := r.c.ClearConnection(context.Background(), mc.Call); err != nil {
		t.Fatal(err)
	}
	if got := r.nodes["fs3"].commands(); got[len(got)-1] != "clear mc-2" {
		t.Errorf("fs3 commands %v", got)
	}
	// A pinned extension's MakeCall goes to its node only.
	pinned := pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1001", ID: "mc-3"}, Destination: "9196"}
	if err := r.c.MakeCall(context.Background(), pinned); !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Fatalf("MakeCall: %v", err)
	}
	if got := r.nodes["fs2"].commands(); slices.Contains(got, "makecall mc-3") {
		t.Errorf("pinned extension's MakeCall tried elsewhere: %v", got)
	}
}

// Transfer joins two calls of one node; calls on two nodes are refused
// with a fault that names them.
func TestTransferAcrossNodesRefused(t *testing.T) {
	exts := []pbx.Extension{{Name: "1002"}}
	r := newRig(t, exts, "fs1", "fs2")
	h := pbx.CallRef{Ext: "1002", ID: "h"}
	a := pbx.CallRef{Ext: "1002", ID: "a"}
	a1 := pbx.CallRef{Ext: "1002", ID: "a1"}
	r.feedThrough("fs1", pbx.Event{Kind: pbx.EventOffered, Call: h})
	r.feedThrough("fs2", pbx.Event{Kind: pbx.EventOffered, Call: a})
	r.feedThrough("fs1", pbx.Event{Kind: pbx.EventOffered, Call: a1})
	err := r.c.Transfer(context.Background(), h, a)
	if !errors.Is(err, pbx.ErrNotSupported) || err.Error() !=
		"cluster: transfer 1002/h and 1002/a: the calls are on two FreeSWITCH nodes (fs1 and fs2): not supported for this call" {
		t.Fatalf("Transfer: %v", err)
	}
	if err := r.c.Transfer(context.Background(), h, a1); err != nil {
		t.Fatal(err)
	}
	if got := r.nodes["fs1"].commands(); !slices.Equal(got, []string{"transfer h a1"}) {
		t.Errorf("fs1 commands %v", got)
	}
}

// A node that reports its link before its sync is ready with it.
func TestLinkBeforeSync(t *testing.T) {
	r := newRig(t, threeExts, "fs1")
	r.feed("fs1", pbx.Event{Kind: pbx.EventLink, Up: true})
	r.feed("fs1", pbx.Event{Kind: pbx.EventSync})
	if ev := r.next(); ev.Kind != pbx.EventSync {
		t.Fatalf("core got %+v, want the sync", ev)
	}
	if ev := r.next(); ev.Kind != pbx.EventLink || !ev.Up {
		t.Fatalf("core got %+v, want the link up", ev)
	}
}

// A reload that moves a pin gives the extension to its new node only; an
// extension unpinned goes to every node and keeps its registrations.
func TestSetExtensionsMovesPins(t *testing.T) {
	r := newRig(t, threeExts, "fs1", "fs2")
	r.start("fs1", "fs2")
	r.feedThrough("fs2", pbx.Event{Kind: pbx.EventDevice, Call: pbx.CallRef{Ext: "1002"}, Registered: true})
	if st := r.c.Nodes(); st[0].Extensions != 1 || st[1].Extensions != 2 {
		t.Fatalf("nodes %+v", st)
	}
	r.c.SetExtensions([]pbx.Extension{{Name: "1001", Node: "fs2"}, {Name: "1002"}, {Name: "1003"}})
	for n, want := range map[string][]string{"fs1": {"1002", "1003"}, "fs2": {"1001", "1002", "1003"}} {
		r.nodes[n].mu.Lock()
		got := slices.Clone(r.nodes[n].exts)
		r.nodes[n].mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("%s maps %v, want %v", n, got, want)
		}
	}
	if st := r.c.Nodes(); st[0].Extensions != 0 || st[1].Extensions != 2 {
		t.Errorf("nodes %+v", st)
	}
	// 1003 is unpinned now and registered nowhere known: a leg on fs1 is its call.
	r.feedThrough("fs1", pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "1003", ID: "x"}})
	// 1002 is registered on fs2 only: a leg on fs1 is not its call.
	r.feed("fs1", pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "1002", ID: "trunk"}})
	r.feedThrough("fs2", pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "1002", ID: "y"}})
}
