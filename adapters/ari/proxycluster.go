package ari

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/CyCoreSystems/ari-proxy/v5/client"
	"github.com/nats-io/nats.go"

	"github.com/csta-bridge/csta-bridge/adapters/cluster"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// ProxyOptions configures a cluster of Asterisk servers reached through
// ari-proxy over NATS: one ari-proxy beside each Asterisk announces it on
// NATS by its entity id (asterisk.conf's entityid), and the cluster runs
// one adapter per announced Asterisk.
type ProxyOptions struct {
	// Options holds what every node shares: Application, Context,
	// HangupHandler, Logger and the timeouts. URL, Username and Password
	// are not used (the proxies hold the ARI credentials).
	Options
	// NATSURL is nats://host:4222 (several comma-separated; tls:// for TLS
	// with the system's roots). NATSUser and NATSPassword are optional.
	NATSURL, NATSUser, NATSPassword string
	// Prefix is the proxies' subject prefix (default "ari.").
	Prefix string
	// Nodes are the entity ids of the Asterisks expected at start-up: the
	// first sync waits for them (or their failure), and they are reported
	// down while absent. Others are taken as their proxies announce them.
	Nodes []string
	// DiscoverWait is how long start-up waits for announcements when not
	// every expected node has announced (default 1s).
	DiscoverWait time.Duration
}

// proxyPingInterval is how often the cluster asks the proxies to announce
// themselves: a proxy announces itself only when asked, or once a minute,
// so this is how soon a new or restarted one is found.
const proxyPingInterval = 2 * time.Second

// Proxy health: how often a node checks its Asterisk through the proxy. A
// NATS request is cheap, and a proxy that died leaves no connection to
// break, so this is what notices it.
const proxyHealthInterval = 2 * time.Second

func (o *ProxyOptions) validate() error {
	var errs []error
	if o.NATSURL == "" {
		errs = append(errs, errors.New("nats url is required (e.g. nats://127.0.0.1:4222)"))
	}
	for _, s := range strings.Split(o.NATSURL, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if o.NATSURL != "" && (err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "") {
			errs = append(errs, fmt.Errorf("nats url: each server must be nats://host:port or tls://host:port (got %q)", s))
			continue
		}
		if err == nil && u.User != nil {
			errs = append(errs, errors.New("nats url: put credentials in user/password, not in the URL"))
		}
	}
	if o.Application == "" {
		errs = append(errs, errors.New("application is required"))
	} else if strings.ContainsAny(o.Application, ",/?&#= \t.*>") {
		errs = append(errs, fmt.Errorf("application %q: must not contain separators, spaces or NATS wildcards", o.Application))
	}
	if o.Context == "" {
		errs = append(errs, errors.New("context is required (the dialplan context MakeCall and transfers dial into)"))
	}
	for _, n := range o.Nodes {
		if n == "" || strings.ContainsAny(n, " \t.*>") {
			errs = append(errs, fmt.Errorf("node %q: an Asterisk entity id without spaces, dots or NATS wildcards", n))
		}
	}
	return errors.Join(errs...)
}

// ProxyCluster is the Asterisk cluster adapter: a cluster.Cluster whose
// nodes are ari adapters on ari-proxy transports, added as the proxies
// announce their Asterisks.
type ProxyCluster struct {
	*cluster.Cluster
	o   ProxyOptions
	log *slog.Logger
	bus *proxyBus

	mu    sync.Mutex
	nodes map[string]bool // added to the cluster
}

// NewProxyCluster validates o; it does no I/O.
func NewProxyCluster(o ProxyOptions) (*ProxyCluster, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("ari: %w", err)
	}
	o.setDefaults()
	if o.Prefix == "" {
		o.Prefix = "ari."
	}
	if o.DiscoverWait <= 0 {
		o.DiscoverWait = time.Second
	}
	log := o.Logger.With("pbx", "ari")
	cl, err := cluster.New(cluster.Options{Server: "Asterisk", Discovered: true, Logger: log})
	if err != nil {
		return nil, err
	}
	p := &ProxyCluster{Cluster: cl, o: o, log: log, nodes: map[string]bool{}}
	p.bus = &proxyBus{o: &p.o, log: log, lost: make(chan struct{})}
	return p, nil
}

