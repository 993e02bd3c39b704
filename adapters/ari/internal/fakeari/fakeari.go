// Package fakeari is a fake Asterisk ARI server for the adapter's tests. It
// serves real HTTP and a real event websocket on 127.0.0.1, keeps a small
// model of channels and bridges, emits events shaped exactly like the ones
// captured from Asterisk 22 (shared/traces/asterisk), records every REST
// request, and can misbehave on demand: fail requests with a status, answer
// slowly, drop the websocket, restart with new ids, send unknown events or
// garbage frames, answer a request before the events it causes (late.go).
package fakeari

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// Options configures a fake server.
type Options struct {
	App, User, Pass string
	// Endpoints are the devices Asterisk knows ("PJSIP/1001"); others are
	// "Allocation failed".
	Endpoints []string
	// HangupContext is the context of the hangup handler the dialplan has
	// (leftovers.go): a channel's pushed handler runs only if it names
	// this context. "" models a dialplan without it.
	HangupContext string
	// Route: a channel continued (POST /channels/{id}/continue) to a
	// mapped extension comes back into the application through the
	// snippet by itself, as Reenter does (leftovers.go).
	Route bool
	// Apps are the dialplan's application numbers (apps.go): number →
	// what it runs; for AppTransfer the number is a prefix.
	Apps map[string]AppKind
	// EntityID is the Asterisk's entity id (asterisk.conf entityid), which
	// an ari-proxy announces it by; "" = 02:fc:00:00:00:01.
	EntityID string
}

// Request is one recorded REST call: parameters from the query and the
// JSON body are merged into Params.
type Request struct {
	Method, Path string
	Params       map[string]string
	Vars         map[string]string // originate variables
}

func (r Request) String() string { return r.Method + " " + r.Path }

// Channel is the fake's view of one channel.
type Channel struct {
	ID, Name, State string
	Endpoint        string
	CallerName      string
	CallerNum       string
	ConnName        string
	ConnNum         string
	Context, Exten  string
	Priority        int
	AppName         string
	AppData         string
	ProtocolID      string
	InStasis        bool
	Bridge          string
	Vars            map[string]string
	MOH             bool
	Muted           string // direction muted over ARI (dialplan.go): "", in, out or both
	created         time.Time
	dialedBy        string // channel id given as caller to /dial, or "originate"
	bridgePeer      string // Asterisk's BRIDGEPEER (leftovers.go)
	localPeer       string // the other half of a Local channel pair (leftovers.go)
	stasisOnAnswer  []string
	app             bool
	ariDialed       bool // dialled with POST /channels/{id}/dial
	appSeen         bool // the application subscribed to the channel itself (Stasis or created by it)
}

type bridge struct {
	ID, Name, Type string
	Channels       []string
	MOH            bool
}

type fault struct {
	method, path string
	match        func(Request) bool // instead of method and path, if set
	status       int
	body         string
	times        int
}

// Server is a running fake Asterisk.
type Server struct {
	URL string // http://127.0.0.1:port/ari

	opts Options
	hs   *httptest.Server

	mu          sync.Mutex
	entityID    string
	startup     time.Time
	generation  int
	channels    map[string]*Channel
	bridges     map[string]*bridge
	subs        map[string]bool
	known       map[string]bool
	autoAnswer  map[string]bool
	offline     map[string]bool
	requests    []Request
	faults      []*fault
	gates       []*Gate
	delay       time.Duration
	ws          *wsConn
	wsCount     int
	seq         int
	changed     chan struct{}
	filterTypes map[string]bool

	rings map[string]*ringAll // queue.go: by each of its channels' ids

	lateStasis, lateHangup bool         // late.go
	capture                *lateCapture // the current request's late events
	late                   []string     // frames waiting for FlushLate

	slowPhones   bool            // colp.go
	justAnswered map[string]bool // colp.go: channels answered over ARI, not yet updated
	loseStasis   int             // lost.go: StasisStart events still to drop
}

type wsConn struct {
	conn *websocket.Conn
	mu   sync.Mutex
	done chan struct{}
}

// New starts a fake server; Close it when done.
func New(o Options) *Server {
	if o.App == "" {
		o.App = "csta-bridge"
	}
	if o.User == "" {
		o.User = "bridge"
	}
	if o.Pass == "" {
		o.Pass = "secret"
	}
	s := &Server{
		opts:       o,
		entityID:   cmp.Or(o.EntityID, "02:fc:00:00:00:01"),
		startup:    time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC),
		channels:   map[string]*Channel{},
		bridges:    map[string]*bridge{},
		subs:       map[string]bool{},
		known:      map[string]bool{},
		autoAnswer: map[string]bool{},
		offline:    map[string]bool{},
		changed:    make(chan struct{}),
	}
	for _, e := range o.Endpoints {
		s.known[e] = true
	}
	mux := http.NewServeMux()
	mux.Handle("/ari/events", websocket.Server{Handler: s.serveWS, Handshake: s.wsHandshake})
	mux.HandleFunc("/ari/", s.serveREST)
	s.hs = httptest.NewServer(mux)
	s.URL = s.hs.URL + "/ari"
	return s
}

