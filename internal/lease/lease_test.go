package lease

import (
	"context"
	"sync"
	"testing"
	"time"
)

// takeover is the bound: a standby is active within 5 s of the
// active bridge's death.
const takeover = 5 * time.Second

// events records what a lease observes, for waiting on.
type events struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func newEvents() *events { return &events{ch: map[string]chan struct{}{}} }

func (e *events) get(ev string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ch[ev] == nil {
		e.ch[ev] = make(chan struct{}, 1000)
	}
	return e.ch[ev]
}

func (e *events) observe(ev string) { e.get(ev) <- struct{}{} }

// wait waits for the next ev within d.
func (e *events) wait(t *testing.T, ev string, d time.Duration) {
	t.Helper()
	select {
	case <-e.get(ev):
	case <-time.After(d):
		t.Fatalf("no %q within %s", ev, d)
	}
}

func (e *events) drain(ev string) {
	c := e.get(ev)
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func newLease(t *testing.T, url, name string) (*Lease, *events) {
	t.Helper()
	ev := newEvents()
	l, err := New(Options{URL: url, Name: name, TTL: 3 * time.Second, Observe: ev.observe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return l, ev
}

// acquireAsync runs Acquire and delivers its result.
func acquireAsync(ctx context.Context, l *Lease) <-chan error {
	c := make(chan error, 1)
	go func() { c <- l.Acquire(ctx) }()
	return c
}

func TestOneActiveAndTakeOverWhenItDies(t *testing.T) {
	n := startNATS(t)
	a, aev := newLease(t, n.url(), "bridge-a")
	b, _ := newLease(t, n.url(), "bridge-b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	bDone := acquireAsync(ctx, b)
	// While a renews, b must stay standby: four renewals (every TTL/3)
	// outlast the TTL, so b has seen the key live past its first expiry.
	for range 4 {
		aev.wait(t, "renewed", takeover)
		select {
		case err := <-bDone:
			t.Fatalf("standby acquired while the active one holds the lease: %v", err)
		default:
		}
	}
	if h := b.Holder(); h != `"bridge-a"` {
		t.Errorf("standby sees holder %s, want \"bridge-a\"", h)
	}
	died := time.Now()
	a.Abandon() // crash: no release, the key expires
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(takeover):
		t.Fatalf("standby not active within %s of the active one's death", takeover)
	}
	t.Logf("take-over after a crash took %s", time.Since(died))
	select {
	case <-b.Lost():
		t.Fatal("new active lease reported lost")
	default:
	}
}

func TestReleaseHandsOverAtOnce(t *testing.T) {
	n := startNATS(t)
	a, _ := newLease(t, n.url(), "bridge-a")
	b, bev := newLease(t, n.url(), "bridge-b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	bDone := acquireAsync(ctx, b)
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(takeover):
		t.Fatalf("standby not active within %s of the release", takeover)
	}
	bev.wait(t, "acquired", takeover)
	if err := a.Acquire(ctx); err == nil {
		t.Error("a released lease could be acquired again")
	}
}

// TestNATSRestart: the active bridge reconnects and keeps (or a standby
// takes) the lease within 5 s of NATS coming back; never both.
func TestNATSRestart(t *testing.T) {
	n := startNATS(t)
	a, aev := newLease(t, n.url(), "bridge-a")
	b, bev := newLease(t, n.url(), "bridge-b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	bDone := acquireAsync(ctx, b)
	aev.wait(t, "renewed", takeover)
	n.stop()
	n.start()
	back := time.Now()
	aev.drain("renewed")
	select {
	case <-aev.get("renewed"):
		t.Logf("active bridge renewed %s after NATS came back", time.Since(back))
		select {
		case <-a.Lost():
			t.Fatal("renewed yet lost")
		default:
		}
	case <-bDone:
		select { // b holds it: a must have stepped down
		case <-a.Lost():
		case <-time.After(takeover):
			t.Fatal("standby took the lease but the active one still holds it")
		}
		bev.wait(t, "acquired", takeover)
		t.Logf("standby took over %s after NATS came back", time.Since(back))
	case <-time.After(takeover):
		t.Fatalf("no bridge holds the lease %s after NATS came back", takeover)
	}
}

// TestStepsDownWithoutNATS: an active bridge that cannot reach NATS steps
// down before its key could expire, since a standby may take it then.
func TestStepsDownWithoutNATS(t *testing.T) {
	n := startNATS(t)
	a, aev := newLease(t, n.url(), "bridge-a")
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	aev.wait(t, "renewed", takeover)
	n.stop()
	select {
	case <-a.Lost():
	case <-time.After(takeover):
		t.Fatalf("still active %s after NATS went away", takeover)
	}
}
