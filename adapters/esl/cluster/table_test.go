package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakefs"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// TestTableThroughCluster plays the scenario table through the cluster
// adapter on two fake FreeSWITCH nodes: fs0, listed first, has none of the
// phones; fs1 has them all, unpinned and not registered (phones at fixed
// addresses in its directory: no registration listing or event says where
// they are), so every MakeCall of the table is first refused by fs0
// (USER_NOT_REGISTERED) and placed on fs1, and every restart row resyncs a
// cluster. What the CTI sees must be exactly what it sees on one
// FreeSWITCH. (MakeCall to the node a phone is registered on:
// TestMakeCallOnNodeRegisteredAtStart.)
func TestTableThroughCluster(t *testing.T) {
	exts := [3]string{"1001", "1002", "1003"}
	idle := newFake(t)
	f, err := fakefs.New(fakefs.Options{Captures: "../testdata",
		Static: []string{exts[0], exts[1], exts[2]}, Users: []string{outsideCaller},
		Apps: map[string]string{"9196": fakefs.AppEcho, "9664": fakefs.AppMusic, "3000": fakefs.AppConference,
			"78": fakefs.AppTransfer},
		ListDelay: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	b := pbxtest.StartBridge(t, pbxtest.BridgeSetup{
		PBX: fmt.Sprintf("  type: esl\n  esl:\n    password: ClueCon\n    context: default\n    nodes:\n"+
			"      - {name: fs0, address: %q}\n      - {name: fs1, address: %q}\n", idle.Addr(), f.Addr()),
		Exts:   map[string]string{exts[0]: "user/" + exts[0], exts[1]: "user/" + exts[1], exts[2]: "user/" + exts[2]},
		Domain: "127.0.0.1",
		Wait:   wait,
		NewPBX: newPBX,
	})
	pbxtest.RunTable(t, &tableRig{f: f, b: b, exts: exts}, pbxtest.Scenarios)
	if originates(f, "csta_makecall=true") > 0 && originates(idle, "csta_makecall=true") == 0 {
		t.Error("no MakeCall was tried on the node without the phones first")
	}
}

const outsideCaller = "1009"

// tableRig plays the phones on the fake FreeSWITCH that has them.
type tableRig struct {
	f    *fakefs.FS
	b    *pbxtest.Bridge
	exts [3]string
}

var _ pbxtest.Rig = (*tableRig)(nil)

func (r *tableRig) Ext(x pbxtest.Role) string     { return r.exts[x] }
func (r *tableRig) Bridge() *pbxtest.BridgeClient { return r.b.BridgeClient }
func (r *tableRig) Sink() *pbxtest.ActionSink     { return r.b.Sink }
func (r *tableRig) Process() *pbxtest.Bridge      { return r.b }
func (r *tableRig) Has(pbxtest.Quirk) bool        { return false }

// Lacks: what the fake FreeSWITCH plays; a need added to the table later
// is played here once it is listed.
func (r *tableRig) Lacks(n pbxtest.Need) string {
	if slices.Contains([]pbxtest.Need{pbxtest.NeedIgnoreAutoAnswer, pbxtest.NeedOutsideCaller, pbxtest.NeedDialplan,
		pbxtest.NeedRestartTakeover}, n) {
		return ""
	}
	return "not listed in the cluster rig"
}

func (r *tableRig) Application(kind string) string {
	return map[string]string{pbxtest.AppEcho: "9196", pbxtest.AppMusic: "9664", pbxtest.AppConference: "3000",
		pbxtest.AppTransfer: "78"}[kind]
}

func (r *tableRig) Phone(x pbxtest.Role) pbxtest.Phone {
	return fakefs.TablePhone{FS: r.f, User: r.exts[x]}
}

func (r *tableRig) SetIgnoreAutoAnswer(x pbxtest.Role, ignore bool) {
	r.f.SetIgnoreAutoAnswer(r.exts[x], ignore)
}

func (r *tableRig) OutsideCall(_ context.Context, ext string) error {
	return r.f.Dial(outsideCaller, ext)
}

func (r *tableRig) Settle(t testing.TB, ctx context.Context) {
	r.f.HangupAll()
	if err := r.f.WaitIdle(ctx); err != nil {
		t.Errorf("settle: %v", err)
	}
}
