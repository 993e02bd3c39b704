// Package bridge is the PBX-agnostic core of csta-bridge: one virtual Snom
// phone per extension, its /csta endpoint and action URLs, on top of a PBX
// adapter (bridge/pbx). It never imports an adapter or a PBX library.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/actionurl"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/httpauth"
	"github.com/csta-bridge/csta-bridge/bridge/internal/sdnotify"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure an App. Only ConfigPath and NewPBX are required.
type Options struct {
	ConfigPath string
	Logger     *slog.Logger
	// NewPBX builds the adapter for cfg.PBX. When the adapter also has a
	// `Handler() http.Handler` (the simulator's control API), it is mounted
	// on the admin listener under /sim/.
	NewPBX   func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error)
	Registry *prometheus.Registry // nil: a new one
	Version  string
	// Notify reports lifecycle states to the service manager; nil means
	// sd_notify to $NOTIFY_SOCKET (a no-op outside systemd).
	Notify func(state string)
	// StopTimeout bounds Stop when the caller's context has no deadline.
	StopTimeout time.Duration
	// Lease, when set, makes this bridge a standby until it holds the
	// lease (lease.go); NewLease builds it from the config in Run.
	Lease    Lease
	NewLease func(cfg *config.Config, log *slog.Logger) (Lease, error)
}

// App is the running bridge. It never touches os/signal, so tests run it
// in-process on 127.0.0.1:0.
type App struct {
	opts    Options
	log     *slog.Logger
	reg     *prometheus.Registry
	m       *metrics
	started time.Time

	cfg   atomic.Pointer[config.Config]
	table atomic.Pointer[extTable]

	sb       *switchboard
	svc      *services
	actions  *actionSender
	notifier *actionurl.Notifier
	phones   *phoneHTTP
	cstaLog  *recentLog[cstaRecord]
	// statusIdx is the status page's sorted, searchable list of extensions.
	statusIdx atomic.Pointer[statusIndex]

	pbxMu     sync.RWMutex
	cur       pbx.PBX
	pbxStop   context.CancelFunc
	pbxDone   chan struct{}
	linkUp    atomic.Bool
	everUp    bool
	linkState atomic.Value // string, for the status page

	tagging sync.WaitGroup // csta_id stores under way (tag)

	mu       sync.Mutex // listeners and lifecycle
	ctx      context.Context
	cancel   context.CancelFunc
	shared   *server
	admin    *server
	own      map[string]*server // extension name → its own listener
	simAdmin atomic.Pointer[adminHandlerBox]
	stopped  bool
	active   atomic.Bool // talking to the PBX (see lease.go)
	leaseErr chan error

	stateMu sync.Mutex
	stored  map[string]map[string]string // settings persisted by /dummy.htm, per extension
	left    map[string][]leftCall        // calls the previous bridge left, read at start-up
}

// New loads the configuration and builds the bridge without binding anything.
func New(opts Options) (*App, error) {
	if opts.NewPBX == nil {
		return nil, errors.New("bridge: Options.NewPBX is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Notify == nil {
		opts.Notify = systemdNotify(opts.Logger)
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 15 * time.Second
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	a := &App{opts: opts, log: opts.Logger, reg: opts.Registry, own: make(map[string]*server),
		cstaLog: newCSTALog(), leaseErr: make(chan error, 1)}
	a.m = newMetrics(a.reg)
	registerSwept(a.reg, a.currentPBX)
	registerNodes(a.reg, a.currentPBX)
	a.registerActive()
	a.m.reload(true)
	a.linkState.Store("connecting")
	a.actions = &actionSender{log: a.log.With("component", "action-url"), metrics: a.m,
		recent: newActionLog(), hostIP: a.hostIP}
	a.notifier = actionurl.New(actionurl.Options{Logger: a.log.With("component", "action-url"),
		Observer: actionObserver{a.actions}})
	a.actions.notifier = a.notifier
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "action_url",
		Name: "queue_length", Help: "Action URLs queued or being delivered."},
		func() float64 { return float64(a.notifier.Pending()) }))
	a.sb = newSwitchboard(a.log.With("component", "calls"), a.actions, a.m)
	a.sb.linkUp = a.onLink
	a.sb.tagger = a.tag
	a.svc = newServices(a.sb, a.currentPBX)
	a.svc.store = a.storeFeatures
	a.phones = &phoneHTTP{log: a.log.With("component", "http"), table: a.table.Load,
		auth: httpauth.New("csta-bridge", nil), svc: a.svc, m: a.m, recent: a.cstaLog}
	a.phones.faults = newFaultLog(a.phones.log, a.m)
	a.phones.web = a.webCompat
	p, err := opts.NewPBX(cfg, a.log.With("component", "pbx"))
	if err != nil {
		return nil, fmt.Errorf("pbx %s: %w", cfg.PBX.Type, err)
	}
	a.cur = p
	a.simAdmin.Store(&adminHandlerBox{adminExtra(p)})
	tlsm, err := actionTLS(cfg, a.actions.log)
	if err != nil {
		return nil, err
	}
	a.actions.tls.Store(&tlsm)
	a.apply(cfg)
	return a, nil
}

