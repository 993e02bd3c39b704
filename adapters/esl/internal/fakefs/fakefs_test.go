package fakefs

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
)

// client is a raw event socket client: events and replies in wire order.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, f *FS) *client {
	t.Helper()
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	cl.read() // auth/request
	cl.send("auth ClueCon")
	cl.read()
	cl.send("event plain ALL")
	cl.read()
	return cl
}

func (c *client) send(cmd string) { fmt.Fprintf(c.c, "%s\n\n", cmd) }

func (c *client) read() fakeesl.Frame {
	c.t.Helper()
	fr, err := fakeesl.ReadFrame(c.r)
	if err != nil {
		c.t.Fatal(err)
	}
	return fr
}

// next returns the next event (skipping replies).
func (c *client) next() fakeesl.Event {
	c.t.Helper()
	for {
		fr := c.read()
		if fr.Get("Content-Type") != "text/event-plain" {
			continue
		}
		e, err := fakeesl.ParseEvent(fr.Body)
		if err != nil {
			c.t.Fatal(err)
		}
		return e
	}
}

// api sends an api command and returns its reply (events before it are
// returned too, in order).
func (c *client) api(cmd string) (string, []fakeesl.Event) {
	c.t.Helper()
	c.send("api " + cmd)
	var evs []fakeesl.Event
	for {
		fr := c.read()
		switch fr.Get("Content-Type") {
		case "api/response":
			return string(fr.Body), evs
		case "text/event-plain":
			e, _ := fakeesl.ParseEvent(fr.Body)
			evs = append(evs, e)
		}
	}
}

func start(t *testing.T, o Options) *FS {
	t.Helper()
	o.Captures = "../../testdata"
	if o.Users == nil {
		o.Users = []string{"1001", "1002"}
	}
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func names(evs []fakeesl.Event, uuid string) []string {
	var out []string
	for _, e := range evs {
		if e.Get("Unique-ID") == uuid {
			n := e.Name()
			if n == "CHANNEL_CALLSTATE" {
				n += " " + e.Get("Channel-Call-State")
			}
			out = append(out, n)
		}
	}
	return out
}

// A basic call plays the captured flow: the caller's channel, the
// callee's channel naming it as originator, the answer, the bridge on
// the a-leg, and both channels ending when the caller hangs up.
func TestBasicCall(t *testing.T) {
	f := start(t, Options{})
	c := dial(t, f)
	if err := f.Dial("1001", "1002"); err != nil {
		t.Fatal(err)
	}
	var evs []fakeesl.Event
	for len(evs) < 6 {
		evs = append(evs, c.next())
	}
	a, b := evs[0].Get("Unique-ID"), evs[2].Get("Unique-ID")
	if evs[2].Get("Other-Leg-Unique-ID") != a || evs[2].Get("Other-Type") != "originator" ||
		evs[2].Get("Channel-Presence-ID") != "1002@127.0.0.1" || evs[2].Get("Call-Direction") != "outbound" ||
		evs[2].Get("variable_dialed_user") != "1002" {
		t.Fatalf("callee CHANNEL_CREATE: %v", evs[2].Headers)
	}
	if got := f.Shows("1002"); len(got) != 1 || got[0] != Ringing {
		t.Fatalf("1002 shows %v", got)
	}
	if err := f.Answer("1002"); err != nil {
		t.Fatal(err)
	}
	if err := f.Hangup("1001"); err != nil {
		t.Fatal(err)
	}
	for destroyed := 0; destroyed < 2; {
		e := c.next()
		if e.Name() == "CHANNEL_DESTROY" {
			destroyed++
		}
		evs = append(evs, e)
	}
	wantA := "CHANNEL_CREATE,CHANNEL_CALLSTATE RINGING,CHANNEL_CALLSTATE EARLY,CHANNEL_ANSWER,CHANNEL_CALLSTATE ACTIVE," +
		"CHANNEL_BRIDGE,CALL_UPDATE,CHANNEL_HANGUP,CHANNEL_UNBRIDGE,CHANNEL_CALLSTATE HANGUP,CHANNEL_HANGUP_COMPLETE,CHANNEL_DESTROY"
	if got := strings.Join(names(evs, a), ","); got != wantA {
		t.Errorf("caller's events\n got %s\nwant %s", got, wantA)
	}
	wantB := "CHANNEL_CREATE,CHANNEL_PROGRESS,CHANNEL_CALLSTATE RINGING,CHANNEL_ANSWER,CHANNEL_CALLSTATE ACTIVE," +
		"CALL_UPDATE,CHANNEL_HANGUP,CHANNEL_CALLSTATE HANGUP,CHANNEL_HANGUP_COMPLETE,CHANNEL_DESTROY"
	if got := strings.Join(names(evs, b), ","); got != wantB {
		t.Errorf("callee's events\n got %s\nwant %s", got, wantB)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// `show channels` lists a channel only after the list delay; `status`
// counts it at once, and uuid_dump has it with the variables set on it.
func TestListDelay(t *testing.T) {
	f := start(t, Options{ListDelay: time.Hour})
	c := dial(t, f)
	if err := f.Dial("1001", "1002"); err != nil {
		t.Fatal(err)
	}
	ev := c.next()
	u := ev.Get("Unique-ID")
	if r, _ := c.api("show channels as json"); !strings.HasPrefix(r, `{"row_count": 0}`) {
		t.Fatalf("listed at once: %s", r)
	}
	if r, _ := c.api("status"); !strings.Contains(r, "\n2 session(s) - peak") {
		t.Fatalf("status: %s", r)
	}
	if r, _ := c.api("uuid_setvar " + u + " csta_id 7"); r != "+OK\n" {
		t.Fatalf("uuid_setvar: %q", r)
	}
	if r, _ := c.api("uuid_dump " + u + " json"); !strings.Contains(r, `"variable_csta_id":"7"`) || !strings.Contains(r, `"Event-Name":"CHANNEL_DATA"`) {
		t.Fatalf("uuid_dump: %s", r)
	}
	f.SetListDelay(0)
	if r, _ := c.api("show channels as json"); !strings.Contains(r, `"row_count":2`) || !strings.Contains(r, u) {
		t.Fatalf("not listed after the delay: %s", r)
	}
	if r, _ := c.api("uuid_kill 00000000-0000-0000-0000-000000000000"); r != noChannel {
		t.Fatalf("uuid_kill of nothing: %q", r)
	}
}

// An originate calls the phone; with auto-answer it answers by itself
// and the job reports the channel, without it the originate times out.
func TestOriginate(t *testing.T) {
	f := start(t, Options{})
	c := dial(t, f)
	c.send("bgapi originate {origination_caller_id_number=1002}[origination_uuid=11111111-2222-4333-8444-555555555555,sip_auto_answer=true]user/1001 1002 XML default")
	for {
		e := c.next()
		if e.Name() == "BACKGROUND_JOB" {
			if !strings.HasPrefix(string(e.Body), "+OK 11111111-2222-4333-8444-555555555555") {
				t.Fatalf("job: %q", e.Body)
			}
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Wait(ctx, "1002", Ringing); err != nil {
		t.Fatal(err)
	}
	f.HangupAll()
	f.SetIgnoreAutoAnswer("1001", true)
	c.send("bgapi originate [originate_timeout=1,sip_auto_answer=true]user/1001 &park()")
	for {
		e := c.next()
		if e.Name() == "BACKGROUND_JOB" {
			if string(e.Body) != "-ERR NO_ANSWER\n" {
				t.Fatalf("job: %q", e.Body)
			}
			break
		}
	}
}
