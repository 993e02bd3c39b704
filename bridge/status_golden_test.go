package bridge

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateStatus = flag.Bool("update-status", false, "rewrite bridge/testdata/status/*.html")

// TestStatusGolden renders both pages from fixed views and compares them
// with testdata/status: a change of the markup shows in review as a diff of
// the HTML an admin's browser gets (-update-status rewrites the files).
func TestStatusGolden(t *testing.T) {
	at := time.Date(2026, 12, 5, 7, 30, 0, 0, time.UTC)
	hdr := statusHeader{Version: "v1.2.3", PBX: "ari", Link: "connected", Ready: true, Uptime: 90 * time.Minute,
		ConfigPath: "/etc/csta-bridge/config.yaml", Pending: 2, Extensions: 10000, Generated: at,
		Nodes: []nodeView{{Name: "fs1", Up: true, Extensions: 6000, Calls: 12},
			{Name: "fs2", Detail: "dial tcp 10.0.0.2:8021: connect: <refused>", Extensions: 4000, Calls: 3}}}
	long := "http://crm.example.com/" + strings.Repeat("lookup/", 20) + "?caller=%2B4930123&pass=redacted"
	call := callView{ID: -3, State: "alerting", Dir: "in", Remote: "sip:+4930123@pbx.example.com", Duration: 75 * time.Second}
	phones := []phoneView{
		{Name: "1050", Display: "Alice", Local: "sip:1050@pbx.example.com"},
		{Name: "1051", Display: `<b>Bob</b> & "Co"`, Local: "sip:1051@pbx.example.com", Calls: []callView{call, {ID: 2, State: "held",
			Dir: "out", Remote: "sip:0301234@pbx.example.com", Duration: time.Hour + 2*time.Second}}, DND: true, Forward: "busy → 1052", Stored: 2},
	}
	q := statusQuery{Q: "10", Page: 2, N: 50}
	ov := &overview{statusHeader: hdr, Query: q, Page: 2, PerPg: 50, Pages: 3, Match: 120, First: 51, Last: 100, Phones: phones,
		FirstURL: q.url("/", 1), PrevURL: q.url("/", 1), NextURL: q.url("/", 3), LastURL: q.url("/", 3), API: q.url("/api/phones", 0),
		CSTA:     []cstaRecord{{At: at, Ext: "1051", Service: "HoldCall", CallID: "2", Result: "ok", Took: 3 * time.Millisecond}},
		Actions:  []actionRecord{{At: at, Ext: "1051", Event: "action_incoming_url", CSTAID: -3, URL: long, Result: "ok 200"}},
		Diverted: []divertRecord{{At: at, Ext: "1051", Remote: "sip:555@pbx.example.com", Reason: "busy", Target: "1052", Result: "ok"}}}
	ev := &extView{statusHeader: hdr, phoneView: phones[1], Endpoint: "PJSIP/1051", HTTPScheme: "digest", HTTPUser: "bob",
		API: "/api/phones/1051", CSTA: ov.CSTA, Actions: ov.Actions, Diverted: ov.Diverted,
		Overrides: []override{{Name: "dnd_mode", Stored: "on", YAML: "off", InYAML: true}, {Name: "redirect_busy_number", Stored: "1052"}},
		Settings: []settingView{{Name: "action_incoming_url", Value: long, Source: "YAML", InYAML: true},
			{Name: "dnd_mode", Value: "on", Source: "state file", YAML: "off", InYAML: true},
			{Name: "redirect_busy_number", Value: "1052", Source: "run time (not stored)"}}}
	for name, v := range map[string]any{"overview": ov, "extension": ev} {
		var b bytes.Buffer
		if err := statusTmpl.ExecuteTemplate(&b, name, v); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "status", name+".html")
		if *updateStatus {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (-update-status writes it)", err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s differs from %s (-update-status rewrites it):\n%s", name, path, b.Bytes())
		}
	}
}
