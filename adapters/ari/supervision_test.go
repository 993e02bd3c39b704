package ari

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func TestUnknownAndMalformedEventsAreSkipped(t *testing.T) {
	h := newHarness(t)
	frames := []string{
		// Event types ari v5.3.1 does not know (it panics on them).
		`{"type":"ChannelToneDetected","timestamp":"2026-11-25T20:44:18.604+0000","channel":{"id":"x.1","name":"PJSIP/1001-000000ff","state":"Up"},"asterisk_id":"02:fc:00:00:00:01","application":"csta-bridge"}`,
		`{"type":"ApplicationRegistered","timestamp":"2026-11-25T20:44:18.604+0000","application":"csta-bridge","asterisk_id":"02:fc:00:00:00:01"}`,
		`{"type":"ChannelTransfer","timestamp":"2026-11-25T20:44:18.604+0000","application":"csta-bridge"}`,
		// Garbage and malformed events.
		`not json at all {`,
		`{}`,
		`{"type":"ChannelCreated"}`,
		`{"type":"Dial","dialstatus":"ANSWER"}`,
		`{"type":"ChannelStateChange","channel":"oops"}`,
		`[1,2,3]`,
	}
	for _, f := range frames {
		if err := h.fake.SendRaw([]byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	// The event flow goes on: a real call right after is reported.
	if err := h.fake.Replay(loadEvents(t, "a_plain_dial_answered")); err != nil {
		t.Fatal(err)
	}
	got := h.collect(clearedAll("1001", "1002"))
	if k := kinds(got["1002"]); k != "offered connected cleared(normal)" {
		t.Errorf("1002: %s", k)
	}
	if n := h.a.unknownEvents.Load(); n < 3 {
		t.Errorf("unknown events counted: %d", n)
	}
	if n := h.a.badFrames.Load(); n < 5 {
		t.Errorf("bad frames counted: %d", n)
	}
	if !h.a.Ready() {
		t.Error("not ready after bad frames")
	}
}

func TestWebsocketDropMidCallResyncs(t *testing.T) {
	h := newHarness(t)
	aID, ref := ownedConnected(t, h, "1001")
	if err := h.a.TagCall(ctxT(t), ref, -4); err != nil {
		t.Fatal(err)
	}
	conns := h.fake.Connections()
	h.fake.DropWebsocket()
	if ev := h.expectKind(pbx.EventLink); ev.Up {
		t.Fatal("want link down")
	}
	sync := h.expectKind(pbx.EventSync)
	h.expectKind(pbx.EventLink)
	waitFake(t, h.fake, "websocket registered", h.fake.Connected)
	if h.fake.Connections() <= conns {
		t.Error("no reconnect")
	}
	want := map[pbx.CallRef]pbx.CallInfo{
		ref:                    {Call: ref, State: pbx.StateConnected, Direction: pbx.Incoming, CSTAID: -4},
		{Ext: "1001", ID: aID}: {Call: pbx.CallRef{Ext: "1001", ID: aID}, State: pbx.StateConnected, Direction: pbx.Outgoing},
	}
	if len(sync.Calls) != 2 {
		t.Fatalf("sync calls %+v", sync.Calls)
	}
	for _, ci := range sync.Calls {
		w, ok := want[ci.Call]
		if !ok || ci.State != w.State || ci.Direction != w.Direction || ci.CSTAID != w.CSTAID {
			t.Errorf("sync has %+v, want %+v", ci, w)
		}
	}
	// The call is still owned after the reconnect.
	if err := h.a.Hold(ctxT(t), ref); err != nil {
		t.Fatalf("Hold after reconnect: %v", err)
	}
	h.waitKind("1002", pbx.EventHeld)
	if err := h.fake.Hangup(aID, 16); err != nil {
		t.Fatal(err)
	}
	h.collect(clearedAll("1001", "1002"))
}

func TestAsteriskRestart(t *testing.T) {
	h := newHarness(t)
	h.fake.PlainDial("PJSIP/1001", "PJSIP/1002")
	h.waitKind("1002", pbx.EventOffered)
	h.fake.Restart()
	h.waitEvent("link down", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && !ev.Up })
	sync := h.waitEvent("sync", func(ev pbx.Event) bool { return ev.Kind == pbx.EventSync })
	if len(sync.Calls) != 0 {
		t.Errorf("calls survived an Asterisk restart: %+v", sync.Calls)
	}
	h.expectKind(pbx.EventLink)
	if subs := h.fake.Subscriptions(); !slices.Equal(subs, []string{"endpoint:PJSIP/1001", "endpoint:PJSIP/1002", "endpoint:PJSIP/1003"}) {
		t.Errorf("subscriptions after restart: %v", subs)
	}
}

func TestBridgeRestartKeepsIDs(t *testing.T) {
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: []string{"PJSIP/1001", "PJSIP/1002", "PJSIP/1003"}})
	t.Cleanup(f.Close)
	h1 := startAdapter(t, f, testOptions(t, f))
	h1.expectKind(pbx.EventSync)
	h1.expectKind(pbx.EventLink)
	waitFake(t, f, "websocket registered", f.Connected)
	aID, ref := ownedRinging(t, h1, "1001")
	f.SetAutoAnswer("PJSIP/1002", true)
	if err := h1.a.Answer(ctxT(t), ref); err != nil {
		t.Fatal(err)
	}
	h1.waitEvent("connected", func(ev pbx.Event) bool { return ev.Kind == pbx.EventConnected && ev.Call == ref })
	if err := h1.a.TagCall(ctxT(t), ref, -9); err != nil {
		t.Fatal(err)
	}
	if err := h1.a.TagCall(ctxT(t), pbx.CallRef{Ext: "1001", ID: aID}, 12); err != nil {
		t.Fatal(err)
	}
	h1.stop()

	h2 := startAdapter(t, f, testOptions(t, f))
	sync := h2.expectKind(pbx.EventSync)
	got := map[pbx.CallRef]int{}
	for _, ci := range sync.Calls {
		got[ci.Call] = ci.CSTAID
	}
	if got[ref] != -9 || got[pbx.CallRef{Ext: "1001", ID: aID}] != 12 || len(got) != 2 {
		t.Errorf("after bridge restart: %+v (want %s=-9, 1001/%s=12)", sync.Calls, ref, aID)
	}
	h2.expectKind(pbx.EventLink)
	// Where the caller entered the application is read back too: a
	// transfer's check of an unanswered continue compares with it.
	h2.a.mu.Lock()
	var at dialplanPos
	if ch := h2.a.chans[aID]; ch != nil {
		at = ch.stasisAt
	}
	h2.a.mu.Unlock()
	if c := f.Channel(aID); c == nil || at != (dialplanPos{c.Context, c.Exten, int64(c.Priority)}) || at.exten != "1002" {
		t.Errorf("caller entered the application at %+v after bridge restart, want where it is: %+v", at, c)
	}
	// And it still owns the call.
	if err := h2.a.Hold(ctxT(t), ref); err != nil {
		t.Fatalf("Hold after bridge restart: %v", err)
	}
}

