package ari

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/client/native"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func TestNewValidates(t *testing.T) {
	good := Options{URL: "http://127.0.0.1:8088/ari", Username: "u", Password: "p", Application: "csta-bridge", Context: "from-internal"}
	if _, err := New(good); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	cases := map[string]func(*Options){
		"url is required":         func(o *Options) { o.URL = "" },
		"scheme must be http":     func(o *Options) { o.URL = "ws://127.0.0.1:8088/ari" },
		"no host":                 func(o *Options) { o.URL = "http:///ari" },
		"credentials in username": func(o *Options) { o.URL = "http://u:secretpw@127.0.0.1:8088/ari" },
		"username is required":    func(o *Options) { o.Username = "" },
		"password is required":    func(o *Options) { o.Password = "" },
		"application is required": func(o *Options) { o.Application = "" },
		"must not contain":        func(o *Options) { o.Application = "a,b" },
		"context is required":     func(o *Options) { o.Context = "" },
	}
	for want, mod := range cases {
		o := good
		mod(&o)
		_, err := New(o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestWebsocketURL(t *testing.T) {
	o := Options{URL: "https://pbx.example.com:8089/ari/", Application: "csta bridge"}
	if got, want := o.wsURL(), "wss://pbx.example.com:8089/ari/events?app=csta+bridge"; got != want {
		t.Errorf("wsURL = %q, want %q", got, want)
	}
	o = Options{URL: "http://127.0.0.1:8088/ari", Application: "csta-bridge"}
	if got, want := o.wsURL(), "ws://127.0.0.1:8088/ari/events?app=csta-bridge"; got != want {
		t.Errorf("wsURL = %q, want %q", got, want)
	}
}

func TestDestinationNumber(t *testing.T) {
	for in, want := range map[string]string{
		"1002":                            "1002",
		" +4930123456 ":                   "+4930123456",
		"sip:1003@pbx.example.com":        "1003",
		"SIP:1003@pbx;user=phone":         "1003",
		"sips:%2B49301@pbx":               "+49301",
		"tel:+4930123456;phone-context=x": "+4930123456",
		"*97":                             "*97",
	} {
		got, err := destinationNumber(in)
		if err != nil || got != want {
			t.Errorf("destinationNumber(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "10 02", "1002,1003", "PJSIP/1002", "sip:@pbx", "1002&1003", strings.Repeat("1", 65)} {
		if _, err := destinationNumber(bad); !errors.Is(err, pbx.ErrInvalidDestination) {
			t.Errorf("destinationNumber(%q) = %v, want ErrInvalidDestination", bad, err)
		}
	}
}

func TestEndpointOf(t *testing.T) {
	for in, want := range map[string]string{
		"PJSIP/1001-00000058":           "PJSIP/1001",
		"PJSIP/alice-smith-0000002a":    "PJSIP/alice-smith",
		"Local/1003@phones-00000007;1":  "",
		"nonsense":                      "",
		"PJSIP/trunk-provider-000000ff": "PJSIP/trunk-provider",
	} {
		if got := endpointOf(in); got != want {
			t.Errorf("endpointOf(%q) = %q, want %q", in, got, want)
		}
	}
	if endpointKey("pjsip/1001") != "PJSIP/1001" {
		t.Error("endpoint technology not case-insensitive")
	}
}

func TestClearCause(t *testing.T) {
	cases := []struct {
		state      pbx.State
		dir        pbx.Direction
		dialStatus string
		cause      int
		want       pbx.Cause
	}{
		{pbx.StateConnected, pbx.Incoming, "", 16, pbx.CauseNormal},
		{pbx.StateHeld, pbx.Outgoing, "", 17, pbx.CauseNormal},
		{pbx.StateAlerting, pbx.Incoming, "CANCEL", 127, pbx.CauseCancelled},
		{pbx.StateAlerting, pbx.Incoming, "", 127, pbx.CauseCancelled},
		{pbx.StateAlerting, pbx.Incoming, "NOANSWER", 16, pbx.CauseNoAnswer},
		{pbx.StateAlerting, pbx.Incoming, "", 0, pbx.CauseNoAnswer},
		{pbx.StateAlerting, pbx.Incoming, "", 19, pbx.CauseNoAnswer},
		{pbx.StateAlerting, pbx.Incoming, "", 17, pbx.CauseRejected},
		{pbx.StateAlerting, pbx.Incoming, "", 21, pbx.CauseRejected},
		{pbx.StateAlerting, pbx.Incoming, "", 26, pbx.CauseAnsweredElsewhere},
		{pbx.StateAlerting, pbx.Incoming, "CHANUNAVAIL", 0, pbx.CauseUnreachable},
		{pbx.StateInitiated, pbx.Outgoing, "BUSY", 16, pbx.CauseBusy},
		{pbx.StateInitiated, pbx.Outgoing, "", 17, pbx.CauseBusy},
		{pbx.StateInitiated, pbx.Outgoing, "NOANSWER", 16, pbx.CauseNoAnswer},
		{pbx.StateInitiated, pbx.Outgoing, "", 1, pbx.CauseUnreachable},
		{pbx.StateInitiated, pbx.Outgoing, "", 34, pbx.CauseUnreachable},
		{pbx.StateInitiated, pbx.Outgoing, "CANCEL", 127, pbx.CauseNormal},
		{pbx.StateNull, pbx.Outgoing, "", 19, pbx.CauseNoAnswer},
	}
	for _, c := range cases {
		l := &leg{state: c.state, dir: c.dir}
		ch := &channel{dialStatus: c.dialStatus}
		if got := clearCause(l, ch, c.cause); got != c.want {
			t.Errorf("%s %v dial=%q cause=%d: %s, want %s", c.state, c.dir, c.dialStatus, c.cause, got, c.want)
		}
	}
	l := &leg{state: pbx.StateConnected, transferred: true}
	if got := clearCause(l, &channel{}, 16); got != pbx.CauseTransferred {
		t.Errorf("transferred leg: %s", got)
	}
}

func TestAutoAnswerVars(t *testing.T) {
	got := autoAnswerVars([]string{"Call-Info: <sip:pbx>;answer-after=0", "bogus", " Alert-Info :<http://x>;info=alert-autoanswer"})
	want := map[string]string{
		"PJSIP_HEADER(add,Call-Info)":  "<sip:pbx>;answer-after=0",
		"PJSIP_HEADER(add,Alert-Info)": "<http://x>;info=alert-autoanswer",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestDeviceRegistration(t *testing.T) {
	h := newHarness(t)
	h.fake.SetRegistered("PJSIP/1002", false)
	ev := h.waitEvent("unregistered", func(ev pbx.Event) bool { return ev.Kind == pbx.EventDevice && ev.Call.Ext == "1002" && !ev.Registered })
	_ = ev
	err := h.a.MakeCall(ctxT(t), pbx.MakeCallRequest{Call: pbx.CallRef{Ext: "1002", ID: "m1"}, Destination: "1001"})
	if !errors.Is(err, pbx.ErrDeviceUnreachable) {
		t.Errorf("MakeCall from unregistered device = %v", err)
	}
	h.fake.SetRegistered("PJSIP/1002", true)
	h.waitEvent("registered", func(ev pbx.Event) bool { return ev.Kind == pbx.EventDevice && ev.Call.Ext == "1002" && ev.Registered })
}

func TestSetExtensionsSubscribesNewEndpoints(t *testing.T) {
	h := newHarness(t)
	exts := append(append([]pbx.Extension{}, testExts...), pbx.Extension{Name: "1004", Endpoint: "PJSIP/1004"})
	h.a.SetExtensions(exts[:2])
	h.a.SetExtensions(exts)
	// PJSIP/1004 is unknown to this Asterisk: the subscription fails and is logged, others stay.
	waitFake(t, h.fake, "subscribe attempt for 1004", func() bool {
		r, ok := lastRequest(h.fake, "POST", "/applications/csta-bridge/subscription")
		return ok && r.Params["eventSource"] == "endpoint:PJSIP/1004"
	})
	if subs := h.fake.Subscriptions(); len(subs) != 3 {
		t.Errorf("subscriptions %v", subs)
	}
}

func TestHangupReason(t *testing.T) {
	for _, c := range []struct {
		status string
		cause  int
		want   string
	}{
		{"BUSY", 16, "busy"}, {"NOANSWER", 16, "no_answer"}, {"CHANUNAVAIL", 0, "failure"}, {"CONGESTION", 0, "congestion"},
		{"", 17, "busy"}, {"", 21, "rejected"}, {"", 0, "no_answer"}, {"", 19, "no_answer"}, {"", 1, "unallocated"},
		{"", 34, "congestion"}, {"", 16, "normal"}, {"CANCEL", 127, "normal"},
	} {
		if got := hangupReason(c.status, c.cause); got != c.want {
			t.Errorf("hangupReason(%q, %d) = %q, want %q", c.status, c.cause, got, c.want)
		}
	}
}

// The product promises that a PBX that is back is reconnected within 5 s.
// With the default options no wait between two attempts is longer than
// MaxBackoff, which leaves a second of the promise for the attempt itself
// (the REST check, the websocket handshake and the resync).
func TestDefaultBackoffKeepsReconnectPromise(t *testing.T) {
	var o Options
	o.setDefaults()
	const promise, attemptBudget = 5 * time.Second, time.Second
	if o.MaxBackoff > promise-attemptBudget {
		t.Fatalf("default MaxBackoff %v leaves less than %v of the %v promise", o.MaxBackoff, attemptBudget, promise)
	}
	// The nominal delays double from MinBackoff and stay at the cap.
	nominal := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	d := o.MinBackoff
	for attempt := range 30 {
		if attempt < len(nominal) && d != nominal[attempt] {
			t.Errorf("attempt %d: nominal delay %v, want %v", attempt, d, nominal[attempt])
		}
		// The jitter is random: many draws, each in [d/2, d].
		for range 200 {
			if w := jitter(d); w < d/2 || w > d || w > promise-attemptBudget {
				t.Fatalf("attempt %d: waits %v (nominal %v)", attempt, w, d)
			}
		}
		d = nextBackoff(d, o.MaxBackoff)
	}
}

func TestBackoffSteps(t *testing.T) {
	for _, c := range []struct{ d, hi, want time.Duration }{
		{10 * time.Millisecond, 80 * time.Millisecond, 20 * time.Millisecond},
		{40 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond},
		{50 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond},
		{80 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond},
		// Doubling would overflow.
		{math.MaxInt64/2 + 1, math.MaxInt64, math.MaxInt64},
	} {
		if got := nextBackoff(c.d, c.hi); got != c.want {
			t.Errorf("nextBackoff(%v, %v) = %v, want %v", c.d, c.hi, got, c.want)
		}
	}
	if got := jitter(0); got != 0 {
		t.Errorf("jitter(0) = %v", got)
	}
	// Both ends of [d/2, d] are drawn: a 2 ns delay waits 1 or 2 ns.
	seen := map[time.Duration]bool{}
	for range 200 {
		seen[jitter(2)] = true
	}
	if !seen[1] || !seen[2] || len(seen) != 2 {
		t.Errorf("jitter(2) drew %v, want both 1ns and 2ns", seen)
	}
}

// TestHTTPStatusOfDataGetters: the status of a data getter's failure is
// found through its Cause-only wrapper, so the resync skips a channel that
// hung up between the list and the get instead of failing the connect.
func TestHTTPStatusOfDataGetters(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"Channel not found"}`, http.StatusNotFound)
	}))
	defer srv.Close()
	c := native.New(&native.Options{Application: "t", URL: srv.URL + "/ari", Username: "u", Password: "p"})
	_, err := c.Channel().Data(ari.NewKey(ari.ChannelKey, "gone"))
	if err == nil {
		t.Fatal("Data of a missing channel succeeded")
	}
	if got := httpStatus(err); got != http.StatusNotFound {
		t.Fatalf("httpStatus(%v) = %d, want 404", err, got)
	}
	_, err = c.Bridge().Data(ari.NewKey(ari.BridgeKey, "gone"))
	if got := httpStatus(err); got != http.StatusNotFound {
		t.Fatalf("httpStatus(%v) = %d, want 404", err, got)
	}
	if got := httpStatus(errors.New("plain")); got != 0 {
		t.Fatalf("httpStatus(plain) = %d, want 0", got)
	}
}
