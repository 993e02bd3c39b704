package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// loadSpec is one phase of /csta load.
type loadSpec struct {
	Name     string
	Base     string        // http://host:port; requests go to Base/<ext>/csta
	Conns    int           // keep-alive connections, one worker each
	Rate     float64       // requests/s, open loop; 0 = closed loop, as fast as the workers go
	Duration time.Duration // how long requests are started
	// MaxRequests bounds the phase by count too (0: rate×duration, or no
	// bound in closed loop).
	MaxRequests int
}

// loadResult is what a phase measured. Latency is from the scheduled send
// time (open loop) or the actual send time (closed loop) to the end of the
// response body, for requests answered as expected.
type loadResult struct {
	Spec       loadSpec
	OK, Errors int
	Unsent     int // open loop: scheduled requests never sent (backlog overflow or hard deadline)
	Elapsed    time.Duration
	Lat        latencies
	// Svc is the service time of the same requests: from the moment the
	// request was handed to the client to the end of the response, without
	// the time a request waited for its slot or for a free connection.
	Svc latencies
	// BySvc splits Svc by CSTA service, to show which requests make the tail.
	BySvc     map[string]latencies
	FirstErrs []string
	// Lag is how late the scheduler sent each request after its slot (the
	// timer's wake-up latency on this machine, or a backlog); it is part of
	// Lat.
	Lag latencies
}

func (r loadResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

func (r loadResult) String() string {
	mode := "closed loop"
	if r.Spec.Rate > 0 {
		mode = fmt.Sprintf("open loop %.0f/s", r.Spec.Rate)
	}
	s := fmt.Sprintf("%-28s %s, %d conns: %8.0f req/s  ok %d  errors %d  %s", r.Spec.Name, mode, r.Spec.Conns,
		r.Throughput(), r.OK, r.Errors, summarize(r.Lat))
	if r.Unsent > 0 {
		s += fmt.Sprintf("  UNSENT %d", r.Unsent)
	}
	s += "\n" + strings.Repeat(" ", 30) + "service time " + summarize(r.Svc).String()
	if r.Spec.Rate > 0 {
		l := summarize(r.Lag)
		s += fmt.Sprintf("\n%sscheduler lateness p50 %s p99 %s max %s", strings.Repeat(" ", 30), ms(l.P50), ms(l.P99), ms(l.Max))
	}
	return s
}

// maxBacklog bounds the open-loop queue of scheduled but unsent requests.
const maxBacklog = 1 << 16

// runLoad drives sessions (spread over the workers) with spec. Every loop
// is bounded by count and time: it stops by itself.
func runLoad(ctx context.Context, spec loadSpec, sessions []*session) loadResult {
	if spec.Conns < 1 {
		spec.Conns = 1
	}
	spec.Conns = min(spec.Conns, len(sessions))
	res := loadResult{Spec: spec}
	// Requests started before the phase ends may finish; nothing may outlive
	// the hard deadline.
	hard, cancelHard := context.WithTimeout(ctx, spec.Duration+30*time.Second)
	defer cancelHard()
	startBy, cancelStart := context.WithTimeout(hard, spec.Duration)
	defer cancelStart()

	var slots chan time.Time
	var lagMu sync.Mutex
	if spec.Rate > 0 {
		n := int(spec.Rate * spec.Duration.Seconds())
		if spec.MaxRequests > 0 {
			n = min(n, spec.MaxRequests)
		}
		slots = make(chan time.Time, min(n, maxBacklog))
		go func() {
			defer close(slots)
			sleepUntil := pace()
			interval := time.Duration(float64(time.Second) / spec.Rate)
			t0 := time.Now()
			for i := 0; i < n; i++ {
				at := t0.Add(time.Duration(i) * interval)
				if !sleepUntil(hard, at) {
					lagMu.Lock()
					res.Unsent += n - i
					lagMu.Unlock()
					return
				}
				lag := time.Since(at)
				select {
				case slots <- at:
				default:
					lagMu.Lock()
					res.Unsent++
					lagMu.Unlock()
				}
				lagMu.Lock()
				res.Lag = append(res.Lag, lag)
				lagMu.Unlock()
			}
		}()
	}

	type workerResult struct {
		lat, svc  latencies
		bySvc     map[string]latencies
		ok, errs  int
		firstErrs []string
		last      time.Time
	}
	results := make([]workerResult, spec.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	var count sync.Mutex
	started := 0
	for w := 0; w < spec.Conns; w++ {
		var mine []*session
		for i := w; i < len(sessions); i += spec.Conns {
			mine = append(mine, sessions[i])
		}
		wg.Add(1)
		go func(wr *workerResult) {
			defer wg.Done()
			client := newClient()
			defer client.CloseIdleConnections()
			for k := 0; ; k++ {
				s := mine[k%len(mine)]
				if err := s.prepare(hard); err != nil {
					wr.errs++
					if len(wr.firstErrs) < 3 {
						wr.firstErrs = append(wr.firstErrs, "set-up: "+err.Error())
					}
					s.abandon(hard)
					if hard.Err() != nil {
						return
					}
					continue
				}
				var sched time.Time
				if slots != nil {
					var ok bool
					select {
					case sched, ok = <-slots:
						if !ok {
							return
						}
					case <-hard.Done():
						return
					}
				} else {
					if startBy.Err() != nil {
						return
					}
					count.Lock()
					if spec.MaxRequests > 0 && started >= spec.MaxRequests {
						count.Unlock()
						return
					}
					started++
					count.Unlock()
					sched = time.Now()
				}
				req := s.current()
				sent := time.Now()
				status, body, err := post(hard, client, spec.Base+"/"+s.ext+"/csta", req.body)
				end := time.Now()
				if err == nil {
					err = s.done(hard, req, status, body)
				} else {
					s.abandon(hard)
				}
				wr.last = end
				if err != nil {
					wr.errs++
					if len(wr.firstErrs) < 3 {
						wr.firstErrs = append(wr.firstErrs, err.Error())
					}
					continue
				}
				wr.ok++
				wr.lat = append(wr.lat, end.Sub(sched))
				wr.svc = append(wr.svc, end.Sub(sent))
				if wr.bySvc == nil {
					wr.bySvc = map[string]latencies{}
				}
				wr.bySvc[req.service] = append(wr.bySvc[req.service], end.Sub(sent))
			}
		}(&results[w])
	}
	wg.Wait()
	var last time.Time
	res.BySvc = map[string]latencies{}
	for _, wr := range results {
		for k, v := range wr.bySvc {
			res.BySvc[k] = append(res.BySvc[k], v...)
		}
		res.OK += wr.ok
		res.Errors += wr.errs
		res.Lat = append(res.Lat, wr.lat...)
		res.Svc = append(res.Svc, wr.svc...)
		res.FirstErrs = append(res.FirstErrs, wr.firstErrs...)
		if wr.last.After(last) {
			last = wr.last
		}
	}
	if len(res.FirstErrs) > 5 {
		res.FirstErrs = res.FirstErrs[:5]
	}
	res.Elapsed = last.Sub(start)
	for _, s := range sessions {
		s.finish(ctx)
	}
	return res
}

// newClient is one keep-alive connection (one worker sends one request at
// a time on it).
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     60 * time.Second,
		DisableCompression:  true,
	}}
}

// post sends one /csta request; each has its own 10 s limit.
func post(ctx context.Context, c *http.Client, url string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}
