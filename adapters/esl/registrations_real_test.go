package esl

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// linkCutter forwards TCP connections to a real FreeSWITCH's event socket
// and can cut them all, and refuse new ones, as a network outage would.
type linkCutter struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func newLinkCutter(t *testing.T, target string) *linkCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &linkCutter{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		l.setCut(true)
	})
	go l.accept()
	return l
}

func (l *linkCutter) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.cut {
			l.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", l.target, 5*time.Second)
		if err != nil {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.conns = append(l.conns, c, up)
		l.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// setCut cuts every connection and refuses new ones (true), or lets them
// through again (false).
func (l *linkCutter) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for _, c := range l.conns {
			c.Close()
		}
		l.conns = nil
	}
}

// waitListed waits until `show registrations as json` lists the user (or,
// listed false, no longer does): FreeSWITCH's core database has it about
// 200 ms after the REGISTER.
func waitListed(t *testing.T, ctx context.Context, cli *rawESL, user string, listed bool) {
	t.Helper()
	for {
		body, err := cli.api(ctx, "api show registrations as json")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(body, `"reg_user":"`+user+`"`) == listed {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("show registrations: %s listed=%v not reached: %.300s", user, !listed, body)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestRegistrationsRealFreeSWITCH: on a real FreeSWITCH, phones that
// registered before the adapter connected are reported registered before
// the link is up; a phone that unregisters while the link is cut is
// reported off when it is back, before the link; one that registers again
// is reported by its event.
func TestRegistrationsRealFreeSWITCH(t *testing.T) {
	real := realFreeSWITCHEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := &rawESL{addr: real.addr, pass: real.pass}
	phones := pbxtest.StartPhones(t, real.exts, real.sip, real.sipPass)
	for _, x := range real.exts {
		waitListed(t, ctx, cli, x, true)
	}

	link := newLinkCutter(t, real.addr)
	a, err := New(Options{Address: link.ln.Addr().String(), Password: real.pass, Context: real.context,
		Logger: itLogger(t), MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var exts []pbx.Extension
	for _, x := range real.exts {
		exts = append(exts, pbx.Extension{Name: x, Endpoint: "user/" + x, Domain: real.domain})
	}
	a.SetExtensions(exts)
	h := &harness{t: t, a: a, events: make(chan pbx.Event, 256)}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx, h.events) }()
	defer func() {
		stop()
		<-done
	}()

	want := []string{real.exts[0] + "=up", real.exts[1] + "=up", real.exts[2] + "=up"}
	if got := devices(h.untilUp()); !equal(got, want) {
		t.Fatalf("devices reported at connect %q, want %q", got, want)
	}

	link.setCut(true)
	h.want(pbx.EventLink, isDown)
	gone := real.exts[2]
	if err := phones[2].Close(); err != nil { // unregisters
		t.Fatal(err)
	}
	waitListed(t, ctx, cli, gone, false)
	link.setCut(false)
	if got := devices(h.untilUp()); !equal(got, []string{gone + "=down"}) {
		t.Errorf("devices reported at reconnect %q, want %q", got, []string{gone + "=down"})
	}

	p, err := testphone.Start(ctx, testphone.Options{User: gone, Password: strings.ReplaceAll(real.sipPass, "{ext}", gone),
		Registrar: real.sip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	e := h.want(pbx.EventDevice, nil)
	if got := devices([]pbx.Event{e}); !equal(got, []string{gone + "=up"}) {
		t.Errorf("after %s registered again: %q", gone, got)
	}
}
