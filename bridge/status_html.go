package bridge

// The status page's templates, style sheet and script, served from the
// binary: no framework, nothing from a CDN (the admin's browser may have no
// internet). Every value is escaped by html/template on the server and set
// with textContent by the script; long URIs and URLs wrap inside their
// column, so the page never needs sideways scrolling.

import (
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// statusCSP allows the page its own style sheet, script and API only.
const statusCSP = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'self'"

// statusAssets serves the style sheet and the script.
func statusAssets(mux *http.ServeMux) {
	for path, a := range map[string]struct{ typ, body string }{
		"GET /status.css": {"text/css; charset=utf-8", statusCSS},
		"GET /status.js":  {"text/javascript; charset=utf-8", statusJS},
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", a.typ)
			w.Header().Set("Cache-Control", "max-age=300")
			_, _ = w.Write([]byte(a.body))
		})
	}
}

// featuresText is the Features column; status.js builds the same text.
func featuresText(pv phoneView) string {
	var f []string
	if pv.DND {
		f = append(f, "DND")
	}
	if pv.Forward != "" {
		f = append(f, "→ "+pv.Forward)
	}
	if pv.Stored > 0 {
		f = append(f, strconv.Itoa(pv.Stored)+" stored")
	}
	return strings.Join(f, " ")
}

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"clock":    func(t time.Time) string { return t.Format("15:04:05.000") },
	"features": featuresText,
}).Parse(`
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/status.css">{{end}}

{{define "header"}}<h1><a href="/">csta-bridge</a> {{.Version}}</h1>
<p>PBX <b>{{.PBX}}</b>: <span class="{{if .Ready}}ok{{else}}bad{{end}}" id="pbx-state">{{.Link}}</span>
· up {{.Uptime}} · {{.Extensions}} extensions · config <code>{{.ConfigPath}}</code> · action URLs queued <span id="queued">{{.Pending}}</span></p>{{if .Nodes}}
<p>Nodes:{{range .Nodes}} <b>{{.Name}}</b> <span class="{{if .Up}}ok{{else}}bad{{end}}">{{if .Up}}up{{else}}down{{if .Detail}} ({{.Detail}}){{end}}{{end}}</span>, {{.Extensions}} extensions, {{.Calls}} calls;{{end}}</p>{{end}}{{end}}

{{define "footer"}}<p><small>Generated {{clock .Generated}} · <span id="live">reload the page for news</span> ·
<a href="/metrics">metrics</a> · <a href="/-/ready">ready</a>{{if .API}} · <a href="{{.API}}">JSON</a>{{end}}</small></p>
<script src="/status.js"></script>
</body></html>
{{end}}

{{define "rows"}}{{$p := .}}{{if .Calls}}{{range .Calls}}<tr class="call"><td><a href="/ext/{{$p.Name}}">{{$p.Name}}</a></td><td>{{$p.Display}}</td><td class="uri">{{$p.Local}}</td><td>{{features $p}}</td><td>{{.ID}}</td><td>{{.State}}</td><td>{{.Dir}}</td><td class="uri">{{.Remote}}</td><td>{{.Duration}}</td></tr>
{{end}}{{else}}<tr><td><a href="/ext/{{.Name}}">{{.Name}}</a></td><td>{{.Display}}</td><td class="uri">{{.Local}}</td><td>{{features .}}</td><td colspan="5">idle</td></tr>
{{end}}{{end}}

{{define "pager"}}<p class="pager" id="pager">{{if .Match}}Extensions {{.First}}–{{.Last}} of {{.Match}}{{if .Query.Q}} matching “{{.Query.Q}}”{{end}} · page {{.Page}} of {{.Pages}}{{else}}No extension matches “{{.Query.Q}}”{{end}}
{{if .FirstURL}}· <a href="{{.FirstURL}}">« first</a> <a href="{{.PrevURL}}" rel="prev">‹ previous</a>{{end}}
{{if .NextURL}}· <a href="{{.NextURL}}" rel="next">next ›</a> <a href="{{.LastURL}}">last »</a>{{end}}</p>{{end}}

{{define "overview"}}{{template "head"}}
<title>csta-bridge</title></head><body>
{{template "header" .}}
<h2>Extensions</h2>
<form method="get" action="/" class="search" role="search">
<label for="q">Extension or name</label> <input type="search" id="q" name="q" value="{{.Query.Q}}">
{{if ne .PerPg 50}}<input type="hidden" name="n" value="{{.PerPg}}">{{end}}<button type="submit">Search</button>
{{if .Query.Q}}<a href="/">all extensions</a>{{end}}
</form>
{{template "pager" .}}
<table id="phones" data-api="{{.API}}"><colgroup><col class="w8"><col class="w12"><col class="w16"><col class="w10"><col class="w6"><col class="w8"><col class="w8"><col class="w22"><col class="w10"></colgroup>
<thead><tr><th>Extension</th><th>Name</th><th>Identity</th><th>Features</th><th>csta_id</th><th>State</th><th>Direction</th><th>Remote party</th><th>Duration</th></tr></thead>
<tbody>
{{range .Phones}}{{template "rows" .}}{{else}}<tr><td colspan="9">no extension matches</td></tr>
{{end}}</tbody></table>
<h2>Calls refused or forwarded</h2>
{{template "diverted" .Diverted}}
<h2>Last CSTA requests</h2>
<table><colgroup><col class="w12"><col class="w8"><col class="w18"><col class="w10"><col class="w42"><col class="w10"></colgroup>
<tr><th>Time</th><th>Extension</th><th>Service</th><th>Connection</th><th>Result</th><th>Took</th></tr>
{{range .CSTA}}<tr><td>{{clock .At}}</td><td><a href="/ext/{{.Ext}}">{{.Ext}}</a></td><td>{{.Service}}</td><td>{{.CallID}}</td><td>{{.Result}}</td><td>{{.Took}}</td></tr>
{{end}}</table>
<h2>Last action URLs</h2>
<table><colgroup><col class="w12"><col class="w8"><col class="w18"><col class="w6"><col class="w40"><col class="w16"></colgroup>
<tr><th>Time</th><th>Extension</th><th>Setting</th><th>csta_id</th><th>URL</th><th>Result</th></tr>
{{range .Actions}}<tr><td>{{clock .At}}</td><td><a href="/ext/{{.Ext}}">{{.Ext}}</a></td><td>{{.Event}}</td><td>{{.CSTAID}}</td><td class="url">{{.URL}}</td><td>{{.Result}}</td></tr>
{{end}}</table>
{{template "footer" .}}{{end}}

{{define "diverted"}}<table><colgroup><col class="w12"><col class="w8"><col class="w22"><col class="w10"><col class="w22"><col class="w26"></colgroup>
<tr><th>Time</th><th>Extension</th><th>Caller</th><th>Why</th><th>Forwarded to</th><th>Result</th></tr>
{{range .}}<tr class="diverted"><td>{{clock .At}}</td><td><a href="/ext/{{.Ext}}">{{.Ext}}</a></td><td class="uri">{{.Remote}}</td><td>{{.Reason}}</td><td class="uri">{{.Target}}</td><td>{{.Result}}</td></tr>
{{else}}<tr><td colspan="6">none since the start</td></tr>
{{end}}</table>{{end}}

{{define "extension"}}{{template "head"}}
<title>{{.Name}} · csta-bridge</title></head><body>
{{template "header" .}}
<p><a href="/">« all extensions</a></p>
<h2>Extension {{.Name}}{{if .Display}} · {{.Display}}{{end}}</h2>
<table class="kv"><colgroup><col class="w20"><col class="w80"></colgroup>
<tr><th>Identity</th><td class="uri">{{.Local}}</td></tr>
<tr><th>PBX endpoint</th><td>{{.Endpoint}}</td></tr>
<tr><th>Own listener</th><td>{{if .Listen}}{{.Listen}}{{else}}none: /{{.Name}}/csta on the shared listener{{end}}</td></tr>
<tr><th>HTTP authentication</th><td>{{.HTTPScheme}}{{if .HTTPUser}}, user {{.HTTPUser}}{{end}}</td></tr>
<tr><th>Do not disturb</th><td id="dnd">{{if .DND}}on{{else}}off{{end}}</td></tr>
<tr><th>Forwarding</th><td id="forwarding">{{if .Forward}}{{.Forward}}{{else}}off{{end}}</td></tr>
</table>
<h3>Calls</h3>
<table id="calls" data-api="{{.API}}"><colgroup><col class="w10"><col class="w14"><col class="w10"><col class="w50"><col class="w16"></colgroup>
<thead><tr><th>csta_id</th><th>State</th><th>Direction</th><th>Remote party</th><th>Duration</th></tr></thead>
<tbody>
{{range .Calls}}<tr class="call"><td>{{.ID}}</td><td>{{.State}}</td><td>{{.Dir}}</td><td class="uri">{{.Remote}}</td><td>{{.Duration}}</td></tr>
{{else}}<tr><td colspan="5">no calls</td></tr>
{{end}}</tbody></table>
<h3>Last CSTA requests</h3>
<table><colgroup><col class="w14"><col class="w20"><col class="w12"><col class="w42"><col class="w12"></colgroup>
<tr><th>Time</th><th>Service</th><th>Connection</th><th>Result</th><th>Took</th></tr>
{{range .CSTA}}<tr><td>{{clock .At}}</td><td>{{.Service}}</td><td>{{.CallID}}</td><td>{{.Result}}</td><td>{{.Took}}</td></tr>
{{else}}<tr><td colspan="5">none since the start</td></tr>
{{end}}</table>
<h3>Last action URLs</h3>
<table><colgroup><col class="w14"><col class="w18"><col class="w8"><col class="w42"><col class="w18"></colgroup>
<tr><th>Time</th><th>Setting</th><th>csta_id</th><th>URL</th><th>Result</th></tr>
{{range .Actions}}<tr><td>{{clock .At}}</td><td>{{.Event}}</td><td>{{.CSTAID}}</td><td class="url">{{.URL}}</td><td>{{.Result}}</td></tr>
{{else}}<tr><td colspan="5">none since the start</td></tr>
{{end}}</table>
<h3>Stored settings</h3>
<p>Stored settings (the state file: /dummy.htm … store_settings=save, CSTA, the keypad) override the YAML;
<code>curl -X DELETE http://ADMIN/stored/{{.Name}}</code> drops them.</p>
<table><colgroup><col class="w30"><col class="w35"><col class="w35"></colgroup>
<tr><th>Setting</th><th>Stored value</th><th>YAML value</th></tr>
{{range .Overrides}}<tr class="stored"><td>{{.Name}}</td><td class="url">{{.Stored}}</td><td class="url">{{if .InYAML}}{{.YAML}}{{else}}(not set){{end}}</td></tr>
{{else}}<tr><td colspan="3">none: the YAML's settings apply</td></tr>
{{end}}</table>
<h3>Settings in force</h3>
<table><colgroup><col class="w22"><col class="w40"><col class="w14"><col class="w24"></colgroup>
<tr><th>Setting</th><th>Value</th><th>Source</th><th>YAML value</th></tr>
{{range .Settings}}<tr class="setting"><td>{{.Name}}</td><td class="url">{{.Value}}</td><td>{{.Source}}</td><td class="url">{{if eq .Source "YAML"}}{{else if .InYAML}}{{.YAML}}{{else}}(not set){{end}}</td></tr>
{{else}}<tr><td colspan="4">none</td></tr>
{{end}}</table>
<h3>Calls refused or forwarded</h3>
{{template "diverted" .Diverted}}
{{template "footer" .}}{{end}}
`))

