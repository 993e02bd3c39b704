package esl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// errLinkDown is returned by commands while no session is up.
var errLinkDown = fmt.Errorf("esl: FreeSWITCH not connected: %w", pbx.ErrUnavailable)

// replyError is a "-ERR …" (or "-USAGE: …") answer of FreeSWITCH.
type replyError struct {
	cmd   string // the command without arguments, e.g. "uuid_kill"
	reply string // the reply text, trimmed
	kind  error  // the pbx sentinel it maps to
}

func (e *replyError) Error() string { return fmt.Sprintf("esl: %s: %s", e.cmd, e.reply) }
func (e *replyError) Unwrap() error { return e.kind }

// checkReply turns an API or BACKGROUND_JOB reply into an error. Replies of
// FreeSWITCH's API commands start with "+OK", "-ERR" or "-USAGE"; data
// commands (show, uuid_getvar, status) answer with the data itself.
func checkReply(cmd, reply string) error {
	r := strings.TrimSpace(reply)
	if !strings.HasPrefix(r, "-") {
		return nil
	}
	return &replyError{cmd: cmd, reply: r, kind: classify(r)}
}

// classify maps FreeSWITCH error texts (see traces/freeswitch/g_errors.log)
// and originate hangup causes to the pbx sentinels.
func classify(reply string) error {
	u := strings.ToUpper(reply)
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(u, x) {
				return true
			}
		}
		return false
	}
	switch {
	case has("NO SUCH CHANNEL", "INVALID UUID", "CANNOT LOCATE SESSION"):
		return pbx.ErrNoSuchCall
	case has("USER_NOT_REGISTERED", "SUBSCRIBER_ABSENT", "NO_ANSWER", "NO_USER_RESPONSE",
		"USER_BUSY", "CALL_REJECTED", "DESTINATION_OUT_OF_ORDER", "ALLOTTED_TIMEOUT"):
		return pbx.ErrDeviceUnreachable
	case has("NO_ROUTE_DESTINATION", "UNALLOCATED_NUMBER", "INVALID_NUMBER_FORMAT",
		"NO_ROUTE_TRANSIT_NET", "INCOMPATIBLE_DESTINATION"):
		return pbx.ErrInvalidDestination
	case has("OPERATION NOT PERMITTED", "OPERATION FAILED"):
		return pbx.ErrNotSupported
	case has("-USAGE", "COMMAND NOT FOUND"):
		return pbx.ErrNotSupported
	default:
		// NORMAL_TEMPORARY_FAILURE, SWITCH_CONGESTION, … : the PBX refused.
		return pbx.ErrUnavailable
	}
}

// isNoSuchCall reports whether err says the channel is already gone.
func isNoSuchCall(err error) bool { return errors.Is(err, pbx.ErrNoSuchCall) }