// Close stops the server and drops the websocket. Requests held by a Gate
// are let go.
func (s *Server) Close() {
	s.mu.Lock()
	gates := s.gates
	s.gates = nil
	s.mu.Unlock()
	for _, g := range gates {
		g.Release()
	}
	s.DropWebsocket()
	s.hs.CloseClientConnections()
	s.hs.Close()
}

// Options returns the credentials and app name the server expects.
func (s *Server) Options() Options { return s.opts }

// SetAutoAnswer makes a device answer calls to it at once (like a phone
// whose auto-answer policy accepts the bridge's headers).
func (s *Server) SetAutoAnswer(endpoint string, on bool) {
	s.mu.Lock()
	s.autoAnswer[endpoint] = on
	s.mu.Unlock()
}

// SetRegistered changes whether a device is registered and sends the
// EndpointStateChange Asterisk sends to subscribers.
func (s *Server) SetRegistered(endpoint string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offline[endpoint] = !on
	if !s.subs["endpoint:"+endpoint] {
		return
	}
	tech, res, _ := strings.Cut(endpoint, "/")
	state := "online"
	if !on {
		state = "offline"
	}
	s.event("EndpointStateChange", map[string]any{"endpoint": map[string]any{"technology": tech, "resource": res, "state": state, "channel_ids": []string{}}})
}

// Fail makes the next `times` requests whose method matches and whose path
// contains path answer status with body.
func (s *Server) Fail(method, path string, status int, body string, times int) {
	s.mu.Lock()
	s.faults = append(s.faults, &fault{method: method, path: path, status: status, body: body, times: times})
	s.mu.Unlock()
}

// SetDelay makes every REST answer wait d.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Requests returns the REST calls so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Subscriptions returns the application's event sources.
func (s *Server) Subscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.subs))
}

// Channel returns a copy of a channel, or nil.
func (s *Server) Channel(id string) *Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.channels[id]; c != nil {
		cp := *c
		cp.Vars = maps.Clone(c.Vars) // the fake writes the original under s.mu
		return &cp
	}
	return nil
}

// Channels returns copies of all channels.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Channel
	for _, c := range s.channels {
		cp := *c
		cp.Vars = maps.Clone(c.Vars)
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// BridgeChannels returns the channels in a bridge (nil if no such bridge).
func (s *Server) BridgeChannels(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.bridges[id]; b != nil {
		return append([]string{}, b.Channels...)
	}
	return nil
}

// Bridges returns the ids of all bridges.
func (s *Server) Bridges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.bridges))
}

// Changed returns a channel closed at the next change (request, event,
// connection); use it to wait without sleeping.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Server) bump() { // with s.mu held
	close(s.changed)
	s.changed = make(chan struct{})
}

// Connections is the number of websocket connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wsCount
}

// Connected says whether an event websocket is open.
func (s *Server) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws != nil
}

// DropWebsocket closes the event connection, as a network failure would.
func (s *Server) DropWebsocket() {
	s.mu.Lock()
	ws := s.ws
	s.ws = nil
	s.bump()
	s.mu.Unlock()
	if ws != nil {
		_ = ws.conn.Close()
	}
}

// Restart simulates an Asterisk restart: every channel, bridge and
// subscription is gone, the identity changes, the websocket drops.
func (s *Server) Restart() {
	s.mu.Lock()
	s.generation++
	if s.opts.EntityID == "" {
		// A set entityid survives a restart; the default is the MAC's.
		s.entityID = fmt.Sprintf("02:fc:00:00:%02x:01", s.generation)
	}
	s.startup = s.startup.Add(time.Hour)
	s.channels = map[string]*Channel{}
	s.bridges = map[string]*bridge{}
	s.subs = map[string]bool{}
	s.mu.Unlock()
	s.DropWebsocket()
}

