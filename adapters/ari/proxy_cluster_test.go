package ari

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

var clusterExts = []pbx.Extension{
	{Name: "1001", Endpoint: "PJSIP/1001"},
	{Name: "1002", Endpoint: "PJSIP/1002", Node: "ast1"},
	{Name: "1003", Endpoint: "PJSIP/1003", AutoAnswerHeaders: []string{"Call-Info: <sip:pbx>;answer-after=0"}},
	{Name: "1004", Endpoint: "PJSIP/1004", AutoAnswerHeaders: []string{"Call-Info: <sip:pbx>;answer-after=0"}},
	{Name: "1005", Endpoint: "PJSIP/1005"},
}

func twoNodes() map[string][]string {
	return map[string][]string{
		"ast1": {"PJSIP/1001", "PJSIP/1002"},
		"ast2": {"PJSIP/1003", "PJSIP/1004"},
	}
}

// A call on each Asterisk reaches the core from its node; commands go to
// the node that has the call; MakeCall goes to the node where the phone
// is registered; a node announced later joins.
func TestProxyClusterCallsOnEveryNode(t *testing.T) {
	r := newProxyRig(t, clusterExts, twoNodes(), "ast1", "ast2")
	f1, f2 := r.fakes["ast1"], r.fakes["ast2"]

	// ast1: 1001 calls 1002, routed through Stasis there.
	a1 := f1.PhoneDials("PJSIP/1001", "1002")
	r.waitKind("1001", pbx.EventOriginated)
	off := r.waitKind("1002", pbx.EventOffered)
	if err := f1.Answer(off.Call.ID); err != nil {
		t.Fatal(err)
	}
	r.waitBothConnected(off.Call, pbx.CallRef{Ext: "1001", ID: a1})

	// ast2: 1003 calls 1004; the CTI answers 1004 (auto-answer swap on ast2).
	a2 := f2.PhoneDials("PJSIP/1003", "1004")
	off2 := r.waitKind("1004", pbx.EventOffered)
	f2.SetAutoAnswer("PJSIP/1004", true) // the bridge's answer call only
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := len(f1.Requests())
	if err := r.pc.Answer(ctx, off2.Call); err != nil {
		t.Fatalf("answer on ast2: %v", err)
	}
	r.waitBothConnected(pbx.CallRef{Ext: "1004", ID: off2.Call.ID}, pbx.CallRef{Ext: "1003", ID: a2})
	// (Channel ids are not unique across Asterisks: the fakes both number
	// their first channel alike, so only ast2 may have seen the answer.)
	for _, q := range f1.Requests()[before:] {
		if q.String() != "GET /asterisk/info" {
			t.Errorf("ast1 got a request while ast2's call was answered: %v", q)
		}
	}
	if o, ok := lastOriginate(f2); !ok || o.Params["endpoint"] != "PJSIP/1004" {
		t.Errorf("ast2's last originate %+v, want the answer call to PJSIP/1004", o)
	}

	// MakeCall of an unpinned extension goes where its phone is.
	f2.SetAutoAnswer("PJSIP/1003", true)
	if err := r.pc.MakeCall(ctx, pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1003", ID: "mc-1"}, Destination: "1001",
		AutoAnswer: true}); err != nil {
		t.Fatalf("MakeCall 1003: %v", err)
	}
	if o, ok := lastOriginate(f2); !ok || o.Params["endpoint"] != "PJSIP/1003" {
		t.Errorf("ast2's last originate %+v, want PJSIP/1003", o)
	}
	for _, q := range f1.Requests() {
		if q.Params["endpoint"] == "PJSIP/1003" {
			t.Errorf("ast1 was asked to call 1003: %v", q)
		}
	}
	r.waitKind("1003", pbx.EventOriginated)

	// A third Asterisk whose proxy starts now is found and serves 1005.
	r.addNode(t, "ast3", []string{"PJSIP/1005"})
	r.waitNode("ast3", true)
	r.fakes["ast3"].SetAutoAnswer("PJSIP/1005", true)
	if err := r.pc.MakeCall(ctx, pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1005", ID: "mc-2"}, Destination: "1001"}); err != nil {
		t.Fatalf("MakeCall 1005: %v", err)
	}
	if o, ok := lastOriginate(r.fakes["ast3"]); !ok || o.Params["endpoint"] != "PJSIP/1005" {
		t.Errorf("ast3's last originate %+v, want PJSIP/1005", o)
	}
	r.waitKind("1005", pbx.EventOriginated)
	names := []string{}
	for _, n := range r.pc.Nodes() {
		names = append(names, n.Name)
		if !n.Up {
			t.Errorf("node %s down: %s", n.Name, n.Detail)
		}
	}
	if !slices.Equal(names, []string{"ast1", "ast2", "ast3"}) {
		t.Errorf("nodes %v", names)
	}
}

