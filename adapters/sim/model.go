package sim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// A call is always between two ends: ends[0] placed it ("from"), ends[1] was
// called ("to"). Transfers replace an end, so the ends are whoever talks now.
type call struct {
	id      string
	seq     uint64
	created time.Time
	ends    [2]*end
	dtmf    []dtmfRecord
	ended   bool
	done    chan struct{} // closed when the call ends
}

type endPhase uint8

const (
	idle     endPhase = iota // not called yet (MakeCall waiting for the device)
	ringing                  // being called; for the caller: its device rings (MakeCall prompt)
	answered                 // off hook
)

// An end is one party of a call: an extension (ext set, leg set once it has
// been called) or an outside party (ext empty, leg nil).
type end struct {
	call     *call
	party    pbx.Party // what the other end sees as its remote party
	ext      string
	leg      *leg
	phase    endPhase
	stopRing func() bool // pending AnswerAfter timer of an outside party
}

// A leg is an extension's connection: the pbx.CallRef the core knows.
type leg struct {
	end       *end
	ref       pbx.CallRef
	seq       uint64
	dir       pbx.Direction
	state     pbx.State
	remote    pbx.Party
	sipCallID string
	headers   map[string]string
	cstaID    int
	tagged    chan struct{} // closed by the first TagCall (or a MakeCall csta_id)
	conf      *leg          // the extension's other connection in a three-party conference
}

type dtmfRecord struct {
	Time   time.Time `json:"time"`
	Ext    string    `json:"ext"`
	Digits string    `json:"digits"`
	By     string    `json:"by"` // "bridge" (SendDTMF) or "phone" (control API)
}

func (e *end) other() *end {
	if e.call.ends[0] == e {
		return e.call.ends[1]
	}
	return e.call.ends[0]
}

func (c *call) index(e *end) int {
	if c.ends[0] == e {
		return 0
	}
	if c.ends[1] == e {
		return 1
	}
	return -1
}

// newCall registers a call between from and to. Callers hold p.mu.
func (p *PBX) newCall(from, to *end) *call {
	p.nextCall++
	c := &call{id: fmt.Sprintf("c%d", p.nextCall), seq: p.nextCall, created: p.now(),
		ends: [2]*end{from, to}, done: make(chan struct{})}
	from.call, to.call = c, c
	p.calls[c.id] = c
	return c
}

// partyFor describes number as a party: an extension by its name and display
// name, anything else as an outside number. Callers hold p.mu.
func (p *PBX) partyFor(number, name string) (pbx.Party, string) {
	if x, ok := p.exts[number]; ok {
		return pbx.Party{Number: x.Name, Name: x.DisplayName}, x.Name
	}
	return pbx.Party{Number: number, Name: name}, ""
}

// newLeg gives extension end e its connection. Callers hold p.mu.
func (p *PBX) newLeg(e *end, id string, dir pbx.Direction, st pbx.State) *leg {
	p.nextLeg++
	if id == "" {
		id = fmt.Sprintf("sim-%d", p.nextLeg)
	}
	domain := "sim.invalid"
	if x, ok := p.exts[e.ext]; ok && x.Domain != "" {
		domain = x.Domain
	}
	l := &leg{end: e, ref: pbx.CallRef{Ext: e.ext, ID: id}, seq: p.nextLeg, dir: dir, state: st,
		remote: e.other().party, sipCallID: randomHex(16) + "@" + domain, tagged: make(chan struct{})}
	e.leg = l
	p.legs[l.ref] = l
	return l
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// ring calls end e: an extension gets an alerting connection (Offered), an
// outside party answers after AnswerAfter. Callers hold p.mu.
func (p *PBX) ring(e *end) {
	e.phase = ringing
	if e.ext != "" {
		if _, ok := p.exts[e.ext]; !ok {
			// Removed by a reload before it could be called.
			p.endCallAs(e.call, e, pbx.CauseUnreachable)
			return
		}
		from := e.other()
		l := p.newLeg(e, "", pbx.Incoming, pbx.StateAlerting)
		l.headers = map[string]string{
			"X-Sim-Call":          e.call.id,
			"P-Asserted-Identity": assertedIdentity(from.party, l.sipCallID),
		}
		p.emit(pbx.Event{Kind: pbx.EventOffered, Call: l.ref, Remote: l.remote, SIPCallID: l.sipCallID,
			Headers: l.headers})
		return
	}
	if p.neverAnswer {
		return
	}
	e.stopRing = p.after(p.answerAfter, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if e.phase == ringing && !e.call.ended && e.call.index(e) >= 0 {
			p.answer(e)
		}
	})
}

