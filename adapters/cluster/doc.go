// Package cluster drives several PBX servers as one PBX: it
// composes one pbx.PBX per node (an esl adapter per FreeSWITCH, an ari
// adapter per Asterisk behind ari-proxy; built by
// cmd/csta-bridge) behind the pbx.PBX contract, so the core sees a single
// adapter. It imports no PBX client library.
//
// Which node serves an extension: the one it is pinned to (`node:`,
// authoritative: only that node's adapter maps it), else the nodes where
// its device is registered as their sofia::register events report it
// (EventDevice). A call leg of an extension on a node that does not serve
// it (a SIP trunk leg between nodes that looks like the extension) is not
// taken for its call; while nothing is known of an unpinned extension,
// every node's legs count.
//
// Calls: each connection (CallRef) belongs to the node that first reported
// it, or to the node a MakeCall was sent to; every command on it goes
// there. Transfer and Conference need both calls on one node.
//
// The core's EventSync is global: a call missing from it is cleared. A
// node's sync therefore reaches the core merged with the last known calls
// of every other node, which this package keeps from their events and
// from the commands' outcomes, the same way the core applies them (a hold
// or retrieve the bridge did is taken from the command, not from its late
// report). A node that goes away leaves its calls as they were; when it
// is back its own sync clears its calls that ended meanwhile and takes
// the live ones over: no other node's call is touched.
//
// The core's first sync is special: it takes over the calls a previous
// bridge left and ends those it does not list. So the first sync waits
// until every node has synced or failed to connect, and holds all their
// calls; a node down at start-up has its left calls reported ended, and
// those still live come back silently (with their csta_id) when it is.
//
// The link (EventLink) is up while at least one node is connected, so the
// CTI keeps working for the extensions of the nodes that are up; it goes
// up only after the first sync and once every node that synced has
// reported its own link (the esl adapter syncs first), so a request sent
// the moment the bridge is ready finds its call's node connected. Which
// nodes are down is reported by Nodes (pbx.NodeReporter) for /metrics and
// /-/ready.
package cluster
