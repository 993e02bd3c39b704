package bridge

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Per source address, the first faultLogBurst refused /csta requests of a
// window are logged at Info; the rest are only counted, and one line per
// source says how many were left out when its window ends. A client
// hammering /csta with bad requests then costs a few lines a minute instead
// of one per request (logging each halved the fault path's throughput and
// flooded the journal), while a CTI client's occasional fault is still
// logged in full.
const (
	faultLogBurst  = 10
	faultLogWindow = time.Minute
	// faultLogSources bounds the sources tracked at once; past it, new
	// sources share one allowance (an attacker with many addresses cannot
	// grow the map without bound).
	faultLogSources = 4096
)

type faultLog struct {
	log    *slog.Logger
	m      *metrics
	burst  int
	window time.Duration
	now    func() time.Time

	mu     sync.Mutex
	bySrc  map[netip.Addr]*faultWindow
	timer  *time.Timer // fires at the earliest end of a window with refusals left out
	due    time.Time   // when timer fires; zero when not armed
	closed bool
}

type faultWindow struct {
	start      time.Time
	logged     int
	suppressed int
	lastExt    string
	lastCode   string
}

func newFaultLog(log *slog.Logger, m *metrics) *faultLog {
	return &faultLog{log: log, m: m, burst: faultLogBurst, window: faultLogWindow, now: time.Now,
		bySrc: make(map[netip.Addr]*faultWindow)}
}

// sourceAddr is the client's IP from an http.Request's RemoteAddr; the
// zero Addr when it cannot be parsed (then all such clients share one
// allowance).
func sourceAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// allow reports whether a refusal of a request from remote (for extension
// ext, with CSTA error code) may be logged; if not, it is counted.
func (f *faultLog) allow(remote, ext, code string) bool {
	if f == nil {
		return true
	}
	src := sourceAddr(remote)
	now := f.now()
	var ended *faultSummary
	f.mu.Lock()
	w := f.bySrc[src]
	if w != nil && now.Sub(w.start) >= f.window {
		// The timer has not reported this window yet: report it here.
		if w.suppressed > 0 {
			ended = &faultSummary{src, *w}
		}
		delete(f.bySrc, src)
		w = nil
	}
	if w == nil {
		if len(f.bySrc) >= faultLogSources {
			f.dropExpiredLocked(now)
			if len(f.bySrc) >= faultLogSources {
				src = netip.Addr{} // the shared allowance
				w = f.bySrc[src]
			}
		}
		if w == nil {
			w = &faultWindow{start: now}
			f.bySrc[src] = w
		}
	}
	defer func() {
		if ended != nil {
			f.report(*ended)
		}
	}()
	if w.logged < f.burst {
		w.logged++
		f.mu.Unlock()
		return true
	}
	w.suppressed++
	w.lastExt, w.lastCode = ext, code
	f.armLocked(w.start.Add(f.window))
	f.mu.Unlock()
	f.m.faultUnlogged()
	return false
}

// armLocked makes sure a summary runs no later than at.
func (f *faultLog) armLocked(at time.Time) {
	if f.closed || (!f.due.IsZero() && !at.Before(f.due)) {
		return
	}
	f.due = at
	d := at.Sub(f.now())
	if f.timer == nil {
		f.timer = time.AfterFunc(d, f.sweep)
		return
	}
	f.timer.Reset(d)
}

// dropExpiredLocked forgets sources whose window is over and that have
// nothing left to report.
func (f *faultLog) dropExpiredLocked(now time.Time) {
	for src, w := range f.bySrc {
		if w.suppressed == 0 && now.Sub(w.start) >= f.window {
			delete(f.bySrc, src)
		}
	}
}

// sweep logs one line per source whose window is over and had refusals
// left out, and forgets every finished window.
func (f *faultLog) sweep() {
	f.flush(false)
}

// close logs what is still left out, whatever its window, and stops the
// timer.
func (f *faultLog) close() {
	if f != nil {
		f.flush(true)
	}
}

type faultSummary struct {
	src netip.Addr
	w   faultWindow
}

func (f *faultLog) flush(all bool) {
	now := f.now()
	var out []faultSummary
	f.mu.Lock()
	f.due = time.Time{}
	var next time.Time
	for src, w := range f.bySrc {
		end := w.start.Add(f.window)
		if !all && now.Before(end) {
			if w.suppressed > 0 && (next.IsZero() || end.Before(next)) {
				next = end
			}
			continue
		}
		if w.suppressed > 0 {
			out = append(out, faultSummary{src, *w})
		}
		delete(f.bySrc, src)
	}
	if all {
		f.closed = true
		if f.timer != nil {
			f.timer.Stop()
		}
	} else if !next.IsZero() {
		f.armLocked(next)
	}
	f.mu.Unlock()
	for _, s := range out {
		f.report(s)
	}
}

func (f *faultLog) report(s faultSummary) {
	source := "other sources"
	if s.src.IsValid() {
		source = s.src.String()
	}
	f.log.Warn("CSTA requests refused without a log line (repeated refusals from one source)",
		"source", source, "count", s.w.suppressed, "logged", s.w.logged,
		"since", s.w.start.Format(time.TimeOnly), "last_ext", s.w.lastExt, "last_code", s.w.lastCode)
}
