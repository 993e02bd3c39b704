package cluster

import (
	"cmp"
	"slices"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// pinnedNode is the node x is pinned to, nil when it is not (or to a node
// the cluster does not have).
func (c *Cluster) pinnedNode(x pbx.Extension) *node {
	if x.Node == "" {
		return nil
	}
	return c.byName[x.Node]
}

// pinAwaited says x is pinned to a node a discovered cluster has not
// found yet: no node serves it meanwhile.
func (c *Cluster) pinAwaited(x pbx.Extension) bool {
	return c.discovered && x.Node != "" && c.byName[x.Node] == nil
}

// serves says whether a new call leg of ext on n is the extension's call:
// n is its pinned node, or its device is registered on n, or nothing is
// known of where it is registered.
func (c *Cluster) serves(n *node, ext string) bool {
	x, ok := c.exts[ext]
	if !ok {
		return true // a reload removed it: the core drops the event
	}
	if p := c.pinnedNode(x); p != nil {
		return p == n
	}
	if c.pinAwaited(x) {
		return false
	}
	regs := c.regs[ext]
	if len(regs) == 0 {
		return true
	}
	_, ok = regs[n]
	return ok
}

// device records a node's registration report and returns the core's
// EventDevice when the extension as a whole changed: registered on a
// first node, or on none any more. A phone moving from one node to
// another is not logged off and on.
func (c *Cluster) device(n *node, ev pbx.Event) []pbx.Event {
	ext := ev.Call.Ext
	x, ok := c.exts[ext]
	if !ok {
		return nil
	}
	if c.pinnedNode(x) != nil {
		return []pbx.Event{ev} // only its own node maps it
	}
	if c.pinAwaited(x) {
		return nil
	}
	regs := c.regs[ext]
	before := len(regs)
	if ev.Registered {
		if regs == nil {
			regs = make(map[*node]uint64)
			c.regs[ext] = regs
		}
		if _, was := regs[n]; !was {
			n.regCount++
		}
		c.regSeq++
		regs[n] = c.regSeq
		c.log.Debug("extension registered on a node", "ext", ext, "node", n.name)
	} else if _, was := regs[n]; was {
		delete(regs, n)
		n.regCount--
		if len(regs) == 0 {
			delete(c.regs, ext)
		}
	}
	switch after := len(c.regs[ext]); {
	case before == 0 && after > 0, before > 0 && after == 0:
		return []pbx.Event{ev}
	}
	return nil
}

// makeCallNodes lists the nodes to try a MakeCall of ext on, in order, and
// whether the next may be tried when a node does not know the device: the
// pinned node alone; else the nodes the device is registered on, newest
// first and connected ones first; else every node, connected ones first.
func (c *Cluster) makeCallNodes(ext string) ([]*node, bool) {
	x, ok := c.exts[ext]
	if !ok {
		return nil, false
	}
	if p := c.pinnedNode(x); p != nil {
		return []*node{p}, false
	}
	if c.pinAwaited(x) {
		return nil, false
	}
	upFirst := func(a, b *node) int {
		if a.up != b.up {
			if a.up {
				return -1
			}
			return 1
		}
		return 0
	}
	if regs := c.regs[ext]; len(regs) > 0 {
		ns := make([]*node, 0, len(regs))
		for n := range regs {
			ns = append(ns, n)
		}
		slices.SortFunc(ns, func(a, b *node) int { return cmp.Or(upFirst(a, b), cmp.Compare(regs[b], regs[a])) })
		return ns, true
	}
	ns := slices.Clone(c.nodes)
	slices.SortStableFunc(ns, upFirst)
	return ns, true
}
