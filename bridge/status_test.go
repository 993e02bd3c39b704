package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// startScale runs an App on a fake PBX with n extensions 1000…(999+n),
// display names "Agent <i>", plus the YAML of more extensions in extra.
func startScale(tb testing.TB, n int, extra string) (*App, *fakePBX) {
	tb.Helper()
	dir := tb.TempDir()
	var cfg strings.Builder
	cfg.WriteString("pbx: {type: sim}\nhttp: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\n")
	cfg.WriteString("state_file: state.json\ndefaults: {domain: scale.test}\nextensions:\n")
	for i := range n {
		fmt.Fprintf(&cfg, "  \"%d\": {display_name: \"Agent %d\"}\n", 1000+i, i)
	}
	cfg.WriteString(extra)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	fp := newFakePBX()
	app, err := New(Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler), Version: "test",
		NewPBX: func(*config.Config, *slog.Logger) (pbx.PBX, error) { return fp, nil }})
	if err != nil {
		tb.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		app.Stop(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for !app.Ready() {
		if err := app.sb.do(ctx, func() {}); err != nil {
			tb.Fatal("bridge never became ready")
		}
	}
	return app, fp
}

// adminDo GETs path on the admin listener with the given headers.
func adminDo(t *testing.T, a *App, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+a.AdminAddr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var extLinkRE = regexp.MustCompile(`<tr[^>]*><td><a href="/ext/([^"]+)">`)

// phoneRows returns the extensions of the phones table's rows, in order.
func phoneRows(t *testing.T, page string) []string {
	t.Helper()
	start := strings.Index(page, `<table id="phones"`)
	end := strings.Index(page[max(start, 0):], "</table>")
	if start < 0 || end < 0 {
		t.Fatalf("no phones table in\n%.2000s", page)
	}
	var names []string
	for _, m := range extLinkRE.FindAllStringSubmatch(page[start:start+end], -1) {
		names = append(names, m[1])
	}
	return names
}

func seq(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(from + i)
	}
	return out
}

// TestStatusPageTenThousand: the overview at 10,000 extensions shows one
// page of them in numeric order, pages through them, finds one by number
// and by name, and never reloads itself.
func TestStatusPageTenThousand(t *testing.T) {
	app, _ := startScale(t, 10000, "  \"20000\": {display_name: \"Zoë Müller\"}\n  \"reception\": {display_name: Front desk}\n")
	const total = 10002

	resp, page := adminDo(t, app, "/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET / = %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if got := phoneRows(t, page); strings.Join(got, ",") != strings.Join(seq(1000, 50), ",") {
		t.Fatalf("first page rows %v", got)
	}
	for _, want := range []string{fmt.Sprintf("Extensions 1–50 of %d", total), "page 1 of 201", `href="/?page=2" rel="next"`,
		`href="/?page=201"`, `<td>Agent 0</td>`, `<td colspan="5">idle</td>`, `<script src="/status.js">`, `data-api="/api/phones"`} {
		if !strings.Contains(page, want) {
			t.Errorf("first page lacks %q", want)
		}
	}
	if strings.Contains(page, "http-equiv") || strings.Contains(page, "rel=\"prev\"") {
		t.Error("first page reloads itself or has a previous page")
	}
	if len(page) > 64<<10 {
		t.Errorf("first page is %d bytes", len(page))
	}

	// Paging: the last page holds the names after the numbers; a page past
	// the end shows the last; n sets the page size, up to 500.
	_, page = adminDo(t, app, "/?page=201")
	if got := phoneRows(t, page); len(got) != 2 || got[0] != "20000" || got[1] != "reception" {
		t.Errorf("last page rows %v, want 20000 and reception", got)
	}
	if !strings.Contains(page, fmt.Sprintf("Extensions 10001–10002 of %d", total)) || !strings.Contains(page, `href="/?page=200" rel="prev"`) ||
		strings.Contains(page, `rel="next"`) {
		t.Errorf("last page pager:\n%s", pager(page))
	}
	_, past := adminDo(t, app, "/?page=99999")
	if pager(past) != pager(page) {
		t.Errorf("page past the end: %s", pager(past))
	}
	_, page = adminDo(t, app, "/?page=3&n=20")
	if got := phoneRows(t, page); strings.Join(got, ",") != strings.Join(seq(1040, 20), ",") ||
		!strings.Contains(page, `href="/?n=20&amp;page=4"`) || !strings.Contains(page, `<input type="hidden" name="n" value="20">`) {
		t.Errorf("page 3 of 20: rows %v\n%s", got, pager(page))
	}
	_, page = adminDo(t, app, "/?n=100000")
	if got := phoneRows(t, page); len(got) != statusMaxPerPage {
		t.Errorf("n=100000 shows %d rows, want %d", len(got), statusMaxPerPage)
	}

	// Search by number and by name, as substrings: 1004 is in 1004,
	// 10040…10049 and in the name of 2004, Agent 1004.
	_, page = adminDo(t, app, "/?q=1004")
	if got := phoneRows(t, page); strings.Join(got, ",") != "1004,2004,"+strings.Join(seq(10040, 10), ",") {
		t.Errorf("q=1004 rows %v", got)
	}
	if !strings.Contains(page, "Extensions 1–12 of 12 matching “1004”") || !strings.Contains(page, `value="1004"`) {
		t.Errorf("q=1004 pager:\n%s", pager(page))
	}
	for _, q := range []string{"müller", "MÜLLER", "Zoë"} {
		_, page = adminDo(t, app, "/?q="+url.QueryEscape(q))
		if got := phoneRows(t, page); len(got) != 1 || got[0] != "20000" {
			t.Errorf("q=%s rows %v", q, got)
		}
	}
	_, page = adminDo(t, app, "/?q=front+DESK")
	if got := phoneRows(t, page); len(got) != 1 || got[0] != "reception" {
		t.Errorf("q=front DESK rows %v", got)
	}
	_, page = adminDo(t, app, "/?q=nobody")
	if got := phoneRows(t, page); len(got) != 0 || !strings.Contains(page, "No extension matches “nobody”") {
		t.Errorf("q=nobody rows %v\n%s", got, pager(page))
	}

	// The JSON the page polls: the same page, and 304 while nothing changed.
	resp, body := adminDo(t, app, "/api/phones?q=1004&page=1")
	var v struct {
		Extensions, Matched, Page, Pages int
		Phones                           []struct{ Name, Identity string }
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("api: %d %v %s", resp.StatusCode, err, body)
	}
	if v.Extensions != total || v.Matched != 12 || v.Page != 1 || v.Pages != 1 || len(v.Phones) != 12 ||
		v.Phones[0].Name != "1004" || v.Phones[0].Identity != "sip:1004@scale.test" {
		t.Errorf("api: %+v", v)
	}
	etag := resp.Header.Get("ETag")
	if resp, body = adminDo(t, app, "/api/phones?q=1004&page=1", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("api with If-None-Match: %d %q", resp.StatusCode, body)
	}

	// Each extension has its own page.
	resp, page = adminDo(t, app, "/ext/20000")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Extension 20000 · Zoë Müller") ||
		!strings.Contains(page, "sip:20000@scale.test") {
		t.Errorf("/ext/20000: %d\n%.1500s", resp.StatusCode, page)
	}
	if resp, _ = adminDo(t, app, "/ext/12345"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/ext/12345 = %d", resp.StatusCode)
	}
}

func pager(page string) string {
	if i := strings.Index(page, `<p class="pager"`); i >= 0 {
		if j := strings.Index(page[i:], "</p>"); j >= 0 {
			return page[i : i+j]
		}
	}
	return "(no pager)"
}

// TestStatusPageLiveCall: a call shows on the overview's row of its
// extension and in the JSON the page polls, which changes with it.
func TestStatusPageLiveCall(t *testing.T) {
	app, fp := startScale(t, 100, "")
	_, before := adminDo(t, app, "/api/phones?page=2")
	fp.emit(pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "1060", ID: "c1"}, Remote: pbx.Party{Number: "+4930123"}})
	flushApp(t, app)
	_, page := adminDo(t, app, "/?page=2")
	if !strings.Contains(page, `<tr class="call"><td><a href="/ext/1060">1060</a></td><td>Agent 60</td><td class="uri">sip:1060@scale.test</td><td></td><td>-1</td><td>alerting</td><td>in</td><td class="uri">sip:&#43;4930123@scale.test</td>`) {
		t.Errorf("page 2 lacks the call:\n%s", page[strings.Index(page, `<table id="phones"`):][:3000])
	}
	resp, after := adminDo(t, app, "/api/phones?page=2")
	if after == before || !strings.Contains(after, `"calls":[{"csta_id":-1,"state":"alerting","direction":"in","remote":"sip:+4930123@scale.test"`) {
		t.Errorf("api after the call:\n%s", after)
	}
	if r2, _ := adminDo(t, app, "/api/phones?page=1", "If-None-Match", resp.Header.Get("ETag")); r2.StatusCode != http.StatusOK {
		t.Errorf("another page with this page's ETag: %d", r2.StatusCode)
	}
}

