package bridge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/csta"
	"github.com/csta-bridge/csta-bridge/bridge/httpauth"
)

// maxCSTABody caps request bodies of the phone web paths; /csta uses the
// codec's own limit (64 KiB: no CSTA request comes near it).
const maxCSTABody = 64 << 10

// extTable is the immutable view of the extensions the HTTP side routes by;
// a reload swaps it whole.
type extTable struct {
	byName map[string]*extEntry
	byUser map[string]*extEntry
	// schemes offered when plain /csta arrives without credentials
	challenge httpauth.Credentials
}

type extEntry struct {
	cfg   config.Extension
	creds httpauth.Credentials
	allow httpauth.AllowList
}

func newExtTable(exts []config.Extension) *extTable {
	t := &extTable{byName: make(map[string]*extEntry, len(exts)), byUser: make(map[string]*extEntry)}
	for _, e := range exts {
		en := &extEntry{cfg: e, creds: httpauth.Credentials{User: e.HTTPUser, Pass: e.HTTPPass,
			Scheme: httpauth.Scheme(e.HTTPScheme)}, allow: httpauth.AllowList(e.Allow)}
		if en.creds.Scheme == "" {
			en.creds.Scheme = httpauth.None
		}
		t.byName[e.Name] = en
		if e.HTTPUser != "" {
			t.byUser[e.HTTPUser] = en
			// Digest wins: curl --digest and most clients need a Digest
			// challenge, while Basic clients send credentials unasked.
			if en.creds.Scheme == httpauth.Digest || t.challenge.Scheme == "" {
				t.challenge.Scheme = en.creds.Scheme
			}
		}
	}
	return t
}

// phoneHTTP serves the web paths of the virtual phones.
type phoneHTTP struct {
	log   *slog.Logger
	table func() *extTable
	auth  *httpauth.Authenticator
	svc   *services
	m     *metrics
	// recent feeds the status page.
	recent *recentLog[cstaRecord]
	// faults keeps one source's repeated refusals from flooding the log.
	faults *faultLog
	// web serves the phone web compatibility paths (/command.htm, …); nil until wired.
	web func(w http.ResponseWriter, r *http.Request, e *extEntry, path, prefix string)
}

// shared is the handler of the shared listener: /<extension>/csta, and plain
// /csta routed by the HTTP user name.
func (h *phoneHTTP) shared() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if path == "/csta" || isPhonePage(path) {
			h.byUser(w, r, path)
			return
		}
		name, rest, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if !ok {
			h.reject(w, http.StatusNotFound, "not found")
			return
		}
		e := h.table().byName[name]
		if e == nil {
			h.reject(w, http.StatusNotFound, "unknown extension "+name)
			return
		}
		h.serve(w, r, e, "/"+rest, "/"+name)
	})
}

// own is the handler of an extension's own listener: it is that phone.
func (h *phoneHTTP) own(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := h.table().byName[name]
		if e == nil {
			h.reject(w, http.StatusNotFound, "extension "+name+" is no longer configured")
			return
		}
		path := r.URL.Path
		if path == "/" {
			path = "/index.htm" // the phone's home page, for clients that probe it
		}
		h.serve(w, r, e, path, "")
	})
}

func isPhonePage(path string) bool {
	switch path {
	case "/command.htm", "/dummy.htm", "/settings.htm", "/index.htm":
		return true
	}
	return false
}

// byUser routes a plain path on the shared listener by the HTTP user name.
func (h *phoneHTTP) byUser(w http.ResponseWriter, r *http.Request, path string) {
	t := h.table()
	user := httpauth.UserName(r)
	if e := t.byUser[user]; user != "" && e != nil {
		h.serve(w, r, e, path, "")
		return
	}
	if t.challenge.Scheme == "" || t.challenge.Scheme == httpauth.None {
		h.reject(w, http.StatusNotFound, "unknown extension: use /<extension>"+path+" or HTTP authentication")
		return
	}
	h.m.rejected("401")
	h.auth.Challenge(w, r, t.challenge)
}

