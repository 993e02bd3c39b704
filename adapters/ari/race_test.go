package ari

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/csta-bridge/csta-bridge/adapters/ari/internal/fakeari"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// raceRig is an adapter on a fake Asterisk that answers before it reports
// (fakeari/late.go), with n extensions 1101.. and an outside phone 2101..
// calling each of them through the Stasis snippet.
type raceRig struct {
	t    *testing.T
	fake *fakeari.Server
	a    *Adapter
	exts []pbx.Extension
	evs  map[string]chan pbx.Event // per extension
}

func newRaceRig(t *testing.T, n int) *raceRig {
	t.Helper()
	r := &raceRig{t: t, evs: map[string]chan pbx.Event{}}
	var eps []string
	for i := range n {
		ext := fmt.Sprint(1101 + i)
		r.exts = append(r.exts, pbx.Extension{Name: ext, Endpoint: "PJSIP/" + ext, Domain: "pbx.test",
			AutoAnswerHeaders: []string{"Call-Info: <sip:pbx>;answer-after=0"}})
		eps = append(eps, "PJSIP/"+ext, fmt.Sprintf("PJSIP/%d", 2101+i))
		r.evs[ext] = make(chan pbx.Event, 1000)
	}
	r.fake = fakeari.New(fakeari.Options{App: "csta-bridge", Endpoints: eps})
	t.Cleanup(r.fake.Close)
	r.fake.SetLateStasisStart(true)
	r.fake.SetLateHangups(true)
	o := testOptions(t, r.fake)
	// Debug on, so the event and command log is built under load too, but
	// not printed: a hundred cycles would drown a failure.
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	a.SetExtensions(r.exts)
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan pbx.Event, 1000)
	done := make(chan error, 1)
	up := make(chan struct{})
	go func() { done <- a.Run(ctx, events) }()
	go func() {
		for {
			select {
			case ev := <-events:
				if ev.Kind == pbx.EventLink && ev.Up {
					select {
					case <-up: // a reconnect
					default:
						close(up)
					}
				}
				if ch := r.evs[ev.Call.Ext]; ch != nil && ev.Kind != pbx.EventDevice {
					ch <- ev
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-up:
	case <-ctxT(t).Done():
		t.Fatal("adapter never connected")
	}
	waitFake(t, r.fake, "endpoints subscribed", func() bool {
		return r.fake.Connected() && len(r.fake.Subscriptions()) == n
	})
	return r
}

// next waits for ext's next event, skipping nothing: the sequence is the
// check. flush lets the hang-up events the fake holds back go as soon as
// they are queued.
func (r *raceRig) next(ext string, flush bool) (pbx.Event, error) {
	ctx := ctxT(r.t)
	for {
		changed := r.fake.Changed()
		if flush {
			r.fake.FlushLate()
		}
		select {
		case ev := <-r.evs[ext]:
			return ev, nil
		case <-changed:
		case <-ctx.Done():
			return pbx.Event{}, fmt.Errorf("%s: no event within %s", ext, waitLimit)
		}
	}
}

// cycle is one call to ext: it rings, AnswerCall, and at once HoldCall,
// then RetrieveCall and ClearConnection. It returns the events of the
// connection and the first failed command.
func (r *raceRig) cycle(ctx context.Context, i int) ([]pbx.Event, error) {
	ext := r.exts[i].Name
	ep := r.exts[i].Endpoint
	caller := fmt.Sprintf("PJSIP/%d", 2101+i)
	aID := r.fake.PhoneDials(caller, ext)
	off, err := r.next(ext, false)
	if err != nil {
		return nil, err
	}
	got := []pbx.Event{off}
	if off.Kind != pbx.EventOffered {
		return got, fmt.Errorf("first event %s, want offered", off.Kind)
	}
	ref := off.Call
	r.fake.SetAutoAnswer(ep, true)
	var cmdErr error
	if err := r.a.Answer(ctx, ref); err != nil {
		cmdErr = err
	} else if err := r.a.Hold(ctx, ref); err != nil {
		cmdErr = err
	}
	r.fake.SetAutoAnswer(ep, false)
	r.fake.FlushLate()
	if cmdErr == nil {
		cmdErr = r.a.Retrieve(ctx, ref)
	}
	if err := r.a.ClearConnection(ctx, ref); err != nil && cmdErr == nil {
		cmdErr = err
	}
	for {
		ev, err := r.next(ext, true)
		if err != nil {
			return got, err
		}
		got = append(got, ev)
		if ev.Call != ref {
			// The auto-answer channel announced as a call of its own.
			return got, fmt.Errorf("event %s for %s, a connection other than %s", ev.Kind, ev.Call, ref)
		}
		if ev.Kind == pbx.EventCleared {
			break
		}
	}
	// The two-party rule hangs up the caller; its end is the cycle's end.
	waitFake(r.t, r.fake, "caller "+aID+" gone", func() bool {
		r.fake.FlushLate()
		return r.fake.Channel(aID) == nil
	})
	return got, cmdErr
}

// AnswerCall then HoldCall in the same millisecond, a hundred times, on an
// Asterisk that answers the originate before the new channel's StasisStart
// and the hang-up of the ringing channel before its ChannelDestroyed
// (issue 15): every HoldCall is judged on the answered call, and every call
// reports offered, connected, held, retrieved, cleared and nothing else.
// Ten extensions at once, ten calls each; and one extension a hundred times
// in a row, where no other call's FlushLate lets the ringing channel's end
// through before the HoldCall.
func TestAnswerThenHoldAtOnce(t *testing.T) {
	for _, c := range []struct {
		name         string
		exts, cycles int
	}{{"10 extensions at once x 10", 10, 10}, {"1 extension x 100", 1, 100}} {
		t.Run(c.name, func(t *testing.T) { answerThenHold(t, c.exts, c.cycles) })
	}
}

func answerThenHold(t *testing.T, exts, cycles int) {
	r := newRaceRig(t, exts)
	ctx := context.Background()
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for i := range exts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range cycles {
				cctx, cancel := context.WithTimeout(ctx, waitLimit)
				evs, err := r.cycle(cctx, i)
				cancel()
				want := "offered connected held retrieved cleared(normal)"
				if got := kinds(evs); err != nil || got != want {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s cycle %d: err %v; events %s", r.exts[i].Name, n, err, got))
					mu.Unlock()
					if strings.Contains(fmt.Sprint(err), "no event within") {
						return // the extension's stream is out of step
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d cycles failed; first ones:\n%s", len(failures), exts*cycles, strings.Join(failures[:min(5, len(failures))], "\n"))
	}
	waitFake(t, r.fake, "no channels left", func() bool { r.fake.FlushLate(); return len(r.fake.Channels()) == 0 })
	waitFake(t, r.fake, "no bridges left", func() bool { return len(r.fake.Bridges()) == 0 })
}
