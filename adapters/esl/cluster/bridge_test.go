package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/cluster"
	"github.com/csta-bridge/csta-bridge/adapters/esl"
	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakefs"
	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

const wait = 15 * time.Second

// newFake starts a fake FreeSWITCH with these registered phones and the
// vanilla echo test number.
func newFake(t *testing.T, users ...string) *fakefs.FS {
	t.Helper()
	return newFakeWith(t, fakefs.Options{Users: users})
}

// newFakeWith starts a fake FreeSWITCH with the vanilla echo test number.
func newFakeWith(t *testing.T, o fakefs.Options) *fakefs.FS {
	t.Helper()
	o.Captures = "../testdata"
	o.Apps = map[string]string{"9196": fakefs.AppEcho}
	f, err := fakefs.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// newPBX builds the cluster as cmd/csta-bridge does, with short reconnect
// backoffs.
func newPBX(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
	var nodes []cluster.Node
	for _, n := range cfg.PBX.ESL.Nodes {
		a, err := esl.New(esl.Options{Address: n.Address, Password: n.Password, Context: cfg.PBX.ESL.Context,
			Logger: log.With("node", n.Name), CommandTimeout: 3 * time.Second, HoldMusicWait: 50 * time.Millisecond,
			AnswerTimeout: time.Second,
			MinBackoff:    20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, cluster.Node{Name: n.Name, PBX: a})
	}
	return cluster.New(cluster.Options{Nodes: nodes, Server: "FreeSWITCH", Logger: log})
}

// admin reads a path of the bridge's admin listener.
func admin(t *testing.T, app *bridge.App, path string) (int, string) {
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
	return resp.StatusCode, string(b)
}

// until asks cond until it holds: /-/ready and /metrics have no change
// notification outside the bridge package.
func until(t *testing.T, desc string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", desc, wait)
		}
		<-tick.C
	}
}

// ready is /-/ready's status and body.
func ready(t *testing.T, app *bridge.App) string {
	code, body := admin(t, app, "/-/ready")
	return strconv.Itoa(code) + " " + strings.TrimSpace(body)
}

// nodeMetric reads csta_bridge_pbx_node_<name>{node="<node>"}.
func nodeMetric(t *testing.T, app *bridge.App, name, node string) string {
	_, m := admin(t, app, "/metrics")
	prefix := fmt.Sprintf("csta_bridge_pbx_node_%s{node=%q} ", name, node)
	for line := range strings.Lines(m) {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(v)
		}
	}
	return "absent"
}