// assertedIdentity renders a P-Asserted-Identity header for party, in the
// domain of the leg's Call-ID.
func assertedIdentity(party pbx.Party, sipCallID string) string {
	domain := "sim.invalid"
	for i := len(sipCallID) - 1; i >= 0; i-- {
		if sipCallID[i] == '@' {
			domain = sipCallID[i+1:]
			break
		}
	}
	uri := "<sip:" + party.Number + "@" + domain + ">"
	if party.Name == "" {
		return uri
	}
	return fmt.Sprintf("%q %s", party.Name, uri)
}

// answer makes ringing end e pick up. Callers hold p.mu.
func (p *PBX) answer(e *end) {
	e.phase = answered
	p.stopTimer(e)
	o := e.other()
	if o.phase == idle {
		// MakeCall with prompt: the device picked up, now call the destination.
		p.ring(o)
		return
	}
	if e.leg != nil && e.leg.state == pbx.StateAlerting {
		e.leg.state = pbx.StateConnected
		p.emit(pbx.Event{Kind: pbx.EventConnected, Call: e.leg.ref, Remote: e.leg.remote})
	}
	if o.leg != nil && o.leg.state == pbx.StateInitiated && o.phase == answered {
		o.leg.state = pbx.StateConnected
		p.emit(pbx.Event{Kind: pbx.EventConnected, Call: o.leg.ref, Remote: o.leg.remote})
	}
}

func (p *PBX) stopTimer(e *end) {
	if e.stopRing != nil {
		e.stopRing()
		e.stopRing = nil
	}
}

// endCall ends c because end by hung up (or was released by the bridge).
// by's connection is cleared first: rejected when it was ringing, normal
// otherwise. The other end's connection then sees the call end: a missed call
// when it was ringing, busy when it was waiting for by to answer and by
// declined, normal otherwise. Callers hold p.mu.
func (p *PBX) endCall(c *call, by *end) {
	declined := pbx.CauseNormal
	if by.phase == ringing {
		declined = pbx.CauseBusy
	}
	p.endCallAs(c, by, declined)
}

// endCallAs is endCall with the cause an unanswered caller sees.
func (p *PBX) endCallAs(c *call, by *end, unanswered pbx.Cause) {
	if c.ended {
		return
	}
	o := by.other()
	for _, e := range c.ends {
		p.stopTimer(e)
	}
	if l := by.leg; l != nil {
		cause := pbx.CauseNormal
		if l.state == pbx.StateAlerting {
			cause = pbx.CauseRejected
		}
		p.clearLeg(l, cause)
	}
	if l := o.leg; l != nil {
		cause := pbx.CauseNormal
		switch {
		case l.state == pbx.StateAlerting:
			cause = pbx.CauseCancelled
		case l.state == pbx.StateInitiated && o.phase == answered:
			cause = unanswered
		}
		p.clearLeg(l, cause)
	}
	p.forget(c)
}

// clearLeg emits the end of connection l. Callers hold p.mu.
func (p *PBX) clearLeg(l *leg, cause pbx.Cause) {
	delete(p.legs, l.ref)
	if l.conf != nil {
		l.conf.conf, l.conf = nil, nil
	}
	l.state = pbx.StateNull
	p.emit(pbx.Event{Kind: pbx.EventCleared, Call: l.ref, Cause: cause})
}

// forget removes an ended call. Callers hold p.mu.
func (p *PBX) forget(c *call) {
	c.ended = true
	delete(p.calls, c.id)
	close(c.done)
}
