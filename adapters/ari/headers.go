package ari

import (
	"context"
	"net/textproto"
	"strings"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// varSIPHeaders is the channel variable a dialplan sets on a call before
// it reaches the bridge's route, to have SIP headers on the INVITE that
// rings the phone: "Name: value", several separated by "|". Set with a
// double underscore (Set(__CSTA_SIP_HEADERS=X-Customer: 4711)) it is
// inherited by the Local channels of a queue or ring group. The bridge
// adds the headers to the device's INVITE (PJSIP_HEADER(add,Name)) and
// reports them as the call's $sip_header(Name).
const varSIPHeaders = "CSTA_SIP_HEADERS"

// passHeaders reads the caller aID's CSTA_SIP_HEADERS and puts them on the
// device channel bID before it is dialled. A caller without the variable
// (Asterisk answers 404, or an empty value) passes nothing; a malformed
// entry is logged and skipped, never fatal to the call.
func (a *Adapter) passHeaders(ctx context.Context, c *call, aID, bID string) {
	var v string
	err := a.rest(ctx, func(cl ari.Client) error {
		var err error
		v, err = cl.Channel().GetVariable(chanKey(aID), varSIPHeaders)
		return err
	})
	if err != nil {
		if httpStatus(err) != 404 {
			a.log.Debug("cannot read the caller's SIP headers", "channel", aID, "err", err)
		}
		return
	}
	hs, bad := parseSIPHeaders(v)
	for _, b := range bad {
		a.log.Warn("ignoring an entry of "+varSIPHeaders+" that is no \"Name: value\" header", "channel", aID, "entry", b)
	}
	if len(hs) == 0 {
		return
	}
	for name, value := range hs {
		if err := a.rest(ctx, func(cl ari.Client) error {
			return cl.Channel().SetVariable(chanKey(bID), "PJSIP_HEADER(add,"+name+")", value)
		}); err != nil {
			a.log.Warn("cannot add a SIP header to the phone's INVITE", "channel", bID, "header", name, "err", err)
		}
	}
	a.mu.Lock()
	c.headers = hs
	a.mu.Unlock()
}

// parseSIPHeaders splits "Name: value|Name2: value2" into canonical names
// and values; entries that are no header come back in bad.
func parseSIPHeaders(v string) (hs map[string]string, bad []string) {
	for _, e := range strings.Split(v, "|") {
		if strings.TrimSpace(e) == "" {
			continue
		}
		name, value, ok := strings.Cut(e, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !headerToken(name) || strings.ContainsAny(value, "\r\n") {
			bad = append(bad, e)
			continue
		}
		if hs == nil {
			hs = map[string]string{}
		}
		hs[textproto.CanonicalMIMEHeaderKey(name)] = value
	}
	return hs, bad
}

// headerToken: a SIP header name is a non-empty token (RFC 3261 25.1),
// which also keeps it from breaking out of PJSIP_HEADER(add,…).
func headerToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-.!%*_+`'~", r):
		default:
			return false
		}
	}
	return true
}

// headers are what a leg reports as its INVITE's headers: those the
// bridge put on an incoming device leg it dialled.
func (l *leg) headers() map[string]string {
	if l.call == nil || l.dir != pbx.Incoming {
		return nil
	}
	return l.call.headers
}
