package esl

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// modelLag is how late callModel reports what a command did, as a loaded
// FreeSWITCH does.
const modelLag = 30 * time.Millisecond

// startModel runs an adapter against a callModel, with extra extensions
// 2001…20nn (answered by swap: no talk support), and routes the call
// events per extension.
func startModel(t *testing.T, extra int) (*harness, *callModel, *router) {
	t.Helper()
	var m *callModel
	h := start(t, func(o *Options, srv *fakeesl.Server) {
		m = newCallModel(t, srv, modelLag)
		// Ten extensions share one command connection on a loaded test
		// machine (and -race): the short test timeouts would end the
		// session, take an answer or hold as not confirmed, or hold music
		// as missing, for slowness alone. The model confirms everything,
		// so every wait ends on its signal; the bounds only catch a hang.
		o.CommandTimeout, o.ConfirmTimeout, o.HoldMusicWait = slowWait, slowWait, slowWait
		// The model's events are numbered without gaps, so the adapter
		// passes each on as soon as the one before it came; the window
		// only holds an event whose predecessor a loaded machine delays.
		o.ReorderWindow = reorderSlack
	})
	exts := append([]pbx.Extension(nil), testExts...)
	for i := range extra {
		n := strconv.Itoa(2001 + i)
		exts = append(exts, pbx.Extension{Name: n, Endpoint: "user/" + n, Domain: "127.0.0.1",
			AutoAnswerHeaders: []string{"Call-Info: <sip:127.0.0.1>;answer-after=0"}})
	}
	h.a.SetExtensions(exts)
	h.up()
	return h, m, newRouter(h)
}

// router hands each extension's call events to whoever waits for them, so
// that extensions can be driven in parallel.
type router struct {
	mu   sync.Mutex
	subs map[string]chan pbx.Event
}

func newRouter(h *harness) *router {
	r := &router{subs: map[string]chan pbx.Event{}}
	go func() {
		for {
			select {
			case e := <-h.events:
				if e.Call.Ext != "" {
					r.ch(e.Call.Ext) <- e
				}
			case <-h.ctx.Done():
				return
			}
		}
	}()
	return r
}

func (r *router) ch(ext string) chan pbx.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.subs[ext]
	if c == nil {
		c = make(chan pbx.Event, 4096)
		r.subs[ext] = c
	}
	return c
}

// until reads ext's events until one satisfies done; it returns them all.
func (r *router) until(ext string, done func(pbx.Event) bool) ([]pbx.Event, error) {
	var got []pbx.Event
	deadline := time.NewTimer(slowWait)
	defer deadline.Stop()
	for {
		select {
		case e := <-r.ch(ext):
			got = append(got, e)
			if done(e) {
				return got, nil
			}
		case <-deadline.C:
			return got, fmt.Errorf("%s: waited %v; events so far %s", ext, slowWait, kinds(got))
		}
	}
}

func kinds(evs []pbx.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "[%v %v byPhone=%v] ", e.Kind, e.Call, e.ByPhone)
	}
	return b.String()
}

// cycle rings ext (from a SIP phone or a loopback channel), and sends
// AnswerCall, HoldCall, RetrieveCall and ClearConnection back to back, each
// as soon as the previous one returned. The extension must see one
// connection only, with the events of exactly these steps.
func cycle(h *harness, m *callModel, r *router, ext, callerNum string, loop bool) error {
	ctx, cancel := context.WithTimeout(h.ctx, slowWait)
	defer cancel()
	phone, _ := m.ring(ext, callerNum, loop)
	c := ref(ext, phone)
	evs, err := r.until(ext, func(e pbx.Event) bool { return e.Kind == pbx.EventOffered })
	if err != nil {
		return err
	}
	if err := h.a.Answer(ctx, c); err != nil {
		return fmt.Errorf("answer %v: %w", c, err)
	}
	if err := h.a.Hold(ctx, c); err != nil {
		return fmt.Errorf("hold right after answer %v: %w", c, err)
	}
	if err := h.a.Retrieve(ctx, c); err != nil {
		return fmt.Errorf("retrieve %v: %w", c, err)
	}
	if err := h.a.ClearConnection(ctx, c); err != nil {
		return fmt.Errorf("clear connection %v: %w", c, err)
	}
	rest, err := r.until(ext, func(e pbx.Event) bool { return e.Kind == pbx.EventCleared && e.Call == c })
	evs = append(evs, rest...)
	if err != nil {
		return err
	}
	want := []pbx.EventKind{pbx.EventOffered, pbx.EventConnected, pbx.EventHeld, pbx.EventRetrieved, pbx.EventCleared}
	var got []pbx.EventKind
	for _, e := range evs {
		if e.Call != c {
			return fmt.Errorf("%v: an event of another connection: %s", c, kinds(evs))
		}
		if (e.Kind == pbx.EventHeld || e.Kind == pbx.EventRetrieved) && e.ByPhone {
			return fmt.Errorf("%v: hold change by the bridge reported as by the phone: %s", c, kinds(evs))
		}
		got = append(got, e.Kind)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("%v: events %s, want kinds %v", c, kinds(evs), want)
	}
	return nil
}

