package bridge

import (
	"errors"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "csta_bridge"

// metrics are registered on an injected registry (never the global one), so
// tests and embedders get their own.
type metrics struct {
	cstaRequests   *prometheus.CounterVec
	cstaDuration   *prometheus.HistogramVec
	actionRequests *prometheus.CounterVec
	actionDuration prometheus.Histogram
	actionDrops    *prometheus.CounterVec
	pbxConnected   prometheus.Gauge
	pbxReconnects  prometheus.Counter
	calls          *prometheus.GaugeVec
	transitions    *prometheus.CounterVec
	reloadOK       prometheus.Gauge
	reloadTime     prometheus.Gauge
	reloadFailures prometheus.Counter
	httpRejected   *prometheus.CounterVec
	faultsUnlogged prometheus.Counter
	features       *featureMetrics
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		cstaRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "csta",
			Name: "requests_total", Help: "CSTA requests by service and result (ok or the CSTA error code)."},
			[]string{"service", "result"}),
		cstaDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "csta",
			Name: "request_duration_seconds", Help: "Time from a CSTA request to its response, by service and result.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
			[]string{"service", "result"}),
		actionRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "action_url",
			Name: "requests_total", Help: "Action URL deliveries by setting and result."},
			[]string{"event", "result"}),
		actionDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "action_url",
			Name: "request_duration_seconds", Help: "Time to deliver an action URL that succeeded.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		actionDrops: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "action_url",
			Name: "dropped_total", Help: "Action URLs dropped before delivery, by reason."},
			[]string{"reason"}),
		pbxConnected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "pbx",
			Name: "connected", Help: "1 when the PBX adapter is connected."}),
		pbxReconnects: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "pbx",
			Name: "reconnects_total", Help: "Times the PBX connection came back after being lost."}),
		calls: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "calls",
			Help: "Live connections by ECMA-269 local connection state."}, []string{"state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "call_state_transitions_total",
			Help: "Connection state transitions applied by the state machine."}, []string{"from", "to"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "config",
			Name: "last_reload_successful", Help: "1 when the last configuration load succeeded."}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "config",
			Name: "last_reload_success_timestamp_seconds", Help: "Time of the last successful configuration load."}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "config",
			Name: "reload_failures_total", Help: "Configuration reloads that failed and kept the old configuration."}),
		httpRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "http",
			Name: "rejected_requests_total", Help: "Requests refused before reaching a service, by HTTP status."},
			[]string{"code"}),
		faultsUnlogged: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "csta",
			Name: "refusals_unlogged_total", Help: "Refused CSTA requests (decode errors and faults) not logged one by one: their source was over its allowance of log lines (a summary line is logged per source and minute)."}),
	}
	for st := pbx.StateInitiated; st <= pbx.StateHeld; st++ {
		m.calls.WithLabelValues(st.String()).Set(0) // present before the first call
	}
	m.features = newFeatureMetrics(reg)
	registerRuntime(reg)
	reg.MustRegister(m.cstaRequests, m.cstaDuration, m.actionRequests, m.actionDuration, m.actionDrops,
		m.pbxConnected, m.pbxReconnects, m.calls, m.transitions, m.reloadOK, m.reloadTime, m.reloadFailures,
		m.httpRejected, m.faultsUnlogged)
	return m
}

func (m *metrics) csta(service, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.cstaRequests.WithLabelValues(service, result).Inc()
	m.cstaDuration.WithLabelValues(service, result).Observe(d.Seconds())
}

// registerRuntime adds what every Go service exports (go_goroutines,
// go_memstats_*, process_open_fds, process_resident_memory_bytes, …). A
// registry an embedder passes in may carry them already: that is fine.
func registerRuntime(reg prometheus.Registerer) {
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			if are := (prometheus.AlreadyRegisteredError{}); !errors.As(err, &are) {
				panic(err)
			}
		}
	}
}

func (m *metrics) actionOK(event string, d time.Duration) {
	if m == nil {
		return
	}
	m.actionRequests.WithLabelValues(event, "ok").Inc()
	m.actionDuration.Observe(d.Seconds())
}

func (m *metrics) actionFailed(event, result string) {
	if m == nil {
		return
	}
	m.actionRequests.WithLabelValues(event, result).Inc()
}

func (m *metrics) actionDropped(event, reason string) {
	if m == nil {
		return
	}
	m.actionRequests.WithLabelValues(event, "dropped").Inc()
	m.actionDrops.WithLabelValues(reason).Inc()
}

func (m *metrics) link(up, reconnect bool) {
	if m == nil {
		return
	}
	if up {
		m.pbxConnected.Set(1)
		if reconnect {
			m.pbxReconnects.Inc()
		}
	} else {
		m.pbxConnected.Set(0)
	}
}

// transition counts a state change applied by the state machine and moves
// the call between the live-calls gauges.
func (m *metrics) transition(from, to pbx.State) {
	if m == nil {
		return
	}
	m.transitions.WithLabelValues(from.String(), to.String()).Inc()
	m.moveCall(from, to)
}

// moveCall keeps csta_bridge_calls up to date incrementally: recounting
// every call on each change costs O(calls) per event (docs/BENCHMARKS.md).
func (m *metrics) moveCall(from, to pbx.State) {
	if m == nil || from == to {
		return
	}
	if from != pbx.StateNull {
		m.calls.WithLabelValues(from.String()).Dec()
	}
	if to != pbx.StateNull {
		m.calls.WithLabelValues(to.String()).Inc()
	}
}

func (m *metrics) reload(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.reloadOK.Set(1)
		m.reloadTime.SetToCurrentTime()
	} else {
		m.reloadOK.Set(0)
		m.reloadFailures.Inc()
	}
}

func (m *metrics) rejected(code string) {
	if m == nil {
		return
	}
	m.httpRejected.WithLabelValues(code).Inc()
}

func (m *metrics) faultUnlogged() {
	if m == nil {
		return
	}
	m.faultsUnlogged.Inc()
}

// sweeper is a PBX adapter that removes, at each connect, what calls left
// on the PBX while no bridge watched (the Asterisk adapter's sweep: a
// channel whose other side is gone, a bridge of an ended call).
type sweeper interface {
	Swept() (channels, bridges uint64)
}

// registerSwept exposes the sweep's totals of the adapter in use; they
// start again from 0 when a reload replaces the adapter.
func registerSwept(reg prometheus.Registerer, current func() pbx.PBX) {
	for _, what := range []string{"channel", "bridge"} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Subsystem: "pbx",
			Name: "swept_total", Help: "Leftovers of calls that ended while no bridge was connected, removed by the adapter when it connected: channels hung up, PBX bridges destroyed.",
			ConstLabels: prometheus.Labels{"what": what}},
			func() float64 {
				s, ok := current().(sweeper)
				if !ok {
					return 0
				}
				ch, br := s.Swept()
				if what == "channel" {
					return float64(ch)
				}
				return float64(br)
			}))
	}
}
