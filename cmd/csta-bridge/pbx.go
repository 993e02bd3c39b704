package main

import (
	"fmt"
	"log/slog"

	"github.com/csta-bridge/csta-bridge/adapters/sim"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// newPBX builds the adapter the configuration names. This is the only place
// that knows every adapter.
func newPBX(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
	switch cfg.PBX.Type {
	case "sim":
		return sim.New(sim.Options{AnswerAfter: cfg.PBX.Sim.AnswerAfter, NeverAnswer: cfg.PBX.Sim.NeverAnswer,
			Logger: log}), nil
	}
	return nil, fmt.Errorf("pbx.type %q is not built into this binary", cfg.PBX.Type)
}
