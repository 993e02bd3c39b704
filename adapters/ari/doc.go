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
// by a full resync. REST calls go through the ari.Client interface, so an
// ari-proxy client could replace the native one; its events would then be
// fed to the same decoder as JSON (every ari event marshals to the wire
// format).
package ari
