// Package ari is the Asterisk adapter of csta-bridge. It implements
// pbx.PBX over the Asterisk REST Interface (ARI, Asterisk 18+ with
// chan_pjsip) and is the only importer of github.com/CyCoreSystems/ari/v5.
//
// Two kinds of calls exist on Asterisk, and the adapter treats them apart:
//
//   - Calls routed through the bridge's Stasis application (the dialplan
//     snippet in configs/asterisk) are owned: the adapter dials the device,
//     bridges the legs and carries out every CSTA service on them.
//   - Every other call of a mapped extension (queues, ring groups, a plain
//     Dial) is observed through an endpoint subscription. It produces events
//     and can be cleared, but ARI cannot touch channels outside Stasis, so
//     the services that need Stasis fail with an error wrapping
//     pbx.ErrNotSupported.
//
// Robustness choices, each against a known weakness of ari v5.3.1 (see
// research/pbx.md §4.1): the adapter reads the event websocket itself and
// decodes events into its own types (v5.3.1 panics on event types it does
// not know, and drops events past 100 buffered); every REST call runs with
// a deadline (the library's HTTP client has none); Run never blocks on an
// unreachable Asterisk and reconnects with capped, jittered backoff followed
// by a full resync.
//
// How the adapter reaches Asterisk is its transport (transport.go): ARI
// itself, or, for a cluster, the ari-proxy beside each Asterisk over NATS
// (proxy.go, proxycluster.go): ProxyCluster runs one adapter per Asterisk
// its proxy announces, behind adapters/cluster. REST calls go through the
// ari.Client interface either way, and events reach the same decoder as
// JSON frames.
package ari
