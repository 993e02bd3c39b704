package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// ownerOf is the node a connection belongs to.
func (c *Cluster) ownerOf(ref pbx.CallRef) (*node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.owner[ref]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("cluster: %s: no node has this call: %w", ref, pbx.ErrNoSuchCall)
}

// sameNode is the node two connections share; Transfer and Conference
// join the far parties of two calls, which one FreeSWITCH cannot do with
// a channel of another.
func (c *Cluster) sameNode(what string, a, b pbx.CallRef) (*node, error) {
	na, err := c.ownerOf(a)
	if err != nil {
		return nil, err
	}
	nb, err := c.ownerOf(b)
	if err != nil {
		return nil, err
	}
	if na != nb {
		return nil, fmt.Errorf("cluster: %s %s and %s: the calls are on two %s nodes (%s and %s): %w",
			what, a, b, c.server, na.name, nb.name, pbx.ErrNotSupported)
	}
	return na, nil
}

// done applies a successful command's outcome to what the cluster knows,
// as the core applies it, so a merged sync agrees with the core.
func (c *Cluster) done(n *node, ref pbx.CallRef, st pbx.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st == pbx.StateNull {
		delete(n.calls, ref)
		if c.owner[ref] == n {
			delete(c.owner, ref)
		}
		return
	}
	if ci, ok := n.calls[ref]; ok {
		ci.State = st
		n.calls[ref] = ci
	}
}

// on runs a command on the node that owns ref and, when it succeeds,
// records the state it leads to.
func (c *Cluster) on(ref pbx.CallRef, after pbx.State, cmd func(pbx.PBX) error) error {
	n, err := c.ownerOf(ref)
	if err != nil {
		return err
	}
	if err := cmd(n.pbx); err != nil {
		return err
	}
	c.done(n, ref, after)
	return nil
}

func (c *Cluster) Answer(ctx context.Context, ref pbx.CallRef) error {
	return c.on(ref, pbx.StateConnected, func(p pbx.PBX) error { return p.Answer(ctx, ref) })
}

func (c *Cluster) Hold(ctx context.Context, ref pbx.CallRef) error {
	return c.on(ref, pbx.StateHeld, func(p pbx.PBX) error { return p.Hold(ctx, ref) })
}

func (c *Cluster) Retrieve(ctx context.Context, ref pbx.CallRef) error {
	return c.on(ref, pbx.StateConnected, func(p pbx.PBX) error { return p.Retrieve(ctx, ref) })
}

func (c *Cluster) ClearConnection(ctx context.Context, ref pbx.CallRef) error {
	return c.on(ref, pbx.StateNull, func(p pbx.PBX) error { return p.ClearConnection(ctx, ref) })
}

func (c *Cluster) ClearCall(ctx context.Context, ref pbx.CallRef) error {
	return c.on(ref, pbx.StateNull, func(p pbx.PBX) error { return p.ClearCall(ctx, ref) })
}

func (c *Cluster) SingleStepTransfer(ctx context.Context, ref pbx.CallRef, destination string) error {
	return c.on(ref, pbx.StateNull, func(p pbx.PBX) error { return p.SingleStepTransfer(ctx, ref, destination) })
}

func (c *Cluster) Transfer(ctx context.Context, held, active pbx.CallRef) error {
	n, err := c.sameNode("transfer", held, active)
	if err != nil {
		return err
	}
	if err := n.pbx.Transfer(ctx, held, active); err != nil {
		return err
	}
	c.done(n, held, pbx.StateNull)
	c.done(n, active, pbx.StateNull)
	return nil
}

func (c *Cluster) Conference(ctx context.Context, held, active pbx.CallRef) error {
	n, err := c.sameNode("conference", held, active)
	if err != nil {
		return err
	}
	conf, ok := n.pbx.(pbx.Conferencer)
	if !ok {
		return fmt.Errorf("cluster: conference on node %s: %w", n.name, pbx.ErrNotSupported)
	}
	if err := conf.Conference(ctx, held, active); err != nil {
		return err
	}
	c.done(n, held, pbx.StateConnected)
	c.done(n, active, pbx.StateConnected)
	return nil
}

