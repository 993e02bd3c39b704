package ari

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/nats-io/nats.go"
)

// proxyTransport reaches one Asterisk of a cluster through the ari-proxy
// beside it: REST as ari-proxy requests addressed to that node, events
// from the node's NATS subject. The node is the Asterisk's entity id,
// which its proxy announces.
type proxyTransport struct {
	bus  *proxyBus
	node string
}

func (t *proxyTransport) where() string { return "ari-proxy node " + t.node + " via " + t.bus.where() }

// callIDs: the proxy re-encodes events through the ari library's types,
// which have no protocol_id.
func (t *proxyTransport) callIDs() bool { return false }

func (t *proxyTransport) client() (ari.Client, error) {
	return &nodeClient{bus: t.bus, node: t.node, app: t.bus.o.Application}, nil
}

// events subscribes to the node's events. The feed fails when the NATS
// connection drops: what the proxy published meanwhile is lost, so the
// session ends and the next one resyncs.
func (t *proxyTransport) events(ctx context.Context) (eventFeed, error) {
	lost := t.bus.lostSignal()
	if !t.bus.nc.IsConnected() {
		return nil, errors.New("not connected to NATS")
	}
	f := &natsFeed{lost: lost, done: make(chan struct{})}
	q := newQueue[[]byte]()
	f.q = q
	sub, err := t.bus.nc.Subscribe(t.bus.eventSubject(t.node), func(m *nats.Msg) { q.push(m.Data) })
	if err != nil {
		return nil, err
	}
	// Unbounded on the adapter's side (the queue), so NATS never drops
	// a slow consumer's events.
	_ = sub.SetPendingLimits(-1, -1)
	// The subscription is only live once the server has it: a flush makes
	// sure the resync that follows misses no event.
	fctx, cancel := context.WithTimeout(ctx, t.bus.o.RequestTimeout)
	defer cancel()
	if err := t.bus.nc.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	f.sub = sub
	return f, nil
}

type natsFeed struct {
	sub  *nats.Subscription
	q    *queue[[]byte]
	lost <-chan struct{}
	done chan struct{}
}

func (f *natsFeed) run(push func([]byte)) error {
	for {
		for f.q.len() > 0 {
			b, _ := f.q.pop(context.Background())
			push(b)
		}
		select {
		case <-f.q.signal:
		case <-f.lost:
			return errors.New("NATS connection lost")
		case <-f.done:
			return errors.New("closed")
		}
	}
}

func (f *natsFeed) close() {
	_ = f.sub.Unsubscribe()
	select {
	case <-f.done:
	default:
		close(f.done)
	}
}

// channels lists the channels in the application on this node. Through
// ari-proxy the channel data has no dialplan application, so the
// application's own list says which channels are in its Stasis, and their
// arguments are not known: a caller the dialplan sent there to reach a
// number is taken to dial its dialplan extension (Stasis(app,dial,${EXTEN})
// in the csta-bridge snippet).
func (t *proxyTransport) channels(ctx context.Context) ([]rawChannel, error) {
	cl, _ := t.client()
	app := t.bus.o.Application
	var ad *ari.ApplicationData
	err := t.bus.call(ctx, func() (err error) {
		ad, err = cl.Application().Data(ari.NewKey(ari.ApplicationKey, app))
		return
	})
	if err != nil {
		return nil, err
	}
	out := make([]rawChannel, 0, len(ad.ChannelIDs))
	for _, id := range ad.ChannelIDs {
		var d *ari.ChannelData
		err := t.bus.call(ctx, func() (err error) { d, err = cl.Channel().Data(ari.NewKey(ari.ChannelKey, id)); return })
		if err != nil {
			if httpStatus(err) == 404 {
				continue
			}
			return nil, err
		}
		rc := rawChannel{ID: d.ID, Name: d.Name, State: d.State}
		rc.Dialplan.AppName = "Stasis"
		rc.Dialplan.AppData = app
		if d.Dialplan != nil && validNumber(d.Dialplan.Exten) {
			rc.Dialplan.AppData += "," + argDial + "," + d.Dialplan.Exten
		}
		out = append(out, rc)
	}
	return out, nil
}

