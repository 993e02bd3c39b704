package pbxtest

import (
	"fmt"
	"time"
)

// restartRows: a restarted bridge takes its live calls over with their
// csta_ids and reports nothing the CTI software already knows (issue 19);
// only what changed while it was away is reported, once.
var restartRows = restartAfterConnect(0, 20*time.Millisecond, 200*time.Millisecond, 2*time.Second)

// restartAfterConnect: the bridge restarts a while after a call was
// connected; the call is taken over silently and works on with its ids.
func restartAfterConnect(delays ...time.Duration) []Scenario {
	var rows []Scenario
	for _, d := range delays {
		rows = append(rows, Scenario{
			Name:   fmt.Sprintf("restart %s after connect: the call is taken over silently", d),
			Needs:  []Need{NeedRestartTakeover},
			Repeat: 2,
			Steps: []Step{
				Dial(B, A),
				URLs(A, "incoming:a1"),
				URLs(B, "offhook", "outgoing:b1"),
				PickUp(A),
				URLs(A, "offhook", "connected:a1"),
				URLs(B, "connected:b1"),
				Pause(d),
				BridgeRestarts(),
				Req(A, "HoldCall", Conn("callToBeHeld", "a1")),
				URLs(A, "hold:a1"),
				Req(A, "RetrieveCall", Conn("callToBeRetrieved", "a1")),
				URLs(A, "unhold:a1"),
				HangUp(B),
				URLs(A, "disconnected:a1", "onhook"),
				URLs(B, "disconnected:b1", "onhook"),
				Shows(A, Idle),
			},
		})
	}
	return append(rows,
		Scenario{
			Name:  "restart while a call rings: answered afterwards, reported once",
			Needs: []Need{NeedRestartTakeover},
			Steps: []Step{
				Dial(B, A),
				URLs(A, "incoming:a1"),
				URLs(B, "offhook", "outgoing:b1"),
				BridgeRestarts(),
				Req(A, "AnswerCall", Conn("callToBeAnswered", "a1")),
				URLs(A, "offhook", "connected:a1"),
				URLs(B, "connected:b1"),
				HangUp(B),
				URLs(A, "disconnected:a1", "onhook"),
				URLs(B, "disconnected:b1", "onhook"),
				Shows(A, Idle),
			},
		},
		Scenario{
			Name:  "answered while the bridge was away: connected reported once, with the old ids",
			Needs: []Need{NeedRestartTakeover},
			Steps: []Step{
				Dial(B, A),
				URLs(A, "incoming:a1"),
				URLs(B, "offhook", "outgoing:b1"),
				BridgeStops(),
				PickUp(A),
				// On Asterisk the bridge joins a routed call's two sides, so
				// the caller is connected once it is back.
				BridgeStarts(),
				Shows(B, Connected),
				URLs(A, "offhook", "connected:a1"),
				URLs(B, "connected:b1"),
				Req(A, "HoldCall", Conn("callToBeHeld", "a1")),
				URLs(A, "hold:a1"),
				HangUp(B),
				URLs(A, "disconnected:a1", "onhook"),
				URLs(B, "disconnected:b1", "onhook"),
			},
		},
		Scenario{
			Name:  "restart during a hold: the call stays held and is retrieved with its id",
			Needs: []Need{NeedRestartTakeover},
			Steps: []Step{
				Dial(B, A),
				URLs(A, "incoming:a1"),
				URLs(B, "offhook", "outgoing:b1"),
				PickUp(A),
				URLs(A, "offhook", "connected:a1"),
				URLs(B, "connected:b1"),
				Req(A, "HoldCall", Conn("callToBeHeld", "a1")),
				URLs(A, "hold:a1"),
				BridgeRestarts(),
				Req(A, "HoldCall", Conn("callToBeHeld", "a1")).Fault("invalidObjectState"),
				Req(A, "RetrieveCall", Conn("callToBeRetrieved", "a1")),
				URLs(A, "unhold:a1"),
				HangUp(A),
				URLs(A, "disconnected:a1", "onhook"),
				URLs(B, "disconnected:b1", "onhook"),
			},
		},
		Scenario{
			Name:  "a call that started while the bridge was away is reported once, as new",
			Needs: []Need{NeedRestartTakeover},
			Steps: []Step{
				BridgeStops(),
				Dial(B, A),
				Unless(QuirkStasisWhileAway, Shows(A, Ringing)),
				BridgeStarts(),
				URLs(A, "incoming:a1"),
				URLs(B, "offhook", "outgoing:b1"),
				PickUp(A),
				URLs(A, "offhook", "connected:a1"),
				URLs(B, "connected:b1"),
				HangUp(A),
				URLs(A, "disconnected:a1", "onhook"),
				URLs(B, "disconnected:b1", "onhook"),
			},
		},
	)
}
