package main

import (
	"log/slog"

	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/internal/lease"
)

// newLease is the active-bridge lease of a `cluster:` section; none
// without one (a lone bridge is always active).
func newLease(cfg *config.Config, log *slog.Logger) (bridge.Lease, error) {
	if !cfg.Cluster.Enabled() {
		return nil, nil
	}
	return lease.FromConfig(cfg.Cluster, log)
}
