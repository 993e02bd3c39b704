package ari

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// handleFrame decodes and applies one websocket frame. A frame that is not
// an event, or an event the adapter does not know, is counted and skipped:
// nothing a PBX sends may stop the event flow.
func (a *Adapter) handleFrame(data []byte, fatal chan<- error) {
	ev, err := decodeEvent(data)
	if err != nil {
		a.badFrames.Add(1)
		a.log.Warn("ignoring malformed ARI event", "err", err, "bytes", len(data))
		return
	}
	defer func() {
		if r := recover(); r != nil {
			a.badFrames.Add(1)
			a.log.Error("ARI event handler failed; event skipped", "type", ev.Type, "panic", fmt.Sprint(r))
		}
	}()
	debug := debugOn(a.log)
	a.mu.Lock()
	defer a.mu.Unlock()
	var before *channel
	if debug {
		before = a.chans[eventChannelID(ev)]
	}
	a.handleEvent(ev, fatal)
	if debug {
		a.logEvent(ev, before)
	}
}

func (a *Adapter) handleEvent(ev *wireEvent, fatal chan<- error) {
	switch ev.Type {
	case "ChannelCreated", "ChannelStateChange", "ChannelConnectedLine", "ChannelCallerId",
		"ChannelDialplan", "ChannelHold", "ChannelUnhold", "ChannelHangupRequest", "ChannelVarset",
		"ChannelEnteredBridge", "ChannelLeftBridge", "StasisStart", "StasisEnd", "ChannelDestroyed":
		if ev.Channel == nil || ev.Channel.ID == "" {
			a.badFrames.Add(1)
			return
		}
		if ev.Type == "ChannelCreated" {
			a.ended.remove(ev.Channel.ID) // a client may reuse the id of a gone channel
		} else if a.ended.has(ev.Channel.ID) {
			// A channel of a subscribed endpoint that is also in Stasis
			// reaches the application through both subscriptions, so
			// Asterisk sends its ChannelDestroyed (and the events just
			// before it) twice. A late copy must not bring the channel
			// back as a new call.
			return
		}
	}
	switch ev.Type {
	case "ChannelCreated", "ChannelStateChange", "ChannelCallerId", "ChannelDialplan":
		a.track(ev.Channel)
	case "ChannelConnectedLine":
		ch, _ := a.track(ev.Channel)
		if l := ch.leg; l != nil && l.ch == ch && a.live(l) && l.state != pbx.StateNull {
			if r := remoteOf(ch, l.dir); r.Number != l.remote.Number || r.Name != l.remote.Name {
				l.remote = r
				if l.state == pbx.StateConnected || l.state == pbx.StateHeld {
					a.emit(pbx.Event{Kind: pbx.EventPartyChanged, Call: l.ref, Remote: r, CSTAID: l.cstaID})
				}
			}
		}
	case "ChannelVarset":
		ch, _ := a.track(ev.Channel)
		if ev.Variable == varCSTAID && ch.leg != nil {
			var id int
			if _, err := fmt.Sscan(ev.Value, &id); err == nil {
				ch.leg.cstaID = id
			}
		}
	case "ChannelHold", "ChannelUnhold":
		ch, _ := a.track(ev.Channel)
		l := ch.leg
		if l == nil || l.ch != ch || !a.live(l) {
			return
		}
		if ev.Type == "ChannelHold" && l.state == pbx.StateConnected {
			l.state = pbx.StateHeld
			a.emit(pbx.Event{Kind: pbx.EventHeld, Call: l.ref, ByPhone: true, CSTAID: l.cstaID})
		} else if ev.Type == "ChannelUnhold" && l.state == pbx.StateHeld && !l.heldBy {
			l.state = pbx.StateConnected
			a.emit(pbx.Event{Kind: pbx.EventRetrieved, Call: l.ref, ByPhone: true, CSTAID: l.cstaID})
		}
	case "ChannelHangupRequest":
		ch, _ := a.track(ev.Channel)
		if ev.Cause != 0 && ch.hangupBy == 0 {
			ch.hangupBy = ev.Cause
		}
	case "ChannelEnteredBridge", "ChannelLeftBridge":
		ch, _ := a.track(ev.Channel)
		if ev.Type == "ChannelEnteredBridge" && ev.Bridge != nil {
			ch.bridge = ev.Bridge.ID
		} else {
			ch.bridge = ""
		}
	case "Dial":
		a.onDial(ev)
	case "StasisStart":
		ch, _ := a.track(ev.Channel)
		ch.inStasis = true
		ch.stasisAt = dialplanPos{ev.Channel.Dialplan.Context, ev.Channel.Dialplan.Exten, ev.Channel.Dialplan.Priority}
		// A channel the adapter let go of (a transfer continued it into the
		// dialplan) that comes back belongs to its new call in full.
		if c := a.callOf[ch.id]; c == nil {
			ch.released = false
		}
		a.onStasisStart(ch, ev)
		a.maybeConnect(ch)
	case "StasisEnd":
		ch, _ := a.track(ev.Channel)
		ch.inStasis = false
		// Asterisk also sends StasisEnd just before ChannelDestroyed on a
		// hangup, so only a channel the adapter let go of (continue) leaves
		// its call here; a hangup is handled at ChannelDestroyed.
		if c := a.callOf[ch.id]; c != nil && ch.released {
			a.memberGone(c, ch)
		}
		if _, mapped := a.byEndpoint[endpointKey(ch.endpoint)]; !mapped && a.callOf[ch.id] == nil {
			// Outside Stasis no more events come for a channel of an
			// unsubscribed endpoint (a trunk continued by a transfer):
			// forget it rather than keep it forever.
			delete(a.chans, ch.id)
		}
		a.wake(ch.id)
	case "ChannelDestroyed":
		a.onDestroyed(ev)
	case "BridgeBlindTransfer":
		if ev.Result != "" && ev.Result != "Success" {
			return
		}
		if ev.Channel != nil {
			a.transferredByPhone(ev.Channel, pbx.TransferBlind)
		}
	case "BridgeAttendedTransfer":
		if ev.Result != "" && ev.Result != "Success" {
			return
		}
		for _, wc := range []*wireChannel{ev.FirstLeg, ev.SecondLeg} {
			if wc != nil {
				a.transferredByPhone(wc, pbx.TransferAttended)
			}
		}
	case "EndpointStateChange", "PeerStatusChange", "ContactStatusChange":
		// All three carry the endpoint's state; repeats are filtered.
		if ev.Endpoint != nil {
			a.onEndpointState(ev.Endpoint)
		}
	case "ApplicationReplaced":
		select {
		case fatal <- fmt.Errorf("another ARI client connected as application %q and took its events", a.opts.Application):
		default:
		}
	case "BridgeCreated", "BridgeDestroyed", "BridgeMerged", "DeviceStateChanged", "ChannelTalkingStarted", "ChannelTalkingFinished", "ChannelDtmfReceived":
		// Known and not needed.
	default:
		a.unknownEvents.Add(1)
		if debugOn(a.log) {
			a.log.LogAttrs(context.Background(), slog.LevelDebug, "ignoring ARI event", slog.String("type", ev.Type))
		}
	}
}

