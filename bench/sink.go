package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// hitFunc sees every action URL GET the sink receives: the event (path), the
// extension and csta_id from the query, and the arrival time.
type hitFunc func(event, ext, id string, at time.Time)

// sink is the CTI server of the benchmarks: it answers every action URL with
// 200 at once, or after a delay ("slow"), or not at all once closed ("down":
// the port refuses connections).
type sink struct {
	srv   *http.Server
	url   string
	delay atomic.Int64 // nanoseconds
	hits  atomic.Int64
	onHit atomic.Pointer[hitFunc]
	done  chan struct{}
}

func newSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	// A connection the bridge's HTTP client dialled but never used (it
	// found an idle one first) waits for its first request header; the
	// short timeout closes it within a second so that it does not pass for
	// a leak in a goroutine count. Real requests send their header at once.
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: time.Second,
		IdleTimeout: 90 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "bench: action URL sink stopped:", err)
		}
	}()
	return s, nil
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	s.hits.Add(1)
	if f := s.onHit.Load(); f != nil {
		q := r.URL.Query()
		(*f)(strings.TrimPrefix(r.URL.Path, "/"), q.Get("ext"), q.Get("id"), at)
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (s *sink) setHook(f hitFunc) {
	if f == nil {
		s.onHit.Store(nil)
		return
	}
	s.onHit.Store(&f)
}

// closeIdle closes the kept-alive connections the bridge holds to the sink,
// so their goroutines (on both sides) end before a goroutine count.
func (s *sink) closeIdle() {
	s.srv.SetKeepAlivesEnabled(false)
	s.srv.SetKeepAlivesEnabled(true)
}

// close takes the sink down: the port then refuses connections.
func (s *sink) close() {
	_ = s.srv.Close()
	<-s.done
}
