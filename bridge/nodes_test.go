package bridge

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// clusterPBX is a fake PBX of several nodes.
type clusterPBX struct {
	*fakePBX
	mu    sync.Mutex
	nodes []pbx.NodeStatus
}

func (c *clusterPBX) Nodes() []pbx.NodeStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]pbx.NodeStatus(nil), c.nodes...)
}

func (c *clusterPBX) setNodes(n ...pbx.NodeStatus) {
	c.mu.Lock()
	c.nodes = n
	c.mu.Unlock()
}

func adminText(t *testing.T, app *App, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + app.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status + " " + string(b)
}

// A cluster adapter's nodes: the node: pin reaches the adapter, /-/ready
// says which nodes are down while one is up, /metrics has each node.
func TestClusterNodes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := `pbx:
  type: esl
  esl:
    password: x
    context: default
    nodes: [{name: fs1, address: "10.0.0.1:8021"}, {name: fs2, address: "10.0.0.2:8021"}]
http: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
state_file: state.json
extensions:
  "1001": {endpoint: user/1001, node: fs2}
  "1002": {endpoint: user/1002}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &clusterPBX{fakePBX: newFakePBX()}
	p.setNodes(pbx.NodeStatus{Name: "fs1", Up: true, Extensions: 1, Calls: 3}, pbx.NodeStatus{Name: "fs2", Up: true, Extensions: 1})
	app, err := New(Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler), Notify: func(string) {},
		NewPBX: func(*config.Config, *slog.Logger) (pbx.PBX, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		app.Stop(ctx)
	})
	p.mu.Lock()
	exts := p.exts
	p.mu.Unlock()
	if len(exts) != 2 || exts[0].Node != "fs2" || exts[1].Node != "" {
		t.Errorf("extensions given to the adapter: %+v", exts)
	}
	h := &harness{t: t, app: app}
	h.waitReady()
	if got := adminText(t, app, "/-/ready"); got != "200 OK OK\n" {
		t.Errorf("/-/ready with every node up: %q", got)
	}
	p.setNodes(pbx.NodeStatus{Name: "fs1", Up: true, Extensions: 1, Calls: 3},
		pbx.NodeStatus{Name: "fs2", Detail: "connection refused", Extensions: 1})
	if got := adminText(t, app, "/-/ready"); got != "200 OK OK, degraded: node fs2 down: connection refused\n" {
		t.Errorf("/-/ready with fs2 down: %q", got)
	}
	m := adminText(t, app, "/metrics")
	for _, want := range []string{`csta_bridge_pbx_node_up{node="fs1"} 1`, `csta_bridge_pbx_node_up{node="fs2"} 0`,
		`csta_bridge_pbx_node_calls{node="fs1"} 3`, `csta_bridge_pbx_node_extensions{node="fs2"} 1`} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
