package bridge

// The status page on the admin listener, built for 10,000 phones: the
// overview shows one page of extensions at a time (searchable by extension
// and name), each extension has its own page, and the visible page updates
// itself from a small JSON API instead of reloading. Only the phones on the
// requested page are copied off the switchboard, so a request costs the
// same at 3 and at 10,000 phones but for the search over the names.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"hash/fnv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/actionurl"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Page sizes of the overview: the default, and the most a client may ask for.
const (
	statusPerPage    = 50
	statusMaxPerPage = 500
)

// statusRoutes adds the status page and its API to the admin mux.
func (a *App) statusRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", a.statusPage)
	mux.HandleFunc("GET /ext/{name}", a.statusExtPage)
	mux.HandleFunc("GET /api/phones", a.statusAPI)
	mux.HandleFunc("GET /api/phones/{name}", a.statusExtAPI)
}

// statusIndex is the configured extensions in display order with what the
// search matches, rebuilt when the config changes.
type statusIndex struct {
	cfg     *config.Config
	entries []statusEntry
}

type statusEntry struct {
	name, display string
	fold          string // lower-case name and display name, for the search
}

func (a *App) statusIndex() *statusIndex {
	cfg := a.cfg.Load()
	if idx := a.statusIdx.Load(); idx != nil && idx.cfg == cfg {
		return idx
	}
	idx := &statusIndex{cfg: cfg, entries: make([]statusEntry, 0, len(cfg.Extensions))}
	for _, e := range cfg.Extensions {
		idx.entries = append(idx.entries, statusEntry{name: e.Name, display: e.DisplayName,
			fold: strings.ToLower(e.Name + "\x00" + e.DisplayName)})
	}
	slices.SortFunc(idx.entries, func(x, y statusEntry) int { return compareExtensions(x.name, y.name) })
	a.statusIdx.Store(idx)
	return idx
}