// Run connects to NATS, finds the nodes and runs them until ctx ends.
func (p *ProxyCluster) Run(ctx context.Context, events chan<- pbx.Event) error {
	if events == nil {
		return errors.New("ari: Run needs an events channel")
	}
	announced := make(chan string, 64)
	if err := p.bus.connect(announced); err != nil {
		return fmt.Errorf("ari: %w", err)
	}
	defer p.bus.close()

	// Not ready until the nodes are known: say why meanwhile.
	down := func(reason string) bool {
		select {
		case events <- pbx.Event{Kind: pbx.EventLink, Up: false, Reason: reason}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !down("connecting to NATS at " + p.bus.where()) {
		return ctx.Err()
	}
	if err := p.bus.build(ctx); err != nil {
		return err
	}
	p.bus.ping()

	// Start-up: the nodes the first sync waits for are those expected and
	// those that answer the ping within DiscoverWait.
	first := map[string]bool{}
	missing := map[string]bool{}
	for _, n := range p.o.Nodes {
		first[n], missing[n] = true, true
	}
	wait := time.NewTimer(p.o.DiscoverWait)
	defer wait.Stop()
collect:
	for len(p.o.Nodes) == 0 || len(missing) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait.C:
			break collect
		case n := <-announced:
			first[n] = true
			delete(missing, n)
		}
	}
	names := make([]string, 0, len(first))
	for n := range first {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p.add(n)
	}
	if len(names) == 0 {
		p.log.Warn("no ari-proxy announced the application yet; waiting", "application", p.o.Application, "nats", p.bus.where())
	}

	runErr := make(chan error, 1)
	go func() { runErr <- p.Cluster.Run(ctx, events) }()
	ping := time.NewTicker(proxyPingInterval)
	defer ping.Stop()
	for {
		select {
		case err := <-runErr:
			return err
		case n := <-announced:
			p.add(n)
		case <-ping.C:
			// A proxy that restarted announces itself within a minute;
			// a ping makes it answer now.
			p.bus.ping()
		}
	}
}

// add makes node n part of the cluster, once.
func (p *ProxyCluster) add(n string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nodes[n] {
		return
	}
	opts := p.o.Options
	a := newAdapter(opts, p.log.With("node", n))
	a.tr = &proxyTransport{bus: p.bus, node: n}
	a.healthEvery = proxyHealthInterval
	a.inCluster = true
	if err := p.Cluster.Add(cluster.Node{Name: n, PBX: a}); err != nil {
		p.log.Error("cannot add an Asterisk node", "node", n, "err", err)
		return
	}
	p.nodes[n] = true
}

// proxyBus is the cluster's way to NATS: its own connection for the
// proxies' announcements and events, and the ari-proxy client for REST.
type proxyBus struct {
	o   *ProxyOptions
	log *slog.Logger
	nc  *nats.Conn

	mu         sync.Mutex
	cl         *client.Client
	clStop     context.CancelFunc // closes cl
	lost       chan struct{}      // closed when the connection drops, then replaced
	rebuilding bool
	ctx        context.Context
}

func (b *proxyBus) where() string {
	var out []string
	for _, s := range strings.Split(b.o.NATSURL, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil {
			out = append(out, u.Scheme+"://"+u.Host)
		}
	}
	return strings.Join(out, ",")
}

func (b *proxyBus) eventSubject(node string) string {
	return b.o.Prefix + "event." + b.o.Application + "." + node
}

// connect opens the bridge's own NATS connection. It never gives up: a
// NATS server that is down is retried in the background.
func (b *proxyBus) connect(announced chan<- string) error {
	opts := []nats.Option{
		nats.Name("csta-bridge"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, 100*time.Millisecond),
		nats.Timeout(b.o.RequestTimeout),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.log.Warn("NATS connection lost; the Asterisk nodes resync when it is back", "err", err)
			b.mu.Lock()
			close(b.lost)
			b.lost = make(chan struct{})
			b.mu.Unlock()
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("NATS connection back", "server", nc.ConnectedUrlRedacted())
			b.ping()
		}),
	}
	if b.o.NATSUser != "" {
		opts = append(opts, nats.UserInfo(b.o.NATSUser, b.o.NATSPassword))
	}
	nc, err := nats.Connect(b.o.NATSURL, opts...)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	b.nc = nc
	_, err = nc.Subscribe(b.o.Prefix+"announce", func(m *nats.Msg) {
		var a struct {
			Node        string `json:"node"`
			Application string `json:"application"`
		}
		if json.Unmarshal(m.Data, &a) != nil || a.Application != b.o.Application || a.Node == "" ||
			strings.ContainsAny(a.Node, " \t.*>") {
			return
		}
		select {
		case announced <- a.Node:
		default:
			// Full: the node announces again at the next ping.
		}
	})
	if err != nil {
		nc.Close()
		return fmt.Errorf("nats: %w", err)
	}
	return nil
}

