package esl

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// TestIntegration runs against a real FreeSWITCH (see README.md):
// CSTA_TEST_ESL_ADDR, CSTA_TEST_ESL_PASS, CSTA_TEST_ESL_ENDPOINTS and
// optionally CSTA_TEST_ESL_CONTEXT.
func TestIntegration(t *testing.T) {
	addr, pass := os.Getenv("CSTA_TEST_ESL_ADDR"), os.Getenv("CSTA_TEST_ESL_PASS")
	if addr == "" || pass == "" {
		t.Skip("set CSTA_TEST_ESL_ADDR and CSTA_TEST_ESL_PASS to test against a real FreeSWITCH")
	}
	context_ := os.Getenv("CSTA_TEST_ESL_CONTEXT")
	if context_ == "" {
		context_ = "default"
	}
	var exts []pbx.Extension
	for _, ep := range strings.Split(os.Getenv("CSTA_TEST_ESL_ENDPOINTS"), ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			exts = append(exts, pbx.Extension{Name: userPart(ep), Endpoint: ep})
		}
	}
	a, err := New(Options{Address: addr, Password: pass, Context: context_,
		Logger: slog.New(slog.NewTextHandler(&testWriter{t: t, ok: true}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a.SetExtensions(exts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := make(chan pbx.Event, 256)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, events) }()
	defer func() {
		cancel()
		<-done
	}()

	next := func(kind pbx.EventKind, ok func(pbx.Event) bool) pbx.Event {
		t.Helper()
		for {
			select {
			case e := <-events:
				t.Logf("event %v %v %+v", e.Kind, e.Call, e.Remote)
				if e.Kind == pbx.EventLink && !e.Up {
					t.Fatalf("link down: %s", e.Reason)
				}
				if e.Kind == kind && (ok == nil || ok(e)) {
					return e
				}
			case <-ctx.Done():
				t.Fatalf("no %v event", kind)
			}
		}
	}
	next(pbx.EventLink, nil)
	sync := next(pbx.EventSync, nil)
	t.Logf("%d live calls of the configured extensions", len(sync.Calls))
	if !a.Ready() {
		t.Fatal("not ready after sync")
	}
	if len(exts) < 2 {
		return
	}
	call := pbx.CallRef{Ext: exts[0].Name, ID: "integration-" + newUUID()}
	err = a.MakeCall(ctx, pbx.MakeCallRequest{Call: call, CSTAID: 1, Destination: exts[1].Name, AutoAnswer: true})
	if errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Skipf("device %s not reachable: %v", exts[0].Endpoint, err)
	}
	if err != nil {
		t.Fatalf("MakeCall: %v", err)
	}
	next(pbx.EventOriginated, func(e pbx.Event) bool { return e.Call == call })
	next(pbx.EventOffered, func(e pbx.Event) bool { return e.Call.Ext == exts[1].Name })
	if err := a.ClearCall(ctx, call); err != nil {
		t.Fatalf("ClearCall: %v", err)
	}
	next(pbx.EventCleared, func(e pbx.Event) bool { return e.Call == call })
}
