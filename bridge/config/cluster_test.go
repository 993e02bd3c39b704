package config

import (
	"strings"
	"testing"
	"time"
)

const clusterBase = "pbx: {type: sim}\nextensions: {\"100\": {}}\n"

func TestClusterSection(t *testing.T) {
	c, err := Parse("/etc/csta-bridge/config.yaml", []byte(clusterBase+
		"cluster:\n  name: host-a\n  lease_ttl: 2s\n  nats:\n    url: nats://10.0.0.5:4222\n    credentials: bridge.creds\n    tls: {ca: ca.pem}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Cluster{Name: "host-a", LeaseTTL: 2 * time.Second, NATS: NATS{URL: "nats://10.0.0.5:4222",
		Credentials: "/etc/csta-bridge/bridge.creds", TLS: NATSTLS{CA: "/etc/csta-bridge/ca.pem"}}}
	if c.Cluster != want || !c.Cluster.Enabled() {
		t.Errorf("cluster = %+v, want %+v", c.Cluster, want)
	}
	lone, err := Parse("c.yaml", []byte(clusterBase))
	if err != nil {
		t.Fatal(err)
	}
	if lone.Cluster != (Cluster{}) {
		t.Errorf("no cluster section gives %+v", lone.Cluster)
	}
}

func TestClusterErrors(t *testing.T) {
	for _, tc := range []struct{ yml, want string }{
		{"cluster: {lease_ttl: 2s}\n", "cluster.nats: required"},
		{"cluster: {nats: {user: u}}\n", "cluster.nats.url: required"},
		{"cluster: {nats: {url: \"http://x:4222\"}}\n", "must be nats://host:port"},
		{"cluster: {lease_ttl: 100ms, nats: {url: \"nats://x:4222\"}}\n", "lease_ttl: must be between 1s and 1m0s"},
		{"cluster: {nats: {url: \"nats://x:4222\", credentials: a.creds, user: u, password: p}}\n", "not both"},
		{"cluster: {nats: {url: \"nats://x:4222\", tls: {cert: c.pem}}}\n", "cert and key go together"},
		{"cluster: {nats: {url: \"nats://x:4222\", bogus: 1}}\n", "bogus"},
	} {
		_, err := Parse("c.yaml", []byte(clusterBase+tc.yml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.yml, err, tc.want)
		}
	}
}
