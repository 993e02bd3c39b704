package bridge

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowClient opens a connection that sends the start of a request and then
// trickles one header byte per tick, never finishing the header: the
// slow-loris pattern. It returns the connection; the trickle stops when
// stop is closed or a write fails.
func slowClient(t *testing.T, addr string, tick <-chan time.Time, stop <-chan struct{}) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "POST /1001/csta HTTP/1.1\r\nHost: bridge\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-tick:
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	return c
}

// TestSlowLorisDoesNotStarveCSTA: 200 connections trickling their headers
// (below the per-listener cap) while a normal CTI client runs a whole call
// through /csta; every request of the normal client must be answered.
func TestSlowLorisDoesNotStarveCSTA(t *testing.T) {
	h := start(t, nil)
	stop := make(chan struct{})
	defer close(stop)
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	// One ticker shared by all: each tick advances one slow client, so they
	// all keep sending for as long as the test runs.
	const slow = 200
	conns := make([]net.Conn, slow)
	for i := range conns {
		conns[i] = slowClient(t, h.app.SharedAddr(), ticker.C, stop)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		h.offer("1001", "c1", "555")
		h.ok("1001", "RequestSystemStatus", "")
		h.ok("1001", "AnswerCall", conn("callToBeAnswered", -1))
		h.ok("1001", "HoldCall", conn("callToBeHeld", -1))
		h.ok("1001", "RetrieveCall", conn("callToBeRetrieved", -1))
		h.ok("1001", "ClearConnection", conn("connectionToBeCleared", -1))
	}()
	// A generous "it completed" bound, far above any real answer time and
	// below the 5 s read-header timeout that would free the slow slots.
	select {
	case <-done:
	case <-time.After(4 * time.Second):
		t.Fatal("/csta requests did not complete while slow clients held connections")
	}
	h.sink.expect(t, "1001", "incoming:-1", "offhook", "connected:-1", "hold:-1", "unhold:-1", "disconnected:-1", "onhook")
}

// TestReadHeaderTimeoutCutsSlowClient: a client that never finishes its
// header is disconnected by the server (readHeaderTimeout, 5 s), even though
// it keeps sending; it gets no response. It runs in parallel with the other
// tests so that the wait overlaps them.
func TestReadHeaderTimeoutCutsSlowClient(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5 s read-header timeout")
	}
	t.Parallel()
	h := start(t, nil)
	stop := make(chan struct{})
	defer close(stop)
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	c := slowClient(t, h.app.SharedAddr(), ticker.C, stop)
	// Bound the wait well above the timeout: if the server never cut the
	// client, the read below fails with our own deadline instead.
	if err := c.SetReadDeadline(time.Now().Add(readHeaderTimeout + 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a slow client's connection open past %s", readHeaderTimeout+10*time.Second)
	}
	if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 408") {
		t.Fatalf("slow client got %q", got)
	}
	// The listener is still serving.
	h.ok("1001", "RequestSystemStatus", "")
}

// TestListenersHardened: every listener has the timeouts and the
// connection cap; a regression here would reopen the slow-client holes the
// tests above cannot wait for (idle 90 s, read 30 s).
func TestListenersHardened(t *testing.T) {
	h := start(t, map[string]string{"1001": "    listen: 127.0.0.1:0\n"})
	h.app.mu.Lock()
	servers := h.app.allServers()
	h.app.mu.Unlock()
	if len(servers) != 3 {
		t.Fatalf("%d listeners, want shared, admin and 1001's own", len(servers))
	}
	for _, s := range servers {
		srv := s.srv
		if srv.ReadHeaderTimeout != readHeaderTimeout || srv.ReadTimeout != readTimeout ||
			srv.WriteTimeout != writeTimeout || srv.IdleTimeout != idleTimeout || srv.MaxHeaderBytes != maxHeaderBytes {
			t.Errorf("%s listener: timeouts %v/%v/%v/%v, max header %d", s.name, srv.ReadHeaderTimeout, srv.ReadTimeout,
				srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
		}
		ll, ok := s.ln.(*limitedListener)
		if !ok {
			t.Errorf("%s listener is %T, not connection-limited", s.name, s.ln)
			continue
		}
		if cap(ll.sem) != maxConnsPerListen {
			t.Errorf("%s listener: cap %d, want %d", s.name, cap(ll.sem), maxConnsPerListen)
		}
	}
}

// TestConnectionCap: past the cap a client waits in the backlog and is
// served as soon as a held connection closes; the server never has more
// connections than the cap. (The real cap is 1024; the mechanism is the
// same at 2.)
func TestConnectionCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const limit = 2
	// Connections are counted as the capped listener hands them out and
	// takes them back: http.Server's StateClosed hook runs only after the
	// socket is closed, when the freed slot may already be in use again.
	counted := &countingListener{Listener: limitListener(ln, limit, 0), accepted: make(chan struct{}, 16)}
	accepted := counted.accepted
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
	}
	go srv.Serve(counted)
	defer srv.Close()

	// Two clients take both slots and send nothing.
	var held []net.Conn
	for range limit {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), waitFor)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
		select {
		case <-accepted:
		case <-time.After(waitFor):
			t.Fatal("connection below the cap not accepted")
		}
	}
	// A third client connects (the kernel queues it) and sends a request.
	c, err := net.DialTimeout("tcp", ln.Addr().String(), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Freeing a slot lets it in.
	held[0].Close()
	if err := c.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("queued client not served after a slot freed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if peak := counted.maxOpen(); peak > limit {
		t.Fatalf("%d connections open at once, cap %d", peak, limit)
	}
}

// countingListener counts the connections its listener has handed out and
// not yet taken back; a connection counts as gone before it is closed.
type countingListener struct {
	net.Listener
	accepted   chan struct{}
	mu         sync.Mutex
	open, peak int
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.open++
	l.peak = max(l.peak, l.open)
	l.mu.Unlock()
	l.accepted <- struct{}{}
	return &countedConn{Conn: c, l: l}, nil
}

func (l *countingListener) maxOpen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peak
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// One source address cannot take every slot: past its share its connections
// are closed at once, and another address is still served.
func TestConnectionCapPerIP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(limitListener(ln, 4, 2))
	defer srv.Close()
	var held []net.Conn
	for range 2 {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), waitFor)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// The third connection from 127.0.0.1 is closed without an answer.
	c, err := net.DialTimeout("tcp", ln.Addr().String(), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(waitFor))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatalf("third connection from one IP was served (%d bytes)", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("third connection from one IP hangs instead of being closed")
	}
	// Another source address gets in.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: waitFor}
	other, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	io.WriteString(other, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	other.SetReadDeadline(time.Now().Add(waitFor))
	buf := make([]byte, 64)
	if n, err := other.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "200 OK") {
		t.Fatalf("connection from another IP: %q %v", buf[:n], err)
	}
	_ = held
}
