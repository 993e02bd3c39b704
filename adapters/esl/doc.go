// Package esl is the FreeSWITCH adapter: it implements pbx.PBX over the
// FreeSWITCH event socket (mod_event_socket, inbound mode) with
// github.com/percipia/eslgo v1.4.1, and is the only package that imports it.
//
// Two ESL connections are used: one that only receives events (plus a
// periodic liveness probe) and one that carries commands, so that a slow
// command never delays events and an event burst never delays a command.
//
// eslgo v1.4.1 has sharp edges this package works around:
//   - It hands every event to a new goroutine, so events arrive out of order.
//     Events are put back in FreeSWITCH's order by Event-Sequence in a short
//     reorder window (reorder.go) before the call state machine sees them.
//   - It reports a connection closed without a disconnect notice only by a
//     log message (which the adapter watches for, see eslLogger), does not
//     notice one that silently stops answering, and never reconnects. A
//     watchdog probes both connections with `api status`; on any failure the
//     session is torn down and rebuilt with capped exponential backoff, and
//     the state is resynced from `show channels as json` (EventSync) and
//     `show registrations as json` (EventDevice, registrations.go), and
//     checked once more a moment later for channels and registrations the
//     first listing did not have yet (sync.go).
//   - A command whose reply did not arrive in time leaves the reply queued
//     for the next command. Any command that times out therefore ends the
//     session instead of letting replies get out of step.
//   - eslgo.Dial has no timeout and can hang forever when the server does not
//     send auth/request. The adapter first dials and checks the greeting
//     itself (with deadlines), then runs eslgo.Dial under a deadline.
//
// Call control follows research/pbx.md: uuid_phone_event talk/hold for phones
// that advertise Allow-Events: talk (checked by waiting for the answer or
// hold event, never by trusting "+OK"), otherwise answer by re-originating
// the device with auto-answer headers and swapping the legs, PBX-side hold
// with uuid_hold, uuid_transfer -bleg, uuid_bridge + uuid_kill, and bgapi
// originate for MakeCall.
//
// A command returns once the adapter's own view of the connection is the
// resulting state (an answer swap: the new channel is the connection,
// answered and bridged), so the next command sent the moment it returned is
// judged on that state; FreeSWITCH's late events about it change nothing.
package esl