const statusCSS = `*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:1em 1.5em;color:#222}
h1{font-size:1.4em}h1 a{color:inherit;text-decoration:none}
h2{font-size:1.2em;margin-top:1.5em}h3{font-size:1.05em;margin-top:1.3em}
p,td,th,code,label{overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;table-layout:fixed;margin-bottom:1em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;font-size:90%;vertical-align:top;overflow-wrap:anywhere}
th{background:#eee}
.url,.uri,code{font-family:ui-monospace,monospace;font-size:85%}
.bad{color:#b00}.ok{color:#070}
.search input{width:20em;max-width:50%}
.pager a{margin-right:.4em}
.w6{width:6%}.w8{width:8%}.w10{width:10%}.w12{width:12%}.w14{width:14%}.w16{width:16%}.w18{width:18%}.w20{width:20%}
.w22{width:22%}.w24{width:24%}.w26{width:26%}.w30{width:30%}.w35{width:35%}.w40{width:40%}.w42{width:42%}.w50{width:50%}.w80{width:80%}
`

// statusJS keeps the visible rows current: every 5 s, while the tab is
// visible, it asks the API for the same search and page (the overview's
// GET /api/phones?…, an extension page's GET /api/phones/NAME; an unchanged
// answer is a 304) and redraws the rows as the template does. Without
// JavaScript the pages are complete; they only do not update themselves.
const statusJS = `(function () {
  "use strict";
  var live = document.getElementById("live");
  var table = document.getElementById("phones") || document.getElementById("calls");
  if (!table || !live || !window.fetch) return;
  var api = table.getAttribute("data-api");
  var tbody = table.tBodies[0];
  var last = "";
  function td(tr, text, span) {
    var c = document.createElement("td");
    c.textContent = text;
    if (span) c.colSpan = span;
    tr.appendChild(c);
    return c;
  }
  function text(id, t) {
    var e = document.getElementById(id);
    if (e) e.textContent = t;
    return e;
  }
  function duration(s) {
    var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), out = "";
    if (h) out += h + "h";
    if (h || m) out += m + "m";
    return out + (s % 60) + "s";
  }
  function features(p) {
    var f = [];
    if (p.dnd) f.push("DND");
    if (p.forwarding) f.push("\u2192 " + p.forwarding);
    if (p.stored_settings) f.push(p.stored_settings + " stored");
    return f.join(" ");
  }
  function callCells(tr, c) {
    tr.className = "call";
    td(tr, String(c.csta_id));
    td(tr, c.state);
    td(tr, c.direction);
    td(tr, c.remote).className = "uri";
    td(tr, duration(c.seconds));
  }
  function phoneRow(p, c) {
    var tr = document.createElement("tr");
    var a = document.createElement("a");
    a.href = "/ext/" + encodeURIComponent(p.name);
    a.textContent = p.name;
    td(tr, "").appendChild(a);
    td(tr, p.display_name);
    td(tr, p.identity).className = "uri";
    td(tr, features(p));
    if (c) callCells(tr, c);
    else td(tr, "idle", 5);
    return tr;
  }
  function empty(msg, span) {
    var tr = document.createElement("tr");
    td(tr, msg, span);
    return tr;
  }
  function render(d) {
    var rows = [];
    if (d.phones) {
      d.phones.forEach(function (p) {
        if (!p.calls || !p.calls.length) rows.push(phoneRow(p, null));
        else p.calls.forEach(function (c) { rows.push(phoneRow(p, c)); });
      });
      if (!rows.length) rows.push(empty("no extension matches", 9));
    } else {
      (d.calls || []).forEach(function (c) {
        var tr = document.createElement("tr");
        callCells(tr, c);
        rows.push(tr);
      });
      if (!rows.length) rows.push(empty("no calls", 5));
      text("dnd", d.dnd ? "on" : "off");
      text("forwarding", d.forwarding || "off");
    }
    tbody.replaceChildren.apply(tbody, rows);
    var st = text("pbx-state", d.link);
    if (st) st.className = d.ready ? "ok" : "bad";
    text("queued", d.action_urls_queued);
  }
  function poll() {
    if (document.hidden) return;
    fetch(api, {cache: "no-cache", headers: {Accept: "application/json"}})
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (t) {
        if (t !== last) {
          last = t;
          render(JSON.parse(t));
        }
        live.textContent = "live: checked " + new Date().toLocaleTimeString();
      })
      .catch(function (e) {
        live.textContent = "live updates failed (" + e.message + "): reload the page";
      });
  }
  live.textContent = "live: updates every 5 s";
  poll();
  setInterval(poll, 5000);
  document.addEventListener("visibilitychange", poll);
})();
`