func (t *proxyTransport) bridges(ctx context.Context) ([]rawBridge, error) {
	cl, _ := t.client()
	var keys []*ari.Key
	if err := t.bus.call(ctx, func() (err error) { keys, err = cl.Bridge().List(nil); return }); err != nil {
		return nil, err
	}
	out := make([]rawBridge, 0, len(keys))
	for _, k := range keys {
		var d *ari.BridgeData
		err := t.bus.call(ctx, func() (err error) { d, err = cl.Bridge().Data(k); return })
		if err != nil {
			if httpStatus(err) == 404 {
				continue
			}
			return nil, err
		}
		out = append(out, rawBridge{ID: d.ID, Name: d.Name, Channels: d.ChannelIDs})
	}
	return out, nil
}

// nodeClient is the ari.Client of one node: every key it is given is
// addressed to the node and the application, so ari-proxy sends the
// request to that node's proxy alone (an unaddressed request would go to
// every proxy, and channel ids are not unique across Asterisks). It
// implements what the adapter uses; the rest of ari.Client is not
// available through it.
type nodeClient struct {
	ari.Client // nil: the methods the adapter does not use
	bus        *proxyBus
	node, app  string
}

func (n *nodeClient) key(k *ari.Key) *ari.Key {
	if k == nil {
		return ari.NewKey("", "", ari.WithNode(n.node), ari.WithApp(n.app))
	}
	c := ari.NewKey(k.Kind, k.ID, ari.WithNode(n.node), ari.WithApp(n.app))
	c.Dialog = k.Dialog
	return c
}

func (n *nodeClient) ApplicationName() string { return n.app }

func (n *nodeClient) Asterisk() ari.Asterisk {
	return nodeAsterisk{n.bus.get().Asterisk(), n}
}
func (n *nodeClient) Application() ari.Application {
	return nodeApplication{n.bus.get().Application(), n}
}
func (n *nodeClient) Endpoint() ari.Endpoint { return nodeEndpoint{n.bus.get().Endpoint(), n} }
func (n *nodeClient) Bridge() ari.Bridge     { return nodeBridge{n.bus.get().Bridge(), n} }
func (n *nodeClient) Channel() ari.Channel   { return nodeChannel{n.bus.get().Channel(), n} }

type nodeAsterisk struct {
	ari.Asterisk
	n *nodeClient
}

// Info is the health check's request: its failure tells the bus whether the
// ari-proxy client's connection is beyond repair.
func (x nodeAsterisk) Info(k *ari.Key) (*ari.AsteriskInfo, error) {
	info, err := x.Asterisk.Info(x.n.key(k))
	x.n.bus.check(err)
	return info, err
}

type nodeApplication struct {
	ari.Application
	n *nodeClient
}

func (x nodeApplication) Data(k *ari.Key) (*ari.ApplicationData, error) {
	return x.Application.Data(x.n.key(k))
}
func (x nodeApplication) Subscribe(k *ari.Key, src string) error {
	return x.Application.Subscribe(x.n.key(k), src)
}
func (x nodeApplication) Unsubscribe(k *ari.Key, src string) error {
	return x.Application.Unsubscribe(x.n.key(k), src)
}

type nodeEndpoint struct {
	ari.Endpoint
	n *nodeClient
}

func (x nodeEndpoint) Data(k *ari.Key) (*ari.EndpointData, error) { return x.Endpoint.Data(x.n.key(k)) }

type nodeBridge struct {
	ari.Bridge
	n *nodeClient
}

