package cluster

import (
	"cmp"
	"slices"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// nodeEvent is an event of one node's adapter.
type nodeEvent struct {
	n  *node
	ev pbx.Event
}

// handle applies a node's event to what the cluster knows and returns what
// the core gets for it (nothing, the event, or a merged sync). It runs on
// Run's goroutine only, so events and syncs reach the core in the order
// the cluster's view changed.
func (c *Cluster) handle(ne nodeEvent) []pbx.Event {
	n, ev := ne.n, ne.ev
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.Kind {
	case pbx.EventLink:
		if n.up != ev.Up || (!ev.Up && n.detail != ev.Reason) {
			if ev.Up {
				c.log.Info(c.server+" node connected", "node", n.name)
			} else {
				c.log.Warn(c.server+" node not connected; its calls are kept until it is back", "node", n.name,
					"reason", ev.Reason, "calls", len(n.calls))
			}
		}
		n.up = ev.Up
		n.linking = false
		n.detail = ""
		if !ev.Up {
			n.downSeen = true
			n.detail = ev.Reason
			if n.detail == "" {
				n.detail = "disconnected"
			}
		}
		return append(c.firstSync(), c.linkEvent()...)
	case pbx.EventSync:
		// A node that reported its link before its sync takes commands.
		n.synced, n.linking = true, !n.up
		merged := c.sync(n, ev.Calls)
		c.log.Debug("node sync", "node", n.name, "calls", len(ev.Calls), "merged", len(merged.Calls), "started", c.started)
		if c.started {
			return []pbx.Event{merged}
		}
		if first := c.firstSync(); first != nil {
			return append(first, c.linkEvent()...)
		}
		return nil
	case pbx.EventDevice:
		return c.device(n, ev)
	}
	ref := ev.Call
	owner := c.owner[ref]
	switch {
	case owner == nil && ev.Kind != pbx.EventOffered && ev.Kind != pbx.EventOriginated:
		// The end or a change of a call the cluster does not know (one it
		// refused as another node's, or one a command already ended):
		// the core knows nothing of it either.
		return nil
	case owner == nil && !c.serves(n, ref.Ext):
		c.log.Debug("call leg of an extension on a node that does not serve it; ignored", "node", n.name,
			"ext", ref.Ext, "call", ref.ID)
		return nil
	case owner == nil:
		c.owner[ref] = n
	case owner != n:
		c.log.Warn("event of a call another node owns; ignored", "node", n.name, "owner", owner.name,
			"call", ref.String(), "event", ev.Kind.String())
		return nil
	}
	track(n, ev)
	if ev.Kind == pbx.EventCleared {
		delete(c.owner, ref)
	}
	return []pbx.Event{ev}
}

// track keeps a node's calls as the core sees them. Holds and retrieves
// the bridge did (ByPhone false) are taken from the command's outcome, as
// the core does (see commands.go), not from their late reports.
func track(n *node, ev pbx.Event) {
	ref := ev.Call
	ci, known := n.calls[ref]
	switch ev.Kind {
	case pbx.EventOffered, pbx.EventOriginated:
		if !known {
			ci = pbx.CallInfo{Call: ref, State: pbx.StateAlerting, Direction: pbx.Incoming}
			if ev.Kind == pbx.EventOriginated {
				ci.State, ci.Direction = pbx.StateInitiated, pbx.Outgoing
			}
			ci.CSTAID = ev.CSTAID
		}
	case pbx.EventConnected:
		if ci.State == pbx.StateAlerting || ci.State == pbx.StateInitiated {
			ci.State = pbx.StateConnected
		}
	case pbx.EventHeld:
		if ev.ByPhone && ci.State != pbx.StateHeld {
			ci.State = pbx.StateHeld
		}
	case pbx.EventRetrieved:
		if ev.ByPhone && ci.State == pbx.StateHeld {
			ci.State = pbx.StateConnected
		}
	case pbx.EventCleared:
		delete(n.calls, ref)
		return
	case pbx.EventPartyChanged, pbx.EventTransferred:
	default:
		return
	}
	if !known && ev.Kind != pbx.EventOffered && ev.Kind != pbx.EventOriginated {
		return
	}
	if ev.Remote.Number != "" || ev.Remote.URI != "" {
		ci.Remote = ev.Remote
	}
	if ev.SIPCallID != "" && ci.SIPCallID == "" {
		ci.SIPCallID = ev.SIPCallID
	}
	n.calls[ref] = ci
}

// firstSync returns the core's first sync once every node has synced or
// been reported down since Run started (and one has synced). A node that
// is down then has its calls missing from it: the core reports the calls a
// previous bridge left there ended; when the node is back, those still
// live come back in its sync and are taken over silently.
func (c *Cluster) firstSync() []pbx.Event {
	if c.started {
		return nil
	}
	any := false
	for _, n := range c.nodes {
		if !n.synced && !n.downSeen {
			return nil
		}
		any = any || n.synced
	}
	if !any {
		return nil
	}
	c.started = true
	var all []pbx.CallInfo
	for _, n := range c.nodes {
		all = append(all, sortedCalls(n)...)
	}
	return []pbx.Event{{Kind: pbx.EventSync, Calls: all}}
}

// sortedCalls lists a node's calls in a stable order.
func sortedCalls(n *node) []pbx.CallInfo {
	out := make([]pbx.CallInfo, 0, len(n.calls))
	for _, ci := range n.calls {
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b pbx.CallInfo) int {
		return cmp.Or(cmp.Compare(a.Call.Ext, b.Call.Ext), cmp.Compare(a.Call.ID, b.Call.ID))
	})
	return out
}

// sync takes a node's list of live calls after its (re)connect and returns
// the core's sync: that list merged with every other node's last known
// calls, so that only this node's ended calls are cleared.
func (c *Cluster) sync(n *node, list []pbx.CallInfo) pbx.Event {
	fresh := make(map[pbx.CallRef]pbx.CallInfo, len(list))
	merged := make([]pbx.CallInfo, 0, len(list))
	for _, ci := range list {
		if o := c.owner[ci.Call]; o != nil && o != n {
			c.log.Warn("call listed by two nodes; kept on the first", "call", ci.Call.String(), "node", n.name, "owner", o.name)
			continue
		}
		if c.owner[ci.Call] == nil && !c.serves(n, ci.Call.Ext) {
			continue
		}
		fresh[ci.Call] = ci
		merged = append(merged, ci)
	}
	for ref, o := range c.owner {
		if _, ok := fresh[ref]; o == n && !ok {
			delete(c.owner, ref)
		}
	}
	for ref := range fresh {
		c.owner[ref] = n
	}
	n.calls = fresh
	for _, o := range c.nodes {
		if o != n {
			merged = append(merged, sortedCalls(o)...)
		}
	}
	return pbx.Event{Kind: pbx.EventSync, Calls: merged}
}