func TestRESTErrorsMapToSentinels(t *testing.T) {
	h := newHarness(t)
	_, ref := ownedConnected(t, h, "1001")
	ctx := ctxT(t)
	cases := []struct {
		status int
		body   string
		want   error
	}{
		{409, `{"message":"Channel not in Stasis application"}`, pbx.ErrNotSupported},
		{412, `{"message":"Channel in invalid state"}`, pbx.ErrInvalidState},
		{404, `{"message":"Channel not found"}`, pbx.ErrNoSuchCall},
		{500, `{"error":"Internal"}`, pbx.ErrUnavailable},
		{500, `<html>oops</html>`, pbx.ErrUnavailable},
	}
	for _, c := range cases {
		h.fake.Fail("POST", "/moh", c.status, c.body, 1)
		err := h.a.Hold(ctx, ref)
		if !errors.Is(err, c.want) {
			t.Errorf("%d: Hold = %v, want %v", c.status, err, c.want)
		}
		if strings.Contains(err.Error(), ".go:") {
			t.Errorf("error carries a stack trace: %q", err)
		}
	}
	// A failed hold leaves the call as it was: the far party is back in the bridge.
	if err := h.a.Hold(ctx, ref); err != nil {
		t.Fatalf("Hold after failures: %v", err)
	}
	h.waitKind("1002", pbx.EventHeld)
}

func TestSlowAsteriskTimesOut(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RequestTimeout = 400 * time.Millisecond })
	_, ref := ownedConnected(t, h, "1001")
	h.fake.SetDelay(5 * time.Second)
	start := time.Now()
	err := h.a.ClearConnection(context.Background(), ref)
	if !errors.Is(err, pbx.ErrUnavailable) {
		t.Errorf("ClearConnection on a slow Asterisk = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s with RequestTimeout 400ms", d)
	}
	// A caller's own deadline is honoured too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := h.a.ClearConnection(ctx, ref); !errors.Is(err, pbx.ErrUnavailable) {
		t.Errorf("with short ctx = %v", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("ctx deadline ignored: %s", d)
	}
	h.fake.SetDelay(0)
}