// connectedOn routes from → to through Stasis on one node's fake and
// waits until both legs are connected; it returns the caller's and the
// callee's connections.
func (r *proxyRig) connectedOn(node, from, to string) (pbx.CallRef, pbx.CallRef) {
	r.t.Helper()
	f := r.fakes[node]
	aID := f.PhoneDials("PJSIP/"+from, to)
	off := r.waitKind(to, pbx.EventOffered)
	if err := f.Answer(off.Call.ID); err != nil {
		r.t.Fatal(err)
	}
	a := pbx.CallRef{Ext: from, ID: aID}
	r.waitBothConnected(off.Call, a)
	return a, off.Call
}

// One proxy (its Asterisk unreachable) goes: only its node is down, the
// other node's calls and commands go on, and when it is back its resync
// clears the calls that ended meanwhile and keeps the live ones.
func TestProxyClusterNodeLost(t *testing.T) {
	nodes := map[string][]string{
		"ast1": {"PJSIP/1001", "PJSIP/1002"},
		"ast2": {"PJSIP/1003", "PJSIP/1004", "PJSIP/1005"},
	}
	exts := append(slices.Clone(clusterExts[:4]), pbx.Extension{Name: "1005", Endpoint: "PJSIP/1005"})
	r := newProxyRig(t, exts, nodes, "ast1", "ast2")
	a1, b1 := r.connectedOn("ast1", "1001", "1002")
	a2, b2 := r.connectedOn("ast2", "1003", "1004")
	f2 := r.fakes["ast2"]
	// A second call on ast2 that ends while its proxy is away.
	c2 := f2.PhoneDials("PJSIP/1005", "1004")
	r.waitKind("1005", pbx.EventOriginated)

	r.proxies["ast2"].stop()
	r.waitNode("ast2", false)
	for _, n := range r.pc.Nodes() {
		if n.Name == "ast1" && !n.Up {
			t.Fatalf("ast1 down with ast2: %+v", n)
		}
	}
	if err := f2.Hangup(c2, 16); err != nil {
		t.Fatal(err)
	}
	// ast1 still takes commands.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.pc.Hold(ctx, b1); err != nil {
		t.Fatalf("hold on ast1 while ast2 is away: %v", err)
	}
	r.waitEvent("1002 held", func(ev pbx.Event) bool { return ev.Kind == pbx.EventHeld && ev.Call == b1 })
	if err := r.pc.Hold(ctx, b2); err == nil {
		t.Error("hold on ast2 while its proxy is away succeeded")
	}

	r.proxies["ast2"] = startTestProxy(t, f2, r.nats.url())
	r.waitNode("ast2", true)
	// Its resync ends 1005's call, and only that.
	sync := r.waitEvent("ast2's resync", func(ev pbx.Event) bool { return ev.Kind == pbx.EventSync })
	live := map[pbx.CallRef]bool{}
	for _, ci := range sync.Calls {
		live[ci.Call] = true
	}
	for _, ref := range []pbx.CallRef{a1, b1, a2, b2} {
		if !live[ref] {
			t.Errorf("%s missing from the sync after ast2 came back: %+v", ref, sync.Calls)
		}
	}
	if live[pbx.CallRef{Ext: "1005", ID: c2}] {
		t.Errorf("1005's ended call still in the sync")
	}
	if err := r.pc.Retrieve(ctx, b1); err != nil {
		t.Fatalf("retrieve on ast1: %v", err)
	}
	// (The core applies a command's outcome itself; the far party's end
	// is the event.)
	if err := r.pc.ClearConnection(ctx, b2); err != nil {
		t.Fatalf("clear on ast2 after its return: %v", err)
	}
	r.waitEvent("1003 cleared", func(ev pbx.Event) bool { return ev.Kind == pbx.EventCleared && ev.Call == a2 })
}

// NATS itself restarts: every node resyncs when it is back, the calls
// live across it are kept, and the bridge is ready again within the
// reconnect time (logged; the bound is what the product promises, 5 s,
// checked loosely here as the machine is shared).
func TestProxyClusterNATSRestart(t *testing.T) {
	r := newProxyRig(t, clusterExts, twoNodes(), "ast1", "ast2")
	a1, b1 := r.connectedOn("ast1", "1001", "1002")
	a2, b2 := r.connectedOn("ast2", "1003", "1004")

	r.nats.stop()
	r.waitEvent("link down", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && !ev.Up })
	start := time.Now()
	r.nats.start()
	r.waitEvent("link up", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && ev.Up })
	t.Logf("NATS back → bridge ready in %s", time.Since(start).Round(time.Millisecond))
	r.waitNode("ast1", true)
	r.waitNode("ast2", true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ref := range []pbx.CallRef{b1, b2} {
		if err := r.pc.Hold(ctx, ref); err != nil {
			t.Fatalf("hold %s after the NATS restart: %v", ref, err)
		}
	}
	for _, ref := range []pbx.CallRef{a1, a2} {
		if err := r.pc.ClearConnection(ctx, ref); err != nil {
			t.Fatalf("clear %s after the NATS restart: %v", ref, err)
		}
	}
	r.collect(clearedAll("1002", "1004"))
}
