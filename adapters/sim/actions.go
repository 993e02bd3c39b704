package sim

import (
	"net/http"
	"net/url"
	"sync"
	"time"
)

// actionLogSize bounds the action URL sink: the newest requests are kept.
const actionLogSize = 1000

// actionRecord is one request the action URL sink received.
type actionRecord struct {
	Seq        uint64            `json:"seq"`
	Time       time.Time         `json:"time"`
	Event      string            `json:"event"`
	Query      string            `json:"query"`
	Params     map[string]string `json:"params"` // first value of each query parameter
	RemoteAddr string            `json:"remote_addr"`
}

// actionLog is a bounded, ordered record of action URL requests.
type actionLog struct {
	mu    sync.Mutex
	max   int
	seq   uint64
	items []actionRecord
}

func newActionLog(max int) *actionLog { return &actionLog{max: max} }

func (l *actionLog) add(rec actionRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	rec.Seq = l.seq
	if len(l.items) >= l.max {
		n := copy(l.items, l.items[len(l.items)-l.max+1:])
		l.items = l.items[:n]
	}
	l.items = append(l.items, rec)
}

func (l *actionLog) list() []actionRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]actionRecord, len(l.items))
	copy(out, l.items)
	return out
}

func (l *actionLog) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items = nil
}

// serveActions handles /sim/actions and /sim/actions/<event>.
func (p *PBX) serveActions(w http.ResponseWriter, r *http.Request, event string) {
	if event == "" {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, http.StatusOK, p.actions.list())
		case http.MethodDelete:
			p.actions.clear()
			w.WriteHeader(http.StatusNoContent)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodHead, http.MethodDelete)
		}
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, http.MethodGet, http.MethodHead)
		return
	}
	params := map[string]string{}
	q, _ := url.ParseQuery(r.URL.RawQuery) // keeps the pairs it could parse
	for k, v := range q {
		params[k] = v[0]
	}
	p.actions.add(actionRecord{Time: p.now(), Event: event, Query: r.URL.RawQuery, Params: params,
		RemoteAddr: r.RemoteAddr})
	p.log.Debug("action URL received", "event", event, "remote", r.RemoteAddr)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}
