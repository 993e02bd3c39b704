// Package pbxtest holds what the adapters' integration tests against a real
// PBX share: a log of the adapter's events that a test waits on in any
// order, and waiting on a test phone's call state.
package pbxtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// EventLog keeps every event an adapter sends, so a test can wait for events
// in any order and check that something did not happen.
type EventLog struct {
	wait   time.Duration
	mu     sync.Mutex
	events []pbx.Event
	used   []bool
	signal chan struct{}
}

// NewEventLog drains events until the test ends; each Wait gives up after wait.
func NewEventLog(t *testing.T, events <-chan pbx.Event, wait time.Duration) *EventLog {
	l := &EventLog{wait: wait, signal: make(chan struct{}, 1)}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case ev := <-events:
				l.mu.Lock()
				l.events = append(l.events, ev)
				l.used = append(l.used, false)
				l.mu.Unlock()
				select {
				case l.signal <- struct{}{}:
				default:
				}
			case <-stop:
				return
			}
		}
	}()
	return l
}

// Wait returns the first event not yet taken that matches, and takes it.
func (l *EventLog) Wait(t *testing.T, desc string, match func(pbx.Event) bool) pbx.Event {
	t.Helper()
	deadline := time.NewTimer(l.wait)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for i, ev := range l.events {
			if !l.used[i] && match(ev) {
				l.used[i] = true
				l.mu.Unlock()
				return ev
			}
		}
		l.mu.Unlock()
		select {
		case <-l.signal:
		case <-deadline.C:
			t.Fatalf("no %s within %s; events so far:\n%s", desc, l.wait, l.Dump())
		}
	}
}

// None fails the test if an event not yet taken matches.
func (l *EventLog) None(t *testing.T, desc string, match func(pbx.Event) bool) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, ev := range l.events {
		if !l.used[i] && match(ev) {
			t.Fatalf("unexpected %s: %s %s (%+v)", desc, ev.Kind, ev.Call, ev)
		}
	}
}

// TakeAll marks every event so far as taken: late events of one scenario
// must not satisfy the next one's waits.
func (l *EventLog) TakeAll() {
	l.mu.Lock()
	for i := range l.used {
		l.used[i] = true
	}
	l.mu.Unlock()
}

// Dump lists the events so far; taken ones are marked with *.
func (l *EventLog) Dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for i, ev := range l.events {
		mark := " "
		if l.used[i] {
			mark = "*"
		}
		fmt.Fprintf(&b, "%s %s %s remote=%+v cause=%s csta=%d byphone=%v\n", mark, ev.Kind, ev.Call, ev.Remote,
			ev.Cause, ev.CSTAID, ev.ByPhone)
	}
	return b.String()
}

// PhoneState waits until the test phone's call reaches want.
func PhoneState(t *testing.T, ctx context.Context, c *testphone.Call, want testphone.State) {
	t.Helper()
	if _, err := c.WaitState(ctx, want); err != nil {
		t.Fatalf("call %s: waiting for %s (now %s, %s): %v", c.CallID(), want, c.State(), c.EndReason(), err)
	}
}

// On waits for the event of kind k on connection ref.
func (l *EventLog) On(t *testing.T, ref pbx.CallRef, k pbx.EventKind) pbx.Event {
	t.Helper()
	return l.Wait(t, fmt.Sprintf("%s for %s", k, ref), func(ev pbx.Event) bool { return ev.Kind == k && ev.Call == ref })
}

// OfferedFor waits for the Offered event of a test phone's incoming call,
// matched by SIP Call-ID.
func (l *EventLog) OfferedFor(t *testing.T, ext string, c *testphone.Call) pbx.Event {
	t.Helper()
	return l.Wait(t, "offered to "+ext, func(ev pbx.Event) bool {
		return ev.Kind == pbx.EventOffered && ev.Call.Ext == ext && ev.SIPCallID == c.CallID()
	})
}

// DialAndOffer has phone from call extension to through the PBX and returns
// the caller's and the callee's phone calls and the two legs' first events
// (Originated, Offered), matched by SIP Call-ID.
func (l *EventLog) DialAndOffer(t *testing.T, ctx context.Context, phones map[string]*testphone.Phone, from, to string) (
	out, in *testphone.Call, orig, offered pbx.Event) {
	t.Helper()
	out, err := phones[from].Dial(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	in, err = phones[to].Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	PhoneState(t, ctx, in, testphone.StateRinging)
	orig = l.Wait(t, "originated by "+from, func(ev pbx.Event) bool {
		return ev.Kind == pbx.EventOriginated && ev.Call.Ext == from && ev.SIPCallID == out.CallID()
	})
	if orig.Remote.Number != to {
		t.Errorf("originated by %s: remote %+v, want number %s", from, orig.Remote, to)
	}
	offered = l.OfferedFor(t, to, in)
	if offered.Remote.Number != from {
		t.Errorf("offered to %s: remote %+v, want number %s", to, offered.Remote, from)
	}
	return out, in, orig, offered
}
