package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/cluster"
	"github.com/csta-bridge/csta-bridge/adapters/sim"
	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// actionEvents maps the Snom action URL settings the bench configures to the
// path the sink sees ("incoming" for action_incoming_url).
var actionEvents = map[string]string{
	"action_setup_url": "setup", "action_incoming_url": "incoming", "action_outgoing_url": "outgoing",
	"action_offhook_url": "offhook", "action_onhook_url": "onhook", "action_missed_url": "missed",
	"action_connected_url": "connected", "action_disconnected_url": "disconnected", "action_hold": "hold",
	"action_unhold": "unhold", "action_transfer": "transfer", "action_blind_transfer": "blind",
	"action_attended_transfer": "attended",
}

// envOptions describe one in-process bridge.
type envOptions struct {
	Dir     string   // where config.yaml and the state file go
	Exts    []string // extension names
	SinkURL string   // base URL of the action URL sink; "" configures no action URLs
	Logger  *slog.Logger
	// Display is appended to every display name; changing it makes a reload
	// touch every extension.
	Display string
	// Nodes > 0 runs that many simulators as the nodes of one cluster
	// (adapters/cluster) instead of one simulator; extension i is pinned
	// to node i mod Nodes (nodeOf), except the Unpinned percent, which
	// every node may serve.
	Nodes    int
	Unpinned int
}

// nodeOf is the node extension number i is pinned to (and whose
// simulator rings it, pinned or not).
func (o envOptions) nodeOf(i int) int { return i % o.Nodes }

// pinned says whether extension number i carries a node: pin: the first
// Unpinned of every hundred do not.
func (o envOptions) pinned(i int) bool { return i%100 >= o.Unpinned }

func nodeName(k int) string { return "sim" + strconv.Itoa(k+1) }

// writeConfig writes the bridge configuration for o: the simulator, both
// listeners on 127.0.0.1:0, no authentication (the bench measures the
// request path, not digest), and every action URL pointing at the sink.
func writeConfig(o envOptions) (string, error) {
	var b strings.Builder
	if o.Nodes > 0 {
		// The configuration of a FreeSWITCH cluster, so that the nodes and
		// the extensions' pins are read and checked as in production;
		// startEnvAt puts a simulator behind each node name. The addresses
		// are never dialled.
		b.WriteString("pbx:\n  type: esl\n  esl:\n    password: bench\n    nodes:\n")
		for k := 0; k < o.Nodes; k++ {
			fmt.Fprintf(&b, "      - {name: %s, address: \"127.0.0.1:%d\"}\n", nodeName(k), 18021+k)
		}
	} else {
		b.WriteString("pbx: {type: sim, sim: {answer_after: 0s}}\n")
	}
	b.WriteString("http: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\n")
	b.WriteString("state_file: state.json\n")
	b.WriteString("defaults:\n  domain: bench.test\n  action_url: {timeout: 2s, retries: 0}\n")
	if o.SinkURL != "" {
		b.WriteString("  settings:\n")
		for setting, ev := range actionEvents {
			fmt.Fprintf(&b, "    %s: %s/%s?ext=$active_user&id=$csta_id&remote=$remote&call=$call-id\n", setting, o.SinkURL, ev)
		}
	}
	b.WriteString("extensions:\n")
	for i, name := range o.Exts {
		pin := ""
		if o.Nodes > 0 {
			pin = ", endpoint: user/" + name // pbx.type esl asks for it; the simulators ignore it
			if o.pinned(i) {
				pin += ", node: " + nodeName(o.nodeOf(i))
			}
		}
		fmt.Fprintf(&b, "  %q: {display_name: \"Bench %s%s\"%s}\n", name, name, o.Display, pin)
	}
	path := filepath.Join(o.Dir, "config.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// env is a running in-process bridge on the simulator, or on a cluster of
// simulators.
type env struct {
	app *bridge.App
	pbx *benchPBX // the simulator; a cluster's first node
	// nodes are a cluster's simulators in node order; the one simulator
	// otherwise.
	nodes   []*benchPBX
	cluster *cluster.Cluster // nil on one simulator
	cfgPath string
	base    string // http://shared-listener
	admin   string // http://admin-listener
	// StartUp is the time from bridge.New to Ready (link up).
	StartUp time.Duration
}

// startEnv starts a bridge on nodes (new simulators when nil) and waits
// until it reports ready.
func startEnv(ctx context.Context, o envOptions, nodes []*benchPBX) (*env, error) {
	path, err := writeConfig(o)
	if err != nil {
		return nil, err
	}
	return startEnvAt(ctx, path, o.Logger, nodes)
}

// startEnvAt starts a bridge on the configuration at path. A pbx.esl.nodes
// configuration runs a new cluster adapter over one simulator per node, as
// a restarted bridge builds its adapters anew while the PBXs (here:
// nodes, when given) keep their calls.
func startEnvAt(ctx context.Context, path string, log *slog.Logger, nodes []*benchPBX) (*env, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var cl *cluster.Cluster
	t0 := time.Now()
	app, err := bridge.New(bridge.Options{ConfigPath: path, Logger: log,
		NewPBX: func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
			names, clustered := []string{""}, false
			if cfg.PBX.Type == config.TypeESL && len(cfg.PBX.ESL.Nodes) > 0 {
				clustered, names = true, nil
				for _, n := range cfg.PBX.ESL.Nodes {
					names = append(names, n.Name)
				}
			} else if cfg.PBX.Type != config.TypeSim {
				return nil, fmt.Errorf("bench: pbx type %s without nodes", cfg.PBX.Type)
			}
			if nodes == nil {
				so := sim.Options{AnswerAfter: cfg.PBX.Sim.AnswerAfter, NeverAnswer: cfg.PBX.Sim.NeverAnswer, Logger: log}
				if clustered {
					so.AnswerAfter, so.NeverAnswer = 0, false // what writeConfig gives the one simulator
				}
				for _, name := range names {
					if clustered {
						so.Logger = log.With("node", name)
					}
					nodes = append(nodes, newBenchPBX(sim.New(so)))
				}
			}
			if len(nodes) != len(names) {
				return nil, fmt.Errorf("bench: %d simulators for %d nodes", len(nodes), len(names))
			}
			if !clustered {
				return nodes[0], nil
			}
			members := make([]cluster.Node, len(names))
			for k, name := range names {
				members[k] = cluster.Node{Name: name, PBX: nodes[k]}
			}
			var err error
			cl, err = cluster.New(cluster.Options{Nodes: members, Server: "simulator", Logger: log})
			return cl, err
		}})
	if err != nil {
		return nil, err
	}
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	e := &env{app: app, pbx: nodes[0], nodes: nodes, cluster: cl, cfgPath: path,
		base: "http://" + app.SharedAddr(), admin: "http://" + app.AdminAddr()}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for !app.Ready() {
		select {
		case <-tick.C:
		case <-deadline.C:
			e.stop()
			return nil, errors.New("the bridge did not become ready within 10s")
		case <-ctx.Done():
			e.stop()
			return nil, ctx.Err()
		}
	}
	e.StartUp = time.Since(t0)
	return e, nil
}

func (e *env) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return e.app.Stop(ctx)
}

