package ari

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// refused checks that a command was turned down with sentinel want and a
// message naming the command, the connection and why.
func refused(t *testing.T, err, want error, op string, c pbx.CallRef, why string) {
	t.Helper()
	prefix := "ari: " + op + " " + c.String() + ": "
	if !errors.Is(err, want) || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), why) {
		t.Errorf("%s %s = %v, want %v starting %q and saying %q", op, c, err, want, prefix, why)
	}
}

// Commands that change a connection check it before they ask Asterisk
// anything: the connection must exist and be in a state the command
// accepts, and a refusal leaves it free for the next command.
func TestCommandRefusalsByState(t *testing.T) {
	h := newHarness(t)
	_, talking := ownedConnected(t, h, "1001") // 1002 connected
	_, ringing := ownedRinging(t, h, "1003")   // and a second call alerting at 1002
	gone := pbx.CallRef{Ext: "1002", ID: "no-such-call"}
	ctx := ctxT(t)
	n := len(h.fake.Requests())

	refused(t, h.a.Answer(ctx, talking), pbx.ErrInvalidState, "answer", talking, "(state connected)")
	refused(t, h.a.Hold(ctx, ringing), pbx.ErrInvalidState, "hold", ringing, "(state alerting)")
	refused(t, h.a.Retrieve(ctx, talking), pbx.ErrInvalidState, "retrieve", talking, "(state connected)")
	refused(t, h.a.SingleStepTransfer(ctx, ringing, "1003"), pbx.ErrInvalidState, "single step transfer", ringing, "(state alerting)")
	// Either end of a transfer is checked, and named when refused.
	refused(t, h.a.Transfer(ctx, ringing, talking), pbx.ErrInvalidState, "transfer", ringing, "(state alerting)")
	if err := h.a.Transfer(ctx, talking, talking); !errors.Is(err, pbx.ErrInvalidState) || !strings.Contains(err.Error(), "two different calls") {
		t.Errorf("transfer of a call to itself = %v", err)
	}
	for op, err := range map[string]error{
		"answer":               h.a.Answer(ctx, gone),
		"hold":                 h.a.Hold(ctx, gone),
		"retrieve":             h.a.Retrieve(ctx, gone),
		"single step transfer": h.a.SingleStepTransfer(ctx, gone, "1003"),
	} {
		refused(t, err, pbx.ErrNoSuchCall, op, gone, "no such call")
	}
	refused(t, h.a.Transfer(ctx, talking, gone), pbx.ErrNoSuchCall, "transfer", gone, "no such call")
	refused(t, h.a.Transfer(ctx, gone, ringing), pbx.ErrNoSuchCall, "transfer", gone, "no such call")

	if got := h.fake.Requests()[n:]; len(got) != 0 {
		t.Errorf("refused commands reached Asterisk: %+v", got)
	}
	// Nothing was left claimed.
	if err := h.a.Hold(ctx, talking); err != nil {
		t.Fatalf("Hold after the refusals: %v", err)
	}
	h.waitEvent("held", func(ev pbx.Event) bool { return ev.Kind == pbx.EventHeld && ev.Call == talking })
}

// A command under way holds its connection: every other command that
// changes it is refused at once, without a request to Asterisk, and the
// connection is free again when the first command ends, even by failing.
func TestCommandRefusedWhileAnotherRuns(t *testing.T) {
	// The stalled request must end only when the test cancels it.
	h := newHarness(t, func(o *Options) { o.RequestTimeout = time.Minute })
	_, talking := ownedConnected(t, h, "1001")
	_, ringing := ownedRinging(t, h, "1003")
	gone := pbx.CallRef{Ext: "1002", ID: "no-such-call"}
	ctx := ctxT(t)

	h.fake.SetDelay(time.Hour)
	hctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	first := make(chan error, 1)
	go func() { first <- h.a.Hold(hctx, talking) }()
	waitFake(t, h.fake, "hold under way", func() bool {
		_, ok := lastRequest(h.fake, "POST", "/removeChannel")
		return ok
	})
	n := len(h.fake.Requests())

	const busy = "another request on this call is in progress"
	// Refused as busy even where the state would refuse it too (answer,
	// retrieve): the claim is checked first.
	refused(t, h.a.Hold(ctx, talking), pbx.ErrInvalidState, "hold", talking, busy)
	refused(t, h.a.Retrieve(ctx, talking), pbx.ErrInvalidState, "retrieve", talking, busy)
	refused(t, h.a.Answer(ctx, talking), pbx.ErrInvalidState, "answer", talking, busy)
	refused(t, h.a.SingleStepTransfer(ctx, talking, "1003"), pbx.ErrInvalidState, "single step transfer", talking, busy)
	refused(t, h.a.Transfer(ctx, talking, ringing), pbx.ErrInvalidState, "transfer", talking, busy)
	// The busy active call is named, not the held one in the wrong state.
	refused(t, h.a.Transfer(ctx, ringing, talking), pbx.ErrInvalidState, "transfer", talking, busy)
	// A connection that is gone is named before one that is busy.
	refused(t, h.a.Transfer(ctx, talking, gone), pbx.ErrNoSuchCall, "transfer", gone, "no such call")
	if got := h.fake.Requests()[n:]; len(got) != 0 {
		t.Errorf("refused commands reached Asterisk: %+v", got)
	}

	// Asterisk gets quick again before the CTI client gives up, so the
	// cancelled hold's undo (putting back the far party the unanswered
	// removal may have taken out) is answered.
	h.fake.SetDelay(0)
	cancel()
	if err := <-first; !errors.Is(err, pbx.ErrUnavailable) {
		t.Fatalf("cancelled Hold = %v, want ErrUnavailable", err)
	}
	if got := h.fake.Requests()[n:]; len(got) != 1 || got[0].Method != "POST" || !strings.HasSuffix(got[0].Path, "/addChannel") {
		t.Errorf("requests after the cancel %v, want the far party put back into the bridge", got)
	}
	// The transfer refused as busy did not keep the ringing call claimed:
	// now its state is what refuses it.
	refused(t, h.a.Transfer(ctx, ringing, talking), pbx.ErrInvalidState, "transfer", ringing, "(state alerting)")
	if err := h.a.Hold(ctx, talking); err != nil {
		t.Fatalf("Hold after the failed one: %v", err)
	}
	h.waitEvent("held", func(ev pbx.Event) bool { return ev.Kind == pbx.EventHeld && ev.Call == talking })
}
