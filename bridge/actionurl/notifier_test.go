package actionurl

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitTimeout bounds every wait in these tests; reaching it is a failure, never a sleep.
const waitTimeout = 10 * time.Second

type outcome struct {
	job     Job
	status  int
	elapsed time.Duration
	err     error
}

// recorder is an Observer that lets tests wait for conditions without sleeping.
type recorder struct {
	mu        sync.Mutex
	changed   chan struct{}
	delivered []outcome
	dropped   map[string][]Job
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}), dropped: make(map[string][]Job)}
}

func (r *recorder) Delivered(j Job, status int, elapsed time.Duration, err error) {
	r.mu.Lock()
	r.delivered = append(r.delivered, outcome{j, status, elapsed, err})
	r.signalLocked()
	r.mu.Unlock()
}

func (r *recorder) Dropped(j Job, reason string) {
	r.mu.Lock()
	r.dropped[reason] = append(r.dropped[reason], j)
	r.signalLocked()
	r.mu.Unlock()
}

func (r *recorder) signalLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// waitFor blocks until cond (called with r.mu held) is true or waitTimeout passes.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		r.mu.Lock()
		ok := cond()
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (r *recorder) outcomes() []outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]outcome(nil), r.delivered...)
}

func (r *recorder) droppedJobs(reason string) []Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Job(nil), r.dropped[reason]...)
}

func (r *recorder) waitDelivered(t *testing.T, n int) []outcome {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("%d delivered", n), func() bool { return len(r.delivered) >= n })
	return r.outcomes()
}

// sink is a real HTTP server on 127.0.0.1:0 that records what arrives.
type sink struct {
	*httptest.Server
	mu      sync.Mutex
	paths   []string // RequestURI in arrival order
	remotes []string
	conns   int // TCP connections accepted
}

func newSink(t *testing.T, h http.HandlerFunc) *sink {
	t.Helper()
	s := &sink{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.RequestURI())
		s.remotes = append(s.remotes, r.RemoteAddr)
		s.mu.Unlock()
		if h != nil {
			h(w, r)
		}
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *sink) got() (paths, remotes []string, conns int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...), append([]string(nil), s.remotes...), s.conns
}

// statusSequence answers with the given statuses in turn, then 200.
func statusSequence(codes ...int) http.HandlerFunc {
	var mu sync.Mutex
	return func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		code := http.StatusOK
		if len(codes) > 0 {
			code, codes = codes[0], codes[1:]
		}
		mu.Unlock()
		w.WriteHeader(code)
	}
}

// closeNotifier closes n at the end of the test and checks that Close succeeds.
func closeNotifier(t *testing.T, n *Notifier) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