// SendRaw sends one frame on the event websocket as is.
func (s *Server) SendRaw(data []byte) error {
	s.mu.Lock()
	ws := s.ws
	s.mu.Unlock()
	if ws == nil {
		return fmt.Errorf("fakeari: no websocket")
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return websocket.Message.Send(ws.conn, string(data))
}

// Replay sends captured events (the "data" of trace lines) verbatim, in
// order. The fake's own channel model does not see them.
func (s *Server) Replay(events []json.RawMessage) error {
	for _, e := range events {
		if err := s.SendRaw(e); err != nil {
			return err
		}
	}
	return nil
}

// --- websocket ---

func (s *Server) wsHandshake(cfg *websocket.Config, r *http.Request) error {
	if !s.authOK(r) {
		return fmt.Errorf("unauthorized")
	}
	if r.URL.Query().Get("app") != s.opts.App {
		return fmt.Errorf("unknown app")
	}
	return nil
}

func (s *Server) serveWS(conn *websocket.Conn) {
	c := &wsConn{conn: conn, done: make(chan struct{})}
	s.mu.Lock()
	old := s.ws
	s.ws = c
	s.wsCount++
	s.bump()
	s.mu.Unlock()
	if old != nil {
		old.mu.Lock()
		_ = websocket.Message.Send(old.conn, `{"type":"ApplicationReplaced","timestamp":"`+ts()+`","application":"`+s.opts.App+`","asterisk_id":"`+s.entityID+`"}`)
		old.mu.Unlock()
		_ = old.conn.Close()
	}
	// Read until the client goes; Asterisk ignores what clients send.
	var buf []byte
	for websocket.Message.Receive(conn, &buf) == nil {
	}
	s.mu.Lock()
	if s.ws == c {
		s.ws = nil
		s.bump()
	}
	s.mu.Unlock()
}

func (s *Server) authOK(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.opts.User+":"+s.opts.Pass))
	return h == want
}

func ts() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000-0700") }

// --- events ---

func (s *Server) chanJSON(c *Channel) map[string]any {
	return map[string]any{
		"id": c.ID, "name": c.Name, "state": c.State, "protocol_id": c.ProtocolID,
		"caller":      map[string]string{"name": c.CallerName, "number": c.CallerNum},
		"connected":   map[string]string{"name": c.ConnName, "number": c.ConnNum},
		"accountcode": "",
		"dialplan": map[string]any{"context": c.Context, "exten": c.Exten, "priority": c.Priority,
			"app_name": c.AppName, "app_data": c.AppData},
		"creationtime": c.created.UTC().Format("2006-01-02T15:04:05.000-0700"),
		"language":     "en",
	}
}

func (s *Server) bridgeJSON(b *bridge) map[string]any {
	return map[string]any{"id": b.ID, "technology": "simple_bridge", "bridge_type": b.Type,
		"bridge_class": "stasis", "creator": "Stasis", "name": b.Name, "channels": append([]string{}, b.Channels...),
		"creationtime": ts(), "video_mode": "talker"}
}

// event sends an event on the websocket, in the order of the calls;
// called with s.mu held.
func (s *Server) event(typ string, fields map[string]any) {
	fields["type"] = typ
	fields["timestamp"] = ts()
	fields["asterisk_id"] = s.entityID
	fields["application"] = s.opts.App
	data, _ := json.Marshal(fields)
	if s.captured(typ, string(data)) || s.lost(typ) {
		return
	}
	if s.ws != nil {
		ws := s.ws
		ws.mu.Lock()
		_ = websocket.Message.Send(ws.conn, string(data))
		ws.mu.Unlock()
	}
	s.bump()
}

func (s *Server) chanEvent(typ string, c *Channel, extra map[string]any) {
	if c.InStasis || c.app {
		c.appSeen = true
	}
	ch := s.chanJSON(c)
	if typ == "ChannelCreated" && strings.HasPrefix(c.Endpoint, "PJSIP/") {
		// Asterisk 22 announces a PJSIP channel before it has copied the
		// SIP Call-ID into protocol_id; the next event carries it.
		ch["protocol_id"] = ""
	}
	f := map[string]any{"channel": ch}
	for k, v := range extra {
		f[k] = v
	}
	s.event(typ, f)
	if s.twice(c) && !onceOnly[typ] {
		s.event(typ, f)
	}
}

// onceOnly are the channel events Asterisk sends once even when the
// application sees the channel through two subscriptions.
var onceOnly = map[string]bool{"ChannelCreated": true, "StasisStart": true, "StasisEnd": true,
	"ChannelEnteredBridge": true, "ChannelLeftBridge": true}

// twice says whether the application sees c through two subscriptions:
// the channel's own (it entered Stasis, or the application created it) and
// its endpoint's. Asterisk 22 then sends each channel-topic event twice,
// up to and including ChannelDestroyed.
func (s *Server) twice(c *Channel) bool {
	return c.appSeen && s.subs["endpoint:"+c.Endpoint]
}

// visible says whether the application gets events for c: Stasis channels
// and channels of subscribed endpoints.
func (s *Server) visible(c *Channel) bool {
	return c.InStasis || c.app || s.subs["endpoint:"+c.Endpoint]
}

func (s *Server) emitIf(typ string, c *Channel, extra map[string]any) {
	if s.visible(c) {
		s.chanEvent(typ, c, extra)
	}
}

// --- channel model ---