func (b *proxyBus) ping() {
	if err := b.nc.Publish(b.o.Prefix+"ping", []byte("{}")); err != nil {
		b.log.Debug("cannot ping the ari-proxies", "err", err)
	}
}

// lostSignal is closed at the next loss of the NATS connection.
func (b *proxyBus) lostSignal() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lost
}

// newProxyClientMu serialises ari-proxy clients' creation: the library
// takes its request timeout from a package variable.
var newProxyClientMu sync.Mutex

// clientURL is the NATS URL the ari-proxy client connects with: it takes
// no connection options, so credentials go into each server's URL.
func (b *proxyBus) clientURL() string {
	if b.o.NATSUser == "" {
		return b.o.NATSURL
	}
	var out []string
	for _, s := range strings.Split(b.o.NATSURL, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			continue
		}
		u.User = url.UserPassword(b.o.NATSUser, b.o.NATSPassword)
		out = append(out, u.String())
	}
	return strings.Join(out, ",")
}

// build makes the ari-proxy client, retrying until it connects or ctx ends.
func (b *proxyBus) build(ctx context.Context) error {
	b.mu.Lock()
	b.ctx = ctx
	b.mu.Unlock()
	backoff := b.o.MinBackoff
	for {
		cl, stop, err := b.newClient()
		if err == nil {
			b.mu.Lock()
			b.cl, b.clStop = cl, stop
			b.mu.Unlock()
			return nil
		}
		b.log.Warn("cannot start the ari-proxy client", "nats", b.where(), "err", errText(err), "retry_in", backoff)
		t := time.NewTimer(jitter(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = nextBackoff(backoff, b.o.MaxBackoff)
	}
}

// The ari-proxy client closes itself when its context ends, after a grace
// period. The adapter ends it that way only, at once: the library's Close
// cancels that context and then writes, unlocked, a flag its watcher reads,
// so calling Close beside the watcher is a data race. Set before any
// client exists.
func init() { client.ClosureGracePeriod = 0 }

// newClient makes an ari-proxy client; stop closes it.
func (b *proxyBus) newClient() (*client.Client, context.CancelFunc, error) {
	newProxyClientMu.Lock()
	defer newProxyClientMu.Unlock()
	client.DefaultRequestTimeout = b.o.RequestTimeout
	ctx, cancel := context.WithCancel(context.Background())
	cl, err := client.New(ctx, client.WithURI(b.clientURL()), client.WithApplication(b.o.Application),
		client.WithPrefix(b.o.Prefix))
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return cl, cancel, nil
}

// get is the ari-proxy client; build has made it before any node runs.
func (b *proxyBus) get() *client.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cl
}

// check looks at a node's health-check failure: the ari-proxy client's
// NATS connection gives up after its library's reconnect attempts (about
// two minutes), and only a new client comes back from that.
func (b *proxyBus) check(err error) {
	if err == nil || !strings.Contains(err.Error(), nats.ErrConnectionClosed.Error()) {
		return
	}
	b.mu.Lock()
	if b.rebuilding || b.ctx == nil || b.ctx.Err() != nil {
		b.mu.Unlock()
		return
	}
	b.rebuilding = true
	ctx := b.ctx
	b.mu.Unlock()
	b.log.Warn("the ari-proxy client's NATS connection is closed; making a new one")
	go func() {
		cl, stop, err := b.newClient()
		b.mu.Lock()
		b.rebuilding = false
		if err != nil || ctx.Err() != nil {
			b.mu.Unlock()
			if err == nil {
				stop()
				return
			}
			b.log.Warn("cannot restart the ari-proxy client; trying again at the next health check", "err", errText(err))
			return
		}
		oldStop := b.clStop
		b.cl, b.clStop = cl, stop
		b.mu.Unlock()
		if oldStop != nil {
			oldStop()
		}
	}()
}

// call runs one ari-proxy request bounded by the request timeout.
func (b *proxyBus) call(ctx context.Context, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.RequestTimeout)
	defer cancel()
	return bounded(ctx, fn)
}

func (b *proxyBus) close() {
	b.mu.Lock()
	stop := b.clStop
	b.cl, b.clStop = nil, nil
	b.mu.Unlock()
	if stop != nil {
		stop()
	}
	if b.nc != nil {
		b.nc.Close()
	}
}