// serve checks who may talk to extension e, then dispatches the path.
func (h *phoneHTTP) serve(w http.ResponseWriter, r *http.Request, e *extEntry, path, prefix string) {
	if !e.allow.Permits(r.RemoteAddr) {
		h.reject(w, http.StatusForbidden, "forbidden")
		return
	}
	if !h.auth.Check(r, e.creds) {
		h.m.rejected("401")
		h.auth.Challenge(w, r, e.creds)
		return
	}
	switch {
	case path == "/csta":
		h.csta(w, r, e)
	case h.web != nil && isPhonePage(path):
		h.web(w, r, e, path, prefix)
	default:
		h.reject(w, http.StatusNotFound, "not found")
	}
}

func (h *phoneHTTP) reject(w http.ResponseWriter, code int, msg string) {
	h.m.rejected(http.StatusText(code))
	http.Error(w, msg, code)
}

// csta answers one POST /csta like the phone's web server does.
func (h *phoneHTTP) csta(w http.ResponseWriter, r *http.Request, e *extEntry) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(w, http.StatusMethodNotAllowed, "only POST")
		return
	}
	if r.ContentLength > csta.MaxBodySize {
		h.reject(w, http.StatusRequestEntityTooLarge, "body over 64 KiB")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, csta.MaxBodySize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.reject(w, http.StatusRequestEntityTooLarge, "body over 64 KiB")
			return
		}
		h.reject(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	start := time.Now()
	req, derr := csta.Decode(body)
	if derr != nil {
		cerr, ok := derr.(*csta.Error)
		if !ok {
			cerr = &csta.Error{Code: csta.Generic, Message: derr.Error()}
		}
		if h.faults.allow(r.RemoteAddr, e.cfg.Name, string(cerr.Code)) {
			h.log.Info("CSTA request refused", "ext", e.cfg.Name, "source", r.RemoteAddr, "code", cerr.Code, "reason", cerr.Message)
		}
		h.m.csta("invalid", string(cerr.Code), time.Since(start))
		h.recent.add(cstaRecord{At: start, Ext: e.cfg.Name, Service: string(req.Service), Result: string(cerr.Code) + ": " + cerr.Message})
		// Decode reports whether the body was a SOAP envelope even when it
		// fails, so a SOAP client gets a SOAP fault.
		writeXML(w, http.StatusInternalServerError, csta.EncodeFault(req.Envelope, cerr))
		return
	}
	// The CTI client may close its socket before the answer (a TAPI driver
	// does): the PBX command must still run to completion.
	res, cerr := h.svc.serve(context.WithoutCancel(r.Context()), e.cfg.Name, req)
	if cerr != nil {
		if h.faults.allow(r.RemoteAddr, e.cfg.Name, string(cerr.Code)) {
			h.log.Info("CSTA request failed", "ext", e.cfg.Name, "source", r.RemoteAddr, "service", req.Service,
				"csta_id", req.Conn.CallID, "code", cerr.Code, "reason", cerr.Message)
		}
		h.m.csta(string(req.Service), string(cerr.Code), time.Since(start))
		h.recent.add(cstaRecord{At: start, Ext: e.cfg.Name, Service: string(req.Service), CallID: req.Conn.CallID,
			Result: string(cerr.Code) + ": " + cerr.Message, Took: time.Since(start)})
		writeXML(w, http.StatusInternalServerError, csta.EncodeFault(req.Envelope, cerr))
		return
	}
	if h.log.Enabled(r.Context(), slog.LevelDebug) { // spare the attributes' allocations per request
		h.log.Debug("CSTA request done", "ext", e.cfg.Name, "service", req.Service, "csta_id", req.Conn.CallID)
	}
	h.m.csta(string(req.Service), "ok", time.Since(start))
	h.recent.add(cstaRecord{At: start, Ext: e.cfg.Name, Service: string(req.Service), CallID: req.Conn.CallID,
		Result: "ok", Took: time.Since(start)})
	writeXML(w, http.StatusOK, csta.EncodeResponse(req, res))
}

// cstaRecord is one /csta request as shown on the status page.
type cstaRecord struct {
	At      time.Time
	Ext     string
	Service string
	CallID  string
	Result  string
	Took    time.Duration
}

func writeXML(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