// track records what an event says about a channel and returns it with its
// previous state. Channels of mapped endpoints get a leg and its events.
func (a *Adapter) track(wc *wireChannel) (*channel, string) {
	ch := a.chans[wc.ID]
	old := ""
	if ch == nil {
		ch = &channel{id: wc.ID, exten: wc.Dialplan.Exten}
		a.chans[wc.ID] = ch
	} else {
		old = ch.state
	}
	ch.name = wc.Name
	ch.endpoint = endpointOf(wc.Name)
	if wc.State != "" {
		ch.state = wc.State
	}
	if wc.ProtocolID != "" {
		ch.protocolID = wc.ProtocolID
	}
	ch.caller = wc.Caller
	ch.connected = wc.Connected
	if wc.Dialplan.Context != "" {
		ch.dialplan = wc.Dialplan
	}
	if ch.leg == nil {
		a.attachLeg(ch)
	}
	if l := ch.leg; l != nil && l.ch == ch && a.live(l) {
		a.progress(l, ch, old)
	}
	a.maybeConnect(ch)
	a.wake(ch.id)
	return ch, old
}

// maybeConnect bridges the dialled leg of an owned call once it has
// answered and is under the application's control (an originated channel
// enters Stasis only after it answers).
func (a *Adapter) maybeConnect(ch *channel) {
	if c := a.callOf[ch.id]; c != nil && c.dialing == ch.id && ch.state == "Up" && ch.inStasis {
		a.spawnConnect(c, ch.id)
	}
}

