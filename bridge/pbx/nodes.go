package pbx

// NodeReporter is implemented by adapters that drive several PBX servers
// (a cluster), so the core can show each node's health (/metrics,
// /-/ready). The link (EventLink) is up while at least one node is.
type NodeReporter interface {
	// Nodes lists the nodes in configuration order; safe to call from any
	// goroutine.
	Nodes() []NodeStatus
}

// NodeStatus is one node of a cluster.
type NodeStatus struct {
	Name       string
	Up         bool
	Detail     string // why it is down; "" when up
	Extensions int    // extensions it serves now: pinned to it, or registered there
	Calls      int    // live connections on it
}
