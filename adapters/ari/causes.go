package ari

import "github.com/csta-bridge/csta-bridge/bridge/pbx"

// Q.850 hangup causes as Asterisk reports them.
const (
	causeUnallocated    = 1
	causeNoRoute        = 3
	causeNormal         = 16
	causeBusy           = 17
	causeNoUserResponse = 18
	causeNoAnswer       = 19
	causeSubscriberAbs  = 20
	causeRejected       = 21
	causeAnsweredElse   = 26
	causeDestOutOfOrder = 27
	causeInvalidNumber  = 28
	causeCongestion     = 34
	causeNetOutOfOrder  = 38
	causeTempFailure    = 41
	causeSwitchCongest  = 42
	causeInterworking   = 127
)

func unreachableCause(c int) bool {
	switch c {
	case causeUnallocated, causeNoRoute, causeSubscriberAbs, causeDestOutOfOrder, causeInvalidNumber,
		causeCongestion, causeNetOutOfOrder, causeTempFailure, causeSwitchCongest:
		return true
	}
	return false
}

// clearCause says why a leg ended, from what the adapter knows (its own
// command, a transfer), the Dial status and the hangup cause.
//
// The traces show what to expect: a caller's CANCEL ends the ringing leg
// with cause 127 and Dial status CANCEL; a Dial timeout ends it with cause 0
// and status NOANSWER; a 486 from the device is cause 17 (status BUSY);
// with only an endpoint subscription the Dial status of a called device is
// not seen, so the cause alone has to do.
func clearCause(l *leg, ch *channel, cause int) pbx.Cause {
	if l.transferred {
		return pbx.CauseTransferred
	}
	if l.clearCause != nil {
		return *l.clearCause
	}
	if cause == 0 {
		cause = ch.hangupBy
	}
	switch l.state {
	case pbx.StateConnected, pbx.StateHeld:
		return pbx.CauseNormal
	case pbx.StateAlerting:
		switch ch.dialStatus {
		case "CANCEL":
			return pbx.CauseCancelled
		case "NOANSWER":
			return pbx.CauseNoAnswer
		case "BUSY":
			return pbx.CauseRejected
		case "CHANUNAVAIL", "CONGESTION":
			return pbx.CauseUnreachable
		}
		switch {
		case cause == causeBusy || cause == causeRejected:
			return pbx.CauseRejected
		case cause == 0 || cause == causeNoAnswer || cause == causeNoUserResponse:
			return pbx.CauseNoAnswer
		case cause == causeAnsweredElse:
			// Another phone of a ring-all (Queue, Dial of several) took
			// the call: not missed (issue 13).
			return pbx.CauseAnsweredElsewhere
		case unreachableCause(cause):
			return pbx.CauseUnreachable
		}
		return pbx.CauseCancelled
	default: // initiated, or a MakeCall whose device never answered
		switch ch.dialStatus {
		case "BUSY":
			return pbx.CauseBusy
		case "NOANSWER":
			return pbx.CauseNoAnswer
		case "CHANUNAVAIL", "CONGESTION":
			return pbx.CauseUnreachable
		}
		switch {
		case cause == causeBusy || cause == causeRejected:
			return pbx.CauseBusy
		case cause == causeNoAnswer || cause == causeNoUserResponse:
			return pbx.CauseNoAnswer
		case unreachableCause(cause):
			return pbx.CauseUnreachable
		}
		return pbx.CauseNormal
	}
}

// hangupReason is the ARI hangup reason that makes Asterisk report the
// same cause to the other side as the one the dialled leg ended with.
func hangupReason(dialStatus string, cause int) string {
	switch dialStatus {
	case "BUSY":
		return "busy"
	case "NOANSWER":
		return "no_answer"
	case "CHANUNAVAIL":
		return "failure"
	case "CONGESTION":
		return "congestion"
	}
	switch {
	case cause == causeBusy:
		return "busy"
	case cause == causeRejected:
		return "rejected"
	case cause == 0 || cause == causeNoAnswer || cause == causeNoUserResponse:
		return "no_answer"
	case cause == causeUnallocated || cause == causeInvalidNumber:
		return "unallocated"
	case unreachableCause(cause):
		return "congestion"
	}
	return "normal"
}
