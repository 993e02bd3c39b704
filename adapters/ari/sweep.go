package ari

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// While the bridge is away (stopped, restarting, cut off) nobody applies
// the rule of its two-party calls in Asterisk unless the dialplan's hangup
// handler does (sweep_rule.go): a side that hangs up leaves the other up,
// connected to nobody, and the mixing bridges stay. At every connect,
// after the resync, the adapter sweeps its own application: a channel in
// it whose call has no other side left is hung up with normal clearing
// (what the rule would have done), and a bridge it created whose call has
// ended is destroyed. Live calls are taken over by the resync as before.

// sweepCounts are the sweep's totals since New (for /metrics).
type sweepCounts struct {
	channels, bridges atomic.Uint64
}

// Swept is how many leftovers of calls that ended while no bridge watched
// the adapter has removed since it started: channels hung up and Asterisk
// bridges destroyed.
func (a *Adapter) Swept() (channels, bridges uint64) {
	return a.swept.channels.Load(), a.swept.bridges.Load()
}

// bridgeName is the name of a mixing bridge the adapter creates: the
// application says whose it is, so that the sweep of one bridge never
// touches another's on a shared Asterisk.
func (a *Adapter) bridgeName(id string) string { return a.opts.Application + "/" + id }

// rawChannel and rawBridge are what the sweep reads of GET /channels and
// GET /bridges; the ari library's channel data has no dialplan application.
type rawChannel struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	State    string `json:"state"`
	Dialplan struct {
		AppName string `json:"app_name"`
		AppData string `json:"app_data"`
	} `json:"dialplan"`
}

type rawBridge struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Channels []string `json:"channels"`
}

// stasisArgs gives the application arguments of a channel in this
// adapter's application (ok false for any other channel).
func (a *Adapter) stasisArgs(c rawChannel) ([]string, bool) {
	if !strings.EqualFold(c.Dialplan.AppName, "Stasis") {
		return nil, false
	}
	parts := strings.Split(c.Dialplan.AppData, ",")
	if parts[0] != a.opts.Application {
		return nil, false
	}
	return parts[1:], true
}

// otherAppChannels names the channels in another application's Stasis:
// on an Asterisk that several bridges share (one application each), their
// calls carry the same variables, and a resync that took them for its own
// would restore, connect and sweep another bridge's calls. When Asterisk
// cannot list them, none is excluded (one bridge per Asterisk).
func (a *Adapter) otherAppChannels(ctx context.Context) map[string]bool {
	chans, err := a.tr.channels(ctx)
	if err != nil {
		a.log.Debug("cannot list the channels' applications", "err", err)
		return nil
	}
	out := map[string]bool{}
	for _, c := range chans {
		if _, ours := a.stasisArgs(c); !ours && strings.EqualFold(c.Dialplan.AppName, "Stasis") {
			out[c.ID] = true
		}
	}
	return out
}

// sweepItem is one leftover and why it goes.
type sweepItem struct {
	id, name, why string
	members       int // bridges: channels still in it
}

// sweep removes what calls left in Asterisk while no bridge watched. It
// runs after the resync (a.calls is what Asterisk has now) and before the
// session reads events. A failure is logged: the calls still work, and the
// next connect sweeps again.
func (a *Adapter) sweep(ctx context.Context) {
	chans, err := a.tr.channels(ctx)
	if err != nil {
		a.log.Warn("sweep: cannot list channels; leftovers of calls that ended while the bridge was away stay until the next connect", "err", err)
		return
	}
	bridges, err := a.tr.bridges(ctx)
	if err != nil {
		a.log.Warn("sweep: cannot list bridges; leftovers of calls that ended while the bridge was away stay until the next connect", "err", err)
		return
	}
	hang, drop := a.sweepPlan(chans, bridges)
	for _, it := range hang {
		err := a.rest(ctx, func(x ari.Client) error { return x.Channel().Hangup(chanKey(it.id), "normal") })
		if err != nil && httpStatus(err) != http.StatusNotFound {
			a.log.Warn("sweep: cannot hang up a channel left by an ended call", "channel", it.name, "err", err)
			continue
		}
		a.swept.channels.Add(1)
		a.log.Info("sweep: hung up a channel left by a call that ended while the bridge was away", "channel", it.name, "id", it.id, "why", it.why)
	}
	for _, it := range drop {
		err := a.rest(ctx, func(x ari.Client) error { return x.Bridge().Delete(bridgeKey(it.id)) })
		if err != nil && httpStatus(err) != http.StatusNotFound {
			a.log.Warn("sweep: cannot destroy a bridge left by an ended call", "bridge", it.id, "err", err)
			continue
		}
		a.swept.bridges.Add(1)
		a.log.Info("sweep: destroyed a bridge left by a call that ended while the bridge was away", "bridge", it.id, "channels", it.members, "why", it.why)
	}
}

