package main

import (
	"fmt"
	"log/slog"

	"github.com/csta-bridge/csta-bridge/adapters/ari"
	"github.com/csta-bridge/csta-bridge/adapters/esl"
	"github.com/csta-bridge/csta-bridge/adapters/sim"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// newPBX builds the adapter the configuration names. This is the only place
// that knows every adapter.
func newPBX(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
	switch cfg.PBX.Type {
	case config.TypeSim:
		return sim.New(sim.Options{AnswerAfter: cfg.PBX.Sim.AnswerAfter, NeverAnswer: cfg.PBX.Sim.NeverAnswer,
			Logger: log}), nil
	case config.TypeARI:
		return ari.New(ari.Options{URL: cfg.PBX.ARI.URL, Username: cfg.PBX.ARI.Username, Password: cfg.PBX.ARI.Password,
			Application: cfg.PBX.ARI.Application, Context: cfg.PBX.ARI.Context, Logger: log})
	case config.TypeESL:
		return esl.New(esl.Options{Address: cfg.PBX.ESL.Address, Password: cfg.PBX.ESL.Password,
			Context: cfg.PBX.ESL.Context, PhoneEvents: eslPhoneEvents[cfg.PBX.ESL.PhoneEvents], Logger: log})
	}
	return nil, fmt.Errorf("pbx.type %q is not built into this binary", cfg.PBX.Type)
}

var eslPhoneEvents = map[string]esl.PhoneEvents{
	"auto": esl.PhoneEventsAuto, "always": esl.PhoneEventsAlways, "never": esl.PhoneEventsNever,
}
