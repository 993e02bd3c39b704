package bridge

// The phone web pages legacy CTI software uses instead of CSTA: click-to-dial
// and key presses on /command.htm, setting writes on /dummy.htm and
// /settings.htm (research/snom.md §3). Each key press is carried out through
// the same services as a CSTA request.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/csta"
)

const indexPage = `<!DOCTYPE html>
<html><head><title>snom</title></head><body><p>csta-bridge virtual phone %s</p></body></html>
`

// webCompat serves /command.htm, /dummy.htm, /settings.htm and /index.htm
// for extension e; prefix is "/<ext>" when the shared listener addressed it
// by path.
func (a *App) webCompat(w http.ResponseWriter, r *http.Request, e *extEntry, path, prefix string) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	form, err := snomForm(r)
	if err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Form = form
	name := e.cfg.Name
	switch path {
	case "/index.htm":
		writeHTML(w, fmt.Sprintf(indexPage, name))
	case "/dummy.htm", "/settings.htm":
		a.webSettings(w, r, name)
	case "/command.htm":
		a.webCommand(w, r, name, prefix)
	}
}

// snomForm parses the query (and a form body: one client POSTs) the way the
// phone does: only '&' separates pairs, so "key=1,100,100;2,100,100" is one
// value (Go's url.ParseQuery refuses ';'), and '+' stays a plus, because
// clients send numbers like +4930… with the '+' unescaped.
func snomForm(r *http.Request) (url.Values, error) {
	form := url.Values{}
	add := func(raw string) {
		for _, pair := range strings.Split(raw, "&") {
			if pair == "" {
				continue
			}
			k, v, _ := strings.Cut(pair, "=")
			form.Add(unescape(k), unescape(v))
		}
	}
	add(r.URL.RawQuery)
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxCSTABody))
		if err != nil {
			return nil, err
		}
		add(string(b))
	}
	return form, nil
}

// unescape decodes %XX; a malformed escape is kept as written, as a phone would.
func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

func writeHTML(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(s))
}

// webCommand runs /command.htm. Like the phone, it answers at once for key
// presses and never reports a failed action to the client (it is logged).
func (a *App) webCommand(w http.ResponseWriter, r *http.Request, ext, prefix string) {
	q := r.Form
	// The TAPI client closes its socket without reading: finish regardless.
	ctx := context.WithoutCancel(r.Context())
	log := a.log.With("component", "command.htm", "ext", ext)
	switch {
	case q.Has("number"):
		req := &csta.Request{Service: csta.MakeCall, Called: q.Get("number"), CallingDevice: q.Get("outgoing_uri")}
		if _, cerr := a.svc.serve(ctx, ext, req); cerr != nil {
			log.Warn("click-to-dial failed", "number", req.Called, "code", cerr.Code, "reason", cerr.Message)
		}
		w.Header().Set("Location", prefix+"/index.htm")
		w.WriteHeader(http.StatusFound)
		return
	case q.Has("RELEASE_ALL_CALLS"):
		a.releaseAll(ctx, ext, log)
	case q.Has("key_dtmf"):
		a.sendDTMF(ctx, ext, q.Get("key_dtmf"), log)
	case q.Has("key"):
		for _, k := range parseKeys(q.Get("key")) {
			a.pressKey(ctx, ext, k, log)
		}
	}
	writeHTML(w, fmt.Sprintf(indexPage, ext))
}

// parseKeys splits "KEY[,ms[,pause]];KEY…" into upper-case key names.
func parseKeys(s string) []string {
	var keys []string
	for _, ev := range strings.Split(s, ";") {
		k, _, _ := strings.Cut(ev, ",")
		k = strings.ToUpper(strings.TrimSpace(k))
		if k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// webSettings applies /dummy.htm?settings=save&NAME=VALUE…: the phone's
// run-time setting writes; with store_settings=save they also persist.
func (a *App) webSettings(w http.ResponseWriter, r *http.Request, ext string) {
	q := r.Form
	if q.Get("settings") == "save" {
		changed := map[string]string{}
		for name, vals := range q {
			if !settingWritable(name) || len(vals) == 0 {
				continue // unknown settings: accepted and ignored, as on a phone
			}
			v := vals[len(vals)-1]
			if featureSettingNames[name] {
				v = strings.TrimSpace(v)
				if msg := checkFeatureSetting(name, v); msg != "" {
					a.log.Warn("setting ignored: "+msg, "ext", ext, "setting", name)
					continue
				}
			}
			changed[name] = v
		}
		persist := q.Get("store_settings") == "save"
		if err := a.setRuntimeSettings(ext, changed, persist); err != nil {
			a.log.Error("storing settings failed", "ext", ext, "err", err)
			http.Error(w, "storing settings failed", http.StatusInternalServerError)
			return
		}
		a.log.Info("settings changed over HTTP", "ext", ext, "settings", settingNames(changed), "stored", persist)
	}
	writeHTML(w, fmt.Sprintf(indexPage, ext))
}

func settingNames(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// settingWritable: the action URL and feature (DND, forwarding) settings
// a CTI client may install.
func settingWritable(name string) bool {
	return knownActionSettings[name] || featureSettingNames[name]
}

var knownActionSettings = map[string]bool{
	"action_setup_url": true, "action_reg_failed": true, "action_incoming_url": true, "action_outgoing_url": true,
	"action_offhook_url": true, "action_onhook_url": true, "action_missed_url": true, "action_connected_url": true,
	"action_disconnected_url": true, "action_dnd_on_url": true, "action_dnd_off_url": true,
	"action_redirection_on_url": true, "action_redirection_off_url": true, "action_log_on_url": true,
	"action_log_off_url": true, "action_hold": true, "action_unhold": true, "action_transfer": true,
	"action_blind_transfer": true, "action_attended_transfer": true,
}

// valid reports whether v is a URL an action setting may hold (empty clears it).
func validActionURL(v string) bool {
	if v == "" {
		return true
	}
	u, err := url.Parse(strings.ReplaceAll(v, "$", "x"))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
