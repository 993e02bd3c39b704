// Package sim is an in-memory PBX: the embedded default adapter of
// csta-bridge. configs/example.yaml runs on it, so a newcomer or a CTI
// developer can try every CSTA service without Asterisk or FreeSWITCH, and the
// project's end-to-end tests drive it. It is also the reference behaviour the
// real adapters follow: which events a command produces, in which order, with
// which causes.
//
// # Model
//
// A sim call has two ends, the caller ("from") and the called party ("to").
// An end is a configured extension or an outside party (a number). Every
// extension end is a pbx connection with its own CallRef; events are emitted
// for those only. An outside destination (MakeCall, a transfer target) answers
// after Options.AnswerAfter, or never with Options.NeverAnswer; a ringing
// extension answers when the bridge sends Answer or when the control API says
// the user picked up.
//
// MakeCall with AutoAnswer=false (autoOriginate=prompt) makes the extension's
// device ring first: its connection is Originated (state initiated) at once,
// and the destination is called only when the device is answered through the
// control API (POST /sim/calls/{id}/answer).
//
// # Causes
//
// When one end of a call hangs up or is released by the bridge, its own
// connection is cleared with CauseRejected if it was still ringing (alerting)
// and CauseNormal otherwise. The other end's connection gets CauseCancelled if
// it was still ringing (a missed call), CauseBusy if it was waiting for the
// end that declined, CauseUnreachable if that end's extension was removed
// before it could be called, and CauseNormal otherwise. A transferred
// connection gets EventTransferred, then CauseTransferred. Every sim call has
// two parties, so ClearConnection and ClearCall end the same call.
//
// # Control API
//
// Handler serves JSON under /sim/ (the bridge mounts it on the admin listener):
//
//	POST   /sim/calls                 {"from":"+4930123456","to":"1001","name":"Bob"} → 201, the call
//	GET    /sim/calls                 every live call
//	GET    /sim/calls/{id}            one call
//	POST   /sim/calls/{id}/answer     the ringing end answers
//	POST   /sim/calls/{id}/hangup     {"party":"…"} optional; default the outside party, else the caller
//	POST   /sim/calls/{id}/hold       {"party":"1001"} optional; the extension's phone holds by itself
//	POST   /sim/calls/{id}/unhold     likewise
//	POST   /sim/calls/{id}/dtmf       {"digits":"12","party":"1001"} the extension's phone sends DTMF
//	GET    /sim/calls/{id}/dtmf       DTMF sent on the call (by SendDTMF or the phone)
//	GET    /sim/actions/<event>?…     action URL sink: recorded, 200 with an empty body
//	GET    /sim/actions               recorded action URL requests, newest last
//	DELETE /sim/actions               forget them
//
// Errors are JSON {"error":"…"}: 400 malformed input, 404 unknown call or
// path, 405 wrong method, 409 the call is in the wrong state, 413 body too
// large, 422 input that names something unknown (an extension that is not
// configured, a party that is not in the call).
//
// # Concurrency
//
// One mutex owns the simulator's state. Commands and control requests never
// wait for the core: events go into an unbounded ordered queue that one
// goroutine per Run pumps into the events channel.
package sim
