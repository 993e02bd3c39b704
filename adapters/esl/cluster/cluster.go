package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	Nodes  []Node
	Logger *slog.Logger // nil discards
}

// Cluster is a pbx.PBX made of several.
type Cluster struct {
	log     *slog.Logger
	nodes   []*node
	byName  map[string]*node
	running atomic.Bool

	// mu guards everything below and the nodes' mutable fields. It is
	// held only briefly, never while sending to the core or calling a node.
	mu    sync.Mutex
	exts  map[string]pbx.Extension
	owner map[pbx.CallRef]*node
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
	if len(opts.Nodes) == 0 {
		return nil, errors.New("cluster: no nodes")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{log: opts.Logger, byName: make(map[string]*node), exts: make(map[string]pbx.Extension),
		owner: make(map[pbx.CallRef]*node), regs: make(map[string]map[*node]uint64)}
	for _, n := range opts.Nodes {
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
	}
	return c, nil
}

// SetExtensions gives each node the extensions it may serve: those pinned
// to it and every unpinned one (whose node is learned from registrations).
func (c *Cluster) SetExtensions(exts []pbx.Extension) {
	per := make(map[*node][]pbx.Extension, len(c.nodes))
	c.mu.Lock()
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
		if x, ok := c.exts[ext]; !ok || c.pinnedNode(x) != nil {
			delete(c.regs, ext)
		}
	}
	c.mu.Unlock()
	for _, n := range c.nodes {
		n.pbx.SetExtensions(per[n])
	}
}

// Run runs every node's adapter and merges their events until ctx is done.
func (c *Cluster) Run(ctx context.Context, events chan<- pbx.Event) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("cluster: Run called twice")
	}
	defer c.running.Store(false)
	in := make(chan nodeEvent)
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		ch := make(chan pbx.Event, 64)
		wg.Add(2)
		go func() {
			defer wg.Done()
			err := n.pbx.Run(ctx, ch)
			if err != nil && ctx.Err() == nil {
				// A configuration error of this node: the others go on.
				c.log.Error("FreeSWITCH node stopped", "node", n.name, "err", err)
				select {
				case in <- nodeEvent{n, pbx.Event{Kind: pbx.EventLink, Reason: err.Error()}}:
				case <-ctx.Done():
				}
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-ch:
					select {
					case in <- nodeEvent{n, ev}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ne := <-in:
			for _, ev := range c.handle(ne) {
				select {
				case events <- ev:
				case <-ctx.Done():
					return ctx.Err()
				}
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