func (s *Server) newChannel(id, endpoint, state string) *Channel {
	s.seq++
	if id == "" {
		id = fmt.Sprintf("1795639%03d.%d", s.seq, 100+s.seq)
	}
	name := endpoint
	if strings.HasPrefix(endpoint, "Local/") {
		name = strings.TrimSuffix(endpoint, "/n") + fmt.Sprintf("-%08x;1", s.seq)
	} else {
		name = fmt.Sprintf("%s-%08x", endpoint, s.seq)
	}
	c := &Channel{ID: id, Name: name, State: state, Endpoint: endpoint, Vars: map[string]string{},
		ProtocolID: fmt.Sprintf("call-%d@fake", s.seq), created: time.Now(), Context: "default", Priority: 1}
	if num, ok := strings.CutPrefix(endpoint, "PJSIP/"); ok {
		c.CallerNum, c.CallerName = num, "Phone "+num
	}
	s.channels[id] = c
	return c
}

// PhoneDials simulates the device of endpoint dialling number, routed by
// the dialplan snippet into Stasis(app,dial,number). It returns the
// channel id.
//
// With no application connected, Stasis() fails at once and the snippet
// dials a mapped number's device directly, as a plain call (the caller's
// channel id is returned).
func (s *Server) PhoneDials(endpoint, number string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, ok := s.appAt(number); ok {
		c := s.newChannel("", endpoint, "Ring")
		c.Context = "from-internal"
		s.emitIf("ChannelCreated", c, nil)
		s.runApp(c, number)
		return c.ID
	}
	if to := "PJSIP/" + number; s.ws == nil && s.endpointOK(to) {
		a, _ := s.plainDial(endpoint, to)
		return a
	}
	c := s.newChannel("", endpoint, "Ring")
	c.Exten, c.Context = number, "from-internal"
	s.emitIf("ChannelCreated", c, nil)
	c.AppName, c.AppData, c.InStasis, c.Priority = "Stasis", s.opts.App+",dial,"+number, true, 2
	s.chanEvent("StasisStart", c, map[string]any{"args": []string{"dial", number}})
	return c.ID
}

// PlainDial simulates a call outside Stasis (Dial() in the dialplan) from
// endpoint `from` to the device `to`, ringing. It returns both channel ids.
func (s *Server) PlainDial(from, to string) (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plainDial(from, to)
}

func (s *Server) plainDial(from, to string) (string, string) {
	a := s.newChannel("", from, "Ring")
	a.Exten, a.Context = strings.TrimPrefix(to, "PJSIP/"), "from-internal"
	s.emitIf("ChannelCreated", a, nil)
	return a.ID, s.plainDialFrom(a, to)
}

// plainDialFrom is the Dial() of channel a, already in the dialplan, to
// the device `to`; it returns the dialled channel's id.
func (s *Server) plainDialFrom(a *Channel, to string) string {
	b := s.newChannel("", to, "Down")
	b.ConnName, b.ConnNum = a.CallerName, a.CallerNum
	// Dial() gives the dialled channel the caller's context and extension
	// (trace f: ChannelDialplan phones,1001 AppDial).
	b.Context, b.Exten = a.Context, a.Exten
	b.AppName, b.AppData = "AppDial", "(Outgoing Line)"
	b.dialedBy = a.ID
	s.emitIf("ChannelCreated", b, nil)
	s.emitIf("ChannelConnectedLine", b, nil)
	s.dialEvent(a, b, "")
	b.State = "Ringing"
	s.emitIf("ChannelStateChange", b, nil)
	s.dialEvent(a, b, "RINGING")
	return b.ID
}

func (s *Server) dialEvent(caller, peer *Channel, status string) {
	if !s.visible(peer) && (caller == nil || !s.visible(caller)) {
		return
	}
	f := map[string]any{"dialstatus": status, "forward": "", "dialstring": peer.Endpoint, "peer": s.chanJSON(peer)}
	if caller != nil {
		f["caller"] = s.chanJSON(caller)
	}
	s.event("Dial", f)
	if s.twice(peer) || (caller != nil && s.twice(caller)) {
		s.event("Dial", f)
	}
}

// Answer simulates the device of channel id answering (200 OK).
func (s *Server) Answer(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[id]
	if c == nil {
		return fmt.Errorf("fakeari: no channel %s", id)
	}
	s.answer(c)
	return nil
}

func (s *Server) answer(c *Channel) {
	if c.State == "Up" {
		return
	}
	c.State = "Up"
	s.emitIf("ChannelStateChange", c, nil)
	var caller *Channel
	if c.dialedBy != "" && c.dialedBy != "originate" {
		caller = s.channels[c.dialedBy]
	}
	if c.dialedBy != "" {
		s.dialEvent(caller, c, "ANSWER")
	}
	if caller != nil && !caller.InStasis && caller.State != "Up" {
		// Dial() answers the caller and bridges both (plain call).
		caller.State = "Up"
		caller.ConnName, caller.ConnNum = c.CallerName, c.CallerNum
		s.emitIf("ChannelConnectedLine", caller, nil)
		s.emitIf("ChannelStateChange", caller, nil)
		s.localUp(caller)
	}
	if c.stasisOnAnswer != nil {
		c.InStasis = true
		c.AppName, c.AppData = "Stasis", s.opts.App+","+strings.Join(c.stasisOnAnswer, ",")
		s.chanEvent("StasisStart", c, map[string]any{"args": c.stasisOnAnswer})
		c.stasisOnAnswer = nil
	}
}