// compareExtensions orders numbers numerically (999 before 1000) and puts
// them before names.
func compareExtensions(x, y string) int {
	xd, yd := allDigits(x), allDigits(y)
	switch {
	case xd && yd:
		if c := cmp.Compare(len(strings.TrimLeft(x, "0")), len(strings.TrimLeft(y, "0"))); c != 0 {
			return c
		}
		if c := strings.Compare(strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")); c != 0 {
			return c
		}
	case xd:
		return -1
	case yd:
		return 1
	}
	return strings.Compare(x, y)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// statusQuery is what the overview shows: a search and a page of it.
type statusQuery struct {
	Q       string
	Page, N int
}

func parseStatusQuery(r *http.Request) statusQuery {
	v := r.URL.Query()
	q := statusQuery{Q: strings.TrimSpace(v.Get("q")), Page: 1, N: statusPerPage}
	if n, err := strconv.Atoi(v.Get("page")); err == nil && n > 1 {
		q.Page = n
	}
	if n, err := strconv.Atoi(v.Get("n")); err == nil && n > 0 {
		q.N = min(n, statusMaxPerPage)
	}
	return q
}

// url is the overview's address for q at page (0: q's page).
func (q statusQuery) url(base string, page int) string {
	if page == 0 {
		page = q.Page
	}
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if q.N != statusPerPage {
		v.Set("n", strconv.Itoa(q.N))
	}
	if len(v) == 0 {
		return base
	}
	return base + "?" + v.Encode()
}

// statusPageOf is one page of the search's result.
type statusPageOf struct {
	Matched, Pages, First, Last int // First and Last count from 1; 0 when nothing matched
	names                       []string
}

// page finds q's page (clamping q.Page to the last one). A search keeps
// the positions of the matches only, not copies of the entries.
func (idx *statusIndex) page(q *statusQuery) statusPageOf {
	matched := len(idx.entries)
	var hits []int32
	if q.Q != "" {
		needle := strings.ToLower(q.Q)
		for i := range idx.entries {
			if strings.Contains(idx.entries[i].fold, needle) {
				hits = append(hits, int32(i))
			}
		}
		matched = len(hits)
	}
	p := statusPageOf{Matched: matched, Pages: max(1, (matched+q.N-1)/q.N)}
	q.Page = min(q.Page, p.Pages)
	from := (q.Page - 1) * q.N
	to := min(from+q.N, matched)
	for i := from; i < to; i++ {
		j := i
		if hits != nil {
			j = int(hits[i])
		}
		p.names = append(p.names, idx.entries[j].name)
	}
	if to > from {
		p.First, p.Last = from+1, to
	}
	return p
}

// statusHeader is the bridge's state, on every page.
type statusHeader struct {
	Version    string        `json:"version"`
	PBX        string        `json:"pbx"`
	Link       string        `json:"link"`
	Ready      bool          `json:"ready"`
	Uptime     time.Duration `json:"-"`
	ConfigPath string        `json:"-"`
	Pending    int           `json:"action_urls_queued"`
	Extensions int           `json:"extensions"`
	Generated  time.Time     `json:"-"`
	// Nodes: each PBX server of a cluster (pbx.esl.nodes), none for one PBX.
	Nodes []nodeView `json:"nodes,omitempty"`
}

type nodeView struct {
	Name       string `json:"name"`
	Up         bool   `json:"up"`
	Detail     string `json:"detail,omitempty"`
	Extensions int    `json:"extensions"`
	Calls      int    `json:"calls"`
}

// nodeViews lists the nodes of a cluster adapter (nil for a single PBX).
func (a *App) nodeViews() []nodeView {
	r, ok := a.currentPBX().(pbx.NodeReporter)
	if !ok {
		return nil
	}
	var out []nodeView
	for _, n := range r.Nodes() {
		out = append(out, nodeView{Name: n.Name, Up: n.Up, Detail: n.Detail, Extensions: n.Extensions, Calls: n.Calls})
	}
	return out
}

func (a *App) statusHeader() statusHeader {
	cfg := a.cfg.Load()
	return statusHeader{Version: a.opts.Version, PBX: cfg.PBX.Type, Link: a.linkState.Load().(string),
		Ready: a.Ready(), Uptime: time.Since(a.started).Round(time.Second), Generated: time.Now(),
		ConfigPath: a.opts.ConfigPath, Pending: a.notifier.Pending(), Extensions: len(cfg.Extensions),
		Nodes: a.nodeViews()}
}

type phoneView struct {
	Name     string      `json:"name"`
	Display  string      `json:"display_name"`
	Local    string      `json:"identity"`
	Calls    []callView  `json:"calls"`
	DND      bool        `json:"dnd"`
	Forward  string      `json:"forwarding"` // "all → 1002", "" when off
	Stored   int         `json:"stored_settings"`
	Features featureView `json:"-"`
	domain   string      // Local is built from it off the switchboard
}

type callView struct {
	ID       int           `json:"csta_id"`
	State    string        `json:"state"`
	Dir      string        `json:"direction"`
	Remote   string        `json:"remote"`
	Duration time.Duration `json:"-"`
	Seconds  int64         `json:"seconds"`
}

// snapshotPhones copies what the status page shows of the named phones.
// It runs on the switchboard goroutine, where every /csta request and PBX
// event waits for it: it only copies, and the caller sorts. A name the
// switchboard does not know (a reload in between) is left out.
func (a *App) snapshotPhones(names []string) []phoneView {
	now := time.Now()
	out := make([]phoneView, 0, len(names))
	for _, name := range names {
		p := a.sb.phones[name]
		if p == nil {
			continue
		}
		out = append(out, a.phoneView(p, now))
	}
	return out
}

func (a *App) phoneView(p *phone, now time.Time) phoneView {
	name := p.cfg.Name
	pv := phoneView{Name: name, Display: p.cfg.DisplayName, domain: p.cfg.Domain,
		Features: viewFeatures(p, a.storedFor(name))}
	for _, c := range p.calls {
		if c.pending {
			continue
		}
		dir := "in"
		if c.dir == pbx.Outgoing {
			dir = "out"
		}
		pv.Calls = append(pv.Calls, callView{ID: c.id, State: c.state.String(), Dir: dir,
			Remote: remoteURI(p, c), Duration: now.Sub(c.created).Round(time.Second)})
	}
	return pv
}

// finish does the work that need not hold up the switchboard.
func (pv *phoneView) finish() {
	pv.Local = localURI(pv.Name, pv.domain)
	pv.DND, pv.Forward, pv.Stored = pv.Features.DND, pv.Features.Forward, len(pv.Features.Overrides)
	slices.SortFunc(pv.Calls, func(x, y callView) int { return x.ID - y.ID })
	for i := range pv.Calls {
		pv.Calls[i].Seconds = int64(pv.Calls[i].Duration / time.Second)
	}
}

// overview is the data of the overview page and of GET /api/phones.
type overview struct {
	statusHeader
	Query  statusQuery `json:"-"`
	Page   int         `json:"page"`
	PerPg  int         `json:"per_page"`
	Pages  int         `json:"pages"`
	Match  int         `json:"matched"`
	First  int         `json:"first"`
	Last   int         `json:"last"`
	Phones []phoneView `json:"phones"`
	// Links of the pager ("" where there is none) and of the API.
	FirstURL, PrevURL, NextURL, LastURL, API string `json:"-"`
	// The newest records of all extensions (the page only).
	CSTA     []cstaRecord   `json:"-"`
	Actions  []actionRecord `json:"-"`
	Diverted []divertRecord `json:"-"`
}

func (a *App) overview(ctx context.Context, q statusQuery) (*overview, error) {
	pg := a.statusIndex().page(&q)
	v := &overview{statusHeader: a.statusHeader(), Query: q, Page: q.Page, PerPg: q.N, Pages: pg.Pages,
		Match: pg.Matched, First: pg.First, Last: pg.Last, API: q.url("/api/phones", 0)}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.sb.do(ctx, func() { v.Phones = a.snapshotPhones(pg.names) }); err != nil {
		return nil, err
	}
	for i := range v.Phones {
		v.Phones[i].finish()
	}
	if q.Page > 1 {
		v.FirstURL, v.PrevURL = q.url("/", 1), q.url("/", q.Page-1)
	}
	if q.Page < pg.Pages {
		v.NextURL, v.LastURL = q.url("/", q.Page+1), q.url("/", pg.Pages)
	}
	return v, nil
}

func (a *App) statusPage(w http.ResponseWriter, r *http.Request) {
	v, err := a.overview(r.Context(), parseStatusQuery(r))
	if err != nil {
		http.Error(w, "call state busy, try again", http.StatusServiceUnavailable)
		return
	}
	v.CSTA = reversed(a.cstaLog.list())
	v.Actions = reversed(a.actions.recent.list())
	v.Diverted = a.divertList()
	writeStatusHTML(w, "overview", v)
}

// statusAPI is the overview's page as JSON: what the page's script polls,
// and what a script of the admin's may read.
func (a *App) statusAPI(w http.ResponseWriter, r *http.Request) {
	v, err := a.overview(r.Context(), parseStatusQuery(r))
	if err != nil {
		http.Error(w, "call state busy, try again", http.StatusServiceUnavailable)
		return
	}
	writeStatusJSON(w, r, v)
}

// extView is one extension's page.
type extView struct {
	statusHeader
	phoneView
	Endpoint   string         `json:"endpoint"`
	Listen     string         `json:"listen,omitempty"`
	HTTPScheme string         `json:"http_scheme"`
	HTTPUser   string         `json:"http_user,omitempty"`
	Settings   []settingView  `json:"settings"`
	Overrides  []override     `json:"stored"`
	CSTA       []cstaRecord   `json:"-"`
	Actions    []actionRecord `json:"-"`
	Diverted   []divertRecord `json:"-"`
	API        string         `json:"-"`
}

// settingView is a setting in force and where its value comes from.
type settingView struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"` // "YAML", "state file", "run time (not stored)"
	YAML   string `json:"yaml,omitempty"`
	InYAML bool   `json:"in_yaml"`
}

