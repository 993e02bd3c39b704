package bridge

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// nodeCollector exports each node's health when the adapter in use drives
// a cluster of PBX servers (pbx.NodeReporter); it exports nothing for a
// single PBX. The nodes are read at every scrape, so a reload that changes
// them needs no re-registration.
type nodeCollector struct {
	current         func() pbx.PBX
	up, exts, calls *prometheus.Desc
}

func registerNodes(reg prometheus.Registerer, current func() pbx.PBX) {
	name := func(n string) string { return prometheus.BuildFQName(namespace, "pbx_node", n) }
	reg.MustRegister(&nodeCollector{current: current,
		up:    prometheus.NewDesc(name("up"), "1 while the bridge is connected to this PBX node of the cluster, else 0.", []string{"node"}, nil),
		exts:  prometheus.NewDesc(name("extensions"), "Extensions this PBX node serves now: pinned to it, or registered there.", []string{"node"}, nil),
		calls: prometheus.NewDesc(name("calls"), "Live calls of mapped extensions on this PBX node (as last known while it is down).", []string{"node"}, nil)})
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.exts
	ch <- c.calls
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	r, ok := c.current().(pbx.NodeReporter)
	if !ok {
		return
	}
	for _, n := range r.Nodes() {
		up := 0.0
		if n.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, n.Name)
		ch <- prometheus.MustNewConstMetric(c.exts, prometheus.GaugeValue, float64(n.Extensions), n.Name)
		ch <- prometheus.MustNewConstMetric(c.calls, prometheus.GaugeValue, float64(n.Calls), n.Name)
	}
}

// degraded names the nodes of a cluster that are down ("" when every node
// is up, or the PBX is no cluster): /-/ready stays 200 while one is up,
// since the extensions of the other nodes are served, but says which.
func (a *App) degraded() string {
	r, ok := a.currentPBX().(pbx.NodeReporter)
	if !ok {
		return ""
	}
	var down []string
	for _, n := range r.Nodes() {
		if !n.Up {
			down = append(down, "node "+n.Name+" down: "+n.Detail)
		}
	}
	return strings.Join(down, "; ")
}