// Hangup simulates the device of channel id hanging up (or rejecting) with
// a Q.850 cause.
func (s *Server) Hangup(id string, cause int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[id]
	if c == nil {
		return fmt.Errorf("fakeari: no channel %s", id)
	}
	s.emitIf("ChannelHangupRequest", c, map[string]any{"cause": cause})
	s.destroy(c, cause)
	return nil
}

// PhoneHold simulates the device sending a sendonly re-INVITE (or the
// reverse): ChannelHold / ChannelUnhold on its channel.
func (s *Server) PhoneHold(id string, hold bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[id]
	if c == nil {
		return fmt.Errorf("fakeari: no channel %s", id)
	}
	if hold {
		s.emitIf("ChannelHold", c, map[string]any{"musicclass": "default"})
	} else {
		s.emitIf("ChannelUnhold", c, nil)
	}
	return nil
}

var causeText = map[int]string{0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "No user responding",
	21: "Call Rejected", 26: "Answered elsewhere", 32: "Circuit/channel congestion", 127: "Interworking, unspecified"}

func (s *Server) destroy(c *Channel, cause int) {
	if b := s.bridges[c.Bridge]; b != nil {
		b.Channels = remove(b.Channels, c.ID)
		s.left(c, b)
		s.event("ChannelLeftBridge", map[string]any{"channel": s.chanJSON(c), "bridge": s.bridgeJSON(b)})
	}
	// A channel that hangs up in the application gets its
	// ChannelDestroyed after the StasisEnd, as on Asterisk 22.
	seen := s.visible(c)
	if c.InStasis {
		c.InStasis = false
		s.chanEvent("StasisEnd", c, nil)
	}
	// A plain Dial() peer that never answered reports its status to the
	// caller. A channel dialled over ARI (POST /channels/{id}/dial) does
	// not: Asterisk 22 sends no final Dial event for it, whether the phone
	// rejects it or the application hangs it up.
	if c.dialedBy != "" && c.State != "Up" && !c.ariDialed {
		var caller *Channel
		if c.dialedBy != "originate" {
			caller = s.channels[c.dialedBy]
		}
		status := "CANCEL"
		switch cause {
		case 17:
			status = "BUSY"
		case 19, 0:
			status = "NOANSWER"
		case 21:
			status = "BUSY"
		}
		s.dialEvent(caller, c, status)
	}
	delete(s.channels, c.ID)
	if seen {
		s.chanEvent("ChannelDestroyed", c, map[string]any{"cause": cause, "cause_txt": causeText[cause]})
	}
	s.ringAllGone(c)
	s.plainDialGone(c)
	s.hangupHandler(c)
	s.localGone(c, cause)
}

// plainDialGone ends the other side of a plain Dial() (outside Stasis)
// when one side goes, as app_dial does: the caller's end cancels the
// ringing peer; either side's end of an answered call hangs up the other.
func (s *Server) plainDialGone(c *Channel) {
	var partners []*Channel
	if c.dialedBy != "" && c.dialedBy != "originate" && !c.ariDialed && c.State == "Up" {
		if caller := s.channels[c.dialedBy]; caller != nil && !caller.InStasis {
			partners = append(partners, caller)
		}
	}
	if !c.InStasis {
		for _, o := range s.channels {
			if o.dialedBy == c.ID && !o.ariDialed && !o.InStasis {
				partners = append(partners, o)
			}
		}
	}
	for _, o := range partners {
		if s.channels[o.ID] == nil {
			continue
		}
		s.emitIf("ChannelHangupRequest", o, map[string]any{"cause": 16})
		s.destroy(o, 16)
	}
}

