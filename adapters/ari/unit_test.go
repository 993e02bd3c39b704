package ari

import (
	"errors"
	"strings"
	"testing"

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
		{pbx.StateAlerting, pbx.Incoming, "", 26, pbx.CauseNormal},
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
