package pbxtest

import (
	"context"
	"fmt"
	"strings"
)

// QueueRows: calls that reach the phones through a queue or a ring group
// (issue 13). Call centres run them; every CSTA service must work on them,
// and the members that lose a ring-all race must not log a missed call (a
// Snom lists a call "completed elsewhere" as nothing at all: no URL). The
// caller is C; the queue and the ring group ring A and B.
var QueueRows = []Scenario{
	{
		Name: "queue call: two members ring, AnswerCall at one, the other stops ringing without a missed call",
		Apps: []string{AppQueue},
		Steps: append(queueAnswered(),
			Req(A, "HoldCall", Conn("callToBeHeld", "a1")),
			URLs(A, "hold:a1"),
			Shows(C, Connected),
			Req(A, "RetrieveCall", Conn("callToBeRetrieved", "a1")),
			URLs(A, "unhold:a1"),
			Req(A, "ClearConnection", Conn("connectionToBeCleared", "a1")),
			URLs(A, "disconnected:a1", "onhook"),
			URLs(C, "disconnected:c1", "onhook"),
			Shows(A, Idle),
			Shows(C, Idle),
		),
	},
	{
		Name:  "queue call: AnswerCall, then SingleStepTransferCall to the other member",
		Apps:  []string{AppQueue},
		Needs: []Need{NeedDialplan},
		Steps: append(queueAnswered(),
			Req(A, "SingleStepTransferCall", Conn("activeCall", "a1"), Number("transferredTo", B)),
			URLs(A, "transfer:a1", "blind_transfer:a1", "disconnected:a1", "onhook"),
			Shows(A, Idle),
			URLWith(B, "incoming:b2", "remote", C),
			PickUp(B),
			URLs(B, "offhook", "connected:b2"),
			Shows(C, Connected),
			HangUp(C),
			URLs(C, "disconnected:c1", "onhook"),
			URLs(B, "disconnected:b2", "onhook"),
			Shows(B, Idle),
		),
	},
	{
		Name:  "queue call: AnswerCall, HoldCall, consultation with the other member, TransferCall",
		Apps:  []string{AppQueue},
		Needs: []Need{NeedDialplan},
		Steps: append(queueAnswered(),
			Req(A, "HoldCall", Conn("callToBeHeld", "a1")),
			URLs(A, "hold:a1"),
			Req(A, "MakeCall", Text("callingDevice", ""), Number("calledDirectoryNumber", B)).Binds("a2"),
			URLs(A, "outgoing:a2"),
			URLs(B, "incoming:b2"),
			PickUp(B),
			URLs(B, "offhook", "connected:b2"),
			URLs(A, "connected:a2"),
			Req(A, "TransferCall", Conn("heldCall", "a1"), Conn("activeCall", "a2")),
			URLsAnyOrder(A, "transfer:a1", "attended_transfer:a1", "disconnected:a1",
				"transfer:a2", "attended_transfer:a2", "disconnected:a2"),
			URLs(A, "onhook"),
			Shows(A, Idle),
			Shows(B, Connected),
			Shows(C, Connected),
			HangUp(B),
			URLs(B, "disconnected:b2", "onhook"),
			URLs(C, "disconnected:c1", "onhook"),
			Shows(C, Idle),
		),
	},
	{
		Name: "abandoned queue call: missed at both members",
		Apps: []string{AppQueue},
		Steps: []Step{
			DialApp(C, AppQueue),
			URLs(C, "offhook", "outgoing:c1"),
			URLWith(A, "incoming:a1", "remote", C),
			URLWith(B, "incoming:b1", "remote", C),
			Shows(A, Ringing),
			Shows(B, Ringing),
			HangUp(C),
			URLs(C, "onhook"),
			URLs(A, "missed:a1"),
			URLs(B, "missed:b1"),
			Shows(A, Idle),
			Shows(B, Idle),
		},
	},
	{
		Name: "ring group: both phones ring, one picks up, the other stops ringing without a missed call",
		Apps: []string{AppRingGroup},
		Steps: []Step{
			DialApp(C, AppRingGroup),
			URLs(C, "offhook", "outgoing:c1"),
			URLWith(A, "incoming:a1", "remote", C),
			URLWith(B, "incoming:b1", "remote", C),
			Shows(A, Ringing),
			Shows(B, Ringing),
			PickUp(B),
			URLs(B, "offhook", "connected:b1"),
			URLs(C, "connected:c1"),
			Shows(A, Idle),
			Shows(C, Connected),
			Req(B, "HoldCall", Conn("callToBeHeld", "b1")),
			URLs(B, "hold:b1"),
			Req(B, "RetrieveCall", Conn("callToBeRetrieved", "b1")),
			URLs(B, "unhold:b1"),
			HangUp(B),
			URLs(B, "disconnected:b1", "onhook"),
			URLs(C, "disconnected:c1", "onhook"),
			Shows(C, Idle),
		},
	},
	{
		Name:  "ring group: both phones ring, AnswerCall at one, the other stops ringing without a missed call",
		Apps:  []string{AppRingGroup},
		Needs: []Need{NeedRingGroupAnswer},
		Steps: []Step{
			DialApp(C, AppRingGroup),
			URLs(C, "offhook", "outgoing:c1"),
			URLWith(A, "incoming:a1", "remote", C),
			URLWith(B, "incoming:b1", "remote", C),
			Shows(A, Ringing),
			Shows(B, Ringing),
			Req(A, "AnswerCall", Conn("callToBeAnswered", "a1")),
			URLs(A, "offhook", "connected:a1"),
			URLs(C, "connected:c1"),
			Shows(B, Idle),
			Req(A, "HoldCall", Conn("callToBeHeld", "a1")),
			URLs(A, "hold:a1"),
			Req(A, "RetrieveCall", Conn("callToBeRetrieved", "a1")),
			URLs(A, "unhold:a1"),
			HangUp(C),
			URLs(C, "disconnected:c1", "onhook"),
			URLs(A, "disconnected:a1", "onhook"),
			Shows(A, Idle),
		},
	},
	{
		Name: "abandoned ring group call: missed at both phones",
		Apps: []string{AppRingGroup},
		Steps: []Step{
			DialApp(C, AppRingGroup),
			URLs(C, "offhook", "outgoing:c1"),
			URLWith(A, "incoming:a1", "remote", C),
			URLWith(B, "incoming:b1", "remote", C),
			Shows(A, Ringing),
			Shows(B, Ringing),
			HangUp(C),
			URLs(C, "onhook"),
			URLs(A, "missed:a1"),
			URLs(B, "missed:b1"),
			Shows(A, Idle),
			Shows(B, Idle),
		},
	},
	{
		Name: "$sip_header: a header the dialplan set before the bridge's route reaches the action URLs",
		Apps: []string{AppHeader},
		Steps: []Step{
			DialApp(C, AppHeader),
			URLs(C, "offhook", "outgoing:c1"),
			URLWith(A, "incoming:a1", "header", HeaderValue),
			URLWith(A, "incoming:a1", "remote", C).Again(),
			RingsWithHeader(A),
			PickUp(A),
			URLWith(A, "offhook", "header", ""),
			URLWith(A, "connected:a1", "header", HeaderValue),
			URLs(C, "connected:c1"),
			HangUp(C),
			URLs(C, "disconnected:c1", "onhook"),
			URLWith(A, "disconnected:a1", "header", HeaderValue),
			URLs(A, "onhook"),
			Shows(A, Idle),
		},
	},
}