func remove(list []string, id string) []string {
	out := list[:0]
	for _, x := range list {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// --- REST ---

func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	if !s.authOK(r) {
		w.Header().Set("Www-Authenticate", `Basic realm="Asterisk REST Interface"`)
		writeJSON(w, 401, map[string]string{"message": "Authentication required"})
		return
	}
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = strings.Join(v, ",")
	}
	var vars map[string]string
	if body, _ := io.ReadAll(r.Body); len(strings.TrimSpace(string(body))) > 0 {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			writeJSON(w, 400, map[string]string{"message": "bad JSON body"})
			return
		}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				params[k] = v
			case float64:
				params[k] = fmt.Sprint(v)
			case bool:
				params[k] = fmt.Sprint(v)
			case map[string]any:
				if k == "variables" {
					vars = map[string]string{}
					for vk, vv := range v {
						vars[vk] = fmt.Sprint(vv)
					}
				}
			}
		}
	}
	path := strings.TrimPrefix(r.URL.Path, "/ari")
	s.mu.Lock()
	req := Request{Method: r.Method, Path: path, Params: params, Vars: vars}
	s.requests = append(s.requests, req)
	s.bump()
	delay := s.delay
	var f *fault
	for _, x := range s.faults {
		if x.times > 0 && x.matches(req) {
			x.times--
			f = x
			break
		}
	}
	g := s.takeGate(req)
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if g != nil && !g.afterEffect && !g.hold(r.Context()) {
		return
	}
	if f != nil {
		if g != nil && g.afterEffect && !g.hold(r.Context()) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, f.body)
		return
	}
	s.mu.Lock()
	late := s.lateFor(r.Method, path)
	s.capture = late
	status, body := s.route(r.Method, path, params, vars)
	s.capture = nil
	s.mu.Unlock()
	// Late events go out even when the answer does not (client gone,
	// connection dropped by a Gate).
	replied := false
	defer func() { s.afterReply(w, late, replied) }()
	if g != nil && g.afterEffect && !g.hold(r.Context()) {
		return
	}
	replied = true
	if body == nil {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func msg(m string) map[string]string { return map[string]string{"message": m} }

var notInStasis = msg("Channel not in Stasis application")

// route answers one request; called with s.mu held.
func (s *Server) route(method, path string, p, vars map[string]string) (int, any) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := range parts {
		parts[i], _ = url.PathUnescape(parts[i])
	}
	switch {
	case method == "GET" && path == "/asterisk/info":
		return 200, map[string]any{
			"build":  map[string]any{"os": "Linux"},
			"system": map[string]any{"version": "22.10.1", "entity_id": s.entityID},
			"config": map[string]any{"name": "fake", "default_language": "en"},
			"status": map[string]any{"startup_time": s.startup.Format("2006-01-02T15:04:05.000-0700"),
				"last_reload_time": s.startup.Format("2006-01-02T15:04:05.000-0700")},
		}
	case parts[0] == "applications" && len(parts) == 2 && method == "GET":
		if parts[1] != s.opts.App {
			return 404, msg("Application not found")
		}
		chans, eps := []string{}, []string{}
		for _, c := range s.channels {
			if c.InStasis {
				chans = append(chans, c.ID)
			}
		}
		for src := range s.subs {
			if ep, ok := strings.CutPrefix(src, "endpoint:"); ok {
				eps = append(eps, ep)
			}
		}
		slices.Sort(chans)
		slices.Sort(eps)
		return 200, map[string]any{"name": s.opts.App, "channel_ids": chans, "bridge_ids": []string{},
			"endpoint_ids": eps, "device_names": []string{}}
	case parts[0] == "applications" && len(parts) == 3 && parts[2] == "subscription":
		if parts[1] != s.opts.App {
			return 404, msg("Application not found")
		}
		src := p["eventSource"]
		ep, ok := strings.CutPrefix(src, "endpoint:")
		if !ok || !s.known[ep] {
			return 422, msg("Event source does not exist")
		}
		if method == "DELETE" {
			delete(s.subs, src)
		} else {
			s.subs[src] = true
		}
		return 200, map[string]any{"name": s.opts.App}
	case parts[0] == "endpoints" && len(parts) == 3 && method == "GET":
		ep := parts[1] + "/" + parts[2]
		if !s.known[ep] {
			return 404, msg("Endpoint not found")
		}
		state := "online"
		if s.offline[ep] {
			state = "offline"
		}
		return 200, map[string]any{"technology": parts[1], "resource": parts[2], "state": state, "channel_ids": []string{}}
	case parts[0] == "channels":
		return s.routeChannels(method, parts[1:], p, vars)
	case parts[0] == "bridges":
		return s.routeBridges(method, parts[1:], p)
	}
	return 404, msg("Resource not found")
}

