package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Node is one PBX server of the cluster.
type Node struct {
	Name string  // unique; names the node in pins, logs and health
	PBX  pbx.PBX // its adapter
}

// Options configures a Cluster.
type Options struct {
	Nodes []Node
	// Server names what a node is in logs and faults ("FreeSWITCH",
	// "Asterisk"; default "PBX").
	Server string
	// Discovered says nodes come and go at run time (Add): the cluster may
	// start with none, and reports the link down until one has synced.
	Discovered bool
	Logger     *slog.Logger // nil discards
}

// Cluster is a pbx.PBX made of several.
type Cluster struct {
	log        *slog.Logger
	server     string
	discovered bool
	running    atomic.Bool

	// extMu orders the calls that hand nodes their extensions
	// (SetExtensions, Add), which run outside mu.
	extMu sync.Mutex

	// mu guards everything below and the nodes' mutable fields. It is
	// held only briefly, never while sending to the core or calling a node.
	mu     sync.Mutex
	nodes  []*node
	byName map[string]*node
	run    *runState // set while Run runs, for the nodes Add brings
	exts   map[string]pbx.Extension
	owner  map[pbx.CallRef]*node
	// regs: extension → nodes its device is registered on → when it
	// registered there last (a counter: the newest is preferred).
	regs   map[string]map[*node]uint64
	regSeq uint64
	// linkSent is the aggregate link last sent to the core: 0 none yet,
	// 1 up, 2 down.
	linkSent int
	// started: the first sync went to the core. The core takes the calls a
	// previous bridge left from its first sync and ends those it does not
	// list, so that sync waits until every node has synced or is known
	// down, and the link is not reported up before it.
	started bool

	// handled, when set (tests), is called after each node event was
	// handled and what it led to was sent to the core.
	handled func()
}

type node struct {
	name string
	pbx  pbx.PBX

	up       bool
	synced   bool                         // has sent a sync since Run started
	linking  bool                         // has sent a sync, its link report is still to come
	downSeen bool                         // reported down since Run started
	detail   string                       // why it is down
	calls    map[pbx.CallRef]pbx.CallInfo // its live connections as last known
	pinned   int                          // extensions pinned to it
	regCount int                          // unpinned extensions registered on it
}

var (
	_ pbx.PBX          = (*Cluster)(nil)
	_ pbx.Tagger       = (*Cluster)(nil)
	_ pbx.DTMFSender   = (*Cluster)(nil)
	_ pbx.Deflector    = (*Cluster)(nil)
	_ pbx.Conferencer  = (*Cluster)(nil)
	_ pbx.NodeReporter = (*Cluster)(nil)
)

