package sim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func TestControlAPIErrors(t *testing.T) {
	h := newHarness(t, Options{})
	h.p.tagWait = 0
	v, _ := h.incoming("+4930123456", "1001", -1)
	call := "/sim/calls/" + v.ID
	for _, tc := range []struct {
		method, path, body string
		status             int
		allow              string
	}{
		{http.MethodPost, "/sim/calls", `{"from":"+4930123456","to":"1001"`, http.StatusBadRequest, ""},
		{http.MethodPost, "/sim/calls", `{"from":"+4930123456","to":"1001"} {}`, http.StatusBadRequest, ""},
		{http.MethodPost, "/sim/calls", `{"from":"+4930123456","to":"1001","x":1}`, http.StatusBadRequest, ""},
		{http.MethodPost, "/sim/calls", `["1001"]`, http.StatusBadRequest, ""},
		{http.MethodPost, "/sim/calls", ``, http.StatusBadRequest, ""},
		{http.MethodPost, "/sim/calls", `{"to":"1001"}`, http.StatusBadRequest, ""},
		{http.MethodPost, "/sim/calls", `{"from":"+4930123456"}`, http.StatusBadRequest, ""},
		{http.MethodPost, "/sim/calls", `{"from":"+4930123456","to":"4711"}`, http.StatusUnprocessableEntity, ""},
		{http.MethodPost, "/sim/calls", `{"from":"1001","to":"sip:1001@pbx.test"}`, http.StatusUnprocessableEntity, ""},
		{http.MethodPost, "/sim/calls", `{"from":"+49 30","to":"1001"}`, http.StatusUnprocessableEntity, ""},
		{http.MethodPost, "/sim/calls", `{"from":"` + strings.Repeat("1", maxBody) + `","to":"1001"}`, http.StatusRequestEntityTooLarge, ""},
		{http.MethodDelete, "/sim/calls", ``, http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodGet, "/sim/calls/c999", ``, http.StatusNotFound, ""},
		{http.MethodPost, "/sim/calls/c999/answer", ``, http.StatusNotFound, ""},
		{http.MethodPost, "/sim/calls/c999/hangup", ``, http.StatusNotFound, ""},
		{http.MethodPost, "/sim/calls/c999/hold", ``, http.StatusNotFound, ""},
		{http.MethodPost, call, ``, http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, call + "/answer", ``, http.StatusMethodNotAllowed, "POST"},
		{http.MethodGet, call + "/hangup", ``, http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, call + "/answer", `{"party":1}`, http.StatusBadRequest, ""},
		{http.MethodPost, call + "/hangup", `{"party":"+4940999"}`, http.StatusUnprocessableEntity, ""},
		{http.MethodPost, call + "/unhold", ``, http.StatusConflict, ""}, // ringing
		{http.MethodPost, call + "/transfer", ``, http.StatusNotFound, ""},
		{http.MethodGet, "/sim/nothing", ``, http.StatusNotFound, ""},
		{http.MethodGet, "/other", ``, http.StatusNotFound, ""},
		{http.MethodPost, "/sim/", ``, http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, "/sim/actions", ``, http.StatusMethodNotAllowed, "GET, HEAD, DELETE"},
		{http.MethodPost, "/sim/actions/incoming", ``, http.StatusMethodNotAllowed, "GET, HEAD"},
	} {
		req, _ := http.NewRequest(tc.method, h.srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error string `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || err != nil || body.Error == "" ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %.40q: status %d, error %q (%v), want %d with a JSON error",
				tc.method, tc.path, tc.body, resp.StatusCode, body.Error, err, tc.status)
		}
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
	h.quiet() // no bad request changed anything
	var list []callView
	h.mustCall(http.MethodGet, "/sim/calls", "", http.StatusOK, &list)
	if len(list) != 1 || list[0].State != "ringing" {
		t.Fatalf("calls = %+v", list)
	}
}

func TestControlIndexAndEmptyList(t *testing.T) {
	h := newHarness(t, Options{})
	var idx struct {
		Running    bool     `json:"running"`
		Extensions []string `json:"extensions"`
		Calls      int      `json:"calls"`
	}
	h.mustCall(http.MethodGet, "/sim/", "", http.StatusOK, &idx)
	if !idx.Running || strings.Join(idx.Extensions, ",") != "1001,1002,1003" || idx.Calls != 0 {
		t.Fatalf("index = %+v", idx)
	}
	var raw json.RawMessage
	h.mustCall(http.MethodGet, "/sim/calls", "", http.StatusOK, &raw)
	if string(raw) != "[]" {
		t.Fatalf("empty list = %s", raw)
	}
}

func TestControlWorksWhileBridgeIsAway(t *testing.T) {
	h := newHarness(t, Options{})
	h.stop()
	var v callView
	h.mustCall(http.MethodPost, "/sim/calls", `{"from":"+4930123456","to":"1001"}`, http.StatusCreated, &v)
	if v.State != "ringing" || v.CSTAID != nil {
		t.Fatalf("reply %+v", v)
	}
	h.start()
	h.next() // link
	if ev := h.next(); ev.Kind != pbx.EventSync || len(ev.Calls) != 1 || ev.Calls[0].Call.ID != v.Legs[0].Ref {
		t.Fatalf("sync %+v", ev)
	}
	h.quiet()
}