// AnswerCall by swap, then HoldCall sent the moment AnswerCall returned:
// FreeSWITCH reports the device's answer after the originate job's result
// and the bridge after uuid_bridge's +OK. 100 cycles per caller kind: 10
// extensions in parallel, 10 cycles each in a row.
func TestAnswerThenHoldAtOnce(t *testing.T) {
	for _, loop := range []bool{false, true} {
		t.Run(map[bool]string{false: "sip-caller", true: "loopback-caller"}[loop], func(t *testing.T) {
			h, m, r := startModel(t, 10)
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for i := range 10 {
				ext := strconv.Itoa(2001 + i)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := range 10 {
						if err := cycle(h, m, r, ext, strconv.Itoa(3000+10*i+n), loop); err != nil {
							errs <- fmt.Errorf("cycle %d: %w", n, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			checkHoldPairs(t, m)
		})
	}
}

// checkHoldPairs: every `uuid_hold off` goes to the channel the last
// `uuid_hold` went to, and no partner was left with hold music playing.
func checkHoldPairs(t *testing.T, m *callModel) {
	t.Helper()
	held := map[string]bool{}
	for _, c := range m.holdCommands() {
		f := strings.Fields(c)
		u := f[len(f)-1]
		if f[0] == "off" {
			if !held[u] {
				t.Errorf("uuid_hold off %s: no uuid_hold was sent to that channel", u)
			}
			delete(held, u)
		} else {
			held[u] = true
		}
	}
	if n := m.stuckMusic(); n > 0 {
		t.Errorf("%d callers were left with hold music for good (uuid_hold off before the music started)", n)
	}
}

// A call from a loopback channel (IVR, ring group, another application's
// click-to-call) is answered by swap, held, retrieved, and transferred like
// any other, and the loopback channels never show up as calls.
func TestLoopbackCaller(t *testing.T) {
	answered := func(t *testing.T, h *harness, m *callModel, r *router, ext string) (pbx.CallRef, string) {
		t.Helper()
		phone, caller := m.ring(ext, "", true)
		c := ref(ext, phone)
		if _, err := r.until(ext, func(e pbx.Event) bool { return e.Kind == pbx.EventOffered && e.Call == c }); err != nil {
			t.Fatal(err)
		}
		if err := h.a.Answer(ctxT(t), c); err != nil {
			t.Fatalf("Answer: %v", err)
		}
		return c, caller
	}
	only := func(t *testing.T, evs []pbx.Event, refs ...pbx.CallRef) {
		t.Helper()
		for _, e := range evs {
			if !sliceHas(refs, e.Call) {
				t.Errorf("event of a connection that is not the call's: %s", kinds([]pbx.Event{e}))
			}
		}
	}

	t.Run("single-step-transfer", func(t *testing.T) {
		h, m, r := startModel(t, 0)
		c, caller := answered(t, h, m, r, "1002")
		if err := h.a.SingleStepTransfer(ctxT(t), c, "1003"); err != nil {
			t.Fatalf("SingleStepTransfer: %v", err)
		}
		evs, err := r.until("1002", func(e pbx.Event) bool { return e.Kind == pbx.EventCleared })
		if err != nil {
			t.Fatal(err)
		}
		only(t, evs, c)
		got := describe(evs)[c]
		if w := []string{"connected 0000000000", "transferred blind byPhone=false", "cleared transferred"}; !equal(got, w) {
			t.Errorf("events %q, want %q", got, w)
		}
		if !m.live(caller) {
			t.Error("the loopback caller was hung up instead of transferred")
		}
		if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_transfer ", 0); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("transfer", func(t *testing.T) {
		h, m, r := startModel(t, 0)
		c1, caller1 := answered(t, h, m, r, "1002")
		if err := h.a.Hold(ctxT(t), c1); err != nil {
			t.Fatalf("Hold: %v", err)
		}
		c2, caller2 := answered(t, h, m, r, "1002")
		if err := h.a.Transfer(ctxT(t), c1, c2); err != nil {
			t.Fatalf("Transfer: %v", err)
		}
		if _, err := h.srv.WaitCommand(ctxT(t), "api uuid_bridge "+caller1+" "+caller2, 0); err != nil {
			t.Fatal(err)
		}
		cleared := 0
		evs, err := r.until("1002", func(e pbx.Event) bool {
			if e.Kind == pbx.EventCleared {
				cleared++
			}
			return cleared == 2
		})
		if err != nil {
			t.Fatal(err)
		}
		only(t, evs, c1, c2)
		got := describe(evs)
		for _, c := range []pbx.CallRef{c1, c2} {
			n := len(got[c])
			if n < 2 || got[c][n-2] != "transferred attended byPhone=false" || got[c][n-1] != "cleared transferred" {
				t.Errorf("%v: %q, want to end transferred", c, got[c])
			}
		}
	})

	t.Run("clear-connection", func(t *testing.T) {
		h, m, r := startModel(t, 0)
		c, caller := answered(t, h, m, r, "1002")
		if err := h.a.ClearConnection(ctxT(t), c); err != nil {
			t.Fatalf("ClearConnection: %v", err)
		}
		evs, err := r.until("1002", func(e pbx.Event) bool { return e.Kind == pbx.EventCleared })
		if err != nil {
			t.Fatal(err)
		}
		only(t, evs, c)
		if m.live(caller) {
			t.Error("the loopback caller is still up after its partner was released")
		}
	})
}

func sliceHas(refs []pbx.CallRef, c pbx.CallRef) bool {
	for _, x := range refs {
		if x == c {
			return true
		}
	}
	return false
}