// sweepPlan decides, from Asterisk's lists and the resynced calls, which
// channels to hang up and which bridges to destroy.
func (a *Adapter) sweepPlan(chans []rawChannel, bridges []rawBridge) (hang, drop []sweepItem) {
	a.mu.Lock()
	defer a.mu.Unlock()
	dead := map[string]bool{}
	for _, ch := range chans {
		args, ours := a.stasisArgs(ch)
		if !ours {
			continue
		}
		c := a.callOf[ch.ID]
		why := "the other side of its call is gone"
		if c == nil {
			// A channel the adapter created (its arguments name the call)
			// that never got the call's variable: the process that made it
			// ended before it could. A channel the dialplan sent into the
			// application has no call yet when its StasisStart is still
			// queued: it is routed once the session reads events.
			if len(args) < 2 || (args[0] != argOutbound && args[0] != argAnswer && args[0] != argMakeCall) {
				continue
			}
			if c = a.calls[args[1]]; c == nil {
				dead[ch.ID] = true
				hang = append(hang, sweepItem{id: ch.ID, name: ch.Name, why: "made by the bridge for a call that has ended"})
				continue
			}
		}
		if a.callLive(c) {
			continue
		}
		dead[ch.ID] = true
		hang = append(hang, sweepItem{id: ch.ID, name: ch.Name, why: why})
		// The rule would have cancelled a phone still ringing for a caller
		// who gave up: its connection ends as a missed call.
		if o := a.chans[ch.ID]; o != nil && o.leg != nil && o.leg.ch == o && o.leg.state == pbx.StateAlerting {
			cc := pbx.CauseCancelled
			o.leg.clearCause = &cc
		}
	}
	// A call being set up while the sweep runs (a caller routed at this
	// connect) may have created its bridge without having noted it yet:
	// the adapter names a call's bridge after the call.
	liveBridge := map[string]bool{}
	for _, c := range a.calls {
		if a.callLive(c) {
			liveBridge[c.id] = true
			if c.bridge != "" {
				liveBridge[c.bridge] = true
			}
		}
	}
	prefix := a.bridgeName("")
	for _, b := range bridges {
		if !strings.HasPrefix(b.Name, prefix) || liveBridge[b.ID] {
			continue
		}
		keep := false
		for _, m := range b.Channels {
			if c := a.callOf[m]; c != nil && !dead[m] && a.callLive(c) {
				keep = true
			}
		}
		if keep {
			continue
		}
		why := "empty: its call has ended"
		if len(b.Channels) > 0 {
			why = "its call has ended; the channels left in it are hung up"
		}
		drop = append(drop, sweepItem{id: b.ID, name: b.Name, why: why, members: len(b.Channels)})
	}
	sort.Slice(hang, func(i, j int) bool { return hang[i].id < hang[j].id })
	sort.Slice(drop, func(i, j int) bool { return drop[i].id < drop[j].id })
	return hang, drop
}

// callLive says whether an owned call still has two sides (or is setting
// its second one up). Called with a.mu held.
func (a *Adapter) callLive(c *call) bool {
	if c.pending > 0 {
		return true
	}
	n := 0
	for m := range c.members {
		if a.chans[m] != nil {
			n++
		}
	}
	return n >= 2
}
