package pbxtest

import (
	"context"
	"fmt"
	"time"
)

// PBXLister is a rig that can list what the PBX keeps of its extensions'
// calls (on Asterisk: channels and bridges). Rows that need NeedSweep
// check the PBX with it; a rig without it cannot play them.
type PBXLister interface {
	// PBXLeftovers describes what the PBX has of the extensions' calls;
	// "" when nothing.
	PBXLeftovers(ctx context.Context) (string, error)
}

// lacks is why rig cannot play rows that need n ("" when it can).
func lacks(rig Rig, n Need) string {
	if why := rig.Lacks(n); why != "" {
		return why
	}
	if _, ok := rig.(PBXLister); n == NeedSweep && !ok {
		return "the rig cannot list what the PBX keeps of the calls"
	}
	return ""
}

type pbxBeforeStep struct{}

// PBXBeforeStart logs what the PBX keeps while the bridge is stopped: the
// leftovers the returning bridge (or the PBX itself) has to remove.
func PBXBeforeStart() Step { return pbxBeforeStep{} }

func (pbxBeforeStep) String() string { return "what the PBX keeps before the start" }

func (s pbxBeforeStep) do(p *play) {
	p.t.Helper()
	left, err := p.rig.(PBXLister).PBXLeftovers(p.ctx)
	if err != nil {
		p.fatalf("%s: %v", s, err)
	}
	if left == "" {
		left = "nothing"
	}
	p.t.Logf("step %d: before the start the PBX has %s", p.step, left)
}

type nothingLeftStep time.Duration

// NothingLeftWithin: within d the PBX has nothing of the extensions'
// calls left (no channel, no bridge).
func NothingLeftWithin(d time.Duration) Step { return nothingLeftStep(d) }

func (s nothingLeftStep) String() string {
	return fmt.Sprintf("nothing left on the PBX within %s", time.Duration(s))
}

func (s nothingLeftStep) do(p *play) {
	p.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(p.ctx, time.Duration(s))
	defer cancel()
	// The PBX has no "nothing left" notification: this looks again and
	// again, as the rigs' Settle does.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lister := p.rig.(PBXLister)
	for {
		left, err := lister.PBXLeftovers(ctx)
		if left == "" && err == nil {
			p.t.Logf("step %d: nothing left on the PBX %s after the start", p.step, time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			p.fatalf("%s: still %s (%v)", s, left, err)
		}
	}
}

// Metric sums the samples of a metric on the bridge's /metrics; a name
// with labels (`x_total{what="channel"}`) picks that sample.
func (c *BridgeClient) Metric(name string) float64 {
	c.t.Helper()
	return c.metric(name)
}
