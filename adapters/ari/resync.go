package ari

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// subscribeAll makes sure every mapped endpoint is subscribed in this
// session. Subscriptions belong to the application inside Asterisk and are
// lost when Asterisk restarts, so each session makes them again; Asterisk
// treats a repeated subscription as a no-op.
func (a *Adapter) subscribeAll(ctx context.Context) {
	a.mu.Lock()
	var want []string
	for ep := range a.byEndpoint {
		if !a.subscribed[ep] {
			want = append(want, ep)
		}
	}
	var drop []string
	for ep := range a.subscribed {
		if _, ok := a.byEndpoint[ep]; !ok {
			drop = append(drop, ep)
		}
	}
	a.mu.Unlock()
	sort.Strings(want)
	app := ari.NewKey(ari.ApplicationKey, a.opts.Application)
	for _, ep := range drop {
		// An extension removed by a reload: stop its events.
		if err := a.rest(ctx, func(c ari.Client) error { return c.Application().Unsubscribe(app, "endpoint:"+ep) }); err != nil {
			a.log.Warn("cannot unsubscribe endpoint", "endpoint", ep, "err", err)
		}
		a.mu.Lock()
		delete(a.subscribed, ep)
		a.mu.Unlock()
	}
	for _, ep := range want {
		err := a.rest(ctx, func(c ari.Client) error { return c.Application().Subscribe(app, "endpoint:"+ep) })
		if err != nil && a.inCluster {
			// Another node's phone.
			a.log.Debug("endpoint not on this node", "endpoint", ep, "err", err)
			continue
		}
		if err != nil {
			// 422/400: Asterisk has no such endpoint (a typo in the mapping).
			a.log.Warn("cannot subscribe to endpoint; its calls are not seen unless they pass through Stasis", "endpoint", ep, "err", err)
			continue
		}
		a.mu.Lock()
		a.subscribed[ep] = true
		a.mu.Unlock()
		// Registration state now; EndpointStateChange reports changes.
		tech, res, _ := strings.Cut(ep, "/")
		var d *ari.EndpointData
		if err := a.rest(ctx, func(c ari.Client) (err error) { d, err = c.Endpoint().Data(ari.NewEndpointKey(tech, res)); return }); err == nil {
			a.mu.Lock()
			a.onEndpointState(&wireEndpoint{Technology: tech, Resource: res, State: d.State})
			a.mu.Unlock()
		}
	}
}

// snapshot is one channel as Asterisk lists it, with the adapter's variables.
type snapshot struct {
	data   *ari.ChannelData
	legVar string
	call   string
	csta   int
	held   bool // the bridge holds this far party (varHeld)
}

