package fakeari

import (
	"io"
	"net/http"
	"testing"
	"time"
)

func do(t *testing.T, f *Server, method, path string) int {
	t.Helper()
	req, err := http.NewRequest(method, f.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(f.opts.User, f.opts.Pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// upTo reads events up to and including the marker frame, and returns
// their types for channel id.
func (s eventStream) upTo(t *testing.T, marker, id string) []string {
	t.Helper()
	var got []string
	for {
		ev := s.next(t)
		if ev.Type == marker {
			return got
		}
		if ev.Channel.ID == id {
			got = append(got, ev.Type)
		}
	}
}

func has(types []string, typ string) bool {
	for _, x := range types {
		if x == typ {
			return true
		}
	}
	return false
}

// With SetLateStasisStart, an originated channel's endpoint events come
// while the originate is being answered, its StasisStart only after.
func TestLateStasisStart(t *testing.T) {
	f := New(Options{Endpoints: []string{"PJSIP/1001"}})
	t.Cleanup(f.Close)
	events := listen(t, f)
	if st := do(t, f, "POST", "/applications/csta-bridge/subscription?eventSource=endpoint:PJSIP/1001"); st != 200 {
		t.Fatalf("subscribe: %d", st)
	}
	f.SetAutoAnswer("PJSIP/1001", true)
	f.SetLateStasisStart(true)
	g := f.HoldReply(func(r Request) bool { return r.Method == "POST" && r.Path == "/channels" })
	done := make(chan int, 1)
	go func() {
		done <- do(t, f, "POST", "/channels?endpoint=PJSIP/1001&app=csta-bridge&appArgs=answer,c1&channelId=n1")
	}()
	select {
	case <-g.Arrived():
	case <-time.After(5 * time.Second):
		t.Fatal("originate never arrived")
	}
	// Carried out, answer not sent: the marker follows everything sent so far.
	if err := f.SendRaw([]byte(`{"type":"Marker"}`)); err != nil {
		t.Fatal(err)
	}
	before := events.upTo(t, "Marker", "n1")
	if !has(before, "ChannelCreated") || !has(before, "ChannelStateChange") || has(before, "StasisStart") {
		t.Errorf("events before the answer %v, want the endpoint's (created, up) and no StasisStart", before)
	}
	if c := f.Channel("n1"); c == nil || !c.InStasis || c.State != "Up" {
		t.Errorf("channel %+v, want up and in Stasis", c)
	}
	g.Release()
	if st := <-done; st != 200 {
		t.Fatalf("originate: %d", st)
	}
	events.skip(t, "StasisStart", "n1")
}

// With SetLateHangups, DELETE /channels/{id} answers 204 and the channel
// is gone, but its hang-up events wait for FlushLate.
func TestLateHangups(t *testing.T) {
	f := New(Options{Endpoints: []string{"PJSIP/1001"}})
	t.Cleanup(f.Close)
	events := listen(t, f)
	if st := do(t, f, "POST", "/channels/create?endpoint=PJSIP/1001&app=csta-bridge&channelId=pa"); st != 200 {
		t.Fatalf("create: %d", st)
	}
	events.skip(t, "StasisStart", "pa")
	f.SetLateHangups(true)
	if st := do(t, f, "DELETE", "/channels/pa?reason=normal"); st != 204 {
		t.Fatalf("hangup: %d", st)
	}
	if f.Channel("pa") != nil {
		t.Error("channel still there after its DELETE")
	}
	if st := do(t, f, "POST", "/channels/create?endpoint=PJSIP/1001&app=csta-bridge&channelId=pb"); st != 200 {
		t.Fatalf("create: %d", st)
	}
	if err := f.SendRaw([]byte(`{"type":"Marker"}`)); err != nil {
		t.Fatal(err)
	}
	if got := events.upTo(t, "Marker", "pa"); len(got) != 0 {
		t.Errorf("hang-up events before FlushLate: %v", got)
	}
	f.FlushLate()
	if err := f.SendRaw([]byte(`{"type":"Marker"}`)); err != nil {
		t.Fatal(err)
	}
	got := events.upTo(t, "Marker", "pa")
	want := []string{"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("hang-up events after FlushLate %v, want %v", got, want)
	}
}
