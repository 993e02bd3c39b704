package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A FreeSWITCH cluster: nodes with their own or the shared password, and
// extensions pinned to a node or left to be learned.
func TestESLNodes(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "fs3.secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := `pbx:
  type: esl
  esl:
    password: shared
    context: default
    nodes:
      - {name: fs1, address: 10.0.0.1:8021}
      - {name: fs2, address: 10.0.0.2:8021, password: own}
      - {name: fs-3.b_c, address: 10.0.0.3:8021, password_file: fs3.secret}
extensions:
  "1001": {endpoint: user/1001, node: fs2}
  "1002": {endpoint: user/1002}
`
	cfg, err := Parse(filepath.Join(dir, "c.yaml"), []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "esl", cfg.PBX.ESL, ESL{Context: "default", PhoneEvents: "auto", Nodes: []ESLNode{
		{Name: "fs1", Address: "10.0.0.1:8021", Password: "shared"},
		{Name: "fs2", Address: "10.0.0.2:8021", Password: "own"},
		{Name: "fs-3.b_c", Address: "10.0.0.3:8021", Password: "s3cret"},
	}})
	eq(t, "1001 node", cfg.Extensions[0].Node, "fs2")
	eq(t, "1002 node", cfg.Extensions[1].Node, "")
}

// The single-node shape is unchanged: no nodes, no pins.
func TestESLSingleNodeUnchanged(t *testing.T) {
	cfg := parse(t, "pbx:\n  type: esl\n  esl: {address: 127.0.0.1:8021, password: x}\nextensions:\n  \"1001\": {endpoint: user/1001}\n")
	eq(t, "esl", cfg.PBX.ESL, ESL{Address: "127.0.0.1:8021", Password: "x", PhoneEvents: "auto"})
	eq(t, "node", cfg.Extensions[0].Node, "")
}

func TestESLNodeProblems(t *testing.T) {
	const esl = "pbx:\n  type: esl\n  esl:\n"
	for _, tc := range []struct {
		name, yml string
		want      []string
	}{
		{"address and nodes", esl + "    address: 10.0.0.1:8021\n    password: x\n    nodes:\n      - {name: a, address: 10.0.0.2:8021}\n", []string{
			"test.yaml:4: pbx.esl.address: give address or nodes, not both (nodes is at line 6)"}},
		{"empty list", esl + "    password: x\n    nodes: []\n", []string{
			"test.yaml:5: pbx.esl.nodes: must list at least one node {name, address, password}"}},
		{"not a list", esl + "    password: x\n    nodes: fs1\n", []string{
			`test.yaml:5: pbx.esl.nodes: must be a list such as [{name: fs1, address: 10.0.0.1:8021, password: ClueCon}], not "fs1"`}},
		{"node incomplete", esl + "    nodes:\n      - {adress: 10.0.0.1:8021}\n", []string{
			"test.yaml:5: pbx.esl.nodes[0].adress: unknown key (did you mean address?)",
			"test.yaml:5: pbx.esl.nodes[0].name: required (names the node in extensions' node:, such as fs1)",
			"test.yaml:5: pbx.esl.nodes[0].address: required (such as 10.0.0.1:8021)",
			"test.yaml:5: pbx.esl.nodes[0].password: required (or password_file)"}},
		{"duplicates and bad values", esl + "    password: x\n    nodes:\n      - {name: fs1, address: 10.0.0.1:8021}\n      - {name: fs1, address: 10.0.0.1:8021}\n      - {name: 'fs 3', address: 10.0.0.3}\n", []string{
			`test.yaml:7: pbx.esl.nodes[1].name: "fs1" is already the name of the node at line 6`,
			`test.yaml:7: pbx.esl.nodes[1].address: "10.0.0.1:8021" is already the address of the node at line 6`,
			`test.yaml:8: pbx.esl.nodes[2].name: only letters, digits and ._- are allowed (got "fs 3")`,
			`test.yaml:8: pbx.esl.nodes[2].address: must be host:port such as 127.0.0.1:8021 (got "10.0.0.3")`}},
		{"unknown pin", esl + "    password: x\n    nodes: [{name: fs1, address: 10.0.0.1:8021}, {name: fs2, address: 10.0.0.2:8021}]\nextensions:\n  \"1001\": {endpoint: user/1001, node: fs9}\n", []string{
			`test.yaml:7: extensions.1001.node: no node "fs9" in pbx.esl.nodes (has fs1, fs2)`}},
		{"pin without cluster", esl + "    {address: 10.0.0.1:8021, password: x}\nextensions:\n  \"1001\": {endpoint: user/1001, node: fs1}\n", []string{
			"test.yaml:6: extensions.1001.node: pins an extension to a node of a cluster, but pbx.esl lists no nodes"}},
		{"pin on the simulator", base + "extensions:\n  \"1001\": {node: fs1}\n", []string{
			"test.yaml:3: extensions.1001.node: pins an extension to a node of a cluster; the simulator has none"}},
		{"pin as a default", base + "defaults: {node: fs1}\n", []string{
			"test.yaml:2: defaults.node: cannot be a default: it differs for every extension; set it under extensions"}},
		// Only the selected PBX's section must be complete.
		{"nodes of an unselected esl", base[:len(base)-2] + ", esl: {nodes: [{name: fs1}]}}\n", nil},
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