// attachLeg makes ch a connection of the extension whose endpoint it
// belongs to, if any.
func (a *Adapter) attachLeg(ch *channel) {
	if l := a.swaps[ch.id]; l != nil {
		delete(a.swaps, ch.id)
		ch.leg = l
		// A connection that ended while AnswerCall placed this channel
		// keeps the channel it ended on; this one stays mute.
		if a.live(l) {
			l.ch = ch
		}
		return
	}
	ext, ok := a.byEndpoint[endpointKey(ch.endpoint)]
	if !ok || ch.endpoint == "" {
		return
	}
	l := &leg{ch: ch, ref: pbx.CallRef{Ext: ext, ID: ch.id}}
	if req, ok := a.makeCalls[ch.id]; ok {
		l.ref = req.Call
		l.dir = pbx.Outgoing
		l.cstaID = req.CSTAID
		l.remote = pbx.Party{Number: req.Destination}
		l.call = a.callOf[ch.id]
	} else if ch.state == "Ring" {
		// An inbound channel from the device: the phone is dialling.
		l.dir = pbx.Outgoing
	} else {
		l.dir = pbx.Incoming
	}
	if l.call == nil {
		l.call = a.callOf[ch.id]
	}
	ch.leg = l
	a.legs[l.ref] = l
}

// progress emits the events a channel state change means for its leg.
func (a *Adapter) progress(l *leg, ch *channel, old string) {
	makeCall := a.isMakeCall(l)
	switch {
	case l.state == pbx.StateNull && l.dir == pbx.Outgoing && !makeCall && (ch.protocolID != "" || !a.tr.callIDs() || !isPJSIP(ch) || ch.state != "Ring"):
		// Asterisk sends a PJSIP channel's ChannelCreated before it copies
		// the SIP Call-ID into protocol_id (the next event has it); the
		// core needs it for $call-id, so the call is announced then.
		l.remote = remoteOf(ch, l.dir)
		l.state = pbx.StateInitiated
		a.emit(a.legEvent(pbx.EventOriginated, l))
		if ch.state == "Up" {
			l.state = pbx.StateConnected
			a.emit(a.legEvent(pbx.EventConnected, l))
		}
	case l.state == pbx.StateNull && l.dir == pbx.Incoming && (ch.state == "Ringing" || ch.state == "Up"):
		l.remote = remoteOf(ch, l.dir)
		l.state = pbx.StateAlerting
		a.emit(a.legEvent(pbx.EventOffered, l))
		a.noteBypass(l, ch)
		if ch.state == "Up" && ownerLets(l, ch) {
			a.connectLeg(l)
		}
	case l.state == pbx.StateAlerting && ch.state == "Up" && ownerLets(l, ch):
		a.connectLeg(l)
	case l.state == pbx.StateInitiated && !makeCall && ch.state == "Up" && old != "" && old != "Up" && l.call == nil:
		// Observed outgoing call: Dial() answers the caller's channel when
		// the callee answers. (Owned calls are connected by spawnConnect.)
		a.connectLeg(l)
	case l.state == pbx.StateInitiated && !makeCall && ch.state == "Up" && l.call != nil && l.call.answered:
		a.connectLeg(l)
	}
}

// ownerLets says whether an answered channel's leg may be reported
// connected now. The dialled leg of an owned call is connected by
// spawnConnect once it is bridged and the call is marked answered: a
// duplicate or later event for the channel must not announce it earlier,
// or a HoldCall sent right after Connected would find the call unanswered.
func ownerLets(l *leg, ch *channel) bool {
	return l.call == nil || (l.call.answered && l.call.dialing != ch.id)
}

func isPJSIP(ch *channel) bool { return strings.HasPrefix(ch.name, "PJSIP/") }

func (a *Adapter) isMakeCall(l *leg) bool {
	_, ok := a.makeCalls[l.ch.id]
	return ok
}

