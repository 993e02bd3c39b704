package testphone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Options configures a phone.
type Options struct {
	// User is the SIP user name (the extension, e.g. "1001"); required.
	User string
	// Password answers digest challenges on REGISTER and INVITE; "" when
	// the registrar does not challenge.
	Password string
	// Registrar is the "host:port" (UDP) the phone registers with and sends
	// calls to; "" for a phone that only calls and is called directly.
	Registrar string
	// Expiry is the registration lifetime asked for (default 120s); the
	// phone refreshes before it runs out.
	Expiry time.Duration
	// AutoAnswer answers every incoming call at once, as
	// pjsua --auto-answer=200 does.
	AutoAnswer bool
	// IgnoreAutoAnswerHeaders makes the phone ring even when the INVITE
	// asks it to answer by itself (a phone whose auto-answer policy is off).
	IgnoreAutoAnswerHeaders bool
	// RequestTimeout bounds each SIP transaction the phone starts
	// (registration, re-INVITE, BYE); default 5s.
	RequestTimeout time.Duration
	// Logger receives the phone's and the SIP stack's logs; nil discards.
	Logger *slog.Logger
}

// incomingBuffer is how many unclaimed incoming calls a phone keeps; a
// call beyond that is rejected with 486, like a phone with no free line.
const incomingBuffer = 32

// Phone is one SIP user agent on a loopback UDP port.
type Phone struct {
	opts Options
	log  *slog.Logger
	dg   *diago.Diago
	ua   *sipgo.UserAgent
	addr string // 127.0.0.1:port

	stopServer context.CancelFunc
	life       context.Context // ends at Close, before the unregister
	endLife    context.CancelFunc
	regRun     chan struct{} // closed when the registration loop ended; nil without registrar
	reg        *diago.RegisterTransaction

	incoming chan *Call

	ignoreAuto atomic.Bool // Options.IgnoreAutoAnswerHeaders, switchable

	mu     sync.Mutex
	calls  map[string]*Call // by SIP Call-ID
	closed bool
	wg     sync.WaitGroup // outgoing call goroutines

	// changed is closed and replaced whenever a call starts, ends or
	// changes state, so a test can wait for "some call of this phone is
	// connected" without polling. Its own lock: setState holds the call's.
	changedMu sync.Mutex
	changed   chan struct{}
}

// Start binds a UDP port on 127.0.0.1, serves SIP on it and, with a
// registrar, registers before it returns. ctx bounds the start-up only;
// Close stops the phone.
func Start(ctx context.Context, opts Options) (*Phone, error) {
	if opts.User == "" || strings.ContainsAny(opts.User, "@:;<> \t") {
		return nil, fmt.Errorf("testphone: user %q: must be a plain SIP user name", opts.User)
	}
	if opts.Registrar != "" {
		if _, _, err := net.SplitHostPort(opts.Registrar); err != nil {
			return nil, fmt.Errorf("testphone: registrar %q: want host:port: %w", opts.Registrar, err)
		}
	}
	if opts.Expiry <= 0 {
		opts.Expiry = 120 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log := opts.Logger.With("phone", opts.User)
	enableTrace()

	ua, err := sipgo.NewUA(sipgo.WithUserAgent(opts.User))
	if err != nil {
		return nil, fmt.Errorf("testphone: %w", err)
	}
	p := &Phone{
		opts:     opts,
		log:      log,
		ua:       ua,
		incoming: make(chan *Call, incomingBuffer),
		calls:    map[string]*Call{},
	}
	p.ignoreAuto.Store(opts.IgnoreAutoAnswerHeaders)
	p.dg = diago.NewDiago(ua,
		diago.WithLogger(log),
		diago.WithTransport(diago.Transport{Transport: "udp", BindHost: "127.0.0.1", BindPort: 0}),
		diago.WithServerRequestMiddleware(func(next sipgo.RequestHandler) sipgo.RequestHandler {
			return p.dialogOrder(p.notifyMiddleware(next))
		}),
	)

	// The server runs until Close; ServeBackground returns once the
	// socket is bound and diago knows its port.
	sctx, cancel := context.WithCancel(context.Background())
	p.stopServer = cancel
	if err := p.dg.ServeBackground(sctx, p.serveIncoming); err != nil {
		cancel()
		return nil, fmt.Errorf("testphone: listen: %w", err)
	}
	p.life, p.endLife = context.WithCancel(context.Background())
	addr, err := p.contactAddr()
	if err != nil {
		p.Close()
		return nil, err
	}
	p.addr = addr
	if err := p.waitListener(ctx); err != nil {
		p.Close()
		return nil, err
	}
	if opts.Registrar != "" {
		if err := p.register(ctx); err != nil {
			p.Close()
			return nil, err
		}
	}
	log.Debug("phone started", "addr", p.addr)
	return p, nil
}

// contactAddr is the address diago puts in Contact headers: the bound
// loopback port (diago does not expose its transports otherwise).
func (p *Phone) contactAddr() (string, error) {
	tr, err := p.dg.RegisterTransaction(context.Background(), sip.Uri{Scheme: "sip", User: p.opts.User, Host: "127.0.0.1", UriParams: sip.NewParams()}, diago.RegisterOptions{})
	if err != nil {
		return "", fmt.Errorf("testphone: %w", err)
	}
	c := tr.Origin.Contact()
	if c == nil || c.Address.Port == 0 {
		return "", errors.New("testphone: SIP transport did not report its port")
	}
	return net.JoinHostPort(c.Address.Host, strconv.Itoa(c.Address.Port)), nil
}

// waitListener waits until sipgo put the listening socket in its
// connection pool. sipgo reports "ready" just before it does so, and a
// request sent in between makes the client bind the same port again and
// fail with "address already in use"; sipgo offers no signal for the
// moment itself, so the pool is polled (it takes microseconds).
func (p *Phone) waitListener(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := p.ua.TransportLayer().GetConnection("udp", p.addr); err == nil && c != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testphone: SIP listener on %s did not come up: %w", p.addr, ctx.Err())
		case <-tick.C:
		}
	}
}

