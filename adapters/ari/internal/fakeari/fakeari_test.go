package fakeari

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// The adapter's undos rely on what Asterisk answers when there is nothing
// to undo. These are the answers of a real Asterisk 22.10.1 (two Local
// channels in Stasis, a mixing bridge, curl), which the fake must give too.
func TestAnswersLikeAsterisk(t *testing.T) {
	f := New(Options{Endpoints: []string{"PJSIP/1001", "PJSIP/1002"}})
	t.Cleanup(f.Close)
	events := listen(t, f)

	call := func(method, path string, wantStatus int, wantBody string) {
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
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.TrimSpace(string(body)); resp.StatusCode != wantStatus || (wantBody != "" && got != wantBody) {
			t.Fatalf("%s %s = %d %s, want %d %s", method, path, resp.StatusCode, got, wantStatus, wantBody)
		}
	}
	call("POST", "/channels/create?endpoint=PJSIP/1001&app=csta-bridge&channelId=pa", 200, "")
	call("POST", "/channels/create?endpoint=PJSIP/1002&app=csta-bridge&channelId=pb", 200, "")
	call("POST", "/bridges?type=mixing&bridgeId=br", 200, "")
	call("POST", "/bridges/br/addChannel?channel=pa,pb", 204, "")
	events.skip(t, "ChannelEnteredBridge", "pb")

	// (1) Adding a channel to the bridge it is in: 204, and it leaves and
	// re-enters that bridge.
	call("POST", "/bridges/br/addChannel?channel=pa", 204, "")
	if ev := events.next(t); ev.Type != "ChannelLeftBridge" || ev.Channel.ID != "pa" || ev.Bridge.ID != "br" || strings.Join(ev.Bridge.Channels, ",") != "pb" {
		t.Errorf("first event %+v, want pa leaving br (left with pb)", ev)
	}
	if ev := events.next(t); ev.Type != "ChannelEnteredBridge" || ev.Channel.ID != "pa" || ev.Bridge.ID != "br" || len(ev.Bridge.Channels) != 2 {
		t.Errorf("second event %+v, want pa entering br (with pb)", ev)
	}
	if got := f.BridgeChannels("br"); len(got) != 2 {
		t.Errorf("bridge holds %v, want pa and pb", got)
	}

	// (2) Taking out a channel that is not in the bridge.
	call("POST", "/bridges/br/removeChannel?channel=pa", 204, "")
	call("POST", "/bridges/br/removeChannel?channel=pa", 422, `{"message":"Channel not in this bridge"}`)
	call("POST", "/bridges/br/removeChannel?channel=nosuch", 400, `{"message":"Channel not found"}`)
	call("POST", "/bridges/br/removeChannel?channel=pb,nosuch", 400, `{"message":"Channel not found"}`)
	call("POST", "/bridges/br/removeChannel", 400, `{"message":"Missing parameter channel"}`)
	call("POST", "/bridges/nosuch/removeChannel?channel=pa", 404, `{"message":"Bridge not found"}`)
	if got := f.BridgeChannels("br"); len(got) != 1 || got[0] != "pb" {
		t.Errorf("bridge holds %v, want pb only (a refused request changes nothing)", got)
	}

	// (3) Starting music that plays, (4) stopping music that does not.
	call("POST", "/channels/pa/moh", 204, "")
	call("POST", "/channels/pa/moh", 204, "")
	if !f.Channel("pa").MOH {
		t.Error("no music after starting it twice")
	}
	call("DELETE", "/channels/pa/moh", 204, "")
	call("DELETE", "/channels/pa/moh", 204, "")
	if f.Channel("pa").MOH {
		t.Error("music after stopping it")
	}
	call("DELETE", "/channels/nosuch/moh", 404, `{"message":"Channel not found"}`)

	// Music keeps playing when the channel joins a bridge.
	call("POST", "/channels/pa/moh", 204, "")
	call("POST", "/bridges/br/addChannel?channel=pa", 204, "")
	if c := f.Channel("pa"); !c.MOH || c.Bridge != "br" {
		t.Errorf("pa: music %v, bridge %q; want music, in br", c.MOH, c.Bridge)
	}
}

// A dropped request breaks the connection: the client gets no answer, and
// a request held before it took effect never does.
func TestGateDrop(t *testing.T) {
	f := New(Options{Endpoints: []string{"PJSIP/1001"}})
	t.Cleanup(f.Close)
	g := f.HoldRequest(func(r Request) bool { return r.Path == "/bridges" })
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", f.URL+"/bridges?bridgeId=br", nil)
		req.SetBasicAuth(f.opts.User, f.opts.Pass)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-g.Arrived():
	case <-time.After(5 * time.Second):
		t.Fatal("request never held")
	}
	g.Drop()
	g.Release() // too late: the drop decided
	select {
	case err := <-errc:
		if err == nil {
			t.Error("dropped request answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dropped request still waiting")
	}
	if b := f.Bridges(); len(b) != 0 {
		t.Errorf("bridges %v: the dropped request was carried out", b)
	}
}

type wireEvent struct {
	Type    string
	Channel struct{ ID string }
	Bridge  struct {
		ID       string
		Channels []string
	}
}

type eventStream chan wireEvent

// listen connects to the fake's event websocket and waits until the fake
// has it, so no event is sent before.
func listen(t *testing.T, f *Server) eventStream {
	t.Helper()
	cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(f.URL, "http")+"/events?app="+f.opts.App, "http://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(f.opts.User+":"+f.opts.Pass)))
	conn, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	deadline := time.After(5 * time.Second)
	for {
		changed := f.Changed()
		if f.Connected() {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("websocket never registered")
		}
	}
	out := make(eventStream, 100)
	go func() {
		defer close(out)
		for {
			var data []byte
			if websocket.Message.Receive(conn, &data) != nil {
				return
			}
			var ev wireEvent
			if json.Unmarshal(data, &ev) == nil {
				out <- ev
			}
		}
	}()
	return out
}

func (s eventStream) next(t *testing.T) wireEvent {
	t.Helper()
	select {
	case ev, ok := <-s:
		if !ok {
			t.Fatal("event websocket closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return wireEvent{}
}

// skip reads events up to and including the one of typ for channel id.
func (s eventStream) skip(t *testing.T, typ, id string) {
	t.Helper()
	for {
		if ev := s.next(t); ev.Type == typ && ev.Channel.ID == id {
			return
		}
	}
}

// FailRequest refuses only the requests its matcher picks, as many times
// as asked; the others are carried out.
func TestFailRequest(t *testing.T) {
	f := New(Options{Endpoints: []string{"PJSIP/1001"}})
	t.Cleanup(f.Close)
	f.FailRequest(func(r Request) bool { return r.Method == "POST" && r.Params["bridgeId"] == "b2" }, 500, `{"message":"Internal Server Error"}`, 1)
	post := func(id string) int {
		t.Helper()
		req, err := http.NewRequest("POST", f.URL+"/bridges?bridgeId="+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(f.opts.User, f.opts.Pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		id   string
		want int
	}{{"b1", 200}, {"b2", 500}, {"b3", 200}, {"b2", 200}} {
		if got := post(c.id); got != c.want {
			t.Errorf("creating bridge %s answered %d, want %d", c.id, got, c.want)
		}
	}
	if got := strings.Join(f.Bridges(), ","); got != "b1,b2,b3" {
		t.Errorf("bridges %s, want b1,b2,b3", got)
	}
}