func (a *Adapter) connectLeg(l *leg) {
	if !a.live(l) || (l.state != pbx.StateAlerting && l.state != pbx.StateInitiated) {
		return
	}
	l.state = pbx.StateConnected
	if r := remoteOf(l.ch, l.dir); r.Number != "" {
		l.remote = r
	}
	a.emit(a.legEvent(pbx.EventConnected, l))
	// AnswerCall waits for this; spawnConnect gets here without an event.
	a.wake(l.ch.id)
}

func (a *Adapter) legEvent(kind pbx.EventKind, l *leg) pbx.Event {
	return pbx.Event{Kind: kind, Call: l.ref, Remote: l.remote, SIPCallID: l.ch.protocolID, CSTAID: l.cstaID, Headers: l.headers()}
}

func (a *Adapter) onDial(ev *wireEvent) {
	if ev.Peer == nil || ev.Peer.ID == "" {
		a.badFrames.Add(1)
		return
	}
	// Dial events also describe channels the application gets no other
	// events for (the far side of a subscribed endpoint's call). Only
	// channels already known are updated, or they would never be forgotten.
	peer := a.chans[ev.Peer.ID]
	if peer != nil {
		a.track(ev.Peer)
		if ev.DialStatus != "" {
			peer.dialStatus = ev.DialStatus
		}
	}
	if ev.Caller == nil || ev.Caller.ID == "" {
		return
	}
	caller := a.chans[ev.Caller.ID]
	if caller == nil {
		return
	}
	a.track(ev.Caller)
	caller.peer = ev.Peer.ID
	if peer != nil {
		peer.peer = caller.id
	}
	if ev.DialStatus != "" {
		caller.dialStatus = ev.DialStatus
	}
	if l := caller.leg; l != nil && l.ch == caller && ev.DialStatus == "ANSWER" && l.state == pbx.StateInitiated && l.call == nil {
		if l.ch.connected.Number == "" {
			l.remote = partyOf(ev.Peer.Caller)
		}
		a.connectLeg(l)
	}
}

func (a *Adapter) transferredByPhone(wc *wireChannel, kind pbx.TransferKind) {
	ch := a.chans[wc.ID]
	if ch == nil || ch.leg == nil || ch.leg.ch != ch || !a.live(ch.leg) || ch.leg.transferred {
		return
	}
	l := ch.leg
	l.transferred = true
	a.emit(pbx.Event{Kind: pbx.EventTransferred, Call: l.ref, Transfer: kind, ByPhone: true, CSTAID: l.cstaID, Remote: l.remote})
}

func (a *Adapter) onDestroyed(ev *wireEvent) {
	ch, _ := a.track(ev.Channel)
	if ev.Cause != 0 {
		ch.endCause = ev.Cause
	}
	delete(a.chans, ch.id)
	delete(a.swaps, ch.id)
	a.ended.add(ch.id)
	defer a.wake(ch.id)
	// A leg no longer in a.legs was reported gone when it left (cleared, or
	// missing from a resync); its channels say nothing more about it.
	if l := ch.leg; l != nil && l.ch == ch && a.live(l) {
		delete(a.legs, l.ref)
		_, makeCall := a.makeCalls[ch.id]
		// An incoming call that never rang (unregistered device, dial
		// failed at once) was never offered, so it has nothing to clear.
		if l.state != pbx.StateNull || makeCall {
			cause := clearCause(l, ch, ev.Cause)
			a.emit(pbx.Event{Kind: pbx.EventCleared, Call: l.ref, Cause: cause, Reason: ev.CauseTxt, CSTAID: l.cstaID, SIPCallID: ch.protocolID})
		}
	}
	delete(a.makeCalls, ch.id)
	if c := a.callOf[ch.id]; c != nil {
		a.memberGone(c, ch)
	}
}

func (a *Adapter) onEndpointState(ep *wireEndpoint) {
	ext, ok := a.byEndpoint[endpointKey(ep.Technology+"/"+ep.Resource)]
	if !ok {
		return
	}
	reg := !strings.EqualFold(ep.State, "offline")
	if prev, known := a.registered[ext]; known && prev == reg {
		return
	}
	a.registered[ext] = reg
	a.emit(pbx.Event{Kind: pbx.EventDevice, Call: pbx.CallRef{Ext: ext}, Registered: reg})
}
