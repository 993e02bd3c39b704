package ari

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	proxyserver "github.com/CyCoreSystems/ari-proxy/v5/server"
	"github.com/CyCoreSystems/ari/v5/client/native"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// testNATS is an in-process NATS server on 127.0.0.1, restartable on the
// same port.
type testNATS struct {
	t    *testing.T
	port int
	s    *natsserver.Server
}

func startTestNATS(t *testing.T) *testNATS {
	t.Helper()
	n := &testNATS{t: t, port: -1}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *testNATS) start() {
	n.t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: n.port, NoLog: true, NoSigs: true})
	if err != nil {
		n.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("NATS server not ready")
	}
	n.s = s
	n.port = s.Addr().(*net.TCPAddr).Port
}

func (n *testNATS) stop() {
	if n.s != nil {
		n.s.Shutdown()
		n.s.WaitForShutdown()
		n.s = nil
	}
}

func (n *testNATS) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// testProxy is an ari-proxy server (the library's) in front of one fake
// Asterisk, as ari-proxy runs beside each real one. It runs in a process
// of its own (this test binary, re-run by TestMain), so that killing it is
// what a dead proxy is: its websocket and its NATS connection drop at once.
// (In-process, stopping it would go through ari v5.3.1's native client
// Close, which races with its own reader goroutine.)
type testProxy struct {
	cmd  *exec.Cmd
	done chan struct{}
}

const proxyEnv = "CSTA_TEST_ARIPROXY"

func TestMain(m *testing.M) {
	if os.Getenv(proxyEnv) != "" {
		os.Exit(runTestProxy())
	}
	os.Exit(m.Run())
}

// runTestProxy is the proxy process: native ARI client, NATS, ari-proxy
// server, until killed.
func runTestProxy() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "test proxy:", err); return 1 }
	// Its stdin is the test's pipe: the test process gone, the proxy goes.
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	cl, err := native.Connect(&native.Options{Application: os.Getenv("ARI_APP"), URL: os.Getenv("ARI_URL"),
		WebsocketURL: os.Getenv("ARI_WS"), Username: os.Getenv("ARI_USER"), Password: os.Getenv("ARI_PASS")})
	if err != nil {
		return fail(err)
	}
	nc, err := nats.Connect(os.Getenv("NATS_URL"), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		return fail(err)
	}
	//lint:ignore SA1019 ari-proxy v5.3.1's server takes an EncodedConn
	enc, err := nats.NewEncodedConn(nc, nats.JSON_ENCODER)
	if err != nil {
		return fail(err)
	}
	srv := proxyserver.New()
	done := make(chan error, 1)
	go func() { done <- srv.ListenOn(context.Background(), cl, enc) }()
	select {
	case <-srv.Ready():
		fmt.Println("ready")
	case err := <-done:
		return fail(err)
	}
	return fail(<-done)
}

func startTestProxy(t *testing.T, f *fakeari.Server, natsURL string) *testProxy {
	t.Helper()
	o := f.Options()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), proxyEnv+"=1", "ARI_APP="+o.App, "ARI_URL="+f.URL,
		"ARI_WS="+strings.Replace(f.URL, "http://", "ws://", 1)+"/events", "ARI_USER="+o.User, "ARI_PASS="+o.Pass,
		"NATS_URL="+natsURL)
	cmd.Stderr = os.Stderr
	if _, err := cmd.StdinPipe(); err != nil { // kept open while the test runs
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &testProxy{cmd: cmd, done: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := sc.Scan() && sc.Text() == "ready"
		ready <- ok
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the test proxy did not start")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the test proxy did not start within 30s")
	}
	waitFake(t, f, "the proxy's websocket", f.Connected)
	return p
}

// stop kills the proxy and waits until it is gone.
func (p *testProxy) stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// proxyRig is a bridge's cluster adapter on ari-proxies in front of fake
// Asterisks, over an in-process NATS.
type proxyRig struct {
	*harness
	nats    *testNATS
	fakes   map[string]*fakeari.Server
	proxies map[string]*testProxy
	pc      *ProxyCluster
}

// newProxyRig starts a fake Asterisk and its proxy per node (node name →
// the endpoints it has), then the cluster adapter expecting them.
func newProxyRig(t *testing.T, exts []pbx.Extension, nodes map[string][]string, expect ...string) *proxyRig {
	t.Helper()
	r := &proxyRig{nats: startTestNATS(t), fakes: map[string]*fakeari.Server{}, proxies: map[string]*testProxy{}}
	for name, eps := range nodes {
		r.addNode(t, name, eps)
	}
	o := Options{Application: "csta-bridge", Context: "from-internal", Logger: testLogger(t),
		RequestTimeout: 3 * time.Second, AnswerTimeout: 2 * time.Second,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	pc, err := NewProxyCluster(ProxyOptions{Options: o, NATSURL: r.nats.url(), Nodes: expect,
		DiscoverWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.pc = pc
	pc.SetExtensions(exts)
	ctx, cancel := context.WithCancel(context.Background())
	r.harness = &harness{t: t, events: make(chan pbx.Event, 1000), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- pc.Run(ctx, r.events) }()
	t.Cleanup(r.harness.stop)
	r.waitEvent("the first sync", func(ev pbx.Event) bool { return ev.Kind == pbx.EventSync })
	r.waitEvent("link up", func(ev pbx.Event) bool { return ev.Kind == pbx.EventLink && ev.Up })
	return r
}

func (r *proxyRig) addNode(t *testing.T, name string, eps []string) {
	t.Helper()
	f := fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: eps, EntityID: name})
	t.Cleanup(f.Close)
	r.fakes[name] = f
	r.proxies[name] = startTestProxy(t, f, r.nats.url())
}

// waitNode waits until the cluster reports node up or down.
func (r *proxyRig) waitNode(name string, up bool) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		for _, n := range r.pc.Nodes() {
			if n.Name == name && n.Up == up {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("node %s not up=%v within 10s: %+v", name, up, r.pc.Nodes())
		}
	}
}

// requestsFor lists a fake's requests whose path or parameters name s.
func requestsFor(f *fakeari.Server, s string) []string {
	var out []string
	for _, r := range f.Requests() {
		hit := strings.Contains(r.Path, s)
		for _, v := range r.Params {
			hit = hit || strings.Contains(v, s)
		}
		if hit {
			out = append(out, r.String())
		}
	}
	return out
}
