package bridge

// SetDoNotDisturb, GetDoNotDisturb, SetForwarding, GetForwarding: the
// phone's feature settings read and written over /csta (Snom 8.7.4+).

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/csta"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// forwardKinds maps an ECMA-269 forwardingType to Snom's redirect_event
// value and the setting holding its target.
var forwardKinds = map[string][2]string{
	csta.ForwardImmediate: {"all", setRedirectAll},
	csta.ForwardBusy:      {"busy", setRedirectBusy},
	csta.ForwardNoAns:     {"time", setRedirectTime},
}

// thisDevice faults a request whose device is not this phone.
func (s *services) thisDevice(ctx context.Context, ext, dev string, read func(p *phone)) *csta.Error {
	return s.onPhone(ctx, ext, func(p *phone) *csta.Error {
		if strings.TrimSpace(dev) == "" || !p.matchesDevice(dev) {
			return &csta.Error{Code: csta.InvalidDeviceID, Message: "device " + strconv.Quote(dev) + " is not this phone (" + p.cfg.Name + ")"}
		}
		if read != nil {
			read(p)
		}
		return nil
	})
}

func (s *services) setDoNotDisturb(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	if cerr := s.thisDevice(ctx, ext, req.Device, nil); cerr != nil {
		return csta.Result{}, cerr
	}
	v := "off"
	if parseBool(req.DoNotDisturbOn) {
		v = "on"
	}
	return csta.Result{}, s.changeFeatures(ctx, ext, map[string]string{setDND: v})
}

func (s *services) getDoNotDisturb(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	var res csta.Result
	cerr := s.thisDevice(ctx, ext, req.Device, func(p *phone) { res.DoNotDisturbOn = p.features().DND })
	return res, cerr
}

func (s *services) setForwarding(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	kind, ok := forwardKinds[req.ForwardingType]
	if !ok {
		return csta.Result{}, &csta.Error{Code: csta.InvalidForwardingType, Message: "forwardingType " + strconv.Quote(req.ForwardingType) + " is not supported"}
	}
	var cur features
	if cerr := s.thisDevice(ctx, ext, req.Device, func(p *phone) { cur = p.features() }); cerr != nil {
		return csta.Result{}, cerr
	}
	changed := map[string]string{}
	if parseBool(req.ActivateForward) {
		dn := strings.TrimSpace(req.ForwardDN)
		if dn == "" {
			return csta.Result{}, &csta.Error{Code: csta.InvalidForwardingDestination, Message: "forwardDN is empty"}
		}
		if msg := checkTarget(dn); msg != "" {
			return csta.Result{}, &csta.Error{Code: csta.InvalidForwardingDestination, Message: msg}
		}
		if userPart(dn) == ext {
			return csta.Result{}, &csta.Error{Code: csta.InvalidForwardingDestination, Message: "forwardDN is this phone"}
		}
		changed[setRedirect], changed[kind[1]] = kind[0], dn
		if req.RingCount != "" {
			n, _ := strconv.Atoi(req.RingCount) // the decoder checked it
			changed[setRedirectSecs] = strconv.Itoa(n * ringSeconds)
		}
	} else if cur.Event == kind[0] {
		// Snom keeps one forwarding in force: switching off the one in
		// force leaves none; switching off another changes nothing.
		changed[setRedirect] = "none"
	}
	if len(changed) == 0 {
		return csta.Result{}, nil
	}
	return csta.Result{}, s.changeFeatures(ctx, ext, changed)
}

func (s *services) getForwarding(ctx context.Context, ext string, req *csta.Request) (csta.Result, *csta.Error) {
	var res csta.Result
	cerr := s.thisDevice(ctx, ext, req.Device, func(p *phone) {
		f := p.features()
		for _, t := range []string{csta.ForwardImmediate, csta.ForwardBusy, csta.ForwardNoAns} {
			ev := forwardKinds[t][0]
			it := csta.ForwardItem{Type: t, On: f.Event == ev && f.target(ev) != "", DN: f.target(ev)}
			if t == csta.ForwardNoAns {
				it.RingCount = int((f.Time.Seconds() + ringSeconds - 1) / ringSeconds)
			}
			res.Forwarding = append(res.Forwarding, it)
		}
	})
	return res, cerr
}

// changeFeatures changes feature settings of ext the way a user at the
// phone does: at once, and persisted when the bridge has a state file.
func (s *services) changeFeatures(ctx context.Context, ext string, changed map[string]string) *csta.Error {
	var err error
	if s.store != nil {
		err = s.store(ext, changed)
	} else {
		err = s.sb.do(ctx, func() { s.sb.setSettings(ext, changed) })
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return timeoutFault(err)
		}
		return &csta.Error{Code: csta.Generic, Message: "storing the setting failed: " + err.Error()}
	}
	return nil
}

// setSettings changes run-time settings of a phone and fires what the
// feature changes among them fire. Runs on the switchboard goroutine.
func (s *switchboard) setSettings(ext string, changed map[string]string) {
	p := s.phones[ext]
	if p == nil {
		return
	}
	before := p.features()
	if p.runtime == nil {
		p.runtime = map[string]string{}
	}
	maps.Copy(p.runtime, changed)
	s.featuresChanged(p, before, p.features())
}

// replaceSettings installs a phone's whole run-time settings (the admin
// dropped the stored ones). Runs on the switchboard goroutine.
func (s *switchboard) replaceSettings(ext string, runtime map[string]string) {
	p := s.phones[ext]
	if p == nil {
		return
	}
	before := p.features()
	p.runtime = runtime
	s.featuresChanged(p, before, p.features())
}

func parseBool(v string) bool { return v == "true" || v == "1" }

// divert carries out the phone's features on the current adapter: a
// ringing connection refused (cleared: the adapters reject it busy) or
// deflected to target (cleaned by the switchboard).
func (s *services) divert(ctx context.Context, c pbx.CallRef, target string) error {
	p := s.pbx()
	if target == "" {
		return p.ClearConnection(ctx, c)
	}
	d, ok := p.(pbx.Deflector)
	if !ok {
		return errors.New("this PBX adapter cannot deflect calls")
	}
	return d.Deflect(ctx, c, target)
}
