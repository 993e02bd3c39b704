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
	case !isNodeName(o.v):
		d.add(o.line, key, "only letters, digits and ._- are allowed (got %q)", o.v)
	case pbxType == TypeESL && d.nodes == nil:
		d.add(o.line, key, "pins an extension to a node of a cluster, but pbx.esl lists no nodes")
	case pbxType == TypeESL:
		if _, ok := d.nodes[o.v]; !ok {
			d.add(o.line, key, "no node %q in pbx.esl.nodes (%s)", o.v, nodeList(d.nodeList))
			return
		}
		x.Node = o.v
	case pbxType == TypeARI:
		d.add(o.line, key, "pins an extension to a node of a cluster; Asterisk clusters are not supported yet")
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
