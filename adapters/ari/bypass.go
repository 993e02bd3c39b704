package ari

import (
	"context"
	"log/slog"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// noteBypass tells the administrator, once per call, about an incoming
// call of a mapped extension that reached the phone without the bridge's
// application (a Dial(PJSIP/1001) in a queue, ring group or follow-me):
// it is reported as before, but CTI can only clear it. The dialplan
// location is where the dialling channel was (Asterisk gives the dialled
// channel its context and extension), so the admin finds the line to
// route through csta-bridge-route. Called with a.mu held, when the leg is
// offered.
func (a *Adapter) noteBypass(l *leg, ch *channel) {
	if l.call != nil || l.dir != pbx.Incoming {
		return
	}
	dp := ch.dialplan
	a.log.LogAttrs(context.Background(), slog.LevelInfo,
		"call to a mapped extension bypasses the bridge's Stasis application: CTI can only clear it; dial the phone as Local/<ext>@csta-bridge-route/n there (configs/asterisk)",
		slog.String("ext", l.ref.Ext), slog.String("channel", ch.name),
		slog.String("dialled_from", dp.Context+","+dp.Exten), slog.String("caller", ch.connected.Number))
}