func (s *Server) routeChannels(method string, parts []string, p, vars map[string]string) (int, any) {
	if len(parts) == 0 {
		switch method {
		case "GET":
			var out []any
			ids := make([]string, 0, len(s.channels))
			for id := range s.channels {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				out = append(out, s.chanJSON(s.channels[id]))
			}
			if out == nil {
				out = []any{}
			}
			return 200, out
		case "POST":
			return s.originate(p, vars)
		}
		return 405, msg("Method not allowed")
	}
	if parts[0] == "create" && method == "POST" {
		ep := p["endpoint"]
		if !s.endpointOK(ep) {
			return 500, map[string]string{"error": "Allocation failed"}
		}
		c := s.newChannel(p["channelId"], ep, "Down")
		c.app = true
		s.chanEvent("ChannelCreated", c, nil)
		args := splitArgs(p["appArgs"])
		c.InStasis, c.AppName, c.AppData, c.Exten = true, "Stasis", s.opts.App+","+p["appArgs"], "s"
		s.chanEvent("StasisStart", c, map[string]any{"args": args})
		return 200, s.chanJSON(c)
	}
	c := s.channels[parts[0]]
	if c == nil {
		return 404, msg("Channel not found")
	}
	if len(parts) == 1 {
		switch method {
		case "GET":
			return 200, s.chanJSON(c)
		case "DELETE":
			cause := map[string]int{"": 16, "normal": 16, "busy": 17, "no_answer": 19, "rejected": 21,
				"answered_elsewhere": 26, "congestion": 34, "unallocated": 1, "failure": 41}[p["reason"]]
			s.emitIf("ChannelHangupRequest", c, map[string]any{"cause": 32})
			s.destroy(c, cause)
			return 204, nil
		}
		return 405, msg("Method not allowed")
	}
	op := parts[1]
	if op == "variable" && method == "GET" {
		v, ok := c.Vars[p["variable"]]
		if !ok {
			return 404, msg("Provided variable was not found")
		}
		return 200, map[string]string{"value": v}
	}
	if !c.InStasis {
		return 409, notInStasis
	}
	switch op + " " + method {
	case "variable POST":
		c.Vars[p["variable"]] = p["value"]
		s.emitIf("ChannelVarset", c, map[string]any{"variable": p["variable"], "value": p["value"]})
	case "ring POST", "ring DELETE", "hold POST", "hold DELETE", "dtmf POST":
	case "mute POST", "mute DELETE":
		s.mute(c, method, p["direction"])
	// Asterisk 22.10.1 answers 204 to both whatever the music does: starting
	// the class that already plays changes nothing, stopping music that
	// does not play is a no-op. The music keeps playing when the channel
	// joins a bridge.
	case "moh POST":
		c.MOH = true
	case "moh DELETE":
		c.MOH = false
	case "answer POST":
		if c.State != "Up" {
			c.State = "Up"
			s.emitIf("ChannelStateChange", c, nil)
			s.answeredByApp(c)
		}
		s.localUp(c)
		s.ringAllAnswered(c)
	case "continue POST":
		if b := s.bridges[c.Bridge]; b != nil {
			b.Channels = remove(b.Channels, c.ID)
			s.left(c, b)
			s.event("ChannelLeftBridge", map[string]any{"channel": s.chanJSON(c), "bridge": s.bridgeJSON(b)})
			c.Bridge = ""
		}
		c.InStasis = false
		c.AppName, c.AppData = "", ""
		s.chanEvent("StasisEnd", c, nil)
		if p["context"] != "" {
			c.Context = p["context"]
		}
		if p["extension"] != "" {
			c.Exten = p["extension"]
		}
		s.continueRoute(c)
	case "dial POST":
		if c.State != "Down" {
			return 409, msg("Channel is not in the 'Down' state")
		}
		caller := s.channels[p["caller"]]
		if caller != nil {
			c.ConnName, c.ConnNum = caller.CallerName, caller.CallerNum
			s.emitIf("ChannelConnectedLine", c, nil)
		}
		c.dialedBy, c.ariDialed = "originate", true
		s.dialEvent(nil, c, "")
		c.State = "Ringing"
		s.emitIf("ChannelStateChange", c, nil)
		s.dialEvent(nil, c, "RINGING")
		if s.autoAnswer[c.Endpoint] {
			s.answer(c)
		}
		if !s.localApp(c, caller) {
			s.localRoute(c, caller)
		}
	default:
		return 404, msg("Resource not found")
	}
	return 204, nil
}

func (s *Server) endpointOK(ep string) bool {
	return s.known[ep] || strings.HasPrefix(ep, "Local/")
}

func splitArgs(a string) []string {
	if a == "" {
		return []string{}
	}
	return strings.Split(a, ",")
}

func (s *Server) originate(p, vars map[string]string) (int, any) {
	ep := p["endpoint"]
	if ep == "" {
		return 400, msg("Endpoint must be specified")
	}
	if !s.endpointOK(ep) {
		return 500, map[string]string{"error": "Allocation failed"}
	}
	c := s.newChannel(p["channelId"], ep, "Down")
	for k, v := range vars {
		c.Vars[k] = v
	}
	if cid := p["callerId"]; cid != "" {
		name, num := parseCallerID(cid)
		c.CallerName, c.CallerNum = name, num
	}
	c.Exten, c.AppName, c.AppData = "s", "AppDial2", "(Outgoing Line)"
	c.dialedBy = "originate"
	if p["app"] != "" {
		c.app = true
		c.stasisOnAnswer = splitArgs(p["appArgs"])
	}
	s.emitIf("ChannelCreated", c, nil)
	if ch, ok := vars["CONNECTEDLINE(num)"]; ok {
		c.ConnNum = ch
		s.emitIf("ChannelConnectedLine", c, nil)
	}
	s.dialEvent(nil, c, "")
	if s.autoAnswer[ep] {
		s.answer(c)
	} else {
		c.State = "Ringing"
		s.emitIf("ChannelStateChange", c, nil)
		s.dialEvent(nil, c, "RINGING")
	}
	return 200, s.chanJSON(c)
}

