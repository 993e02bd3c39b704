package bridge

import (
	"context"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// adminHandler serves the admin listener: metrics, health, the simulator's
// control API and the status page.
func (a *App) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("OK\n"))
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, r *http.Request) {
		if a.opts.Lease != nil && !a.active.Load() {
			http.Error(w, "standby: the active bridge is "+a.opts.Lease.Holder(), http.StatusServiceUnavailable)
			return
		}
		if !a.Ready() {
			http.Error(w, "PBX not connected: "+a.linkState.Load().(string), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("OK\n"))
	})
	mux.HandleFunc("/sim/", func(w http.ResponseWriter, r *http.Request) {
		h := a.simAdmin.Load().h
		if h == nil {
			http.Error(w, "the simulator is not the configured PBX", http.StatusNotFound)
			return
		}
		h.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /stored", a.storedHandler)
	mux.HandleFunc("DELETE /stored/{ext}", a.storedHandler)
	mux.HandleFunc("GET /{$}", a.statusPage)
	return mux
}

// statusView is what the status page shows.
type statusView struct {
	Version    string
	PBX        string
	Link       string
	Ready      bool
	Uptime     time.Duration
	Phones     []phoneView
	CSTA       []cstaRecord
	Actions    []actionRecord
	Diverted   []divertRecord
	Pending    int
	Generated  time.Time
	ConfigPath string
}

type phoneView struct {
	Name, Display, Local string
	Calls                []callView
	Features             featureView
	domain               string // Local is built from it off the switchboard
}

type callView struct {
	ID       int
	State    string
	Dir      string
	Remote   string
	Duration time.Duration
}

func (a *App) statusPage(w http.ResponseWriter, r *http.Request) {
	v := statusView{Version: a.opts.Version, PBX: a.cfg.Load().PBX.Type, Link: a.linkState.Load().(string),
		Ready: a.Ready(), Uptime: time.Since(a.started).Round(time.Second), Generated: time.Now(),
		ConfigPath: a.opts.ConfigPath, Pending: a.notifier.Pending()}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	err := a.sb.do(ctx, func() { v.Phones = a.statusSnapshot() })
	if err != nil {
		http.Error(w, "call state busy, try again", http.StatusServiceUnavailable)
		return
	}
	slices.SortFunc(v.Phones, func(x, y phoneView) int { return strings.Compare(x.Name, y.Name) })
	for i := range v.Phones {
		pv := &v.Phones[i]
		pv.Local = localURI(pv.Name, pv.domain)
		slices.SortFunc(pv.Calls, func(x, y callView) int { return x.ID - y.ID })
	}
	v.CSTA = reversed(a.cstaLog.list())
	v.Actions = reversed(a.actions.recent.list())
	v.Diverted = a.divertList()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = statusTmpl.Execute(w, v)
}

// statusSnapshot copies what the status page shows. It runs on the
// switchboard goroutine, where every /csta request and PBX event waits for
// it: it only copies, and the caller sorts.
func (a *App) statusSnapshot() []phoneView {
	now := time.Now()
	out := make([]phoneView, 0, len(a.sb.phones))
	for name, p := range a.sb.phones {
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
		out = append(out, pv)
	}
	return out
}

func reversed[T any](s []T) []T { slices.Reverse(s); return s }

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"clock": func(t time.Time) string { return t.Format("15:04:05.000") },
}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>csta-bridge</title>
<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:90%}th{background:#eee}
.bad{color:#b00}.ok{color:#070}</style></head><body>
<h1>csta-bridge {{.Version}}</h1>
<p>PBX <b>{{.PBX}}</b>: <span class="{{if .Ready}}ok{{else}}bad{{end}}" id="pbx-state">{{.Link}}</span>
· up {{.Uptime}} · config {{.ConfigPath}} · action URLs queued {{.Pending}} · page reloads every 5 s</p>
<h2>Extensions</h2>
<table><tr><th>Extension</th><th>Name</th><th>Identity</th><th>csta_id</th><th>State</th><th>Direction</th><th>Remote party</th><th>Duration</th></tr>
{{range .Phones}}{{$p := .}}{{if .Calls}}{{range .Calls}}<tr class="call"><td>{{$p.Name}}</td><td>{{$p.Display}}</td><td>{{$p.Local}}</td><td>{{.ID}}</td><td>{{.State}}</td><td>{{.Dir}}</td><td>{{.Remote}}</td><td>{{.Duration}}</td></tr>
{{end}}{{else}}<tr><td>{{.Name}}</td><td>{{.Display}}</td><td>{{.Local}}</td><td colspan="5">idle</td></tr>
{{end}}{{end}}</table>
<h2>Features and stored settings</h2>
<p>Stored settings (state file: /dummy.htm … store_settings=save, CSTA, the keypad) override the YAML; <code>curl -X DELETE http://ADMIN/stored/EXT</code> drops an extension's.</p>
<table><tr><th>Extension</th><th>DND</th><th>Forwarding</th><th>Setting</th><th>Stored value</th><th>YAML value</th></tr>
{{range .Phones}}{{$p := .}}{{if .Features.Overrides}}{{range .Features.Overrides}}<tr class="stored"><td>{{$p.Name}}</td><td>{{if $p.Features.DND}}on{{else}}off{{end}}</td><td>{{$p.Features.Forward}}</td><td>{{.Name}}</td><td>{{.Stored}}</td><td>{{if .InYAML}}{{.YAML}}{{else}}(not set){{end}}</td></tr>
{{end}}{{else}}<tr><td>{{.Name}}</td><td>{{if .Features.DND}}on{{else}}off{{end}}</td><td>{{.Features.Forward}}</td><td colspan="3">YAML only</td></tr>
{{end}}{{end}}</table>
<h2>Calls refused or forwarded</h2>
<table><tr><th>Time</th><th>Extension</th><th>Caller</th><th>Why</th><th>Forwarded to</th><th>Result</th></tr>
{{range .Diverted}}<tr class="diverted"><td>{{clock .At}}</td><td>{{.Ext}}</td><td>{{.Remote}}</td><td>{{.Reason}}</td><td>{{.Target}}</td><td>{{.Result}}</td></tr>
{{end}}</table>
<h2>Last CSTA requests</h2>
<table><tr><th>Time</th><th>Extension</th><th>Service</th><th>Connection</th><th>Result</th><th>Took</th></tr>
{{range .CSTA}}<tr><td>{{clock .At}}</td><td>{{.Ext}}</td><td>{{.Service}}</td><td>{{.CallID}}</td><td>{{.Result}}</td><td>{{.Took}}</td></tr>
{{end}}</table>
<h2>Last action URLs</h2>
<table><tr><th>Time</th><th>Extension</th><th>Setting</th><th>csta_id</th><th>URL</th><th>Result</th></tr>
{{range .Actions}}<tr><td>{{clock .At}}</td><td>{{.Ext}}</td><td>{{.Event}}</td><td>{{.CSTAID}}</td><td>{{.URL}}</td><td>{{.Result}}</td></tr>
{{end}}</table>
<p><small>Generated {{clock .Generated}} · <a href="/metrics">metrics</a> · <a href="/-/ready">ready</a></small></p>
</body></html>
`))