// The dialplan applications of the queue rows (Rig.Application).
const (
	// AppQueue: a ring-all queue whose members are A and B.
	AppQueue = "queue ringing A and B"
	// AppRingGroup: a ring group (one Dial of several phones) of A and B.
	AppRingGroup = "ring group of A and B"
	// AppHeader: a number that reaches A, routed through the bridge, with
	// the SIP header HeaderName: HeaderValue set by the dialplan.
	AppHeader = "number that reaches A with a SIP header set by the dialplan"
)

// NeedRingGroupAnswer: AnswerCall works on a call a ring group rings
// (FreeSWITCH: only with the phone's talk event; its answer swap would
// lose the caller).
const NeedRingGroupAnswer Need = "AnswerCall on a ring group's call"

// HeaderValue is the value of the header AppHeader's dialplan sets.
const HeaderValue = "4711"

// queueAnswered: C calls the queue, both members ring with C as the
// caller, A answers by AnswerCall, B's phone stops ringing and fires
// nothing.
func queueAnswered() []Step {
	return []Step{
		DialApp(C, AppQueue),
		URLs(C, "offhook", "outgoing:c1"),
		URLWith(A, "incoming:a1", "remote", C),
		URLWith(B, "incoming:b1", "remote", C),
		Shows(A, Ringing),
		Shows(B, Ringing),
		Req(A, "AnswerCall", Conn("callToBeAnswered", "a1")),
		URLs(A, "offhook", "connected:a1"),
		URLs(C, "connected:c1"),
		Shows(B, Idle),
		Shows(A, Connected),
		Shows(C, Connected),
	}
}