func (x nodeBridge) List(k *ari.Key) ([]*ari.Key, error)      { return x.Bridge.List(x.n.key(k)) }
func (x nodeBridge) Data(k *ari.Key) (*ari.BridgeData, error) { return x.Bridge.Data(x.n.key(k)) }
func (x nodeBridge) Delete(k *ari.Key) error                  { return x.Bridge.Delete(x.n.key(k)) }
func (x nodeBridge) AddChannel(k *ari.Key, ch string) error {
	return x.Bridge.AddChannel(x.n.key(k), ch)
}
func (x nodeBridge) RemoveChannel(k *ari.Key, ch string) error {
	return x.Bridge.RemoveChannel(x.n.key(k), ch)
}
func (x nodeBridge) Create(k *ari.Key, t, name string) (*ari.BridgeHandle, error) {
	return x.Bridge.Create(x.n.key(k), t, name)
}

type nodeChannel struct {
	ari.Channel
	n *nodeClient
}

func (x nodeChannel) List(k *ari.Key) ([]*ari.Key, error)       { return x.Channel.List(x.n.key(k)) }
func (x nodeChannel) Data(k *ari.Key) (*ari.ChannelData, error) { return x.Channel.Data(x.n.key(k)) }
func (x nodeChannel) Hangup(k *ari.Key, reason string) error {
	return x.Channel.Hangup(x.n.key(k), reason)
}
func (x nodeChannel) Answer(k *ari.Key) error                { return x.Channel.Answer(x.n.key(k)) }
func (x nodeChannel) Ring(k *ari.Key) error                  { return x.Channel.Ring(x.n.key(k)) }
func (x nodeChannel) MOH(k *ari.Key, class string) error     { return x.Channel.MOH(x.n.key(k), class) }
func (x nodeChannel) StopMOH(k *ari.Key) error               { return x.Channel.StopMOH(x.n.key(k)) }
func (x nodeChannel) Mute(k *ari.Key, d ari.Direction) error { return x.Channel.Mute(x.n.key(k), d) }
func (x nodeChannel) Unmute(k *ari.Key, d ari.Direction) error {
	return x.Channel.Unmute(x.n.key(k), d)
}
func (x nodeChannel) Continue(k *ari.Key, ctx, ext string, prio int) error {
	return x.Channel.Continue(x.n.key(k), ctx, ext, prio)
}
func (x nodeChannel) SendDTMF(k *ari.Key, dtmf string, o *ari.DTMFOptions) error {
	return x.Channel.SendDTMF(x.n.key(k), dtmf, o)
}
func (x nodeChannel) GetVariable(k *ari.Key, name string) (string, error) {
	return x.Channel.GetVariable(x.n.key(k), name)
}
func (x nodeChannel) SetVariable(k *ari.Key, name, value string) error {
	return x.Channel.SetVariable(x.n.key(k), name, value)
}
func (x nodeChannel) Originate(k *ari.Key, r ari.OriginateRequest) (*ari.ChannelHandle, error) {
	return x.Channel.Originate(x.n.key(k), r)
}
func (x nodeChannel) Create(k *ari.Key, r ari.ChannelCreateRequest) (*ari.ChannelHandle, error) {
	return x.Channel.Create(x.n.key(k), r)
}
func (x nodeChannel) Dial(k *ari.Key, caller string, timeout time.Duration) error {
	return x.Channel.Dial(x.n.key(k), caller, timeout)
}

// proxyErrStatus reads the HTTP status an ari-proxy carried as text: its
// responses hold the error message only ("...Non-2XX response: 404 Not
// Found").
func proxyErrStatus(msg string) int {
	const marker = "Non-2XX response: "
	i := strings.LastIndex(msg, marker)
	if i < 0 || len(msg) < i+len(marker)+3 {
		return 0
	}
	st := 0
	for _, c := range msg[i+len(marker) : i+len(marker)+3] {
		if c < '0' || c > '9' {
			return 0
		}
		st = st*10 + int(c-'0')
	}
	return st
}