func (c *Cluster) Deflect(ctx context.Context, ref pbx.CallRef, destination string) error {
	return c.on(ref, pbx.StateNull, func(p pbx.PBX) error {
		d, ok := p.(pbx.Deflector)
		if !ok {
			return fmt.Errorf("cluster: deflect %s: %w", ref, pbx.ErrNotSupported)
		}
		return d.Deflect(ctx, ref, destination)
	})
}

func (c *Cluster) SendDTMF(ctx context.Context, ref pbx.CallRef, digits string) error {
	n, err := c.ownerOf(ref)
	if err != nil {
		return err
	}
	d, ok := n.pbx.(pbx.DTMFSender)
	if !ok {
		return fmt.Errorf("cluster: dtmf %s: %w", ref, pbx.ErrNotSupported)
	}
	return d.SendDTMF(ctx, ref, digits)
}

func (c *Cluster) TagCall(ctx context.Context, ref pbx.CallRef, cstaID int) error {
	n, err := c.ownerOf(ref)
	if err != nil {
		return err
	}
	t, ok := n.pbx.(pbx.Tagger)
	if !ok {
		return fmt.Errorf("cluster: tag %s: %w", ref, pbx.ErrNotSupported)
	}
	if err := t.TagCall(ctx, ref, cstaID); err != nil {
		return err
	}
	c.mu.Lock()
	if ci, ok := n.calls[ref]; ok {
		ci.CSTAID = cstaID
		n.calls[ref] = ci
	}
	c.mu.Unlock()
	return nil
}

// MakeCall calls the device from the extension's node. While an unpinned
// extension's node is unknown (no registration seen yet), the nodes are
// tried in turn, moving on only when a node does not have the device
// registered: a device that was reached is never called twice.
func (c *Cluster) MakeCall(ctx context.Context, req pbx.MakeCallRequest) error {
	c.mu.Lock()
	nodes, next := c.makeCallNodes(req.Call.Ext)
	x := c.exts[req.Call.Ext]
	awaited := c.pinAwaited(x)
	c.mu.Unlock()
	if awaited {
		return fmt.Errorf("cluster: make call %s: its %s node %s has not been seen yet: %w", req.Call, c.server, x.Node,
			pbx.ErrDeviceUnreachable)
	}
	if len(nodes) == 0 {
		return fmt.Errorf("cluster: make call %s: extension not mapped: %w", req.Call, pbx.ErrDeviceUnreachable)
	}
	var err error
	for i, n := range nodes {
		if i > 0 && !n.isUp(c) {
			break // the connected nodes come first; the rest cannot call anything now
		}
		c.mu.Lock()
		if o := c.owner[req.Call]; o != nil {
			c.mu.Unlock()
			return fmt.Errorf("cluster: make call %s: connection id in use: %w", req.Call, pbx.ErrInvalidState)
		}
		// Its events may come before MakeCall returns.
		c.owner[req.Call] = n
		c.mu.Unlock()
		err = n.pbx.MakeCall(ctx, req)
		c.mu.Lock()
		if err == nil {
			if _, ok := n.calls[req.Call]; !ok && c.owner[req.Call] == n {
				n.calls[req.Call] = pbx.CallInfo{Call: req.Call, State: pbx.StateInitiated, Direction: pbx.Outgoing,
					Remote: pbx.Party{Number: req.Destination}, CSTAID: req.CSTAID}
			}
			c.mu.Unlock()
			return nil
		}
		delete(n.calls, req.Call)
		if c.owner[req.Call] == n {
			delete(c.owner, req.Call)
		}
		c.mu.Unlock()
		if !next || !notRegistered(err) {
			return err
		}
		c.log.Debug("device not registered on this node; trying the next", "ext", req.Call.Ext, "node", n.name)
	}
	return err
}

func (n *node) isUp(c *Cluster) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return n.up
}

// notRegistered says the node does not have the device registered (so it
// was not called there): FreeSWITCH's USER_NOT_REGISTERED or
// SUBSCRIBER_ABSENT for user/ endpoints, the ari adapter's "is not
// registered" for an endpoint it knows offline.
func notRegistered(err error) bool {
	if !errors.Is(err, pbx.ErrDeviceUnreachable) {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "USER_NOT_REGISTERED") || strings.Contains(s, "SUBSCRIBER_ABSENT") ||
		strings.Contains(s, "is not registered")
}