// restoreSettings gives phones without run-time settings (new ones) the
// stored ones; runs on the switchboard goroutine.
func (a *App) restoreSettings() {
	for name, p := range a.sb.phones {
		if p.runtime == nil {
			p.runtime = a.storedFor(name)
		}
		a.m.features.set(name, p.features())
	}
}

// systemdNotify reports to systemd (Type=notify); RELOADING=1 goes with
// MONOTONIC_USEC as Type=notify-reload requires.
func systemdNotify(log *slog.Logger) func(string) {
	return func(state string) {
		var err error
		if state == "RELOADING=1" {
			_, err = sdnotify.Reloading()
		} else {
			_, err = sdnotify.Notify(state)
		}
		if err != nil {
			log.Warn("sd_notify failed", "state", state, "err", err)
		}
	}
}

// adminHandlerBox holds the adapter's admin handler, nil when it has none.
type adminHandlerBox struct{ h http.Handler }

// adminExtra returns the adapter's own admin handler (the simulator's control API).
func adminExtra(p pbx.PBX) http.Handler {
	if h, ok := p.(interface{ Handler() http.Handler }); ok {
		return h.Handler()
	}
	return nil
}

// apply installs cfg's extension table everywhere except the listeners.
func (a *App) apply(cfg *config.Config) {
	a.cfg.Store(cfg)
	a.table.Store(newExtTable(cfg.Extensions))
	exts := pbxExtensions(cfg.Extensions)
	a.pbxMu.RLock()
	a.cur.SetExtensions(exts)
	a.pbxMu.RUnlock()
}

func pbxExtensions(in []config.Extension) []pbx.Extension {
	out := make([]pbx.Extension, len(in))
	for i, e := range in {
		out[i] = pbx.Extension{Name: e.Name, Endpoint: e.Endpoint, Domain: e.Domain, DisplayName: e.DisplayName,
			AutoAnswerHeaders: e.AutoAnswerHeaders, Node: e.Node}
	}
	return out
}

func (a *App) currentPBX() pbx.PBX {
	a.pbxMu.RLock()
	defer a.pbxMu.RUnlock()
	return a.cur
}

// Start binds every listener, then starts the call state machine and the
// PBX adapter. It does not wait for the PBX: /-/ready tells when it is there.
func (a *App) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg := a.cfg.Load()
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	var err error
	if a.shared, err = a.listen("shared", cfg.HTTP.Listen, cfg.HTTP.TLS, a.phones.shared()); err != nil {
		return err
	}
	if a.admin, err = a.listen("admin", cfg.Admin.Listen, config.TLS{}, a.adminHandler()); err != nil {
		a.shared.close()
		return err
	}
	for _, e := range cfg.Extensions {
		if e.Listen == "" {
			continue
		}
		s, err := a.listen("extension "+e.Name, e.Listen, cfg.HTTP.TLS, a.phones.own(e.Name))
		if err != nil {
			a.closeListeners()
			return err
		}
		a.own[e.Name] = s
	}
	a.started = time.Now()
	a.active.Store(a.opts.Lease == nil)
	go a.sb.run(a.ctx)
	a.loadStoredSettings()
	_ = a.sb.do(a.ctx, func() {
		a.sb.configure(cfg.Extensions)
		a.restoreSettings()
		a.sb.reported = reportedStates(a.left)
		if a.active.Load() { // a standby's phones boot when it takes over
			a.sb.setup()
		}
	})
	if a.opts.Lease == nil {
		a.startPBX(a.cur)
	} else {
		a.linkState.Store("standby")
		go a.awaitLease(a.ctx, a.opts.Lease)
	}
	a.log.Info("csta-bridge started", "pbx", cfg.PBX.Type, "extensions", len(cfg.Extensions),
		"listen", a.shared.addr(), "admin", a.admin.addr())
	a.opts.Notify("READY=1")
	a.status()
	return nil
}

