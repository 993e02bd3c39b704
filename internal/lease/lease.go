// Package lease keeps the active-bridge lease in a NATS JetStream key-value
// bucket: the active bridge holds one key and renews it; the bucket's TTL
// frees it when the holder dies, and a standby creates it anew. It is the
// only importer of the NATS client; the core sees a bridge.Lease.
package lease

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
)

// Bucket and Key name the lease in JetStream.
const (
	Bucket = "csta-bridge"
	Key    = "active"
)

// Options configure a Lease.
type Options struct {
	URL      string
	NATSOpts []nats.Option // credentials, TLS
	TTL      time.Duration // 0: config.DefaultLeaseTTL
	Name     string        // this bridge, as the standby shows it
	Bucket   string        // "": Bucket
	Logger   *slog.Logger
	// Observe, when set, hears "acquired", "renewed", "lost" and "released"
	// (tests wait on it).
	Observe func(event string)
}

// Lease is one bridge's claim on the active role.
type Lease struct {
	o    Options
	nc   *nats.Conn
	lost chan struct{}

	mu       sync.Mutex
	kv       jetstream.KeyValue
	rev      uint64 // held revision; 0 when not held
	holder   string
	closed   bool
	stopLoop context.CancelFunc
	loopDone chan struct{}
	lostOnce sync.Once
}

var _ bridge.Lease = (*Lease)(nil)

// FromConfig builds the lease of a `cluster:` section.
func FromConfig(c config.Cluster, log *slog.Logger) (bridge.Lease, error) {
	var opts []nats.Option
	if c.NATS.Credentials != "" {
		opts = append(opts, nats.UserCredentials(c.NATS.Credentials))
	}
	if c.NATS.User != "" {
		opts = append(opts, nats.UserInfo(c.NATS.User, c.NATS.Password))
	}
	if t := c.NATS.TLS; t.CA != "" || t.Cert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if t.CA != "" {
			pem, err := os.ReadFile(t.CA)
			if err != nil {
				return nil, fmt.Errorf("cluster.nats.tls.ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("cluster.nats.tls.ca: no certificate in %s", t.CA)
			}
		}
		if t.Cert != "" {
			cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
			if err != nil {
				return nil, fmt.Errorf("cluster.nats.tls: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, nats.Secure(tc))
	}
	name := c.Name
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			h = "unknown host"
		}
		name = h
	}
	return New(Options{URL: c.NATS.URL, NATSOpts: opts, TTL: c.LeaseTTL, Name: name, Logger: log})
}

// New connects to NATS (in the background when it is down: the bridge
// starts as a standby either way).
func New(o Options) (*Lease, error) {
	if o.TTL == 0 {
		o.TTL = config.DefaultLeaseTTL
	}
	if o.Bucket == "" {
		o.Bucket = Bucket
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Observe == nil {
		o.Observe = func(string) {}
	}
	l := &Lease{o: o, lost: make(chan struct{})}
	opts := append([]nats.Option{
		nats.Name("csta-bridge " + o.Name),
		nats.Timeout(2 * time.Second),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			o.Logger.Warn("NATS disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			o.Logger.Info("NATS reconnected", "server", nc.ConnectedUrlRedacted())
		}),
	}, o.NATSOpts...)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster.nats: %w", err)
	}
	l.nc = nc
	return l, nil
}

// step is how often a standby tries to take the lease and the active one
// retries a failed renewal.
func (l *Lease) step() time.Duration { return l.o.TTL / 6 }

// bucket opens (creating if needed) the key-value bucket; NATS may be down.
func (l *Lease) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	l.mu.Lock()
	kv := l.kv
	l.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	js, err := jetstream.New(l.nc)
	if err != nil {
		return nil, err
	}
	kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: l.o.Bucket,
		Description: "csta-bridge active-bridge lease", History: 1, TTL: l.o.TTL,
		Storage: jetstream.FileStorage})
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.kv = kv
	l.mu.Unlock()
	return kv, nil
}