func (p *Phone) register(ctx context.Context) error {
	host, port, _ := net.SplitHostPort(p.opts.Registrar)
	pn, _ := strconv.Atoi(port)
	uri := sip.Uri{Scheme: "sip", User: p.opts.User, Host: host, Port: pn, UriParams: sip.NewParams()}
	tr, err := p.dg.RegisterTransaction(ctx, uri, diago.RegisterOptions{
		Username: p.opts.User, Password: p.opts.Password, Expiry: p.opts.Expiry,
	})
	if err != nil {
		return fmt.Errorf("testphone: register: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
	defer cancel()
	if err := tr.Register(rctx); err != nil {
		return fmt.Errorf("testphone: register %s at %s: %w", p.opts.User, p.opts.Registrar, err)
	}
	p.reg = tr
	p.regRun = make(chan struct{})
	go func() {
		defer close(p.regRun)
		// Refreshes the binding before it expires until Close.
		if err := tr.QualifyLoop(p.life); err != nil && p.life.Err() == nil {
			p.log.Warn("registration refresh stopped", "err", err)
		}
	}()
	return nil
}

// SetIgnoreAutoAnswerHeaders switches the phone's auto-answer policy for
// calls that arrive from now on (see Options.IgnoreAutoAnswerHeaders).
func (p *Phone) SetIgnoreAutoAnswerHeaders(ignore bool) { p.ignoreAuto.Store(ignore) }

// Addr is the phone's SIP address, "127.0.0.1:port".
func (p *Phone) Addr() string { return p.addr }

// URI is the SIP URI that reaches the phone directly.
func (p *Phone) URI() string { return "sip:" + p.opts.User + "@" + p.addr }

// User is the phone's SIP user name.
func (p *Phone) User() string { return p.opts.User }

// Incoming waits for the next incoming call (in arrival order) or ctx.
func (p *Phone) Incoming(ctx context.Context) (*Call, error) {
	select {
	case c := <-p.incoming:
		return c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("testphone %s: no incoming call: %w", p.opts.User, ctx.Err())
	}
}

// Changed returns a channel that is closed at the next change of any of
// the phone's calls (a call starting, ending or changing state). Take it
// before looking at Calls, then wait on it.
func (p *Phone) Changed() <-chan struct{} {
	p.changedMu.Lock()
	defer p.changedMu.Unlock()
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return p.changed
}

func (p *Phone) bump() {
	p.changedMu.Lock()
	defer p.changedMu.Unlock()
	if p.changed != nil {
		close(p.changed)
	}
	p.changed = make(chan struct{})
}

// Calls lists the phone's live calls.
func (p *Phone) Calls() []*Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		out = append(out, c)
	}
	return out
}

// Close hangs up every call, unregisters and stops the phone.
func (p *Phone) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	calls := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		calls = append(calls, c)
	}
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), p.opts.RequestTimeout)
	defer cancel()
	var errs []error
	for _, c := range calls {
		if err := c.Hangup(ctx); err != nil && !errors.Is(err, ErrCallEnded) {
			errs = append(errs, err)
		}
	}
	if p.endLife != nil {
		p.endLife()
	}
	if p.reg != nil {
		<-p.regRun
		if err := p.reg.Unregister(ctx); err != nil {
			errs = append(errs, fmt.Errorf("unregister: %w", err))
		}
	}
	p.wg.Wait()
	p.stopServer()
	if err := p.ua.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (p *Phone) track(c *Call) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.calls[c.callID] = c
	p.bump()
	return true
}

func (p *Phone) untrack(c *Call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls[c.callID] == c {
		delete(p.calls, c.callID)
	}
	p.bump()
}

func (p *Phone) callByID(id string) *Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[id]
}
