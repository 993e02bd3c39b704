package esl

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakefs"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// TestTableFakeFreeSWITCH plays the scenario table on the fake
// FreeSWITCH (internal/fakefs), through the whole bridge: what CI checks
// of the rows the real FreeSWITCH plays (TestTableRealFreeSWITCH). The
// fake lists a channel in `show channels` only 200 ms after it was
// created, as the real one's core database does, so the restart rows
// find their calls the way they do on a real FreeSWITCH (issue 19).
func TestTableFakeFreeSWITCH(t *testing.T) {
	exts := [3]string{"1001", "1002", "1003"}
	f, err := fakefs.New(fakefs.Options{Captures: "testdata",
		// 1009 is a phone no extension maps: the caller from outside.
		Users: []string{exts[0], exts[1], exts[2], fakeOutsideCaller},
		// The vanilla dialplan's echo, music on hold and conference room;
		// 78<ext> answers, plays a prompt and transfers to <ext>; 79<ext><ext>
		// rings both (a ring group); 76<ext> calls <ext> with X-Customer: 4711.
		Apps: map[string]string{"9196": fakefs.AppEcho, "9664": fakefs.AppMusic, "3000": fakefs.AppConference,
			"78": fakefs.AppTransfer, "79": fakefs.AppRingGroup, "76": fakefs.AppHeader},
		ListDelay: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	b := pbxtest.StartBridge(t, pbxtest.BridgeSetup{
		PBX:    fmt.Sprintf("  type: esl\n  esl: {address: %q, password: ClueCon, context: default}\n", f.Addr()),
		Exts:   map[string]string{exts[0]: "user/" + exts[0], exts[1]: "user/" + exts[1], exts[2]: "user/" + exts[2]},
		Domain: "127.0.0.1",
		Wait:   waitFor,
		NewPBX: func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
			return New(Options{Address: cfg.PBX.ESL.Address, Password: cfg.PBX.ESL.Password, Context: cfg.PBX.ESL.Context,
				// The fake numbers its events without gaps, so the
				// window only holds events whose predecessor a loaded
				// machine delays, and a session's first ones (after a
				// restart): shorter than the recheck's delay (1 s).
				Logger: log, CommandTimeout: 10 * time.Second, ReorderWindow: 250 * time.Millisecond,
				// A loaded CI machine may delay a confirmation; the fake
				// always sends one, so only a hang waits this long.
				ConfirmTimeout: 10 * time.Second,
				// The auto-answer call of the "phone ignores auto-answer"
				// row gives up after originate_timeout=1.
				AnswerTimeout: time.Second,
				// The fake plays no hold music (no PLAYBACK_START), so a
				// retrieve right after a hold waits this long for nothing.
				HoldMusicWait: 50 * time.Millisecond})
		},
	})
	pbxtest.RunTable(t, &fakeFreeSWITCHRig{f: f, b: b, exts: exts}, pbxtest.Scenarios)
}

// fakeOutsideCaller is the fake's phone that calls from outside.
const fakeOutsideCaller = "1009"

// fakeFreeSWITCHRig plays the phones on the fake FreeSWITCH.
type fakeFreeSWITCHRig struct {
	f    *fakefs.FS
	b    *pbxtest.Bridge
	exts [3]string
}

var _ pbxtest.Rig = (*fakeFreeSWITCHRig)(nil)

func (r *fakeFreeSWITCHRig) Ext(x pbxtest.Role) string     { return r.exts[x] }
func (r *fakeFreeSWITCHRig) Bridge() *pbxtest.BridgeClient { return r.b.BridgeClient }
func (r *fakeFreeSWITCHRig) Sink() *pbxtest.ActionSink     { return r.b.Sink }
func (r *fakeFreeSWITCHRig) Process() *pbxtest.Bridge      { return r.b }
func (r *fakeFreeSWITCHRig) Lacks(n pbxtest.Need) string {
	if n == pbxtest.NeedRingGroupAnswer {
		return ringGroupBySwap
	}
	return ""
}

// ringGroupBySwap is why AnswerCall by the auto-answer swap cannot take a
// ring group's call (the fake's phones answer only that way).
const ringGroupBySwap = "FreeSWITCH 1.10.12 drops a caller whose ring-all bridge uuid_bridge takes away (502 " +
	"DESTINATION_OUT_OF_ORDER), so the answer swap refuses a ring group's call; only a phone that takes talk events is answered"

// Has: the fake's dialplan sends a refused call nowhere (no voicemail).
func (r *fakeFreeSWITCHRig) Has(pbxtest.Quirk) bool { return false }

func (r *fakeFreeSWITCHRig) Application(kind string) string {
	return map[string]string{pbxtest.AppEcho: "9196", pbxtest.AppMusic: "9664", pbxtest.AppConference: "3000",
		pbxtest.AppTransfer: "78", pbxtest.AppRingGroup: "79" + r.exts[0] + r.exts[1], pbxtest.AppHeader: "76" + r.exts[0]}[kind]
}

func (r *fakeFreeSWITCHRig) Phone(x pbxtest.Role) pbxtest.Phone {
	return fakefs.TablePhone{FS: r.f, User: r.exts[x]}
}

func (r *fakeFreeSWITCHRig) SetIgnoreAutoAnswer(x pbxtest.Role, ignore bool) {
	r.f.SetIgnoreAutoAnswer(r.exts[x], ignore)
}

// OutsideCall: a phone no extension maps calls ext; it never hangs up by
// itself.
func (r *fakeFreeSWITCHRig) OutsideCall(_ context.Context, ext string) error {
	return r.f.Dial(fakeOutsideCaller, ext)
}

// Settle hangs up every channel left and waits until the fake has none.
func (r *fakeFreeSWITCHRig) Settle(t testing.TB, ctx context.Context) {
	r.f.HangupAll()
	if err := r.f.WaitIdle(ctx); err != nil {
		t.Errorf("settle: %v", err)
	}
}