func (a *App) startPBX(p pbx.PBX) {
	ctx, cancel := context.WithCancel(a.ctx)
	done := make(chan struct{})
	a.pbxStop, a.pbxDone = cancel, done
	go func() {
		defer close(done)
		if err := p.Run(ctx, a.sb.events); err != nil && ctx.Err() == nil {
			a.log.Error("PBX adapter stopped", "err", err)
		}
	}()
}

// onLink runs on the switchboard goroutine for every EventLink.
func (a *App) onLink(up bool, detail string) {
	was := a.linkUp.Swap(up)
	if was == up {
		return
	}
	a.m.link(up, up && a.everUp)
	if up {
		a.everUp = true
		a.linkState.Store("connected")
		a.log.Info("PBX connected")
	} else {
		a.linkState.Store("disconnected: " + detail)
		a.log.Warn("PBX connection lost", "reason", detail)
	}
	a.status()
}

func (a *App) status() {
	cfg := a.cfg.Load()
	a.opts.Notify(fmt.Sprintf("STATUS=PBX %s %v; %d extensions", cfg.PBX.Type, a.linkState.Load(), len(cfg.Extensions)))
}

// tag stores a call's csta_id on the PBX channel, in the background.
func (a *App) tag(ref pbx.CallRef, id int) {
	t, ok := a.currentPBX().(pbx.Tagger)
	if !ok {
		return
	}
	a.tagging.Add(1)
	go func() {
		defer a.tagging.Done()
		ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
		defer cancel()
		if err := t.TagCall(ctx, ref, id); err != nil && ctx.Err() == nil {
			a.log.Debug("could not store csta_id on the PBX channel", "ext", ref.Ext, "csta_id", id, "err", err)
		}
	}()
}

// waitTagging waits for the csta_id stores under way, at most until ctx ends.
func (a *App) waitTagging(ctx context.Context) {
	a.log.Debug("waiting for the csta_id stores under way before stopping the PBX adapter")
	done := make(chan struct{})
	go func() { a.tagging.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		a.log.Warn("stopped before every csta_id was stored on the PBX: a restarted bridge reports those calls as new")
	}
}

// Ready reports whether the config is loaded and the PBX connected.
func (a *App) Ready() bool { return a.linkUp.Load() && a.active.Load() }

// SharedAddr, AdminAddr and ExtensionAddr return bound addresses (tests use port 0).
func (a *App) SharedAddr() string { return a.shared.addr() }
func (a *App) AdminAddr() string  { return a.admin.addr() }
func (a *App) ExtensionAddr(name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.own[name]; s != nil {
		return s.addr()
	}
	return ""
}

// Reload re-reads the config file. Everything new is built and bound first;
// on any error the old configuration stays in force, whole.
func (a *App) Reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return errors.New("bridge stopped")
	}
	a.opts.Notify("RELOADING=1")
	defer a.opts.Notify("READY=1")
	start := time.Now()
	err := a.reload()
	a.m.reload(err == nil)
	if err != nil {
		a.log.Error("config reload failed; keeping the old configuration", "err", err)
		return err
	}
	a.log.Info("config reloaded", "extensions", len(a.cfg.Load().Extensions), "took", time.Since(start))
	a.status()
	return nil
}

