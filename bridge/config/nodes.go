package config

import "strings"

var eslNodeKeys = []string{"name", "address", "password", "password_file"}

// eslNodes decodes pbx.esl.nodes: the FreeSWITCH servers of a cluster.
// defPass is pbx.esl's password, the default of nodes that give none. The
// names are kept for checking the extensions' `node:` pins.
func (d *decoder) eslNodes(e entry, path, defPass string, selected bool) []ESLNode {
	before := len(d.errs)
	items, ok := d.list(e, path, "[{name: fs1, address: 10.0.0.1:8021, password: ClueCon}]")
	if !ok {
		if selected && len(d.errs) == before {
			d.add(e.line, path, "must list at least one node {name, address, password}")
		}
		return nil
	}
	if len(items) == 0 && selected {
		d.add(e.line, path, "must list at least one node {name, address, password}")
	}
	names := make(map[string]int)
	addrs := make(map[string]int)
	out := make([]ESLNode, 0, len(items))
	for _, it := range items {
		f := d.fields(it.val, it.key, it.line, eslNodeKeys)
		name := d.str(f["name"], it.key+".name")
		addr := d.str(f["address"], it.key+".address")
		n := ESLNode{Name: name.v, Address: addr.v}
		switch {
		case !name.set:
			if selected {
				d.require(name, it.line, it.key+".name", "names the node in extensions' node:, such as fs1")
			}
		case !isNodeName(name.v):
			d.add(name.line, it.key+".name", "only letters, digits and ._- are allowed (got %q)", name.v)
		default:
			if first, dup := names[name.v]; dup {
				d.add(name.line, it.key+".name", "%q is already the name of the node at line %d", name.v, first)
			} else {
				names[name.v] = name.line
			}
		}
		switch {
		case !addr.set:
			if selected {
				d.require(addr, it.line, it.key+".address", "such as 10.0.0.1:8021")
			}
		case checkHostPort(addr.v) != "":
			d.add(addr.line, it.key+".address", "%s", checkHostPort(addr.v))
		default:
			if first, dup := addrs[addr.v]; dup {
				d.add(addr.line, it.key+".address", "%q is already the address of the node at line %d", addr.v, first)
			} else {
				addrs[addr.v] = addr.line
			}
		}
		n.Password = d.secret(f, it.key, it.line, selected, selected && defPass == "")
		if n.Password == "" {
			n.Password = defPass
		}
		out = append(out, n)
	}
	if selected {
		d.nodes, d.nodeList = names, out
	}
	return out
}

// isNodeName: node names go into logs, metric labels and /-/ready.
func isNodeName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return false
		}
	}
	return true
}

// checkNode checks an extension's `node:` pin against the selected PBX's
// nodes.
func (d *decoder) checkNode(x *Extension, o opt[string], pbxType, path string) {
	if !o.set {
		return
	}
	key := path + ".node"
	switch {
	case pbxType != TypeARI && !isNodeName(o.v):
		d.add(o.line, key, "only letters, digits and ._- are allowed (got %q)", o.v)
	case pbxType == TypeESL && d.nodes == nil:
		d.add(o.line, key, "pins an extension to a node of a cluster, but pbx.esl lists no nodes")
	case pbxType == TypeESL:
		if _, ok := d.nodes[o.v]; !ok {
			d.add(o.line, key, "no node %q in pbx.esl.nodes (%s)", o.v, nodeList(d.nodeList))
			return
		}
		x.Node = o.v
	case pbxType == TypeARI && !d.ariNATS:
		d.add(o.line, key, "pins an extension to a node of a cluster, but pbx.ari has no nats: (an Asterisk cluster)")
	case pbxType == TypeARI:
		if !isEntityID(o.v) {
			d.add(o.line, key, "an Asterisk node is its entity id: letters, digits and :_- only (got %q)", o.v)
			return
		}
		x.Node = o.v
	case pbxType == TypeSim:
		d.add(o.line, key, "pins an extension to a node of a cluster; the simulator has none")
	}
}

// nodeList names the nodes in the order of the file.
func nodeList(nodes []ESLNode) string {
	var names []string
	for _, n := range nodes {
		if n.Name != "" {
			names = append(names, n.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return "has " + strings.Join(names, ", ")
}

var ariClusterKeys = []string{"url", "username", "password", "password_file"}

// ariCluster decodes pbx.ari's nats and nodes: an Asterisk cluster through
// ari-proxy. The proxies hold the ARI credentials, so url, username and
// password are not the bridge's to give.
func (d *decoder) ariCluster(a *ARI, f map[string]entry, ne entry, path string) {
	d.ariNATS = true
	for _, k := range ariClusterKeys {
		if v, ok := f[k]; ok {
			d.add(v.line, path+"."+k, "give %s or nats, not both (nats is at line %d): the ari-proxies connect to ARI", k, ne.line)
		}
	}
	a.NATS = d.nats(ne, path+".nats")
	if a.NATS.Credentials != "" {
		d.add(ne.line, path+".nats.credentials", "not supported: ari-proxy v5.3.1's client connects with a URL only; use user and password")
	}
	if a.NATS.TLS != (NATSTLS{}) {
		d.add(ne.line, path+".nats.tls", "not supported: ari-proxy v5.3.1's client connects with a URL only; use tls://host:port with a CA the system trusts")
	}
	n, ok := f["nodes"]
	if !ok {
		return
	}
	items, ok := d.list(n, path+".nodes", "[ast1, ast2]")
	if !ok {
		return
	}
	seen := map[string]int{}
	for _, it := range items {
		s := d.str(it, it.key)
		switch {
		case !s.set:
		case !isEntityID(s.v):
			d.add(s.line, it.key, "an Asterisk entity id: letters, digits and :_- only (got %q)", s.v)
		case seen[s.v] > 0:
			d.add(s.line, it.key, "%q is already listed at line %d", s.v, seen[s.v])
		default:
			seen[s.v] = s.line
			a.Nodes = append(a.Nodes, s.v)
		}
	}
}

// isEntityID says s can be an Asterisk entity id as ari-proxy announces it
// (asterisk.conf entityid; by default a MAC address): it names a NATS
// subject token, so no dots, spaces or wildcards.
func isEntityID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":_-", r)) {
			return false
		}
	}
	return true
}