// extView builds name's page; nil when there is no such extension.
func (a *App) extView(ctx context.Context, name string) (*extView, error) {
	var v *extView
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := a.sb.do(ctx, func() {
		p := a.sb.phones[name]
		if p == nil {
			return
		}
		v = &extView{phoneView: a.phoneView(p, time.Now()), Endpoint: p.cfg.Endpoint, Listen: p.cfg.Listen,
			HTTPScheme: p.cfg.HTTPScheme, HTTPUser: p.cfg.HTTPUser,
			Settings: settingsInForce(p.cfg.Settings, p.runtime, a.storedFor(name))}
	})
	if err != nil || v == nil {
		return nil, err
	}
	v.statusHeader = a.statusHeader()
	v.API = "/api/phones/" + url.PathEscape(name)
	v.finish()
	if v.HTTPScheme == "" {
		v.HTTPScheme = config.SchemeNone
	}
	v.Overrides = v.Features.Overrides
	v.CSTA = reversed(a.cstaLog.listFor(name))
	v.Actions = reversed(a.actions.recent.listFor(name))
	for _, d := range a.divertList() {
		if d.Ext == name {
			v.Diverted = append(v.Diverted, d)
		}
	}
	return v, nil
}

// settingsInForce lists every setting the phone has, sorted, with its
// source. Run-time values (/dummy.htm, CSTA, keys) win over the YAML; the
// ones in the state file survive a restart. Secrets are hidden and action
// URLs redacted, as in the log.
func settingsInForce(yaml, runtime, stored map[string]string) []settingView {
	names := make([]string, 0, len(yaml)+len(runtime))
	for n := range yaml {
		names = append(names, n)
	}
	for n := range runtime {
		if _, dup := yaml[n]; !dup {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := make([]settingView, 0, len(names))
	for _, n := range names {
		y, inYAML := yaml[n]
		s := settingView{Name: n, Value: y, Source: "YAML", InYAML: inYAML}
		if rv, ok := runtime[n]; ok {
			s.Value, s.YAML, s.Source = rv, y, "run time (not stored)"
			if sv, ok := stored[n]; ok && sv == rv {
				s.Source = "state file"
			}
		}
		switch {
		case secretSetting(n):
			s.Value, s.YAML = hiddenIfSet(s.Value), hiddenIfSet(s.YAML)
		case strings.HasPrefix(n, "action_"):
			s.Value, s.YAML = actionurl.Redact(s.Value), actionurl.Redact(s.YAML)
		}
		out = append(out, s)
	}
	return out
}

func hiddenIfSet(v string) string {
	if v == "" {
		return ""
	}
	return "(hidden)"
}

func (a *App) statusExtPage(w http.ResponseWriter, r *http.Request) {
	v, err := a.extView(r.Context(), r.PathValue("name"))
	switch {
	case err != nil:
		http.Error(w, "call state busy, try again", http.StatusServiceUnavailable)
	case v == nil:
		http.Error(w, "no extension "+strconv.Quote(r.PathValue("name")), http.StatusNotFound)
	default:
		writeStatusHTML(w, "extension", v)
	}
}

func (a *App) statusExtAPI(w http.ResponseWriter, r *http.Request) {
	v, err := a.extView(r.Context(), r.PathValue("name"))
	switch {
	case err != nil:
		http.Error(w, "call state busy, try again", http.StatusServiceUnavailable)
	case v == nil:
		http.Error(w, "no extension "+strconv.Quote(r.PathValue("name")), http.StatusNotFound)
	default:
		writeStatusJSON(w, r, v)
	}
}

// writeStatusHTML renders into a buffer first, so that a template error is
// a 500 rather than half a page.
func writeStatusHTML(w http.ResponseWriter, name string, v any) {
	var b bytes.Buffer
	if err := statusTmpl.ExecuteTemplate(&b, name, v); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", statusCSP)
	_, _ = w.Write(b.Bytes())
}

// writeStatusJSON answers with v, or 304 when the client already has it:
// an idle page polled every few seconds costs a status line.
func writeStatusJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := fnv.New64a()
	h.Write(b)
	etag := `"` + strconv.FormatUint(h.Sum64(), 36) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

func reversed[T any](s []T) []T { slices.Reverse(s); return s }
