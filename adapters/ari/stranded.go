package ari

import "context"

// A caller can be stranded in the application: the dialplan sends it into
// Stasis while the bridge's previous connection is going (the bridge
// stopping or restarting), Asterisk hands its StasisStart to the closing
// websocket, and does not send it again to the next connection. Nobody
// would route it: it would wait in Stasis, hearing ringing, for good. Seen
// on the real Asterisk 22.10.1 (issue 19's row "a call that started while
// the bridge was away", 1 run in 6: the phone never rang). The resync
// routes such callers.

// stasisCallers lists the channels the dialplan sent into the application
// to reach a number (Stasis(app,dial,N), Stasis(app) or Stasis(app,N)),
// by channel id, with the number ("" for the channel's extension). It is
// nil when Asterisk cannot list them; then a caller whose StasisStart is
// lost waits for the next connect.
func (a *Adapter) stasisCallers(ctx context.Context) map[string]string {
	chans, err := a.tr.channels(ctx)
	if err != nil {
		a.log.Debug("cannot list the channels in the application", "err", err)
		return nil
	}
	out := map[string]string{}
	for _, c := range chans {
		args, ours := a.stasisArgs(c)
		if !ours {
			continue
		}
		kind := ""
		if len(args) > 0 {
			kind = args[0]
		}
		switch {
		case kind == argDial || kind == "":
			number := ""
			if len(args) > 1 {
				number = args[1]
			}
			out[c.ID] = number
		case validNumber(kind):
			out[c.ID] = kind
		}
	}
	return out
}

// routeStranded routes the callers of stasisCallers that belong to no
// call after the resync's rebuild, as their StasisStart would have. A
// StasisStart still queued for this connection finds the call made
// (routeCall does nothing twice). Called with a.mu held.
func (a *Adapter) routeStranded(callers map[string]string) {
	for id, number := range callers {
		ch := a.chans[id]
		if ch == nil || a.callOf[id] != nil {
			continue
		}
		if number == "" {
			number = ch.exten
		}
		ch.inStasis = true
		a.log.Info("routing a caller that entered the application while the bridge was away", "channel", ch.name, "number", number)
		a.routeCall(ch, number)
	}
}