// resync rebuilds the adapter's view from Asterisk after a connect and
// sends EventSync. Events that arrive meanwhile wait in the frame queue and
// are applied afterwards; the handlers tolerate seeing a change twice.
func (a *Adapter) resync(ctx context.Context) error {
	var info *ari.AsteriskInfo
	if err := a.rest(ctx, func(c ari.Client) (err error) { info, err = c.Asterisk().Info(nil); return }); err != nil {
		return fmt.Errorf("asterisk info: %w", err)
	}
	id := asteriskIdentity(info)
	a.mu.Lock()
	restarted := a.pbxID != "" && a.pbxID != id
	first := a.pbxID == ""
	a.pbxID = id
	a.mu.Unlock()
	if restarted {
		a.log.Warn("Asterisk restarted since the last connection; every call it had is gone", "entity_id", info.SystemInfo.EntityID)
	} else if first {
		a.log.Info("connected to Asterisk", "version", info.SystemInfo.Version, "entity_id", info.SystemInfo.EntityID)
	}

	a.subscribeAll(ctx)

	var keys []*ari.Key
	if err := a.rest(ctx, func(c ari.Client) (err error) { keys, err = c.Channel().List(nil); return }); err != nil {
		return fmt.Errorf("list channels: %w", err)
	}
	a.mu.Lock()
	mapped := make(map[string]string, len(a.byEndpoint))
	for k, v := range a.byEndpoint {
		mapped[k] = v
	}
	a.mu.Unlock()

	others := a.otherAppChannels(ctx)
	stranded := a.stasisCallers(ctx)
	var snaps []snapshot
	for _, k := range keys {
		var d *ari.ChannelData
		err := a.rest(ctx, func(c ari.Client) (err error) { d, err = c.Channel().Data(k); return })
		if err != nil {
			if httpStatus(err) == 404 {
				continue // hung up between list and get
			}
			return fmt.Errorf("channel %s: %w", k.ID, err)
		}
		s := snapshot{data: d}
		// A variable that is not set and a channel that is gone both
		// answer 404; a channel that hung up while it was being read (a
		// phone's BYE Asterisk was still tearing down) is no call to
		// report, not even with half its variables.
		missing := false
		read := func(name string) string {
			v, err := a.channelVarErr(ctx, k.ID, name)
			missing = missing || httpStatus(err) == 404
			return v
		}
		// ari.ChannelData has no dialplan application, so ownership is
		// read from the variable the adapter puts on every Stasis channel.
		if !others[k.ID] {
			s.call = read(varCall)
		}
		if s.call != "" {
			s.held = read(varHeld) == "1"
		}
		if _, isExt := mapped[endpointKey(endpointOf(d.Name))]; isExt {
			s.legVar = read(varLeg)
			s.csta, _ = strconv.Atoi(read(varCSTAID))
		}
		if missing && a.channelGone(ctx, k.ID) {
			continue
		}
		snaps = append(snaps, s)
	}
	bridges, err := a.listBridges(ctx)
	if err != nil {
		return err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.rebuild(snaps, bridges, restarted)
	a.routeStranded(stranded)
	var infos []pbx.CallInfo
	for _, l := range a.legs {
		if l.state == pbx.StateNull {
			continue
		}
		infos = append(infos, pbx.CallInfo{
			Call: l.ref, State: l.state, Direction: l.dir, Remote: l.remote,
			SIPCallID: l.ch.protocolID, CSTAID: l.cstaID,
		})
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Call.String() < infos[j].Call.String() })
	a.emit(pbx.Event{Kind: pbx.EventSync, Calls: infos})
	// A callee that answered while nobody bridged it is bridged now.
	for id := range a.callOf {
		if ch := a.chans[id]; ch != nil {
			a.maybeConnect(ch)
		}
	}
	return nil
}

// channelVarErr reads a channel variable; a variable that is not set and
// a channel that is gone both answer 404.
func (a *Adapter) channelVarErr(ctx context.Context, id, name string) (string, error) {
	var v string
	err := a.rest(ctx, func(c ari.Client) (err error) { v, err = c.Channel().GetVariable(chanKey(id), name); return })
	return v, err
}

// channelGone says Asterisk no longer has the channel.
func (a *Adapter) channelGone(ctx context.Context, id string) bool {
	err := a.rest(ctx, func(c ari.Client) error { _, err := c.Channel().Data(chanKey(id)); return err })
	return httpStatus(err) == 404
}

func (a *Adapter) channelVar(ctx context.Context, id, name string) string {
	var v string
	if err := a.rest(ctx, func(c ari.Client) (err error) { v, err = c.Channel().GetVariable(chanKey(id), name); return }); err != nil {
		return ""
	}
	return v
}

