package config

import (
	"strings"
	"time"
)

// Lease timing bounds: a shorter TTL flaps on a busy NATS server, a longer
// one breaks the 5 s take-over promise.
const (
	DefaultLeaseTTL = 3 * time.Second
	MinLeaseTTL     = 1 * time.Second
	MaxLeaseTTL     = 60 * time.Second
)

// Cluster runs the bridge as one of several with the same config, of which
// exactly one is active (the holder of a NATS JetStream key-value lease).
// The zero value (no `cluster:` section) is a lone bridge.
type Cluster struct {
	NATS     NATS
	LeaseTTL time.Duration // how long a dead active bridge keeps the lease
	// Name identifies this bridge in the lease (shown by the standby's
	// /-/ready); empty means the host name.
	Name string
}

// Enabled reports whether a lease decides which bridge is active.
func (c Cluster) Enabled() bool { return c.NATS.URL != "" }

// NATS is a NATS client connection, with the options NATS clients take.
type NATS struct {
	URL         string // nats://host:4222, comma-separated for several servers
	Credentials string // path to a .creds file; relative paths already resolved
	User        string
	Password    string // from `password` or the trimmed contents of `password_file`
	TLS         NATSTLS
}

// NATSTLS is the client side of a TLS connection to NATS; files already resolved.
type NATSTLS struct {
	CA, Cert, Key string
}

var (
	clusterKeys = []string{"nats", "lease_ttl", "name"}
	natsKeys    = []string{"url", "credentials", "user", "password", "password_file", "tls"}
	natsTLSKeys = []string{"ca", "cert", "key"}
)

func (d *decoder) cluster(e entry, given bool) Cluster {
	if !given {
		return Cluster{}
	}
	c := Cluster{LeaseTTL: DefaultLeaseTTL}
	const path = "cluster"
	f := d.fields(e.val, path, e.line, clusterKeys)
	if t, ok := f["lease_ttl"]; ok {
		if v, s, ok := d.duration(t, path+".lease_ttl"); ok {
			if v < MinLeaseTTL || v > MaxLeaseTTL {
				d.add(t.line, path+".lease_ttl", "must be between %s and %s (got %q)", MinLeaseTTL, MaxLeaseTTL, s)
			} else {
				c.LeaseTTL = v
			}
		}
	}
	if n, ok := f["name"]; ok {
		name := d.str(n, path+".name")
		if hasControl(name.v) {
			d.add(n.line, path+".name", "must not contain control characters")
		}
		c.Name = name.v
	}
	ne, ok := f["nats"]
	if !ok {
		d.add(e.line, path+".nats", "required (with url: nats://host:4222)")
		return c
	}
	c.NATS = d.nats(ne, path+".nats")
	return c
}

func (d *decoder) nats(e entry, path string) NATS {
	f := d.fields(e.val, path, e.line, natsKeys)
	url := d.str(f["url"], path+".url")
	d.require(url, e.line, path+".url", "such as nats://127.0.0.1:4222")
	for _, u := range strings.Split(url.v, ",") {
		if url.set && !strings.HasPrefix(strings.TrimSpace(u), "nats://") && !strings.HasPrefix(strings.TrimSpace(u), "tls://") {
			d.add(url.line, path+".url", "each server must be nats://host:port or tls://host:port (got %q)", u)
		}
	}
	n := NATS{URL: url.v}
	if c := d.str(f["credentials"], path+".credentials"); c.set {
		n.Credentials = d.resolvePath(c.v)
	}
	n.User = d.str(f["user"], path+".user").v
	if _, ok := f["password"]; ok || f["password_file"].val != nil {
		n.Password = d.password(f, path, e.line, true)
	}
	if n.Credentials != "" && n.User != "" {
		d.add(f["user"].line, path+".user", "give credentials or user/password, not both")
	}
	if t, ok := f["tls"]; ok {
		tf := d.fields(t.val, path+".tls", t.line, natsTLSKeys)
		for _, k := range natsTLSKeys {
			if v := d.str(tf[k], path+".tls."+k); v.set {
				p := d.resolvePath(v.v)
				switch k {
				case "ca":
					n.TLS.CA = p
				case "cert":
					n.TLS.Cert = p
				case "key":
					n.TLS.Key = p
				}
			}
		}
		if (n.TLS.Cert == "") != (n.TLS.Key == "") {
			d.add(t.line, path+".tls", "cert and key go together")
		}
	}
	return n
}