// benchPBX is the simulator plus a side door: the actions benchmark plays
// PBX events straight into the core's event channel, next to the events of
// the simulator's own calls, the way an adapter delivers them.
type benchPBX struct {
	*sim.PBX
	mu      sync.Mutex
	events  chan<- pbx.Event
	running chan struct{} // closed once Run has the channel
}

func newBenchPBX(s *sim.PBX) *benchPBX { return &benchPBX{PBX: s, running: make(chan struct{})} }

func (b *benchPBX) Run(ctx context.Context, events chan<- pbx.Event) error {
	b.mu.Lock()
	b.events = events
	select {
	case <-b.running:
	default:
		close(b.running)
	}
	b.mu.Unlock()
	return b.PBX.Run(ctx, events)
}

// inject delivers ev to the core, blocking like an adapter does when the
// core is busy.
func (b *benchPBX) inject(ctx context.Context, ev pbx.Event) error {
	select {
	case <-b.running:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	ch := b.events
	b.mu.Unlock()
	select {
	case ch <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// adminGet fetches a path of the admin listener.
func (e *env) adminGet(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.admin+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return string(b), nil
}

// metric sums every sample of a Prometheus metric whose labels contain all
// of match (e.g. `reason="queue-full"`).
func metric(text, name string, match ...string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // a longer metric name with this prefix
		}
		ok := true
		for _, m := range match {
			if !strings.Contains(rest, m) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// queued reads the action URL queue length from its gauge. (The status
// page shows it too, but walks every phone on the switchboard goroutine:
// sampling it would slow the very /csta requests a phase measures.)
func (e *env) queued(ctx context.Context) (int, error) {
	text, err := e.adminGet(ctx, "/metrics?name[]=csta_bridge_action_url_queue_length")
	if err != nil {
		return 0, err
	}
	if !strings.Contains(text, "csta_bridge_action_url_queue_length ") {
		return 0, errors.New("/metrics: no csta_bridge_action_url_queue_length")
	}
	return int(metric(text, "csta_bridge_action_url_queue_length")), nil
}

// pending reads the action URL queue length from the status API's header
// (the gauge's source). Unlike /metrics, which gathers several series per
// extension (hundreds of milliseconds of CPU at 100,000 extensions), it
// costs the same at any size: one page of one phone.
func (e *env) pending(ctx context.Context) (int, error) {
	body, err := e.adminGet(ctx, "/api/phones?n=1")
	if err != nil {
		return 0, err
	}
	var v struct {
		Queued *int `json:"action_urls_queued"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return 0, fmt.Errorf("/api/phones: %w", err)
	}
	if v.Queued == nil {
		return 0, errors.New("/api/phones: no action_urls_queued")
	}
	return *v.Queued, nil
}

// waitQueueEmpty polls until no action URL is queued.
func (e *env) waitQueueEmpty(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := e.pending(ctx)
		if err == nil && n == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("action URL queue not empty after %s (last: %d, %v)", limit, n, err)
		}
	}
}

func extNames(prefix, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(prefix + i)
	}
	return out
}
