package ari

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// TestIntegrationRealAsterisk runs the MakeCall → hold → retrieve → clear
// scenario against a real Asterisk. See README.md for the variables.
func TestIntegrationRealAsterisk(t *testing.T) {
	url := os.Getenv("CSTA_TEST_ARI_URL")
	if url == "" {
		t.Skip("CSTA_TEST_ARI_URL not set: no Asterisk to test against")
	}
	eps := strings.Split(os.Getenv("CSTA_TEST_ARI_ENDPOINTS"), ",")
	if len(eps) < 2 {
		t.Fatal("CSTA_TEST_ARI_ENDPOINTS needs two endpoints, e.g. PJSIP/1001,PJSIP/1002")
	}
	context_ := os.Getenv("CSTA_TEST_ARI_CONTEXT")
	if context_ == "" {
		context_ = "from-internal"
	}
	var exts []pbx.Extension
	for _, ep := range eps {
		ep = strings.TrimSpace(ep)
		_, name, _ := strings.Cut(ep, "/")
		exts = append(exts, pbx.Extension{Name: name, Endpoint: ep, AutoAnswerHeaders: []string{
			"Call-Info: <sip:pbx>;answer-after=0", "Alert-Info: <http://pbx>;info=alert-autoanswer;delay=0"}})
	}
	dest := os.Getenv("CSTA_TEST_ARI_DEST")
	if dest == "" {
		dest = exts[1].Name
	}
	a, err := New(Options{
		URL: url, Username: os.Getenv("CSTA_TEST_ARI_USER"), Password: os.Getenv("CSTA_TEST_ARI_PASS"),
		Application: os.Getenv("CSTA_TEST_ARI_APP"), Context: context_, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	a.SetExtensions(exts)
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan pbx.Event, 1000)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, events) }()
	defer func() {
		cancel()
		<-done
	}()
	h := &harness{t: t, a: a, events: events}
	h.waitEvent("sync", func(ev pbx.Event) bool { return ev.Kind == pbx.EventSync })
	h.waitEvent("link up", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && ev.Up })

	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	ref := pbx.CallRef{Ext: exts[0].Name, ID: "itest-" + time.Now().Format("150405")}
	if err := a.MakeCall(cctx, pbx.MakeCallRequest{Call: ref, CSTAID: 1, Destination: dest, AutoAnswer: true}); err != nil {
		t.Fatalf("MakeCall: %v", err)
	}
	h.waitEvent("originated", func(ev pbx.Event) bool { return ev.Kind == pbx.EventOriginated && ev.Call == ref })
	h.waitEvent("connected", func(ev pbx.Event) bool { return ev.Kind == pbx.EventConnected && ev.Call == ref })
	if err := a.Hold(cctx, ref); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	h.waitEvent("held", func(ev pbx.Event) bool { return ev.Kind == pbx.EventHeld && ev.Call == ref })
	if err := a.Retrieve(cctx, ref); err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	h.waitEvent("retrieved", func(ev pbx.Event) bool { return ev.Kind == pbx.EventRetrieved && ev.Call == ref })
	if err := a.ClearCall(cctx, ref); err != nil {
		t.Fatalf("ClearCall: %v", err)
	}
	h.waitEvent("cleared", func(ev pbx.Event) bool { return ev.Kind == pbx.EventCleared && ev.Call == ref })
}