func flushApp(t testing.TB, a *App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for {
		if err := a.sb.do(ctx, func() {}); err != nil {
			t.Fatal(err)
		}
		if len(a.sb.events) == 0 {
			break
		}
	}
	if err := a.sb.do(ctx, func() {}); err != nil {
		t.Fatal(err)
	}
}

// TestStatusPageEscapes: display names, callers, action URLs and searches
// from the outside are shown as text, never as markup; long URLs get the
// class that wraps them.
func TestStatusPageEscapes(t *testing.T) {
	const hostile = `<script>alert("x")</script> & 'y'`
	app, fp := startScale(t, 3, "  \"666\":\n    display_name: '"+strings.ReplaceAll(hostile, "'", "''")+"'\n")
	fp.emit(pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "666", ID: "c1"},
		Remote: pbx.Party{Number: `"><img src=x onerror=alert(1)>`, Name: hostile}})
	flushApp(t, app)
	// An action URL a CTI client installs at run time, long and hostile.
	long := "http://crm.example/" + strings.Repeat("segment/", 60) + `x?a="><script>alert(2)</script>&pass=secret`
	resp, err := http.Get("http://" + app.SharedAddr() + "/666/dummy.htm?settings=save&action_incoming_url=" + url.QueryEscape(long))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	check := func(path, page string) {
		t.Helper()
		rest := strings.ReplaceAll(page, `<script src="/status.js"></script>`, "")
		for _, bad := range []string{"<script", "<img", "onerror=alert(1)>", "secret"} {
			if strings.Contains(rest, bad) {
				i := strings.Index(rest, bad)
				t.Errorf("%s shows %q unescaped: …%s…", path, bad, rest[max(0, i-200):min(len(rest), i+100)])
			}
		}
	}
	_, page := adminDo(t, app, "/")
	check("/", page)
	if !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;y&#39;") {
		t.Errorf("overview lacks the escaped display name")
	}
	_, page = adminDo(t, app, "/?q="+url.QueryEscape(`"><script>alert(3)</script>`))
	check("search", page)
	_, page = adminDo(t, app, "/ext/666")
	check("/ext/666", page)
	for _, want := range []string{`<td class="url">http://crm.example/segment/`, "pass=redacted", "run time (not stored)",
		`&#34;&gt;&lt;img src=x onerror=alert(1)&gt;`} {
		if !strings.Contains(page, want) {
			t.Errorf("/ext/666 lacks %q", want)
		}
	}
	_, body := adminDo(t, app, "/api/phones")
	if strings.Contains(body, "<script") || strings.Contains(body, "<img") || !json.Valid([]byte(body)) {
		t.Errorf("api shows markup or is no JSON: %s", body)
	}
}

