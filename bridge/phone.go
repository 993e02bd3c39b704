package bridge

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// phone is one virtual Snom phone: an extension with its calls. Only the
// switchboard goroutine touches it.
type phone struct {
	cfg      config.Extension
	localIP  string            // the extension's own listen IP, "" when it has none
	runtime  map[string]string // settings changed at run time (/dummy.htm); override cfg.Settings
	calls    map[int]*call     // by csta_id
	byRef    map[string]*call  // by pbx.CallRef.ID
	lastIn   int               // last csta_id given to an incoming call (negative, counts down)
	lastOut  int               // last csta_id given to a placed call (positive, counts up)
	offhook  bool              // the virtual handset is lifted (a call is initiated, connected or held)
	mac      string
	setupped bool   // action_setup_url has fired
	keys     keypad // what /command.htm key presses typed so far
}

func newPhone(cfg config.Extension) *phone {
	p := &phone{
		calls: make(map[int]*call),
		byRef: make(map[string]*call),
	}
	p.configure(cfg)
	return p
}

// configure applies a (re)loaded extension config; live calls stay.
func (p *phone) configure(cfg config.Extension) {
	p.cfg = cfg
	p.localIP = listenIP(cfg.Listen)
	p.mac = virtualMAC(cfg.Name)
}

// listenIP returns the specific IP of a listen address, "" for none or a wildcard.
func listenIP(listen string) string {
	if listen == "" {
		return ""
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsUnspecified() {
		return ""
	}
	return ip.String()
}

// virtualMAC gives each extension a stable Snom-looking MAC (Snom's OUI is
// 00:04:13) for $mac, so CTI software that keys phones by MAC keeps working.
func virtualMAC(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("000413%06X", h.Sum32()&0xFFFFFF)
}

// setting returns a Snom setting of this phone: run-time value first, then the config.
func (p *phone) setting(name string) (string, bool) {
	if v, ok := p.runtime[name]; ok {
		return v, true
	}
	v, ok := p.cfg.Settings[name]
	return v, ok
}

// localURI is the phone's identity as a SIP URI ($local, $active_url).
func (p *phone) localURI() string { return localURI(p.cfg.Name, p.cfg.Domain) }

func localURI(name, domain string) string { return "sip:" + name + "@" + domain }

// newID numbers a call the way a Snom phone does: negative for incoming,
// positive for calls the phone placed, never reused while the bridge runs.
func (p *phone) newID(dir pbx.Direction) int {
	if dir == pbx.Incoming {
		p.lastIn--
		return p.lastIn
	}
	p.lastOut++
	return p.lastOut
}

// reserveID takes over a csta_id the PBX remembered for a call (bridge
// restart); ok is false when it cannot be used and a new one must be given.
func (p *phone) reserveID(id int, dir pbx.Direction) bool {
	if id == 0 || p.calls[id] != nil {
		return false
	}
	if (dir == pbx.Incoming) != (id < 0) {
		return false
	}
	if id < p.lastIn {
		p.lastIn = id
	}
	if id > p.lastOut {
		p.lastOut = id
	}
	return true
}

func (p *phone) add(c *call) {
	p.calls[c.id] = c
	p.byRef[c.ref.ID] = c
}

func (p *phone) remove(c *call) {
	delete(p.calls, c.id)
	delete(p.byRef, c.ref.ID)
}

// only returns the phone's single call that matches, for clients that name a
// connection by device instead of by call id.
func (p *phone) only(match func(*call) bool) *call {
	var found *call
	for _, c := range p.calls {
		if match(c) {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}

// matchesDevice tells whether a CSTA device id (MakeCall callingDevice) names
// this phone: its user name, user@host or sip:user@host (Snom compares the
// user name of each identity).
func (p *phone) matchesDevice(dev string) bool {
	dev = strings.TrimSpace(dev)
	if dev == "" {
		return true
	}
	return userPart(dev) == p.cfg.Name
}

// userPart strips scheme, host, port and parameters: "sip:1001@pbx;x=y" → "1001".
func userPart(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	}
	for _, scheme := range []string{"sips:", "sip:", "tel:"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			s = s[len(scheme):]
			break
		}
	}
	if i := strings.IndexAny(s, "@;?"); i >= 0 {
		s = s[:i]
	}
	return s
}

// call is one connection of a phone.
type call struct {
	id          int
	ref         pbx.CallRef
	dir         pbx.Direction
	state       pbx.State
	remote      pbx.Party
	sipCallID   string
	headers     map[string]string
	answered    bool  // was ever connected: a later clear is a disconnect, not a missed call
	pending     bool  // MakeCall not yet accepted by the PBX: invisible to action URLs and resync
	transferred bool  // action_transfer has fired
	conf        *call // the other call of a three-party conference this one is in
	created     time.Time
	noAnswer    *time.Timer // forward on no answer (divert.go)
}