// DialApp: the phone of from dials the rig's application of kind.
func DialApp(from Role, kind string) Step {
	return phoneStep{who: from, what: "dials the " + kind, act: func(p *play, ph Phone) error {
		n := p.rig.Application(kind)
		if n == "" {
			return fmt.Errorf("the rig has no %s", kind)
		}
		return ph.Dial(p.ctx, n)
	}}
}

// URLStep expects the next action URL of an extension and what it carried.
type URLStep struct {
	who         Role
	want, field string
	value       any // a Role (its extension must be in the value) or a string (the exact value)
	again       bool
}

// URLWith expects the next action URL of r's extension, as URLs does for
// one, carrying field ("remote": $remote, "header": $sip_header of
// HeaderName) with value: a Role's extension number within it, or exactly
// a string.
func URLWith(r Role, want, field string, value any) URLStep {
	return URLStep{who: r, want: want, field: field, value: value}
}

// Again checks the URL the previous URLWith of the same extension took
// rather than taking the next one.
func (s URLStep) Again() URLStep { s.again = true; return s }

func (s URLStep) String() string {
	return fmt.Sprintf("%s's action URL %s with %s %v", s.who, s.want, s.field, s.value)
}

func (s URLStep) do(p *play) {
	p.t.Helper()
	var h Hit
	if s.again {
		h = p.last[s.who]
	} else {
		var ok bool
		h, ok = p.rig.Sink().next(p.rig.Ext(s.who), p.ctx)
		if !ok {
			p.fatalf("%s: no URL within the row's time", s)
		}
		p.last[s.who] = h
	}
	if !matches(p, s.want, h) {
		p.fatalf("%s: got %s", s, h)
	}
	event, label, _ := strings.Cut(s.want, ":")
	p.bind(s.who, label, h.CSTAID, event+" URL")
	got := map[string]string{"remote": h.Remote, "header": h.Header}[s.field]
	switch v := s.value.(type) {
	case Role:
		if ext := p.rig.Ext(v); !strings.Contains(got, ext) {
			p.fatalf("%s: %s is %q, without %s's %s", s, s.field, got, v, ext)
		}
	case string:
		if got != v {
			p.fatalf("%s: %s is %q", s, s.field, got)
		}
	}
}

// HeaderPhone is a Phone that shows the headers of its ringing call's
// INVITE (a test phone, the fake Asterisk's channel variables).
type HeaderPhone interface {
	// RingingHeader is the value of header name on the INVITE of the
	// phone's ringing call, once one rings.
	RingingHeader(ctx context.Context, name string) (string, error)
}

type ringsWithStep struct{ who Role }

// RingsWithHeader: r's phone rings with HeaderName: HeaderValue on the
// INVITE. A rig whose phones cannot show headers checks nothing (logged).
func RingsWithHeader(r Role) Step { return ringsWithStep{r} }

func (s ringsWithStep) String() string {
	return fmt.Sprintf("%s's phone rings with %s: %s", s.who, HeaderName, HeaderValue)
}

func (s ringsWithStep) do(p *play) {
	p.t.Helper()
	hp, ok := p.rig.Phone(s.who).(HeaderPhone)
	if !ok {
		p.t.Logf("step %d: %s: the rig's phones show no headers; not checked", p.step, s)
		return
	}
	v, err := hp.RingingHeader(p.ctx, HeaderName)
	if err != nil {
		p.fatalf("%s: %v", s, err)
	}
	if v != HeaderValue {
		p.fatalf("%s: the INVITE has %s: %q", s, HeaderName, v)
	}
}
