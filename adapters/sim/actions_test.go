package sim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestActionSink(t *testing.T) {
	p := New(Options{})
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get("/sim/actions/incoming?remote=sip%3A%2B4930123456%40pbx&csta_id=-1&x=1&x=2")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("sink answered %d %q", resp.StatusCode, body)
	}
	get("/sim/actions/connected?csta_id=-1").Body.Close()
	get("/sim/actions/setup").Body.Close()

	var list []actionRecord
	h := &harness{t: t, srv: srv}
	h.mustCall(http.MethodGet, "/sim/actions", "", http.StatusOK, &list)
	if len(list) != 3 || list[0].Event != "incoming" || list[1].Event != "connected" || list[2].Event != "setup" {
		t.Fatalf("list = %+v", list)
	}
	r := list[0]
	if r.Seq != 1 || r.Query != "remote=sip%3A%2B4930123456%40pbx&csta_id=-1&x=1&x=2" ||
		r.Params["remote"] != "sip:+4930123456@pbx" || r.Params["csta_id"] != "-1" || r.Params["x"] != "1" ||
		!strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") || r.Time.IsZero() {
		t.Fatalf("record = %+v", r)
	}
	if list[2].Params == nil || len(list[2].Params) != 0 {
		t.Fatalf("params of a bare GET = %#v", list[2].Params)
	}
	h.mustCall(http.MethodDelete, "/sim/actions", "", http.StatusNoContent, nil)
	h.mustCall(http.MethodGet, "/sim/actions/", "", http.StatusOK, &list)
	if len(list) != 0 {
		t.Fatalf("after DELETE: %+v", list)
	}
	get("/sim/actions/missed").Body.Close()
	h.mustCall(http.MethodGet, "/sim/actions", "", http.StatusOK, &list)
	if len(list) != 1 || list[0].Seq != 4 {
		t.Fatalf("after DELETE and one more: %+v", list)
	}
}

func TestActionLogIsBounded(t *testing.T) {
	l := newActionLog(3)
	for _, ev := range []string{"a", "b", "c", "d", "e"} {
		l.add(actionRecord{Event: ev})
	}
	got := l.list()
	if len(got) != 3 || got[0].Event != "c" || got[2].Event != "e" || got[2].Seq != 5 {
		t.Fatalf("list = %+v", got)
	}
}
