package testphone

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// testLogger logs to t until the test ends; the SIP stack's goroutines
// may still log a late retransmission after that, which is dropped.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func startPhone(t *testing.T, o Options) *Phone {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("start %s: %v", o.User, err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close %s: %v", o.User, err)
		}
	})
	return p
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustState(t *testing.T, ctx context.Context, c *Call, want State) {
	t.Helper()
	if _, err := c.WaitState(ctx, want); err != nil {
		t.Fatal(err)
	}
}

func TestCallAnswerHoldHangup(t *testing.T) {
	a := startPhone(t, Options{User: "1001"})
	b := startPhone(t, Options{User: "1002"})
	ctx := waitCtx(t)

	out, err := a.Dial(ctx, b.URI(), "X-Test: hello")
	if err != nil {
		t.Fatal(err)
	}
	in, err := b.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.State() != StateRinging || in.Direction() != Incoming {
		t.Fatalf("incoming call: %s %s, want incoming ringing", in.Direction(), in.State())
	}
	if in.CallID() != out.CallID() || in.RemoteUser() != "1001" || in.Header("X-Test") != "hello" {
		t.Fatalf("incoming call: call-id %q (want %q), from %q, X-Test %q", in.CallID(), out.CallID(), in.RemoteUser(), in.Header("X-Test"))
	}
	if in.AutoAnswerRequested() {
		t.Fatal("plain INVITE reported as auto-answer")
	}
	if out.State() != StateDialing || out.RemoteUser() != "1002" {
		t.Fatalf("outgoing call: %s to %q, want dialing to 1002", out.State(), out.RemoteUser())
	}
	if err := in.Hold(ctx); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("hold while ringing: %v, want ErrInvalidState", err)
	}
	if err := in.Answer(ctx); err != nil {
		t.Fatal(err)
	}
	mustState(t, ctx, in, StateConnected)
	mustState(t, ctx, out, StateConnected)
	if len(a.Calls()) != 1 || len(b.Calls()) != 1 {
		t.Fatalf("live calls: %d and %d, want 1 each", len(a.Calls()), len(b.Calls()))
	}

	if err := out.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	if out.State() != StateHeld {
		t.Fatalf("after hold: %s", out.State())
	}
	if err := out.Hold(ctx); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("second hold: %v, want ErrInvalidState", err)
	}
	if err := out.Unhold(ctx); err != nil {
		t.Fatal(err)
	}
	if out.State() != StateConnected {
		t.Fatalf("after unhold: %s", out.State())
	}

	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	mustState(t, ctx, out, StateEnded)
	if r := out.EndReason(); r != "hung up by the far end" {
		t.Fatalf("caller's end reason %q", r)
	}
	if r := in.EndReason(); r != "hung up by the phone" {
		t.Fatalf("callee's end reason %q", r)
	}
	if err := out.Hangup(ctx); !errors.Is(err, ErrCallEnded) {
		t.Fatalf("hang up an ended call: %v, want ErrCallEnded", err)
	}
	if len(a.Calls()) != 0 || len(b.Calls()) != 0 {
		t.Fatalf("live calls after hang-up: %d and %d", len(a.Calls()), len(b.Calls()))
	}
}