// TestClusterThroughTheBridge runs the whole bridge on three fake
// FreeSWITCH nodes: calls on every node, commands on the node of each
// call, MakeCall on the extension's node (pinned, learned from a
// registration, or found by trying: a phone that does not register, at
// a fixed address in one node's directory), then one node lost and back: only
// its extensions' calls are affected (the one that ended meanwhile is
// cleared, the live one taken over with its csta_id), the others' calls
// and CSTA go on, /-/ready and /metrics name the node.
func TestClusterThroughTheBridge(t *testing.T) {
	fs1 := newFake(t, "1001", "1009")
	fs2 := newFake(t, "1003", "1008")
	fs3 := newFakeWith(t, fakefs.Options{Static: []string{"1004"}})
	app, sink := startBridge(t, `    nodes:
      - {name: fs1, address: "`+fs1.Addr()+`"}
      - {name: fs2, address: "`+fs2.Addr()+`"}
      - {name: fs3, address: "`+fs3.Addr()+`"}
`, `  "1001": {endpoint: user/1001, node: fs1}
  "1002": {endpoint: user/1002}
  "1003": {endpoint: user/1003, node: fs2}
  "1004": {endpoint: user/1004}
`)
	cli := pbxtest.NewBridgeClient(t, app.SharedAddr(), app.AdminAddr(), wait, wait)
	for _, ext := range []string{"1001", "1002", "1003", "1004"} {
		sink.Expect(t, ext, "setup")
	}
	until(t, "every node connected", func() bool { return ready(t, app) == "200 OK" })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	// 1002's phone registers on fs1: fs1 serves it now.
	if v := nodeMetric(t, app, "extensions", "fs1"); v != "1" {
		t.Errorf("fs1 serves %s extensions before 1002 registered, want 1 (1001)", v)
	}
	fs1.Register("1002")
	until(t, "1002 counted on fs1", func() bool { return nodeMetric(t, app, "extensions", "fs1") == "2" })

	// Calls on every node.
	if err := fs1.Dial("1009", "1001"); err != nil {
		t.Fatal(err)
	}
	const a1, b1, c1, d1 = -1, -1, -1, 1 // each extension's first call
	sink.Expect(t, "1001", fmt.Sprintf("incoming:%d", a1))
	if err := fs1.Wait(ctx, "1001", fakefs.Ringing); err != nil {
		t.Fatal(err)
	}
	if err := fs1.Answer("1001"); err != nil {
		t.Fatal(err)
	}
	sink.Expect(t, "1001", "offhook", fmt.Sprintf("connected:%d", a1))

	if err := fs1.Dial("1009", "1002"); err != nil {
		t.Fatal(err)
	}
	sink.Expect(t, "1002", fmt.Sprintf("incoming:%d", b1))
	if err := fs1.Wait(ctx, "1002", fakefs.Ringing); err != nil {
		t.Fatal(err)
	}
	if err := fs1.Answer("1002"); err != nil {
		t.Fatal(err)
	}
	sink.Expect(t, "1002", "offhook", fmt.Sprintf("connected:%d", b1))

	if err := fs2.Dial("1008", "1003"); err != nil {
		t.Fatal(err)
	}
	sink.Expect(t, "1003", fmt.Sprintf("incoming:%d", c1))
	cli.OK("1003", "AnswerCall", pbxtest.ConnID("callToBeAnswered", c1))
	sink.Expect(t, "1003", "offhook", fmt.Sprintf("connected:%d", c1))
	cli.OK("1003", "HoldCall", pbxtest.ConnID("callToBeHeld", c1))
	sink.Expect(t, "1003", fmt.Sprintf("hold:%d", c1))

	// 1004 is nowhere registered: fs1 and fs2 do not have its device, fs3
	// calls it at its fixed address.
	cli.OK("1004", "MakeCall", `<csta:callingDevice></csta:callingDevice><csta:calledDirectoryNumber>9196</csta:calledDirectoryNumber>`)
	sink.Expect(t, "1004", "offhook", fmt.Sprintf("outgoing:%d", d1), fmt.Sprintf("connected:%d", d1))
	for _, c := range []struct {
		f    *fakefs.FS
		want int
	}{{fs1, 1}, {fs2, 1}, {fs3, 1}} {
		if n := originates(c.f, "user/1004"); n != c.want {
			t.Errorf("%s: %d originates of user/1004, want %d", c.f.Addr(), n, c.want)
		}
	}
	// The commands of each call went to its node only.
	if originates(fs1, "") != 1 || count(fs2, "uuid_hold") != 1 || count(fs1, "uuid_hold")+count(fs3, "uuid_hold") != 0 {
		t.Errorf("commands: fs1 %q\nfs2 %q\nfs3 %q", fs1.Server().Commands(), fs2.Server().Commands(), fs3.Server().Commands())
	}
	until(t, "calls per node", func() bool {
		return nodeMetric(t, app, "calls", "fs1") == "2" && nodeMetric(t, app, "calls", "fs2") == "1" &&
			nodeMetric(t, app, "calls", "fs3") == "1"
	})

	// fs1 is lost. While it is away 1001's call ends; 1002's goes on.
	fs1.Server().Refuse(true)
	fs1.Server().DropAll()
	until(t, "/-/ready degraded", func() bool { return strings.HasPrefix(ready(t, app), "200 OK, degraded: node fs1 down: ") })
	if v := nodeMetric(t, app, "up", "fs1"); v != "0" {
		t.Errorf("fs1 up = %s", v)
	}
	if v := nodeMetric(t, app, "up", "fs2"); v != "1" {
		t.Errorf("fs2 up = %s", v)
	}
	if _, page := admin(t, app, "/"); !strings.Contains(page, `<b>fs1</b> <span class="bad">down`) ||
		!strings.Contains(page, `<b>fs2</b> <span class="ok">up</span>, 1 extensions, 1 calls;`) {
		t.Errorf("the status page does not show fs1 down and fs2 up:\n%s", page)
	}
	if err := fs1.Hangup("1001"); err != nil {
		t.Fatal(err)
	}
	// The other nodes' calls are served meanwhile; fs1's fail cleanly.
	cli.OK("1003", "RetrieveCall", pbxtest.ConnID("callToBeRetrieved", c1))
	sink.Expect(t, "1003", fmt.Sprintf("unhold:%d", c1))
	cli.Fault("1002", "HoldCall", pbxtest.ConnID("callToBeHeld", b1), "resourceOutOfService")

	// fs1 is back: its sync clears 1001's call and takes 1002's over.
	fs1.Server().Refuse(false)
	sink.Expect(t, "1001", fmt.Sprintf("disconnected:%d", a1), "onhook")
	until(t, "every node connected again", func() bool { return ready(t, app) == "200 OK" })
	cli.OK("1002", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", b1))
	sink.Expect(t, "1002", fmt.Sprintf("disconnected:%d", b1), "onhook")
	// No other extension heard of fs1's return: their next action URLs
	// are the ones of their own calls' ends.
	cli.OK("1003", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", c1))
	sink.Expect(t, "1003", fmt.Sprintf("disconnected:%d", c1), "onhook")
	cli.OK("1004", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", d1))
	sink.Expect(t, "1004", fmt.Sprintf("disconnected:%d", d1), "onhook")
	for _, f := range []*fakefs.FS{fs1, fs2, fs3} {
		if err := f.WaitIdle(ctx); err != nil {
			t.Errorf("%s: %v", f.Addr(), err)
		}
	}
	cli.WaitQuiet()
	for _, ext := range []string{"1001", "1002", "1003", "1004"} {
		if extra := sink.Drain(ext); len(extra) > 0 {
			t.Errorf("ext %s: unexpected action URLs %v", ext, extra)
		}
	}
}

// startBridge runs the whole bridge on a cluster: nodes and exts are the
// YAML of pbx.esl.nodes and of extensions, indented. Every action URL goes
// to the returned sink.
func startBridge(t *testing.T, nodes, exts string) (*bridge.App, *pbxtest.ActionSink) {
	t.Helper()
	sink := pbxtest.NewActionSink(t, wait)
	dir := t.TempDir()
	cfgText := fmt.Sprintf("pbx:\n  type: esl\n  esl:\n    password: ClueCon\n    context: default\n%s"+
		"http: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\nstate_file: %s\n"+
		"defaults:\n  domain: 127.0.0.1\n  settings:\n%sextensions:\n%s",
		nodes, filepath.Join(dir, "state.json"), sink.Config("    "), exts)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := bridge.New(bridge.Options{ConfigPath: path, Logger: pbxtest.TestLogger(t), NewPBX: newPBX,
		Notify: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := app.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return app, sink
}

// A node down when the bridge starts does not keep it from serving the
// others: ready (degraded) with the node that is up; once the other is
// there, its extensions are served too.
func TestNodeDownAtStart(t *testing.T) {
	fs1 := newFake(t, "1001", "1009")
	fs2 := newFake(t, "1003", "1008")
	fs2.Server().Refuse(true)
	app, sink := startBridge(t, `    nodes:
      - {name: fs1, address: "`+fs1.Addr()+`"}
      - {name: fs2, address: "`+fs2.Addr()+`"}
`, `  "1001": {endpoint: user/1001, node: fs1}
  "1003": {endpoint: user/1003, node: fs2}
`)
	cli := pbxtest.NewBridgeClient(t, app.SharedAddr(), app.AdminAddr(), wait, wait)
	sink.Expect(t, "1001", "setup")
	sink.Expect(t, "1003", "setup")
	until(t, "ready without fs2", func() bool { return strings.HasPrefix(ready(t, app), "200 OK, degraded: node fs2 down: ") })
	if err := fs1.Dial("1009", "1001"); err != nil {
		t.Fatal(err)
	}
	sink.Expect(t, "1001", "incoming:-1")
	cli.OK("1001", "AnswerCall", pbxtest.ConnID("callToBeAnswered", -1))
	sink.Expect(t, "1001", "offhook", "connected:-1")

	fs2.Server().Refuse(false)
	until(t, "every node connected", func() bool { return ready(t, app) == "200 OK" })
	if err := fs2.Dial("1008", "1003"); err != nil {
		t.Fatal(err)
	}
	sink.Expect(t, "1003", "incoming:-1")
	cli.OK("1003", "AnswerCall", pbxtest.ConnID("callToBeAnswered", -1))
	sink.Expect(t, "1003", "offhook", "connected:-1")
	// fs2's arrival did not touch fs1's call.
	cli.OK("1001", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", -1))
	sink.Expect(t, "1001", "disconnected:-1", "onhook")
	cli.OK("1003", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", -1))
	sink.Expect(t, "1003", "disconnected:-1", "onhook")
}

// originates counts the originate commands a fake got for an endpoint
// ("" = all).
func originates(f *fakefs.FS, endpoint string) int {
	n := 0
	for _, c := range f.Server().Commands() {
		if strings.Contains(c, "originate ") && strings.Contains(c, endpoint) {
			n++
		}
	}
	return n
}

func count(f *fakefs.FS, cmd string) int {
	n := 0
	for _, c := range f.Server().Commands() {
		if strings.Contains(c, cmd+" ") {
			n++
		}
	}
	return n
}

// An unpinned extension whose phone registered on fs2 before the bridge
// started (its sofia::register went to nobody) is known on fs2 from the
// start: the connect reads each node's registrations before the link is
// reported up, so a MakeCall the moment the bridge is ready goes to fs2,
// with no trial on fs1, listed first, whose directory has the user too
// (its phone was registered there once). When the phone moves to fs1
// while fs2 is away, fs2's return reports it gone from there.
func TestMakeCallOnNodeRegisteredAtStart(t *testing.T) {
	fs1 := newFake(t, "1009")
	fs1.Register("1002")
	fs1.Unregister("1002")
	fs2 := newFake(t)
	fs2.Register("1002")
	app, sink := startBridge(t, `    nodes:
      - {name: fs1, address: "`+fs1.Addr()+`"}
      - {name: fs2, address: "`+fs2.Addr()+`"}
`, `  "1002": {endpoint: user/1002}
`)
	cli := pbxtest.NewBridgeClient(t, app.SharedAddr(), app.AdminAddr(), wait, wait)
	sink.Expect(t, "1002", "setup")
	until(t, "ready", func() bool { return ready(t, app) == "200 OK" })
	makeCall := `<csta:callingDevice></csta:callingDevice><csta:calledDirectoryNumber>9196</csta:calledDirectoryNumber>`
	cli.OK("1002", "MakeCall", makeCall)
	sink.Expect(t, "1002", "offhook", "outgoing:1", "connected:1")
	if n1, n2 := originates(fs1, "user/1002"), originates(fs2, "user/1002"); n1 != 0 || n2 != 1 {
		t.Errorf("originates of user/1002: %d on fs1, %d on fs2; want none on fs1, one on fs2\nfs1: %q",
			n1, n2, fs1.Server().Commands())
	}
	if v := nodeMetric(t, app, "extensions", "fs2"); v != "1" {
		t.Errorf("fs2 serves %s extensions, want 1", v)
	}
	cli.OK("1002", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", 1))
	sink.Expect(t, "1002", "disconnected:1", "onhook")

	// fs2 is lost; meanwhile the phone leaves it (fs2's sofia::unregister
	// goes to nobody) and registers on fs1.
	fs2.Server().Refuse(true)
	fs2.Server().DropAll()
	until(t, "fs2 down", func() bool { return nodeMetric(t, app, "up", "fs2") == "0" })
	fs2.Unregister("1002")
	fs1.Register("1002")
	until(t, "1002 counted on fs1", func() bool { return nodeMetric(t, app, "extensions", "fs1") == "1" })
	fs2.Server().Refuse(false)
	until(t, "fs2 back without 1002", func() bool {
		return ready(t, app) == "200 OK" && nodeMetric(t, app, "extensions", "fs2") == "0"
	})
	cli.OK("1002", "MakeCall", makeCall)
	sink.Expect(t, "1002", "offhook", "outgoing:2", "connected:2")
	if n1, n2 := originates(fs1, "user/1002"), originates(fs2, "user/1002"); n1 != 1 || n2 != 1 {
		t.Errorf("originates of user/1002: %d on fs1, %d on fs2; want the second on fs1", n1, n2)
	}
	cli.OK("1002", "ClearConnection", pbxtest.ConnID("connectionToBeCleared", 2))
	sink.Expect(t, "1002", "disconnected:2", "onhook")
	cli.WaitQuiet()
	if extra := sink.Drain("1002"); len(extra) > 0 {
		t.Errorf("unexpected action URLs %v", extra)
	}
}
