package esl

import (
	"maps"
	"testing"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func TestInviteHeaders(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want map[string]string
	}{
		{"none", map[string]string{"variable_sip_call_id": "x", "variable_sip_h": "no name"}, nil},
		{"custom and alert_info", map[string]string{
			"variable_sip_h_X-Customer": "42", "variable_alert_info": "<http://pbx/r>;info=ring2",
			"variable_sip_rh_X-Reply": "response header, not on the INVITE",
		}, map[string]string{"X-Customer": "42", "Alert-Info": "<http://pbx/r>;info=ring2"}},
		{"names as the event socket delivers them", map[string]string{
			"Variable_sip_h_x-Customer": "42", "Variable_sip_h_p-Asserted-Identity": "<sip:1@pbx>",
		}, map[string]string{"X-Customer": "42", "P-Asserted-Identity": "<sip:1@pbx>"}},
		{"dialog headers and empty values left out", map[string]string{
			"variable_sip_h_Via": "SIP/2.0/UDP x", "variable_sip_h_call-id": "c", "variable_sip_h_CSeq": "1 INVITE",
			"variable_sip_h_Max-Forwards": "70", "variable_sip_h_m": "<sip:x>", "variable_sip_h_Contact": "<sip:x>",
			"variable_sip_h_X-Empty": "", "variable_alert_info": "",
		}, nil},
		{"alert_info wins over sip_h_Alert-Info", map[string]string{
			"variable_sip_h_Alert-Info": "<sip:a>", "variable_alert_info": "<sip:b>",
		}, map[string]string{"Alert-Info": "<sip:b>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys := make([]string, 0, len(tc.vars))
			for k := range tc.vars {
				keys = append(keys, k)
			}
			got := inviteHeaders(func(k string) string { return tc.vars[k] }, keys)
			if !maps.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// A channel dump (resync) names the variables exactly and URL-decoded.
func TestParseDumpHeaders(t *testing.T) {
	ev, err := parseDump(`{"Unique-ID":"u1","Call-Direction":"outbound","variable_sip_h_X-Customer":"a b",` +
		`"variable_alert_info":"<sip:ring>","variable_sip_h_To":"<sip:x>"}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"X-Customer": "a b", "Alert-Info": "<sip:ring>"}; !maps.Equal(ev.SIPHeaders, want) {
		t.Errorf("headers %v, want %v", ev.SIPHeaders, want)
	}
}

// withVars sets channel variables on every event of a channel, as
// FreeSWITCH repeats them in each event.
func withVars(evs []fakeesl.Event, uuid string, vars map[string]string) []fakeesl.Event {
	out := make([]fakeesl.Event, len(evs))
	for i, e := range evs {
		if e.Get("Unique-ID") == uuid {
			for k, v := range vars {
				e = e.With(k, v)
			}
		}
		out[i] = e
	}
	return out
}

// The INVITE FreeSWITCH sends the called phone carries the sip_h_*
// variables of its channel (here as set by {sip_h_X-Customer=…}user/1002)
// and alert_info: Offered reports them, through eslgo's real parsing of
// the frames. The caller's channel has sip_h_* too (headers its phone
// sent), which are not $sip_header of anything.
func TestOfferedCarriesInviteHeaders(t *testing.T) {
	h, _ := startScripted(t, nil)
	evs := loadEvents(t, "a_basic_call")
	evs = withVars(evs, basicB, map[string]string{
		"variable_sip_h_X-Customer": "42; name=\"Müller & Co\" 100%",
		"variable_alert_info":       "<http://127.0.0.1/ring.wav>;info=alert-external",
		"variable_sip_h_Via":        "SIP/2.0/UDP 10.0.0.1",
		"variable_sip_h_X-Empty":    "",
	})
	evs = withVars(evs, basicA, map[string]string{"variable_sip_h_X-Phone-Sent": "yes"})
	h.srv.Emit(evs...)
	got := h.collect(untilCleared(2))
	want := map[string]string{
		"X-Customer": "42; name=\"Müller & Co\" 100%",
		"Alert-Info": "<http://127.0.0.1/ring.wav>;info=alert-external",
	}
	offered := 0
	for _, e := range got {
		switch {
		case e.Kind == pbx.EventOffered && e.Call == ref("1002", basicB):
			offered++
			if !maps.Equal(e.Headers, want) {
				t.Errorf("offered headers %v, want %v", e.Headers, want)
			}
		case e.Kind == pbx.EventOriginated && e.Call == ref("1001", basicA):
			if e.Headers != nil {
				t.Errorf("originated by the phone with headers %v, want none", e.Headers)
			}
		case e.Headers != nil:
			t.Errorf("%v of %v carries headers %v: only Offered and Originated may", e.Kind, e.Call, e.Headers)
		}
	}
	if offered != 1 {
		t.Errorf("%d Offered events for 1002, want 1", offered)
	}
}
