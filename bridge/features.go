package bridge

// The phone's own features: do-not-disturb and call forwarding. A Snom
// keeps them as settings (dnd_mode, redirect_event, redirect_number, …) and
// so does the bridge: CSTA, the DND key, /dummy.htm settings and the YAML
// all change the same settings of the phone, so there is one state, one
// persistence (the state file) and one place where the action URLs fire.

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Snom's setting names for the features.
const (
	setDND          = "dnd_mode"             // on | off
	setRedirect     = "redirect_event"       // none | all | busy | time
	setRedirectAll  = "redirect_number"      // target of forward always
	setRedirectBusy = "redirect_busy_number" // target of forward on busy
	setRedirectTime = "redirect_time_number" // target of forward on no answer
	setRedirectSecs = "redirect_time"        // seconds of ringing before forward on no answer
)

// defaultRedirectTime is used when redirect_time is unset or unusable.
const defaultRedirectTime = 15 * time.Second

// ringSeconds converts CSTA's ringCount to redirect_time: a ring cycle
// (ETSI cadence: 1 s on, 4 s off) lasts 5 s.
const ringSeconds = 5

// maxRedirectTime bounds redirect_time.
const maxRedirectTime = 600

var featureSettingNames = map[string]bool{setDND: true, setRedirect: true, setRedirectAll: true,
	setRedirectBusy: true, setRedirectTime: true, setRedirectSecs: true}

// features is what a phone's feature settings amount to.
type features struct {
	DND                    bool
	Event                  string // none, all, busy, time
	Always, Busy, NoAnswer string // targets
	Time                   time.Duration
}

func (p *phone) features() features {
	get := func(n string) string { v, _ := p.setting(n); return strings.TrimSpace(v) }
	f := features{DND: get(setDND) == "on", Event: get(setRedirect), Always: get(setRedirectAll),
		Busy: get(setRedirectBusy), NoAnswer: get(setRedirectTime), Time: defaultRedirectTime}
	switch f.Event {
	case "all", "busy", "time":
	default:
		f.Event = "none"
	}
	if n, err := strconv.Atoi(get(setRedirectSecs)); err == nil && n > 0 && n <= maxRedirectTime {
		f.Time = time.Duration(n) * time.Second
	}
	return f
}

// target is the destination forwarding of kind ev sends to, "" when none.
func (f features) target(ev string) string {
	switch ev {
	case "all":
		return f.Always
	case "busy":
		return f.Busy
	case "time":
		return f.NoAnswer
	}
	return ""
}

// redirecting: forwarding is switched on with a target.
func (f features) redirecting() bool { return f.target(f.Event) != "" }

// checkFeatureSetting vets a feature setting's value; "" = fine. Targets
// reach the PBX's command line, so they must be one plain token.
func checkFeatureSetting(name, v string) string {
	switch name {
	case setDND:
		if v != "on" && v != "off" {
			return "dnd_mode must be on or off"
		}
	case setRedirect:
		switch v {
		case "none", "all", "busy", "time":
		default:
			return "redirect_event must be none, all, busy or time"
		}
	case setRedirectSecs:
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > maxRedirectTime {
			return "redirect_time must be a number of seconds from 1 to " + strconv.Itoa(maxRedirectTime)
		}
	case setRedirectAll, setRedirectBusy, setRedirectTime:
		return checkTarget(v)
	}
	return ""
}

// checkTarget vets a forwarding destination: a number or a SIP URI, no
// spaces or control characters; empty clears it.
func checkTarget(v string) string {
	if len(v) > 256 {
		return "forwarding destination longer than 256 characters"
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7F || r == '\'' || r == '"' || r == '`' || r == '\\' {
			return "forwarding destination must be a number or SIP URI without spaces, quotes or control characters"
		}
	}
	return ""
}

// featuresChanged fires the action URLs a Snom fires when DND or
// forwarding is switched, whichever way it was, and updates the metrics.
// Runs on the switchboard goroutine.
func (s *switchboard) featuresChanged(p *phone, before, after features) {
	if before.DND != after.DND {
		if after.DND {
			s.actions.fire(p, nil, "action_dnd_on_url", "")
		} else {
			s.actions.fire(p, nil, "action_dnd_off_url", "")
		}
	}
	switch {
	case after.redirecting() && (!before.redirecting() || before.Event != after.Event ||
		before.target(before.Event) != after.target(after.Event)):
		s.actions.fire(p, nil, "action_redirection_on_url", "")
	case before.redirecting() && !after.redirecting():
		s.actions.fire(p, nil, "action_redirection_off_url", "")
	}
	s.metrics.features.set(p.cfg.Name, after)
}

// featureMetrics shows each extension's features on /metrics.
type featureMetrics struct {
	dnd      *prometheus.GaugeVec
	forward  *prometheus.GaugeVec
	diverted *prometheus.CounterVec
}

func newFeatureMetrics(reg prometheus.Registerer) *featureMetrics {
	m := &featureMetrics{
		dnd: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "phone",
			Name: "dnd", Help: "1 when the extension's do-not-disturb is on."}, []string{"ext"}),
		forward: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "phone",
			Name: "forwarding", Help: "1 for the extension's forwarding type in force (all, busy, time), with its target."},
			[]string{"ext", "type"}),
		diverted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "phone",
			Name: "diverted_calls_total", Help: "Incoming calls refused (dnd) or forwarded (all, busy, time) by the phone's features, by result."},
			[]string{"reason", "result"}),
	}
	reg.MustRegister(m.dnd, m.forward, m.diverted)
	return m
}

func (m *featureMetrics) set(ext string, f features) {
	if m == nil {
		return
	}
	dnd := 0.0
	if f.DND {
		dnd = 1
	}
	m.dnd.WithLabelValues(ext).Set(dnd)
	for _, t := range []string{"all", "busy", "time"} {
		v := 0.0
		if f.Event == t && f.target(t) != "" {
			v = 1
		}
		m.forward.WithLabelValues(ext, t).Set(v)
	}
}

func (m *featureMetrics) divert(reason string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.diverted.WithLabelValues(reason, result).Inc()
}
