package pbxtest

import (
	"context"
	"fmt"
	"strings"
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

type pbxBeforeStep struct{ gone Role }

// PBXBeforeStart waits until the PBX no longer lists a device channel of
// gone, whose phone hung up, or of another phone that shows no call (an Asterisk under load takes a moment to
// destroy a channel after the phone's BYE was answered: a bridge started
// in that moment would find the dying channel as a call), then logs what
// the PBX keeps while the bridge is stopped: the leftovers the returning
// bridge (or the PBX itself) has to remove. A device channel is matched
// by its name (deviceChannel).
func PBXBeforeStart(gone Role) Step { return pbxBeforeStep{gone} }

func (s pbxBeforeStep) String() string {
	return fmt.Sprintf("what the PBX keeps before the start, once %s's channel is gone", s.gone)
}

func (s pbxBeforeStep) do(p *play) {
	p.t.Helper()
	lister := p.rig.(PBXLister)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		left, err := lister.PBXLeftovers(p.ctx)
		if err != nil {
			p.fatalf("%s: %v", s, err)
		}
		if !p.idleDeviceListed(left, s.gone) {
			if left == "" {
				left = "nothing"
			}
			p.t.Logf("step %d: before the start the PBX has %s", p.step, left)
			return
		}
		select {
		case <-tick.C:
		case <-p.ctx.Done():
			p.fatalf("%s: still %s", s, left)
		}
	}
}

// idleDeviceListed says whether the PBX's list still has a device channel
// of gone, or of another phone that shows no call any more (its partner's
// end may have ended it).
func (p *play) idleDeviceListed(left string, gone Role) bool {
	over, cancel := context.WithCancel(p.ctx)
	cancel() // Wait looks once before it waits
	for _, r := range []Role{A, B, C} {
		if r != gone && p.rig.Phone(r).Wait(over, Idle) != nil {
			continue
		}
		if strings.Contains(left, deviceChannel(p.rig, p.rig.Ext(r))) {
			return true
		}
	}
	return false
}

// deviceChannel is what the name of a device channel of ext contains in
// the PBX's list: "/1001-" for Asterisk's PJSIP/1001-00000012 (a Local
// channel to the extension, Local/1001@ctx-…;1, is no device channel),
// "/1001@" for FreeSWITCH's sofia/internal/1001@host.
func deviceChannel(rig Rig, ext string) string {
	if r, ok := rig.(*SIPRig); ok && strings.HasPrefix(r.B.setup.Exts[ext], "user/") {
		return "/" + ext + "@"
	}
	return "/" + ext + "-"
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
