package ari

// Ring-all: a queue (app_queue, strategy ringall) or a ring group
// (Dial(Local/1001@csta-bridge-route/n&Local/1002@…)) rings every member
// through a Local channel whose ;2 half enters the application, and the
// adapter dials the member's phone from there (configs/asterisk). When one
// member answers, Asterisk hangs up the others' Local channels with cause
// 26 (answered elsewhere): app_queue does so for a member that lost, Dial
// for the outgoing channels it drops. The ;2 half in the application then
// reports cause 26 in its ChannelHangupRequest and ChannelDestroyed. When
// the caller gives up instead, the halves end with cause 0/16 (measured on
// Asterisk 22.10.1, testdata/queue_*.jsonl). The queue must not be run with
// its C option (nor Dial with c): that marks an abandoned call answered
// elsewhere too, and the members would not list it as missed.

// reasonAnsweredElsewhere hangs the member's ringing phone up with cause
// 26: PJSIP cancels the INVITE with Reason "Call completed elsewhere", so a
// phone does not list a missed call either.
const reasonAnsweredElsewhere = "answered_elsewhere"

// lostRace says whether the far party of an owned call ended because
// another phone of its ring-all answered.
func lostRace(far *channel) bool { return far.cause() == causeAnsweredElse }