// New checks the nodes; it does no I/O.
func New(opts Options) (*Cluster, error) {
	if len(opts.Nodes) == 0 && !opts.Discovered {
		return nil, errors.New("cluster: no nodes")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Server == "" {
		opts.Server = "PBX"
	}
	c := &Cluster{log: opts.Logger, server: opts.Server, discovered: opts.Discovered, byName: make(map[string]*node),
		exts: make(map[string]pbx.Extension), owner: make(map[pbx.CallRef]*node),
		regs: make(map[string]map[*node]uint64)}
	for _, n := range opts.Nodes {
		if _, err := c.addNode(n); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// addNode checks n and appends it. Callers hold mu or own c alone.
func (c *Cluster) addNode(n Node) (*node, error) {
	switch {
	case n.Name == "":
		return nil, errors.New("cluster: a node has no name")
	case n.PBX == nil:
		return nil, fmt.Errorf("cluster: node %s has no adapter", n.Name)
	case c.byName[n.Name] != nil:
		return nil, fmt.Errorf("cluster: two nodes are named %s", n.Name)
	}
	nd := &node{name: n.Name, pbx: n.PBX, detail: "connecting", calls: make(map[pbx.CallRef]pbx.CallInfo)}
	c.nodes = append(c.nodes, nd)
	c.byName[n.Name] = nd
	return nd, nil
}

// Add brings a node discovered at run time: it gets the extensions it may
// serve and, if Run runs, starts at once. Its first sync is merged like a
// returning node's; it never ends another node's calls.
func (c *Cluster) Add(n Node) error {
	c.extMu.Lock()
	defer c.extMu.Unlock()
	c.mu.Lock()
	nd, err := c.addNode(n)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	var mine []pbx.Extension
	for _, x := range c.exts {
		if x.Node == "" || x.Node == nd.name || (!c.discovered && c.byName[x.Node] == nil) {
			mine = append(mine, x)
		}
		if x.Node == nd.name {
			nd.pinned++
		}
	}
	rs := c.run
	c.mu.Unlock()
	slices.SortFunc(mine, func(a, b pbx.Extension) int { return strings.Compare(a.Name, b.Name) })
	nd.pbx.SetExtensions(mine)
	c.log.Info(c.server+" node added", "node", nd.name, "extensions", len(mine))
	if rs != nil {
		rs.start(c, nd)
	}
	return nil
}

// SetExtensions gives each node the extensions it may serve: those pinned
// to it and every unpinned one (whose node is learned from registrations).
func (c *Cluster) SetExtensions(exts []pbx.Extension) {
	c.extMu.Lock()
	defer c.extMu.Unlock()
	c.mu.Lock()
	per := make(map[*node][]pbx.Extension, len(c.nodes))
	c.exts = make(map[string]pbx.Extension, len(exts))
	for _, n := range c.nodes {
		n.pinned, n.regCount = 0, 0
	}
	for _, x := range exts {
		c.exts[x.Name] = x
		if x.Node != "" {
			if n := c.byName[x.Node]; n != nil {
				per[n] = append(per[n], x)
				n.pinned++
				continue
			}
			if c.discovered {
				// Its node has not announced itself yet: it serves the
				// extension once it does, and no other node meanwhile.
				c.log.Info("extension pinned to a node not known yet", "ext", x.Name, "node", x.Node)
				continue
			}
			c.log.Error("extension pinned to a node the cluster does not have; every node may serve it",
				"ext", x.Name, "node", x.Node)
		}
		for _, n := range c.nodes {
			per[n] = append(per[n], x)
		}
		for n := range c.regs[x.Name] {
			n.regCount++
		}
	}
	for ext := range c.regs {
		if x, ok := c.exts[ext]; !ok || c.pinnedNode(x) != nil || c.pinAwaited(x) {
			delete(c.regs, ext)
		}
	}
	nodes := slices.Clone(c.nodes)
	c.mu.Unlock()
	for _, n := range nodes {
		n.pbx.SetExtensions(per[n])
	}
}

// runState is what a running Run gives the nodes it starts.
type runState struct {
	ctx context.Context
	in  chan nodeEvent
	wg  *sync.WaitGroup
}

// start runs n's adapter and forwards its events to Run's loop.
func (rs *runState) start(c *Cluster, n *node) {
	ch := make(chan pbx.Event, 64)
	ctx := rs.ctx
	rs.wg.Add(2)
	go func() {
		defer rs.wg.Done()
		err := n.pbx.Run(ctx, ch)
		if err != nil && ctx.Err() == nil {
			// A configuration error of this node: the others go on.
			c.log.Error(c.server+" node stopped", "node", n.name, "err", err)
			select {
			case rs.in <- nodeEvent{n, pbx.Event{Kind: pbx.EventLink, Reason: err.Error()}}:
			case <-ctx.Done():
			}
		}
	}()
	go func() {
		defer rs.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-ch:
				select {
				case rs.in <- nodeEvent{n, ev}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
}

// Run runs every node's adapter and merges their events until ctx is done.
func (c *Cluster) Run(ctx context.Context, events chan<- pbx.Event) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("cluster: Run called twice")
	}
	defer c.running.Store(false)
	var wg sync.WaitGroup
	rs := &runState{ctx: ctx, in: make(chan nodeEvent), wg: &wg}
	c.mu.Lock()
	c.run = rs
	for _, n := range c.nodes {
		rs.start(c, n)
	}
	var first []pbx.Event
	if len(c.nodes) == 0 {
		first = c.linkEvent() // a discovered cluster without a node yet: not ready, and why
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.run = nil
		c.mu.Unlock()
		wg.Wait()
	}()
	send := func(evs []pbx.Event) error {
		for _, ev := range evs {
			select {
			case events <- ev:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	if err := send(first); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ne := <-rs.in:
			if err := send(c.handle(ne)); err != nil {
				return err
			}
			if c.handled != nil {
				c.handled()
			}
		}
	}
}

// Nodes reports each node's health in configuration order.
func (c *Cluster) Nodes() []pbx.NodeStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]pbx.NodeStatus, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = pbx.NodeStatus{Name: n.name, Up: n.up, Detail: n.detail, Extensions: n.pinned + n.regCount,
			Calls: len(n.calls)}
	}
	return out
}

// linkEvent returns the aggregate link event to send when it changed:
// up while any node is up.
func (c *Cluster) linkEvent() []pbx.Event {
	var down []string
	up := false
	for _, n := range c.nodes {
		if n.up {
			up = true
		} else {
			down = append(down, n.name+": "+n.detail)
		}
	}
	want := 2
	if up {
		want = 1
	}
	if up && !c.started {
		return nil // ready only with the calls: the first sync comes first
	}
	if len(c.nodes) == 0 {
		down = []string{"no " + c.server + " node known yet"}
	}
	for _, n := range c.nodes {
		if up && n.linking {
			// A node that synced takes commands once it reports its link
			// (the esl adapter syncs first): the core, ready on this
			// link, may send them at once on the calls of that sync.
			return nil
		}
	}
	if want == c.linkSent {
		return nil
	}
	c.linkSent = want
	if up {
		return []pbx.Event{{Kind: pbx.EventLink, Up: true}}
	}
	return []pbx.Event{{Kind: pbx.EventLink, Up: false, Reason: strings.Join(down, "; ")}}
}
