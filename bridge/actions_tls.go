package bridge

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/config"
)

// actionTLS builds one tls.Config per distinct action_url.tls setting of
// cfg, and says loudly which extensions do not check certificates. The files
// are read again at every load, so a reload picks up a renewed CA or client
// certificate.
func actionTLS(cfg *config.Config, log interface{ Warn(string, ...any) }) (map[config.ActionURLTLS]*tls.Config, error) {
	out := make(map[config.ActionURLTLS]*tls.Config)
	var insecure []string
	for _, e := range cfg.Extensions {
		t := e.ActionURL.TLS
		if t.InsecureSkipVerify {
			insecure = append(insecure, e.Name)
		}
		if _, done := out[t]; done || t == (config.ActionURLTLS{}) {
			continue
		}
		c, err := t.Config()
		if err != nil {
			return nil, fmt.Errorf("extension %s: action_url.tls: %w", e.Name, err)
		}
		out[t] = c
	}
	if len(insecure) > 0 {
		slices.Sort(insecure)
		shown := insecure
		if len(shown) > 20 {
			shown = shown[:20]
		}
		log.Warn("action URLs over https do not verify the server's certificate (action_url.tls.insecure_skip_verify: true): for labs only",
			"extensions", len(insecure), "names", strings.Join(shown, ","))
	}
	return out, nil
}

// tlsFor returns the TLS settings of an extension's action URLs (nil: the
// system roots).
func (a *actionSender) tlsFor(t config.ActionURLTLS) *tls.Config {
	if t == (config.ActionURLTLS{}) {
		return nil
	}
	if m := a.tls.Load(); m != nil {
		return (*m)[t]
	}
	return nil
}