func TestOrderPerKey(t *testing.T) {
	const (
		keys    = 24
		perKey  = 40
		ahead   = 3 // jobs a producer keeps queued ahead of the sink, so enqueues race with deliveries
		seed    = 20240611
		flakyEv = 7 // every 7th job of a key fails once with 503 and is retried
	)
	var (
		mu        sync.Mutex
		inFlight  = map[string][]string{} // attempts of a key currently in the handler
		overlap   []string
		delivered = map[string][]int{}
		failed    = map[string]bool{}
	)
	arrivals := make(map[string]chan struct{}, keys)
	for k := range keys {
		arrivals[fmt.Sprintf("ext%02d", k)] = make(chan struct{}, 2*perKey)
	}
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("key")
		seq, _ := strconv.Atoi(r.URL.Query().Get("seq"))
		mu.Lock()
		inFlight[key] = append(inFlight[key], r.URL.RawQuery)
		if len(inFlight[key]) > 1 {
			overlap = append(overlap, strings.Join(inFlight[key], " + "))
		}
		id := key + "/" + strconv.Itoa(seq)
		fail := seq%flakyEv == 3 && !failed[id]
		failed[id] = true
		mu.Unlock()
		if ch := arrivals[key]; ch != nil {
			ch <- struct{}{}
		}

		// A delay derived from the seed and the job, so it does not depend on arrival order.
		rng := rand.New(rand.NewPCG(seed, uint64(len(key))<<32|uint64(seq)<<8|uint64(key[len(key)-1])))
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)

		mu.Lock()
		inFlight[key] = slices.DeleteFunc(inFlight[key], func(q string) bool { return q == r.URL.RawQuery })
		if !fail {
			delivered[key] = append(delivered[key], seq)
		}
		mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	rec := newRecorder()
	n := New(Options{Observer: rec, MaxInFlight: 8, RetryBackoff: time.Millisecond})
	closeNotifier(t, n)

	var wg sync.WaitGroup
	for k := range keys {
		key := fmt.Sprintf("ext%02d", k)
		wg.Go(func() {
			for seq := range perKey {
				if seq >= ahead {
					select {
					case <-arrivals[key]:
					case <-time.After(waitTimeout):
						t.Errorf("%s: no arrival before #%d", key, seq)
						return
					}
				}
				// A generous timeout: a timed-out attempt whose handler still runs would overlap its retry.
				j := Job{Key: key, Event: "action_incoming_url", Retries: 1, Timeout: waitTimeout,
					URL: fmt.Sprintf("%s/ev?key=%s&seq=%d", s.URL, key, seq)}
				if !n.Enqueue(j) {
					t.Errorf("Enqueue(%s #%d) refused", key, seq)
				}
			}
		})
	}
	wg.Wait()
	outs := rec.waitDelivered(t, keys*perKey)

	for _, o := range outs {
		if o.err != nil || o.status != http.StatusOK {
			t.Errorf("job %s: status %d, err %v", o.job.URL, o.status, o.err)
		}
	}
	if d := rec.droppedJobs(DropQueueFull); len(d) != 0 {
		t.Errorf("%d jobs dropped", len(d))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(overlap) > 0 {
		t.Errorf("requests of one key overlapped: %v", overlap)
	}
	for k := range keys {
		key := fmt.Sprintf("ext%02d", k)
		got := delivered[key]
		if len(got) != perKey {
			t.Errorf("%s: %d jobs delivered, want %d", key, len(got), perKey)
			continue
		}
		for i, seq := range got {
			if seq != i {
				t.Errorf("%s: arrival order %v", key, got)
				break
			}
		}
	}
}

func TestTimeout(t *testing.T) {
	s := newSink(t, func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; released when the client gives up
	})
	rec := newRecorder()
	n := New(Options{Observer: rec})
	closeNotifier(t, n)

	const timeout = 150 * time.Millisecond
	start := time.Now()
	n.Enqueue(Job{Key: "1001", Event: "action_incoming_url", URL: s.URL + "/slow", Timeout: timeout})
	o := rec.waitDelivered(t, 1)[0]
	wall := time.Since(start)
	if o.err == nil || o.status != 0 {
		t.Fatalf("status %d, err %v; want a timeout error", o.status, o.err)
	}
	if !strings.Contains(o.err.Error(), "timeout") {
		t.Errorf("err = %v, want it to say timeout", o.err)
	}
	if o.elapsed < timeout || wall > timeout+3*time.Second {
		t.Errorf("elapsed %v (wall %v), want about %v", o.elapsed, wall, timeout)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	s := newSink(t, statusSequence(500, 502))
	rec := newRecorder()
	n := New(Options{Observer: rec, RetryBackoff: time.Millisecond})
	closeNotifier(t, n)

	n.Enqueue(Job{Key: "1001", URL: s.URL + "/x", Retries: 3})
	o := rec.waitDelivered(t, 1)[0]
	if o.err != nil || o.status != http.StatusOK {
		t.Fatalf("status %d, err %v; want 200", o.status, o.err)
	}
	if paths, _, _ := s.got(); len(paths) != 3 {
		t.Errorf("%d attempts, want 3", len(paths))
	}
}

