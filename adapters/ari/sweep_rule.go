package ari

import (
	"context"

	"github.com/CyCoreSystems/ari/v5"
)

// The rule of a connected two-party call (when one side hangs up, the
// other is hung up) is kept by the adapter while it runs. For the time it
// does not, the adapter hands the rule to Asterisk as well: each of the
// call's two channels gets the other's name (varPeer) and the dialplan's
// hangup handler (configs/asterisk/extensions_csta-bridge.conf,
// [csta-bridge-hangup]), which hangs up that partner when the channel ends
// if the partner's own last bridge partner (Asterisk's BRIDGEPEER) is
// still this channel. A partner that has moved on — into a transfer's new
// bridge, a conference, a phone's own transfer, or out of the bridge by a
// transfer's continue — keeps its BRIDGEPEER pointing elsewhere (or
// cleared), so the handler leaves it alone; while the bridge runs, the
// handler and the adapter hang up the same partner, and the second one
// finds it gone. What the handler cannot cover (a far party the bridge
// holds outside the bridge when the extension hangs up, the empty mixing
// bridges, a dialplan without the context) is left to the sweep.

// varPeer names the channel a call's channel was connected to.
const varPeer = "CSTA_PEER"

// keepRule gives Asterisk the rule of call c once its two sides are
// bridged. A failure only means the sweep has more to do after a restart,
// so it is logged at Debug.
func (a *Adapter) keepRule(ctx context.Context, c *call) {
	if a.opts.HangupHandler == "-" {
		return
	}
	type job struct {
		id, peer string
		push     bool
	}
	a.mu.Lock()
	var chs []*channel
	for m := range c.members {
		if ch := a.chans[m]; ch != nil && !ch.released && ch.name != "" {
			chs = append(chs, ch)
		}
	}
	if len(chs) != 2 || c.conf != nil {
		a.mu.Unlock()
		return
	}
	var jobs []job
	for i, ch := range chs {
		jobs = append(jobs, job{id: ch.id, peer: chs[1-i].name, push: !ch.ruled})
		ch.ruled = true
	}
	a.mu.Unlock()
	for _, j := range jobs {
		if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().SetVariable(chanKey(j.id), varPeer, j.peer) }); err != nil {
			a.log.Debug("cannot name the partner for the hangup handler", "channel", j.id, "err", err)
			continue
		}
		if !j.push {
			continue
		}
		err := a.rest(ctx, func(x ari.Client) error {
			return x.Channel().SetVariable(chanKey(j.id), "CHANNEL(hangup_handler_push)", a.opts.HangupHandler+",s,1")
		})
		if err != nil {
			a.log.Debug("cannot push the hangup handler", "channel", j.id, "err", err)
		}
	}
}

// keepTransferred makes the two far parties a transfer joined one call in
// Asterisk's eyes too (varCall, read by a restarted bridge's resync) and
// gives them the rule, so that the call no longer depends on the bridge.
func (a *Adapter) keepTransferred(ctx context.Context, nc *call) {
	a.mu.Lock()
	ids := nc.others("")
	a.mu.Unlock()
	for _, id := range ids {
		if err := a.rest(ctx, func(x ari.Client) error { return x.Channel().SetVariable(chanKey(id), varCall, nc.id) }); err != nil {
			a.log.Debug("cannot store the transferred call on its channel", "channel", id, "err", err)
		}
	}
	a.keepRule(ctx, nc)
}