// Acquire waits until this bridge holds the lease.
func (l *Lease) Acquire(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		t.Reset(l.step())
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		if closed {
			return errors.New("lease released")
		}
		rctx, cancel := context.WithTimeout(ctx, l.o.TTL/3)
		rev, err := l.tryCreate(rctx)
		cancel()
		if err != nil {
			l.o.Logger.Debug("lease not taken", "err", err)
			continue
		}
		l.mu.Lock()
		if l.closed { // released meanwhile: hand it straight back
			l.mu.Unlock()
			l.deleteKey(rev)
			return errors.New("lease released")
		}
		l.rev, l.holder = rev, l.o.Name
		loopCtx, stop := context.WithCancel(context.Background())
		l.stopLoop, l.loopDone = stop, make(chan struct{})
		go l.renew(loopCtx, l.loopDone)
		l.mu.Unlock()
		l.o.Logger.Info("holding the active-bridge lease", "name", l.o.Name)
		l.o.Observe("acquired")
		return nil
	}
}

func (l *Lease) tryCreate(ctx context.Context) (uint64, error) {
	kv, err := l.bucket(ctx)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Create(ctx, Key, []byte(l.o.Name))
	if err == nil {
		return rev, nil
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		if e, gerr := kv.Get(ctx, Key); gerr == nil {
			l.mu.Lock()
			l.holder = string(e.Value())
			l.mu.Unlock()
		}
	}
	return 0, err
}

// renew keeps the key alive. A renewal refused (someone else's revision)
// loses the lease at once; renewals failing for most of the TTL (NATS
// unreachable) lose it before the bucket can expire it, so that two
// bridges are never active together.
func (l *Lease) renew(ctx context.Context, done chan struct{}) {
	defer close(done)
	every, grace := l.o.TTL/3, l.o.TTL*2/3
	t := time.NewTimer(every)
	defer t.Stop()
	// expire fires when no renewal succeeded for grace: stepping down then,
	// whatever the renewal in flight, keeps this bridge from being active
	// after the bucket let the key go.
	expire := time.NewTimer(grace)
	defer expire.Stop()
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return
		case <-expire.C:
			l.loseLease("could not renew the lease in time", lastErr)
			return
		case <-t.C:
		}
		l.mu.Lock()
		kv, rev := l.kv, l.rev
		l.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, l.step())
		nrev, err := kv.Update(rctx, Key, []byte(l.o.Name), rev)
		cancel()
		switch {
		case err == nil:
			expire.Reset(grace)
			l.mu.Lock()
			l.rev = nrev
			l.mu.Unlock()
			l.o.Observe("renewed")
			t.Reset(every)
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists),
			errors.Is(err, jetstream.ErrKeyNotFound):
			l.loseLease("another bridge holds the lease", err)
			return
		default:
			lastErr = err
			l.o.Logger.Warn("lease renewal failed; retrying", "err", err)
			t.Reset(l.step())
		}
	}
}

func (l *Lease) loseLease(why string, err error) {
	l.mu.Lock()
	l.rev = 0
	l.mu.Unlock()
	l.lostOnce.Do(func() {
		l.o.Logger.Error("active-bridge lease lost: "+why, "err", err)
		close(l.lost)
		l.o.Observe("lost")
	})
}

// Lost is closed when the held lease is lost.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Holder is the name of the active bridge as last seen.
func (l *Lease) Holder() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder == "" {
		return "unknown (lease not read yet)"
	}
	return fmt.Sprintf("%q", l.holder)
}

// Release deletes the key if held, so that a standby takes over at once,
// and closes the NATS connection.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	stop, done := l.stopLoop, l.loopDone
	l.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	l.mu.Lock()
	rev := l.rev
	l.rev = 0
	l.mu.Unlock()
	var err error
	if rev != 0 {
		err = l.deleteKeyCtx(ctx, rev)
		l.o.Logger.Info("released the active-bridge lease")
		l.o.Observe("released")
	}
	l.nc.Close()
	return err
}

func (l *Lease) deleteKey(rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), l.o.TTL/3)
	defer cancel()
	_ = l.deleteKeyCtx(ctx, rev)
}

func (l *Lease) deleteKeyCtx(ctx context.Context, rev uint64) error {
	l.mu.Lock()
	kv := l.kv
	l.mu.Unlock()
	if kv == nil {
		return nil
	}
	if err := kv.Delete(ctx, Key, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("delete %s/%s: %w", l.o.Bucket, Key, err)
	}
	return nil
}

// Abandon drops the connection without releasing, the way a crashed
// bridge leaves its lease to expire (tests).
func (l *Lease) Abandon() {
	l.mu.Lock()
	l.closed = true
	stop, done := l.stopLoop, l.loopDone
	l.rev = 0
	l.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	l.nc.Close()
}