// rebuild replaces the channel table with what Asterisk listed, keeping
// what only the adapter knows (leg ids, PBX-side hold, owned calls) for
// channels that still exist. Called with a.mu held.
func (a *Adapter) rebuild(snaps []snapshot, bridges map[string][]string, restarted bool) {
	oldChans := a.chans
	if restarted {
		oldChans = map[string]*channel{}
	}
	a.chans = map[string]*channel{}
	a.legs = map[pbx.CallRef]*leg{}
	oldCalls := a.calls
	a.calls = map[string]*call{}
	a.callOf = map[string]*call{}
	a.swaps = map[string]*leg{}
	live := map[string]bool{}
	for _, s := range snaps {
		live[s.data.ID] = true
	}
	inBridge := map[string]string{}
	for b, members := range bridges {
		for _, m := range members {
			inBridge[m] = b
		}
	}
	fresh := map[*call]bool{}
	for id := range a.makeCalls {
		if !live[id] {
			delete(a.makeCalls, id)
		}
	}

	for _, s := range snaps {
		d := s.data
		ch := oldChans[d.ID]
		if ch == nil {
			ch = &channel{id: d.ID}
			if d.Dialplan != nil {
				ch.exten = d.Dialplan.Exten
			}
		}
		ch.name, ch.state, ch.endpoint = d.Name, d.State, endpointOf(d.Name)
		if d.Caller != nil {
			ch.caller = wireParty{Name: d.Caller.Name, Number: d.Caller.Number}
		}
		if d.Connected != nil {
			ch.connected = wireParty{Name: d.Connected.Name, Number: d.Connected.Number}
		}
		ch.bridge = inBridge[d.ID]
		ch.heldFar = s.held
		ch.inStasis = s.call != ""
		if ch.inStasis && d.Dialplan != nil {
			ch.stasisAt = dialplanPos{d.Dialplan.Context, d.Dialplan.Exten, d.Dialplan.Priority}
		}
		a.chans[d.ID] = ch

		// Owned calls: group Stasis channels by their CSTA_CALL variable.
		if s.call != "" && ch.inStasis {
			c := a.calls[s.call]
			if c == nil {
				c = oldCalls[s.call]
				if c == nil || restarted {
					c = &call{id: s.call, bridge: s.call, answered: true}
					fresh[c] = true
				}
				c.members = map[string]bool{}
				c.destroyed = false
				a.calls[s.call] = c
			}
			c.members[d.ID] = true
			a.callOf[d.ID] = c
		}

		ext, ok := a.byEndpoint[endpointKey(ch.endpoint)]
		if !ok || ch.endpoint == "" {
			ch.leg = nil
			continue
		}
		l := ch.leg
		if l == nil || l.ch != ch || l.ref.Ext != ext {
			l = &leg{ch: ch, ref: pbx.CallRef{Ext: ext, ID: d.ID}}
			// Without the adapter's tag only a channel still dialling
			// (Ring) is known to be the device calling out.
			l.dir = pbx.Incoming
			if ch.state == "Ring" {
				l.dir = pbx.Outgoing
			}
			if legID, dir, ok := strings.Cut(s.legVar, ","); ok && legID != "" {
				l.ref.ID = legID
				if dir == "in" {
					l.dir = pbx.Incoming
				} else {
					l.dir = pbx.Outgoing
				}
			}
			ch.leg = l
		}
		if s.csta != 0 {
			l.cstaID = s.csta
		}
		switch ch.state {
		case "Up":
			if l.state != pbx.StateHeld {
				l.state = pbx.StateConnected
			}
		case "Ringing":
			if l.dir == pbx.Incoming {
				l.state = pbx.StateAlerting
			} else {
				l.state = pbx.StateInitiated
			}
		case "Ring":
			l.state = pbx.StateInitiated
		default:
			if l.dir == pbx.Outgoing {
				l.state = pbx.StateInitiated
			} else {
				l.state = pbx.StateNull // not ringing yet: announced when it does
			}
		}
		if l.state != pbx.StateHeld {
			l.heldBy = false
		}
		l.remote = remoteOf(ch, l.dir)
		l.call = a.callOf[d.ID]
		a.legs[l.ref] = l
	}
	for _, l := range a.legs {
		l.call = a.callOf[l.ch.id]
		// An outgoing call whose far end has not answered is initiated
		// even though the device's own channel is Up (MakeCall).
		if c := l.call; c != nil && l.dir == pbx.Outgoing && l.state == pbx.StateConnected {
			answered := false
			for m := range c.members {
				if o := a.chans[m]; m != l.ch.id && o != nil && o.state == "Up" {
					answered = true
				}
			}
			if !answered {
				l.state = pbx.StateInitiated
			}
			c.answered = c.answered || answered
		}
	}
	for c := range fresh {
		a.restoreCall(c)
	}
}