func (a *App) reload() error {
	old := a.cfg.Load()
	cfg, err := config.Load(a.opts.ConfigPath)
	if err != nil {
		return err
	}
	if cfg.HTTP != old.HTTP || cfg.Admin != old.Admin || cfg.Cluster != old.Cluster {
		// Rebinding the shared or admin socket would drop in-flight clients;
		// an address change takes a restart.
		return fmt.Errorf("http or admin listener settings changed: restart csta-bridge to apply them")
	}
	tlsm, err := actionTLS(cfg, a.actions.log)
	if err != nil {
		return err
	}
	var newPBX pbx.PBX
	if !reflect.DeepEqual(cfg.PBX, old.PBX) {
		if newPBX, err = a.opts.NewPBX(cfg, a.log.With("component", "pbx")); err != nil {
			return fmt.Errorf("pbx %s: %w", cfg.PBX.Type, err)
		}
	}
	// Bind new per-extension listeners before touching anything.
	want := make(map[string]string)
	for _, e := range cfg.Extensions {
		if e.Listen != "" {
			want[e.Name] = e.Listen
		}
	}
	added := make(map[string]*server)
	for name, addr := range want {
		if s := a.own[name]; s != nil && s.cfgAddr == addr {
			continue
		}
		if s := a.own[name]; s != nil {
			s.close() // same extension, new address: free it first in case the new one overlaps
			delete(a.own, name)
		}
		s, err := a.listen("extension "+name, addr, cfg.HTTP.TLS, a.phones.own(name))
		if err != nil {
			for _, s := range added {
				s.close()
			}
			return err
		}
		added[name] = s
	}
	for name, s := range a.own {
		if _, ok := want[name]; !ok {
			go s.shutdown(5 * time.Second)
			delete(a.own, name)
		}
	}
	for name, s := range added {
		a.own[name] = s
	}
	if newPBX != nil && a.pbxStop != nil {
		a.pbxStop()
		<-a.pbxDone
	}
	if newPBX != nil {
		a.pbxMu.Lock()
		a.cur = newPBX
		a.pbxMu.Unlock()
		a.simAdmin.Store(&adminHandlerBox{adminExtra(newPBX)})
	}
	a.actions.tls.Store(&tlsm)
	a.apply(cfg)
	_ = a.sb.do(a.ctx, func() {
		a.sb.configure(cfg.Extensions)
		a.restoreSettings()
		a.sb.reported = reportedStates(a.left)
		if a.active.Load() { // a standby's phones boot when it takes over
			a.sb.setup()
		}
	})
	a.logOverrides(cfg)
	if newPBX != nil && a.active.Load() {
		a.linkUp.Store(false)
		a.startPBX(newPBX)
	}
	return nil
}

// Stop drains in-flight /csta requests, stops the PBX adapter, flushes the
// action URL queue and closes everything, within ctx (or StopTimeout).
func (a *App) Stop(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return nil
	}
	a.stopped = true
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.opts.StopTimeout)
		defer cancel()
	}
	a.opts.Notify("STOPPING=1")
	var (
		errs  []error
		errMu sync.Mutex
		wg    sync.WaitGroup
	)
	for _, s := range a.allServers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.srv.Shutdown(ctx); err != nil {
				errMu.Lock()
				errs = append(errs, fmt.Errorf("%s listener: %w", s.name, err))
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	a.phones.faults.close()
	if err := a.saveLeftCalls(ctx); err != nil {
		errs = append(errs, err)
	}
	// A call reported just before the stop must keep its csta_id on the
	// PBX, or the next bridge reports it again as new (issue 19).
	a.waitTagging(ctx)
	if a.pbxStop != nil {
		a.pbxStop()
		select {
		case <-a.pbxDone:
		case <-ctx.Done():
			errs = append(errs, errors.New("PBX adapter did not stop in time"))
		}
	}
	if err := a.releaseLease(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := a.notifier.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("action URL queue: %w", err))
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.log.Info("csta-bridge stopped")
	return errors.Join(errs...)
}

func (a *App) allServers() []*server {
	var out []*server
	for _, s := range []*server{a.shared, a.admin} {
		if s != nil {
			out = append(out, s)
		}
	}
	for _, s := range a.own {
		out = append(out, s)
	}
	return out
}

func (a *App) closeListeners() {
	for _, s := range a.allServers() {
		s.close()
	}
}

// hostIP is $phone_ip for phones without their own listener.
func (a *App) hostIP() string {
	if a.shared != nil {
		if host, _, err := net.SplitHostPort(a.shared.addr()); err == nil {
			if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
				return host
			}
		}
	}
	return "127.0.0.1"
}

// Run starts the bridge, reloads on every value from reload, and stops when
// ctx ends. It is all cmd/csta-bridge does.
func Run(ctx context.Context, opts Options, reload <-chan struct{}) error {
	if opts.NewLease != nil && opts.Lease == nil {
		cfg, err := config.Load(opts.ConfigPath)
		if err != nil {
			return err
		}
		log := opts.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		if opts.Lease, err = opts.NewLease(cfg, log.With("component", "lease")); err != nil {
			return err
		}
	}
	a, err := New(opts)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-reload:
			_ = a.Reload() // logged and counted; the old config stays
		case <-ctx.Done():
			return a.Stop(context.WithoutCancel(ctx))
		case err := <-a.LeaseErr():
			return errors.Join(err, a.Stop(context.WithoutCancel(ctx)))
		}
	}
}
