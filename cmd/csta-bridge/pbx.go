package main

import (
	"fmt"
	"log/slog"

	"github.com/csta-bridge/csta-bridge/adapters/ari"
	"github.com/csta-bridge/csta-bridge/adapters/cluster"
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
		c := cfg.PBX.ARI
		hh := c.HangupHandler
		if hh == "none" {
			hh = "-"
		}
		if c.NATS.URL != "" {
			return ari.NewProxyCluster(ari.ProxyOptions{
				Options: ari.Options{Application: c.Application, Context: c.Context, HangupHandler: hh, Logger: log},
				NATSURL: c.NATS.URL, NATSUser: c.NATS.User, NATSPassword: c.NATS.Password, Nodes: c.Nodes})
		}
		return ari.New(ari.Options{URL: c.URL, Username: c.Username, Password: c.Password,
			Application: c.Application, Context: c.Context, HangupHandler: hh, Logger: log})
	case config.TypeESL:
		if len(cfg.PBX.ESL.Nodes) > 0 {
			return newESLCluster(cfg.PBX.ESL, log)
		}
		return esl.New(esl.Options{Address: cfg.PBX.ESL.Address, Password: cfg.PBX.ESL.Password,
			Context: cfg.PBX.ESL.Context, PhoneEvents: eslPhoneEvents[cfg.PBX.ESL.PhoneEvents], Logger: log})
	}
	return nil, fmt.Errorf("pbx.type %q is not built into this binary", cfg.PBX.Type)
}

// newESLCluster builds one esl adapter per FreeSWITCH node behind a
// cluster adapter.
func newESLCluster(c config.ESL, log *slog.Logger) (pbx.PBX, error) {
	nodes := make([]cluster.Node, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		a, err := esl.New(esl.Options{Address: n.Address, Password: n.Password, Context: c.Context,
			PhoneEvents: eslPhoneEvents[c.PhoneEvents], Logger: log.With("node", n.Name)})
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		nodes = append(nodes, cluster.Node{Name: n.Name, PBX: a})
	}
	return cluster.New(cluster.Options{Nodes: nodes, Server: "FreeSWITCH", Logger: log})
}

var eslPhoneEvents = map[string]esl.PhoneEvents{
	"auto": esl.PhoneEventsAuto, "always": esl.PhoneEventsAlways, "never": esl.PhoneEventsNever,
}
