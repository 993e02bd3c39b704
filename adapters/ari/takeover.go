package ari

import (
	"context"
	"fmt"
	"strings"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A bridge that starts while Asterisk has routed calls of an earlier
// bridge process finds them in its application (issue 19). Their channels
// carry the ids (CSTA_CALL, CSTA_LEG, CSTA_ID); where each call stands is
// read from its mixing bridge: a party outside it is being dialled, or was
// answered while nobody bridged it, or is held by the bridge.

// bridgePrefix starts the id of every bridge the adapter creates (newID).
const bridgePrefix = "csta-"

// listBridges gives the members of each bridge the adapter created.
func (a *Adapter) listBridges(ctx context.Context) (map[string][]string, error) {
	var keys []*ari.Key
	if err := a.rest(ctx, func(c ari.Client) (err error) { keys, err = c.Bridge().List(nil); return }); err != nil {
		return nil, fmt.Errorf("list bridges: %w", err)
	}
	out := map[string][]string{}
	for _, k := range keys {
		if !strings.HasPrefix(k.ID, bridgePrefix) {
			continue
		}
		var d *ari.BridgeData
		err := a.rest(ctx, func(c ari.Client) (err error) { d, err = c.Bridge().Data(k); return })
		if err != nil {
			if httpStatus(err) == 404 {
				continue // destroyed between list and get
			}
			return nil, fmt.Errorf("bridge %s: %w", k.ID, err)
		}
		out[k.ID] = append([]string(nil), d.ChannelIDs...)
	}
	return out, nil
}

// restoreCall works out what the adapter knew of an owned call it found
// at a resync without having seen it (a restarted bridge): its bridge,
// the party being dialled, whether it was answered, a hold the bridge did.
// Called with a.mu held, after the legs are rebuilt.
func (a *Adapter) restoreCall(c *call) {
	var in, out []*channel
	for m := range c.members {
		ch := a.chans[m]
		if ch == nil {
			continue
		}
		if ch.bridge != "" {
			c.bridge = ch.bridge
			in = append(in, ch)
		} else {
			out = append(out, ch)
		}
	}
	c.answered = len(out) == 0 && len(in) > 1
	if len(out) != 1 {
		return
	}
	o := out[0]
	switch {
	case o.heldFar && o.state == "Up":
		// The bridge took this party out for a hold (music on hold).
		c.answered = true
		for _, ch := range in {
			if l := ch.leg; l != nil && l.ch == ch && a.live(l) {
				l.state, l.heldBy = pbx.StateHeld, true
			}
		}
	default:
		// Still ringing, or answered while nobody could bridge it: the
		// call is being dialled; maybeConnect bridges it once it is up.
		c.dialing = o.id
		c.pending = 1
		if l := o.leg; l != nil && l.ch == o && a.live(l) && l.dir == pbx.Incoming && o.state == "Up" {
			l.state = pbx.StateAlerting
		}
	}
}

// markHeld notes on the far party whether the bridge holds it, so that a
// restarted bridge tells a held call (the party out of the bridge, on
// music on hold) from one whose far end is still being connected. Only a
// restart reads it, so a failure is logged and the command goes on.
func (a *Adapter) markHeld(ctx context.Context, far string, held bool) {
	v := ""
	if held {
		v = "1"
	}
	if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().SetVariable(chanKey(far), varHeld, v) }); err != nil && httpStatus(err) != 404 {
		a.log.Debug("cannot note the hold on the far party", "channel", far, "held", held, "err", err)
	}
}