func TestUnreachableAsterisk(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens here now
	o := Options{URL: "http://" + addr + "/ari", Username: "u", Password: "p", Application: "csta-bridge", Context: "from-internal",
		Logger: testLogger(t), RequestTimeout: 3 * time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}
	h := startAdapter(t, nil, o)
	ev := h.expectKind(pbx.EventLink)
	if ev.Up || ev.Reason == "" {
		t.Errorf("link event %+v", ev)
	}
	if h.a.Ready() {
		t.Error("ready without Asterisk")
	}
	start := time.Now()
	if err := h.a.ClearConnection(context.Background(), pbx.CallRef{Ext: "1001", ID: "x"}); !errors.Is(err, pbx.ErrUnavailable) {
		t.Errorf("command while down = %v", err)
	}
	if err := h.a.MakeCall(context.Background(), pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1001", ID: "y"}, Destination: "1002"}); !errors.Is(err, pbx.ErrUnavailable) {
		t.Errorf("MakeCall while down = %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("commands took %s while down", d)
	}
	// Link down is reported once, not on every retry.
	timer := time.NewTimer(200 * time.Millisecond)
	defer timer.Stop()
	select {
	case ev := <-h.events:
		t.Errorf("unexpected event while retrying: %+v", ev)
	case <-timer.C:
	}
}

func TestBadCredentialsKeepRetrying(t *testing.T) {
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: []string{"PJSIP/1001"}})
	t.Cleanup(f.Close)
	o := testOptions(t, f)
	o.Password = "wrong"
	h := startAdapter(t, f, o)
	ev := h.expectKind(pbx.EventLink)
	if ev.Up || !strings.Contains(ev.Reason, "refused the credentials") || strings.Contains(ev.Reason, "wrong") {
		t.Fatalf("link event %+v", ev)
	}
	if h.a.Ready() {
		t.Error("ready with bad password")
	}
}

func TestApplicationReplacedReconnects(t *testing.T) {
	h := newHarness(t)
	conns := h.fake.Connections()
	if err := h.fake.SendRaw([]byte(`{"type":"ApplicationReplaced","timestamp":"2026-11-25T20:48:23.258+0000","application":"csta-bridge","asterisk_id":"02:fc:00:00:00:01"}`)); err != nil {
		t.Fatal(err)
	}
	if ev := h.expectKind(pbx.EventLink); ev.Up || !strings.Contains(ev.Reason, "another ARI client") {
		t.Errorf("link event %+v", ev)
	}
	h.expectKind(pbx.EventSync)
	h.expectKind(pbx.EventLink)
	if h.fake.Connections() <= conns {
		t.Error("did not reconnect")
	}
}

func TestEventsAreNotDroppedUnderLoad(t *testing.T) {
	// The core reads nothing for a while: events queue, none is lost.
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: []string{"PJSIP/1001", "PJSIP/1002", "PJSIP/1003"}})
	t.Cleanup(f.Close)
	a, err := New(testOptions(t, f))
	if err != nil {
		t.Fatal(err)
	}
	a.SetExtensions(testExts)
	events := make(chan pbx.Event) // unbuffered, not read until the end
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, events) }()
	defer func() { cancel(); <-done }()
	waitFake(t, f, "connected", f.Connected)
	const calls = 150
	evs := loadEvents(t, "b_missed_call_caller_cancel")
	for i := 0; i < calls; i++ {
		if err := f.Replay(evs); err != nil {
			t.Fatal(err)
		}
	}
	var cleared int
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for cleared < 2*calls {
		select {
		case ev := <-events:
			if ev.Kind == pbx.EventCleared {
				cleared++
			}
		case <-timer.C:
			t.Fatalf("got %d of %d cleared events", cleared, 2*calls)
		}
	}
}

func TestNativeClientHasTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	o := Options{URL: srv.URL + "/ari", Username: "u", Password: "p", Application: "a", Context: "c", RequestTimeout: 200 * time.Millisecond}
	o.setDefaults()
	cl, err := newNativeClient(&o)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = cl.Asterisk().Info(nil)
	if err == nil {
		t.Fatal("no error from a server that never answers")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("library call took %s; its HTTP client has no timeout", d)
	}
}

func TestHealthCheckFailureReconnects(t *testing.T) {
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: []string{"PJSIP/1001"}})
	t.Cleanup(f.Close)
	a, err := New(testOptions(t, f))
	if err != nil {
		t.Fatal(err)
	}
	a.healthEvery = 30 * time.Millisecond
	a.SetExtensions(testExts[:1])
	events := make(chan pbx.Event, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, events) }()
	defer func() { cancel(); <-done }()
	h := &harness{t: t, a: a, events: events}
	h.expectKind(pbx.EventSync)
	h.expectKind(pbx.EventLink)
	// Asterisk stops answering REST while the websocket stays open.
	f.Fail("GET", "/asterisk/info", 500, `{"message":"oops"}`, 1)
	ev := h.expectKind(pbx.EventLink)
	if ev.Up || !strings.Contains(ev.Reason, "health check") {
		t.Errorf("link event %+v", ev)
	}
	h.expectKind(pbx.EventSync)
	if ev := h.expectKind(pbx.EventLink); !ev.Up {
		t.Errorf("not back up: %+v", ev)
	}
}