func parseCallerID(s string) (string, string) {
	if i := strings.IndexByte(s, '<'); i >= 0 {
		name := strings.Trim(strings.TrimSpace(s[:i]), `"`)
		num := strings.TrimSuffix(s[i+1:], ">")
		return name, num
	}
	return "", s
}

func (s *Server) routeBridges(method string, parts []string, p map[string]string) (int, any) {
	if len(parts) == 0 {
		switch method {
		case "GET":
			out := []any{}
			for _, b := range s.bridges {
				out = append(out, s.bridgeJSON(b))
			}
			return 200, out
		case "POST":
			return s.createBridge(p["bridgeId"], p)
		}
		return 405, msg("Method not allowed")
	}
	if len(parts) == 1 && method == "POST" {
		// POST /bridges/{bridgeId}: create with the client's id.
		return s.createBridge(parts[0], p)
	}
	b := s.bridges[parts[0]]
	if b == nil {
		return 404, msg("Bridge not found")
	}
	if len(parts) == 1 {
		switch method {
		case "GET":
			return 200, s.bridgeJSON(b)
		case "DELETE":
			for _, id := range b.Channels {
				if c := s.channels[id]; c != nil {
					c.Bridge = ""
					c.bridgePeer = ""
				}
			}
			delete(s.bridges, b.ID)
			s.event("BridgeDestroyed", map[string]any{"bridge": s.bridgeJSON(b)})
			return 204, nil
		}
		return 405, msg("Method not allowed")
	}
	switch parts[1] + " " + method {
	// Both answer like Asterisk 22.10.1 (checked on a real one): a missing,
	// unknown or non-Stasis channel in the list refuses the whole request
	// before anything is done.
	case "addChannel POST":
		cs, status, body := s.stasisChannels(p["channel"])
		if cs == nil {
			return status, body
		}
		for _, c := range cs {
			// Asterisk takes a channel out of whatever bridge it is in,
			// this one included, before it joins: adding a channel to the
			// bridge it is already in answers 204 and sends its
			// ChannelLeftBridge and ChannelEnteredBridge for that bridge.
			if old := s.bridges[c.Bridge]; old != nil {
				old.Channels = remove(old.Channels, c.ID)
				c.Bridge = ""
				s.left(c, old)
				s.event("ChannelLeftBridge", map[string]any{"channel": s.chanJSON(c), "bridge": s.bridgeJSON(old)})
			}
			c.Bridge = b.ID
			b.Channels = append(b.Channels, c.ID)
			s.peers(b)
			s.event("ChannelEnteredBridge", map[string]any{"channel": s.chanJSON(c), "bridge": s.bridgeJSON(b)})
		}
		s.joined(b, cs)
		return 204, nil
	case "removeChannel POST":
		cs, status, body := s.stasisChannels(p["channel"])
		if cs == nil {
			return status, body
		}
		for _, c := range cs {
			if c.Bridge != b.ID {
				return 422, msg("Channel not in this bridge")
			}
		}
		for _, c := range cs {
			c.Bridge = ""
			b.Channels = remove(b.Channels, c.ID)
			s.left(c, b)
			s.event("ChannelLeftBridge", map[string]any{"channel": s.chanJSON(c), "bridge": s.bridgeJSON(b)})
		}
		return 204, nil
	case "moh POST":
		b.MOH = true
		return 204, nil
	case "moh DELETE":
		b.MOH = false
		return 204, nil
	}
	return 404, msg("Resource not found")
}

// stasisChannels looks up the channel parameter of addChannel and
// removeChannel (a comma separated list). When it is not usable it returns
// nil and Asterisk's answer: 400 for a missing parameter or an unknown
// channel, 422 for a channel outside Stasis.
func (s *Server) stasisChannels(param string) ([]*Channel, int, any) {
	if param == "" {
		return nil, 400, msg("Missing parameter channel")
	}
	var cs []*Channel
	for _, id := range strings.Split(param, ",") {
		c := s.channels[id]
		if c == nil {
			return nil, 400, msg("Channel not found")
		}
		if !c.InStasis {
			return nil, 422, msg("Channel not in Stasis application")
		}
		cs = append(cs, c)
	}
	return cs, 0, nil
}

func (s *Server) createBridge(id string, p map[string]string) (int, any) {
	if id == "" {
		s.seq++
		id = fmt.Sprintf("bridge-%d", s.seq)
	}
	if s.bridges[id] != nil {
		return 409, msg("Bridge with this id already exists")
	}
	b := &bridge{ID: id, Name: p["name"], Type: p["type"]}
	s.bridges[id] = b
	s.event("BridgeCreated", map[string]any{"bridge": s.bridgeJSON(b)})
	return 200, s.bridgeJSON(b)
}