// TestStatusExtensionPage: an extension's own page shows its calls, its
// last CSTA requests and action URLs with their results, DND and
// forwarding, and its stored settings with their source.
func TestStatusExtensionPage(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "c1", "030124")
	h.sink.expect(t, "1001", "incoming:-1")
	h.ok("1001", "AnswerCall", conn("callToBeAnswered", -1))
	h.sink.expect(t, "1001", "offhook", "connected:-1")
	h.fault("1001", "HoldCall", conn("callToBeHeld", -42), "invalidConnectionID")
	h.ok("1001", "SetDoNotDisturb", dev1001+"<csta:doNotDisturbOn>true</csta:doNotDisturbOn>")
	h.ok("1002", "RequestSystemStatus", "")
	flushApp(t, h.app)

	resp, page := adminDo(t, h.app, "/ext/1001")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/ext/1001 = %d", resp.StatusCode)
	}
	for _, want := range []string{
		"Extension 1001 · Alice", `<td class="uri">sip:1001@pbx.test</td>`, "<th>HTTP authentication</th><td>none</td>",
		`<tr class="call"><td>-1</td><td>connected</td><td>in</td><td class="uri">sip:030124@pbx.test</td>`,
		`<td id="dnd">on</td>`, `<td id="forwarding">off</td>`,
		"<td>AnswerCall</td><td>-1</td><td>ok</td>", "<td>HoldCall</td><td>-42</td><td>invalidConnectionID: ",
		"<td>action_connected_url</td><td>-1</td>", "<td>action_incoming_url</td><td>-1</td>",
		`<tr class="stored"><td>dnd_mode</td><td class="url">on</td><td class="url">(not set)</td></tr>`,
		`<tr class="setting"><td>dnd_mode</td><td class="url">on</td><td>state file</td>`,
		`<tr class="setting"><td>action_hold</td><td class="url">http://127.0.0.1:`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/ext/1001 lacks %q", want)
		}
	}
	if strings.Contains(page, "RequestSystemStatus") {
		t.Error("/ext/1001 shows 1002's request")
	}
	_, page = adminDo(t, h.app, "/ext/1002")
	if !strings.Contains(page, "<th>HTTP authentication</th><td>basic, user bob</td>") || !strings.Contains(page, "<td>RequestSystemStatus</td>") ||
		strings.Contains(page, ">pw<") {
		t.Errorf("/ext/1002:\n%s", page)
	}
	resp, body := adminDo(t, h.app, "/api/phones/1001")
	var v struct {
		Name     string
		DND      bool
		Calls    []struct{ State string }
		Settings []struct{ Name, Source string }
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || resp.StatusCode != http.StatusOK || v.Name != "1001" || !v.DND ||
		len(v.Calls) != 1 || v.Calls[0].State != "connected" || len(v.Settings) == 0 {
		t.Errorf("api/phones/1001: %d %v %+v", resp.StatusCode, err, v)
	}
	if resp, _ := adminDo(t, h.app, "/api/phones/nobody"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("api/phones/nobody = %d", resp.StatusCode)
	}
}

// The style sheet and the script are served from the binary.
func TestStatusAssets(t *testing.T) {
	h := start(t, nil)
	for path, typ := range map[string]string{"/status.css": "text/css", "/status.js": "text/javascript"} {
		resp, body := adminDo(t, h.app, path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) || len(body) < 100 {
			t.Errorf("%s: %d %q %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	_, css := adminDo(t, h.app, "/status.css")
	if !strings.Contains(css, "table-layout:fixed") || !strings.Contains(css, "overflow-wrap:anywhere") {
		t.Error("the style sheet does not wrap long values inside fixed columns")
	}
}

func TestCompareExtensions(t *testing.T) {
	in := []string{"reception", "10000", "1001", "999", "0999", "1000", "Annex", "1000a"}
	want := "0999,999,1000,1001,10000,1000a,Annex,reception"
	got := append([]string(nil), in...)
	slices.SortFunc(got, compareExtensions)
	if strings.Join(got, ",") != want {
		t.Errorf("sorted %v, want %s", got, want)
	}
}
