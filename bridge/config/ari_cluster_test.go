package config

import (
	"slices"
	"strings"
	"testing"
)

// An Asterisk cluster: ari-proxies over NATS, expected nodes, extensions
// pinned to an entity id or left to be learned.
func TestARICluster(t *testing.T) {
	yml := `pbx:
  type: ari
  ari:
    nats: {url: "nats://10.0.0.9:4222,nats://10.0.0.10:4222", user: bridge, password: s3cret}
    nodes: [ast1, "02:42:ac:11:00:02"]
    application: csta-bridge
    context: from-internal
extensions:
  "1001": {endpoint: PJSIP/1001, node: ast1}
  "1002": {endpoint: PJSIP/1002, node: "02:42:ac:11:00:02"}
  "1003": {endpoint: PJSIP/1003}
`
	cfg := parse(t, yml)
	eq(t, "ari", cfg.PBX.ARI, ARI{Application: "csta-bridge", Context: "from-internal", HangupHandler: "csta-bridge-hangup",
		NATS:  NATS{URL: "nats://10.0.0.9:4222,nats://10.0.0.10:4222", User: "bridge", Password: "s3cret"},
		Nodes: []string{"ast1", "02:42:ac:11:00:02"}})
	eq(t, "1001 node", cfg.Extensions[0].Node, "ast1")
	eq(t, "1002 node", cfg.Extensions[1].Node, "02:42:ac:11:00:02")
	eq(t, "1003 node", cfg.Extensions[2].Node, "")
}

func TestARIClusterProblems(t *testing.T) {
	const ari = "pbx:\n  type: ari\n  ari:\n    application: csta-bridge\n    context: c\n"
	for _, tc := range []struct {
		name, yml string
		want      []string
	}{
		{"url and nats", ari + "    url: http://127.0.0.1:8088/ari\n    username: u\n    password: p\n    nats: {url: nats://127.0.0.1:4222}\n", []string{
			"test.yaml:6: pbx.ari.url: give url or nats, not both (nats is at line 9): the ari-proxies connect to ARI",
			"test.yaml:7: pbx.ari.username: give username or nats, not both (nats is at line 9): the ari-proxies connect to ARI",
			"test.yaml:8: pbx.ari.password: give password or nats, not both (nats is at line 9): the ari-proxies connect to ARI"}},
		{"nats without url", ari + "    nats: {user: u}\n", []string{
			"test.yaml:6: pbx.ari.nats.url: required (such as nats://127.0.0.1:4222)"}},
		{"credentials and tls", ari + "    nats: {url: nats://127.0.0.1:4222, credentials: x.creds, tls: {ca: ca.pem}}\n", []string{
			"test.yaml:6: pbx.ari.nats.credentials: not supported: ari-proxy v5.3.1's client connects with a URL only; use user and password",
			"test.yaml:6: pbx.ari.nats.tls: not supported: ari-proxy v5.3.1's client connects with a URL only; use tls://host:port with a CA the system trusts"}},
		{"bad nodes", ari + "    nats: {url: nats://127.0.0.1:4222}\n    nodes: [ast1, ast1, 'a.b']\n", []string{
			`test.yaml:7: pbx.ari.nodes[1]: "ast1" is already listed at line 7`,
			`test.yaml:7: pbx.ari.nodes[2]: an Asterisk entity id: letters, digits and :_- only (got "a.b")`}},
		{"nodes without nats", ari + "    url: http://127.0.0.1:8088/ari\n    username: u\n    password: p\n    nodes: [ast1]\n", []string{
			"test.yaml:9: pbx.ari.nodes: lists the Asterisk nodes of a cluster; give nats: too"}},
		{"pin without nats", ari + "    url: http://127.0.0.1:8088/ari\n    username: u\n    password: p\nextensions:\n  \"1001\": {endpoint: PJSIP/1001, node: ast1}\n", []string{
			"test.yaml:10: extensions.1001.node: pins an extension to a node of a cluster, but pbx.ari has no nats: (an Asterisk cluster)"}},
		{"pin with a dot", ari + "    nats: {url: nats://127.0.0.1:4222}\nextensions:\n  \"1001\": {endpoint: PJSIP/1001, node: ast.1}\n", []string{
			`test.yaml:8: extensions.1001.node: an Asterisk node is its entity id: letters, digits and :_- only (got "ast.1")`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.yml))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("file:\n%s\ngot:\n%s\nwant:\n%s", tc.yml, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