func TestAutoAnswerHeaders(t *testing.T) {
	for _, tc := range []struct {
		header string
		auto   bool
	}{
		{"Call-Info: <sip:pbx>;answer-after=0", true},
		{"Alert-Info: <http://pbx>;info=alert-autoanswer;delay=0", true},
		{"P-Auto-Answer: normal", true},
		{"Alert-Info: <http://pbx/ring.wav>", false},
		{"Call-Info: <http://pbx/photo.png>;purpose=icon", false},
	} {
		t.Run(tc.header, func(t *testing.T) {
			a := startPhone(t, Options{User: "1001"})
			b := startPhone(t, Options{User: "1002"})
			ctx := waitCtx(t)
			out, err := a.Dial(ctx, b.URI(), tc.header)
			if err != nil {
				t.Fatal(err)
			}
			in, err := b.Incoming(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if in.AutoAnswerRequested() != tc.auto {
				t.Fatalf("auto-answer requested = %v, want %v", in.AutoAnswerRequested(), tc.auto)
			}
			if tc.auto {
				mustState(t, ctx, out, StateConnected)
				mustState(t, ctx, in, StateConnected)
				return
			}
			if in.State() != StateRinging {
				t.Fatalf("call without auto-answer is %s", in.State())
			}
			if err := out.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			mustState(t, ctx, in, StateEnded)
		})
	}
}

func TestAutoAnswerPolicies(t *testing.T) {
	t.Run("ignore headers", func(t *testing.T) {
		a := startPhone(t, Options{User: "1001"})
		b := startPhone(t, Options{User: "1002", IgnoreAutoAnswerHeaders: true})
		ctx := waitCtx(t)
		out, err := a.Dial(ctx, b.URI(), "Call-Info: <sip:pbx>;answer-after=0")
		if err != nil {
			t.Fatal(err)
		}
		in, err := b.Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !in.AutoAnswerRequested() || in.State() != StateRinging {
			t.Fatalf("requested %v, state %s; want a ringing call that asked for auto-answer", in.AutoAnswerRequested(), in.State())
		}
		b.SetIgnoreAutoAnswerHeaders(false)
		out2, err := a.Dial(ctx, b.URI(), "Call-Info: <sip:pbx>;answer-after=0")
		if err != nil {
			t.Fatal(err)
		}
		mustState(t, ctx, out2, StateConnected)
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		mustState(t, ctx, in, StateEnded)
		if r := in.EndReason(); r != "cancelled by the caller" {
			t.Fatalf("end reason %q", r)
		}
		if out.Status() != 487 {
			t.Fatalf("cancelled call's status %d, want 487", out.Status())
		}
	})
	t.Run("answer everything", func(t *testing.T) {
		a := startPhone(t, Options{User: "1001"})
		b := startPhone(t, Options{User: "1002", AutoAnswer: true})
		ctx := waitCtx(t)
		out, err := a.Dial(ctx, b.URI())
		if err != nil {
			t.Fatal(err)
		}
		mustState(t, ctx, out, StateConnected)
		if err := out.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestReject(t *testing.T) {
	a := startPhone(t, Options{User: "1001"})
	b := startPhone(t, Options{User: "1002"})
	ctx := waitCtx(t)
	out, err := a.Dial(ctx, b.URI())
	if err != nil {
		t.Fatal(err)
	}
	in, err := b.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Reject(ctx, 200); err == nil {
		t.Fatal("reject with 200 accepted")
	}
	if err := in.Reject(ctx, 603); err != nil {
		t.Fatal(err)
	}
	mustState(t, ctx, out, StateEnded)
	if out.Status() != 603 || in.Status() != 603 {
		t.Fatalf("status: caller %d, callee %d, want 603", out.Status(), in.Status())
	}
	if _, err := out.WaitState(ctx, StateConnected); !errors.Is(err, ErrCallEnded) {
		t.Fatalf("waiting on an ended call: %v", err)
	}
}

// notify sends an out-of-band NOTIFY for callID to phone p, as FreeSWITCH's
// uuid_phone_event does, and returns the response status.
func notify(t *testing.T, ctx context.Context, p *Phone, callID, event string) int {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("pbx"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(p.Addr())
	pn, _ := strconv.Atoi(port)
	req := sip.NewRequest(sip.NOTIFY, sip.Uri{Scheme: "sip", User: p.User(), Host: host, Port: pn})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(sip.NewHeader("Event", event))
	res, err := cl.Do(ctx, req)
	if err != nil {
		t.Fatalf("NOTIFY %s: %v", event, err)
	}
	return res.StatusCode
}

func TestNotifyTalkHold(t *testing.T) {
	a := startPhone(t, Options{User: "1001"})
	b := startPhone(t, Options{User: "1002"})
	ctx := waitCtx(t)
	out, err := a.Dial(ctx, b.URI())
	if err != nil {
		t.Fatal(err)
	}
	in, err := b.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := notify(t, ctx, b, "no-such-call", "talk"); st != 481 {
		t.Fatalf("NOTIFY for an unknown call: %d, want 481", st)
	}
	if st := notify(t, ctx, b, in.CallID(), "talk"); st != 200 {
		t.Fatalf("NOTIFY talk: %d", st)
	}
	mustState(t, ctx, in, StateConnected)
	mustState(t, ctx, out, StateConnected)
	if st := notify(t, ctx, b, in.CallID(), "hold"); st != 200 {
		t.Fatalf("NOTIFY hold: %d", st)
	}
	mustState(t, ctx, in, StateHeld)
	if st := notify(t, ctx, b, in.CallID(), "talk"); st != 200 {
		t.Fatalf("NOTIFY talk: %d", st)
	}
	mustState(t, ctx, in, StateConnected)
	if err := out.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	mustState(t, ctx, in, StateEnded)
}

// fakeRegistrar answers REGISTERs with 200 and reports each binding.
func fakeRegistrar(t *testing.T) (addr string, regs <-chan *sip.Request) {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("registrar"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *sip.Request, 8)
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		if c := req.Contact(); c != nil {
			res.AppendHeader(sip.HeaderClone(c))
		}
		if e := req.GetHeader("Expires"); e != nil {
			res.AppendHeader(sip.HeaderClone(e))
		}
		_ = tx.Respond(res)
		ch <- req.Clone()
	})
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeUDP(ln)
	}()
	t.Cleanup(func() {
		cancel()
		_ = ln.Close()
		_ = ua.Close()
		<-done
	})
	_ = ctx
	return ln.LocalAddr().String(), ch
}

func TestRegisterAndUnregister(t *testing.T) {
	reg, regs := fakeRegistrar(t)
	ctx := waitCtx(t)
	p, err := Start(ctx, Options{User: "1003", Registrar: reg, Expiry: time.Minute, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var r *sip.Request
	select {
	case r = <-regs:
	case <-ctx.Done():
		t.Fatal("no REGISTER")
	}
	c := r.Contact()
	if c == nil || c.Address.User != "1003" || c.Address.HostPort() != p.Addr() {
		t.Fatalf("REGISTER contact %v, want sip:1003@%s", c, p.Addr())
	}
	if e := r.GetHeader("Expires"); e == nil || e.Value() != "60" {
		t.Fatalf("REGISTER Expires %v, want 60", e)
	}
	if _, err := p.targetURI("1002"); err != nil {
		t.Fatalf("number with a registrar: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r = <-regs:
	case <-ctx.Done():
		t.Fatal("no unregister on Close")
	}
	if e := r.GetHeader("Expires"); e == nil || e.Value() != "0" {
		if c := r.Contact(); c == nil || !strings.Contains(c.Value(), "expires=0") {
			t.Fatalf("unregister without expiry 0: %s", r.String())
		}
	}
}

func TestBadInput(t *testing.T) {
	ctx := waitCtx(t)
	for _, o := range []Options{{}, {User: "10 01"}, {User: "1001", Registrar: "127.0.0.1"}} {
		if _, err := Start(ctx, o); err == nil {
			t.Errorf("Start(%+v) accepted", o)
		}
	}
	p := startPhone(t, Options{User: "1001"})
	for _, target := range []string{"1002", "sip:", ""} {
		if _, err := p.Dial(ctx, target); err == nil {
			t.Errorf("Dial(%q) accepted", target)
		}
	}
	if _, err := p.Dial(ctx, "sip:1002@127.0.0.1:9", "no colon"); err == nil {
		t.Error("Dial with a malformed header accepted")
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.Incoming(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Incoming without a call: %v", err)
	}
}

func TestAutoAnswerDelayParsing(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		delay   time.Duration
		auto    bool
	}{
		{[]string{"Call-Info: <sip:pbx>;answer-after=0"}, 0, true},
		{[]string{"Call-Info: <sip:pbx;x=1>;answer-after=2"}, 2 * time.Second, true},
		{[]string{"Call-Info: <http://a,b>;purpose=icon, <sip:pbx>;answer-after=1"}, time.Second, true},
		{[]string{"Call-Info: <sip:pbx>;answer-after=99999"}, maxAnswerDelay, true},
		{[]string{"Call-Info: <sip:pbx>;answer-after=soon"}, 0, true},
		{[]string{"Alert-Info: <http://pbx>;info=alert-autoanswer;delay=3"}, 3 * time.Second, true},
		{[]string{"Alert-Info: <http://pbx>;info=Alert-AutoAnswer"}, 0, true},
		{[]string{"Alert-Info: <http://pbx>;info=alert-group"}, 0, false},
		{[]string{"P-Auto-Answer: normal"}, 0, true},
		{[]string{"Call-Info: <sip:answer-after=1@pbx>"}, 0, false},
		{nil, 0, false},
	} {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1001", Host: "127.0.0.1"})
		for _, h := range tc.headers {
			n, v, _ := strings.Cut(h, ":")
			req.AppendHeader(sip.NewHeader(n, strings.TrimSpace(v)))
		}
		d, auto := autoAnswerDelay(req)
		if d != tc.delay || auto != tc.auto {
			t.Errorf("%q: delay %s auto %v, want %s %v", tc.headers, d, auto, tc.delay, tc.auto)
		}
	}
}
