package httpauth

import "net/netip"

// AllowList is an extension's allow: list of client networks.
type AllowList []netip.Prefix

// Permits reports whether a client at remoteAddr (as in
// http.Request.RemoteAddr: "ip:port", or a bare ip) may connect. An empty
// list permits everyone; an address that cannot be read is refused.
// IPv4-mapped IPv6 addresses (a dual-stack listener) match IPv4 prefixes,
// and a zone (fe80::1%eth0) is ignored.
func (l AllowList) Permits(remoteAddr string) bool {
	if len(l) == 0 {
		return true
	}
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		ip = ap.Addr()
	} else if ip, err = netip.ParseAddr(remoteAddr); err != nil {
		return false
	}
	ip = ip.WithZone("")
	for _, p := range l {
		if p.Contains(ip) || p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}