func TestRetriesExhausted(t *testing.T) {
	s := newSink(t, statusSequence(503, 503, 503, 503))
	rec := newRecorder()
	n := New(Options{Observer: rec, RetryBackoff: time.Millisecond})
	closeNotifier(t, n)

	n.Enqueue(Job{Key: "1001", URL: s.URL + "/x", Retries: 2})
	o := rec.waitDelivered(t, 1)[0]
	if o.err == nil || o.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, err %v; want a 503 failure", o.status, o.err)
	}
	if paths, _, _ := s.got(); len(paths) != 3 {
		t.Errorf("%d attempts, want 3", len(paths))
	}
}

func TestNoRetryOn4xx(t *testing.T) {
	s := newSink(t, statusSequence(404))
	rec := newRecorder()
	n := New(Options{Observer: rec, RetryBackoff: time.Millisecond})
	closeNotifier(t, n)

	n.Enqueue(Job{Key: "1001", URL: s.URL + "/x", Retries: 3})
	o := rec.waitDelivered(t, 1)[0]
	if o.err == nil || o.status != http.StatusNotFound {
		t.Fatalf("status %d, err %v; want a 404 failure", o.status, o.err)
	}
	if paths, _, _ := s.got(); len(paths) != 1 {
		t.Errorf("%d attempts, want 1", len(paths))
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more: connection refused

	logs := &syncWriter{w: &bytes.Buffer{}}
	rec := newRecorder()
	n := New(Options{Observer: rec, RetryBackoff: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	closeNotifier(t, n)

	n.Enqueue(Job{Key: "1001", URL: "http://" + addr + "/x", Retries: 2})
	o := rec.waitDelivered(t, 1)[0]
	if o.err == nil || o.status != 0 {
		t.Fatalf("status %d, err %v; want a network error", o.status, o.err)
	}
	if got := strings.Count(logs.String(), "retrying"); got != 2 {
		t.Errorf("%d retries logged, want 2:\n%s", got, logs.String())
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	rec := newRecorder()
	n := New(Options{Observer: rec})
	closeNotifier(t, n)

	n.Enqueue(Job{Key: "1001", URL: s.URL + "/first"})
	o := rec.waitDelivered(t, 1)[0]
	if o.err != nil || o.status != http.StatusFound {
		t.Fatalf("status %d, err %v; want 302 success", o.status, o.err)
	}
	if paths, _, _ := s.got(); len(paths) != 1 || paths[0] != "/first" {
		t.Errorf("requests %v, want only /first", paths)
	}
}

func TestQueueFullDropsOldest(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	s := newSink(t, func(_ http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/0" {
			arrived <- struct{}{}
			<-release
		}
	})
	rec := newRecorder()
	n := New(Options{Observer: rec, QueueSize: 2})
	closeNotifier(t, n)

	job := func(i int) Job {
		return Job{Key: "1001", Event: "ev" + strconv.Itoa(i), URL: s.URL + "/" + strconv.Itoa(i)}
	}
	n.Enqueue(job(0))
	select {
	case <-arrived:
	case <-time.After(waitTimeout):
		t.Fatal("first job never arrived")
	}
	for i := 1; i <= 3; i++ {
		if !n.Enqueue(job(i)) {
			t.Fatalf("Enqueue(%d) = false", i)
		}
	}
	if got := n.Pending(); got != 3 {
		t.Errorf("Pending() = %d, want 3 (one in flight, two queued)", got)
	}
	dropped := rec.droppedJobs(DropQueueFull)
	if len(dropped) != 1 || dropped[0].Event != "ev1" {
		t.Errorf("dropped %v, want only ev1", dropped)
	}
	close(release)
	rec.waitDelivered(t, 3)
	if paths, _, _ := s.got(); strings.Join(paths, ",") != "/0,/2,/3" {
		t.Errorf("arrivals %v, want /0,/2,/3", paths)
	}
}

func TestMaxInFlight(t *testing.T) {
	const limit, keys = 3, 10
	var (
		mu       sync.Mutex
		inFlight int
		maxSeen  int
	)
	arrived := make(chan struct{}, keys)
	release := make(chan struct{})
	s := newSink(t, func(http.ResponseWriter, *http.Request) {
		mu.Lock()
		inFlight++
		maxSeen = max(maxSeen, inFlight)
		mu.Unlock()
		arrived <- struct{}{}
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	rec := newRecorder()
	n := New(Options{Observer: rec, MaxInFlight: limit})
	closeNotifier(t, n)

	for k := range keys {
		n.Enqueue(Job{Key: strconv.Itoa(k), URL: s.URL + "/x"})
	}
	// Let requests through one at a time: each release admits exactly one more, never a fourth at once.
	for i := range keys {
		select {
		case <-arrived:
		case <-time.After(waitTimeout):
			t.Fatalf("request %d never arrived", i)
		}
		if i >= limit-1 {
			release <- struct{}{}
		}
	}
	for range limit - 1 {
		release <- struct{}{}
	}
	rec.waitDelivered(t, keys)
	mu.Lock()
	defer mu.Unlock()
	if maxSeen != limit {
		t.Errorf("max concurrent deliveries %d, want %d", maxSeen, limit)
	}
}

func TestCloseFlushes(t *testing.T) {
	s := newSink(t, nil)
	rec := newRecorder()
	n := New(Options{Observer: rec, MaxInFlight: 2})

	const jobs = 30
	for i := range jobs {
		n.Enqueue(Job{Key: strconv.Itoa(i % 3), URL: fmt.Sprintf("%s/%d", s.URL, i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if paths, _, _ := s.got(); len(paths) != jobs {
		t.Errorf("%d delivered before Close returned, want %d", len(paths), jobs)
	}
	if got := len(rec.outcomes()); got != jobs {
		t.Errorf("%d outcomes, want %d", got, jobs)
	}
	if got := n.Pending(); got != 0 {
		t.Errorf("Pending() = %d after Close", got)
	}
	if n.Enqueue(Job{Key: "0", URL: s.URL}) {
		t.Error("Enqueue after Close accepted")
	}
	if got := rec.droppedJobs(DropClosed); len(got) != 1 {
		t.Errorf("%d jobs dropped as closed, want 1", len(got))
	}
	if err := n.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseExpiredContext(t *testing.T) {
	arrived := make(chan struct{}, 1)
	s := newSink(t, func(_ http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	rec := newRecorder()
	n := New(Options{Observer: rec})

	const jobs = 5
	for i := range jobs {
		n.Enqueue(Job{Key: "1001", URL: fmt.Sprintf("%s/%d", s.URL, i), Timeout: time.Minute, Retries: 3})
	}
	select {
	case <-arrived:
	case <-time.After(waitTimeout):
		t.Fatal("first job never arrived")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := n.Close(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with an expired context", d)
	}
	if got := rec.droppedJobs(DropShutdown); len(got) != jobs {
		t.Errorf("%d jobs dropped for shutdown, want %d (in flight one included)", len(got), jobs)
	}
	if got := rec.outcomes(); len(got) != 0 {
		t.Errorf("outcomes %v, want none", got)
	}
	if got := n.Pending(); got != 0 {
		t.Errorf("Pending() = %d after Close", got)
	}
}

func TestSourceAddress(t *testing.T) {
	s := newSink(t, nil)
	rec := newRecorder()
	n := New(Options{Observer: rec})
	closeNotifier(t, n)

	tests := []struct{ local, wantHost string }{
		{"127.0.0.2", "127.0.0.2"},
		{"127.0.0.3:80", "127.0.0.3"}, // an extension's listen address; the port is not used
		{"", "127.0.0.1"},
		{"0.0.0.0", "127.0.0.1"},
	}
	for i, tt := range tests {
		n.Enqueue(Job{Key: "k" + strconv.Itoa(i), URL: s.URL + "/" + strconv.Itoa(i), LocalAddr: tt.local})
		o := rec.waitDelivered(t, i+1)[i]
		if o.err != nil {
			t.Fatalf("LocalAddr %q: %v", tt.local, o.err)
		}
		_, remotes, _ := s.got()
		host, _, _ := net.SplitHostPort(remotes[i])
		if host != tt.wantHost {
			t.Errorf("LocalAddr %q: request came from %s, want %s", tt.local, host, tt.wantHost)
		}
	}

	n.Enqueue(Job{Key: "bad", URL: s.URL + "/bad", LocalAddr: "not-an-ip", Retries: 2})
	o := rec.waitDelivered(t, len(tests)+1)[len(tests)]
	if o.err == nil || !strings.Contains(o.err.Error(), "invalid source address") {
		t.Errorf("bad LocalAddr: err %v", o.err)
	}
}

func TestKeepAlive(t *testing.T) {
	s := newSink(t, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, strings.Repeat("<x/>", 1000)) // a body to drain
	})
	rec := newRecorder()
	n := New(Options{Observer: rec})
	closeNotifier(t, n)

	const jobs = 10
	for i := range jobs {
		n.Enqueue(Job{Key: "1001", URL: fmt.Sprintf("%s/%d", s.URL, i)})
	}
	rec.waitDelivered(t, jobs)
	if _, _, conns := s.got(); conns != 1 {
		t.Errorf("%d connections for %d sequential GETs, want 1", conns, jobs)
	}
}

func TestTLS(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(s.Close)
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())

	rec := newRecorder()
	n := New(Options{Observer: rec, TLSConfig: &tls.Config{RootCAs: roots}})
	closeNotifier(t, n)
	n.Enqueue(Job{Key: "1001", URL: s.URL + "/x"})
	if o := rec.waitDelivered(t, 1)[0]; o.err != nil || o.status != http.StatusOK {
		t.Errorf("status %d, err %v", o.status, o.err)
	}

	// The system roots do not trust the test certificate.
	rec2 := newRecorder()
	n2 := New(Options{Observer: rec2})
	closeNotifier(t, n2)
	n2.Enqueue(Job{Key: "1001", URL: s.URL + "/x", Retries: 0})
	if o := rec2.waitDelivered(t, 1)[0]; o.err == nil {
		t.Error("untrusted certificate accepted")
	}
}

// syncWriter serialises writes from concurrent loggers.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func TestFailureLogRedacted(t *testing.T) {
	s := newSink(t, statusSequence(403))
	logs := &syncWriter{w: &bytes.Buffer{}}
	rec := newRecorder()
	n := New(Options{Observer: rec, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	closeNotifier(t, n)

	u := strings.Replace(s.URL, "http://", "http://alice:hunter2@", 1) + "/in?caller=1&token=s3cr3t"
	n.Enqueue(Job{Key: "1001", Event: "action_incoming_url", CSTAID: -18, URL: u})
	o := rec.waitDelivered(t, 1)[0]
	if o.status != http.StatusForbidden || o.err == nil {
		t.Fatalf("status %d, err %v", o.status, o.err)
	}
	out := logs.String()
	for _, want := range []string{"level=WARN", "event=action_incoming_url", "key=1001", "csta_id=-18",
		"status=403", "token=redacted", "alice@"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"hunter2", "s3cr3t"} {
		if strings.Contains(out, secret) || strings.Contains(o.err.Error(), secret) {
			t.Errorf("secret %q leaked: log %s, err %v", secret, out, o.err)
		}
	}

	// A network error message must not carry the URL either.
	n.Enqueue(Job{Key: "1001", URL: "http://alice:hunter2@127.0.0.1:1/?token=s3cr3t"})
	o = rec.waitDelivered(t, 2)[1]
	if o.err == nil || strings.Contains(o.err.Error(), "s3cr3t") || strings.Contains(o.err.Error(), "hunter2") {
		t.Errorf("network error %v", o.err)
	}
}

func TestIdleKeysHoldNoGoroutines(t *testing.T) {
	s := newSink(t, nil)
	rec := newRecorder()
	n := New(Options{Observer: rec})
	closeNotifier(t, n)

	const keys = 200
	for k := range keys {
		n.Enqueue(Job{Key: strconv.Itoa(k), URL: s.URL + "/x"})
	}
	rec.waitDelivered(t, keys)
	deadline := time.Now().Add(waitTimeout)
	for {
		n.mu.Lock()
		workers, queues, pending := n.workers, len(n.keys), n.pending
		n.mu.Unlock()
		if workers == 0 && queues == 0 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after all deliveries: %d workers, %d key queues, %d pending", workers, queues, pending)
		}
		runtime.Gosched()
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		s := newSink(t, statusSequence(500))
		defer s.Close()
		rec := newRecorder()
		n := New(Options{Observer: rec, RetryBackoff: time.Millisecond})
		for i := range 50 {
			n.Enqueue(Job{Key: strconv.Itoa(i % 5), URL: s.URL + "/x", Retries: 1,
				LocalAddr: "127.0.0." + strconv.Itoa(1+i%2)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got := len(rec.outcomes()); got != 50 {
			t.Fatalf("%d outcomes, want 50", got)
		}
	}()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(),
				buf[:runtime.Stack(buf, true)])
		}
		<-tick.C
	}
}

// MaxQueued bounds the jobs of all keys together: past it a key gives up its
// own oldest job, or a key with nothing queued loses the new one.
func TestMaxQueuedOverAllKeys(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 16)
	s := newSink(t, func(http.ResponseWriter, *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	rec := newRecorder()
	n := New(Options{Observer: rec, MaxQueued: 3, MaxInFlight: 1})
	closeNotifier(t, n)
	n.Enqueue(Job{Key: "a", Event: "a0", URL: s.URL + "/a0"}) // in flight
	select {
	case <-arrived:
	case <-time.After(waitTimeout):
		t.Fatal("first job never arrived")
	}
	n.Enqueue(Job{Key: "b", Event: "b0", URL: s.URL + "/b0"})
	n.Enqueue(Job{Key: "b", Event: "b1", URL: s.URL + "/b1"})
	if n.Enqueue(Job{Key: "c", Event: "c0", URL: s.URL + "/c0"}) {
		t.Error("a fourth pending job was queued past MaxQueued")
	}
	n.Enqueue(Job{Key: "b", Event: "b2", URL: s.URL + "/b2"}) // b gives up b0
	if got := n.Pending(); got != 3 {
		t.Errorf("Pending() = %d, want 3", got)
	}
	var dropped []string
	for _, j := range rec.droppedJobs(DropQueueFull) {
		dropped = append(dropped, j.Event)
	}
	if strings.Join(dropped, ",") != "c0,b0" {
		t.Errorf("dropped %v, want c0,b0", dropped)
	}
	close(release)
	rec.waitDelivered(t, 3)
}

// A CTI server that refuses connections is not dialled again for a moment:
// the jobs behind the refusal fail at once, counted, without a dial each.
func TestRefusingSinkFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	rec := newRecorder()
	n := New(Options{Observer: rec})
	closeNotifier(t, n)
	for i := range 5 {
		n.Enqueue(Job{Key: "1001", Event: "ev", URL: "http://" + addr + "/" + strconv.Itoa(i)})
	}
	out := rec.waitDelivered(t, 5)
	fast := 0
	for _, o := range out {
		if o.err == nil {
			t.Fatalf("delivered to a closed port: %+v", o)
		}
		if errors.Is(o.err, errSinkDown) {
			fast++
		}
	}
	if fast != 4 {
		t.Errorf("%d of 5 jobs failed fast, want 4 (only the first one dials)", fast)
	}
}
