package ari

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// logBuffer is a slog text handler's output, safe for the adapter's
// goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// The debug log says, for every event, which channel it is about and
// whose it is (an extension's leg, an owned call, or nobody's), and for
// every REST request its arguments, answer and duration, without the
// credentials.
func TestDebugLogAttribution(t *testing.T) {
	var buf logBuffer
	h := newHarness(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	aID, ref := ownedConnected(t, h, "1001")
	if err := h.fake.SendRaw([]byte(`{"type":"ChannelVarset","channel":{"id":"foreign-1","name":"PJSIP/7777-00000001","state":"Up"},"variable":"X","value":"1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Hold(ctxT(t), ref); err != nil {
		t.Fatal(err)
	}
	h.barrier()

	leg := buf.lines("channel=" + ref.ID)
	if !has(leg, `msg="ARI event"`, "type=ChannelStateChange", "name=PJSIP/1002-", "ext=1002 leg="+ref.ID) {
		t.Errorf("no event record naming 1002's channel and leg:\n%s", strings.Join(leg, "\n"))
	}
	if !has(buf.lines("channel="+aID), `msg="ARI event"`, "type=StasisStart", `args="[dial 1002]"`, "ext=1001 leg="+aID, "call=csta-call-") {
		t.Errorf("no StasisStart record for the caller with its leg and call:\n%s", strings.Join(buf.lines("channel="+aID), "\n"))
	}
	if !has(buf.lines("foreign-1"), `msg="ARI event"`, "type=ChannelVarset", "name=PJSIP/7777-00000001", "not_ours=true") {
		t.Errorf("foreign channel not logged as not ours:\n%s", strings.Join(buf.lines("foreign-1"), "\n"))
	}
	req := buf.lines(`msg="ARI request"`)
	if !has(req, "method=POST", "/removeChannel", `body="{\"channel\":\"`+aID, "took=", "status=204") {
		t.Errorf("hold's removeChannel not logged with its argument, answer and duration:\n%s", strings.Join(req, "\n"))
	}
	if !has(req, "method=POST path=/ari/channels/create", `\"endpoint\":\"PJSIP/1002\"`, "status=200") {
		t.Errorf("channel creation not logged with its body:\n%s", strings.Join(req, "\n"))
	}
	if pw := h.fake.Options().Pass; len(buf.lines(pw)) != 0 {
		t.Errorf("the ARI password is in the log: %s", buf.lines(pw)[0])
	}
}

// has says whether one of lines contains every part.
func has(lines []string, parts ...string) bool {
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// frameAdapter is an adapter that only handles frames (no connection),
// logging at level.
func frameAdapter(t testing.TB, level slog.Level) *Adapter {
	a, err := New(Options{URL: "http://127.0.0.1:1/ari", Username: "u", Password: "p", Application: "csta-bridge",
		Context: "from-internal", Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		t.Fatal(err)
	}
	a.SetExtensions(testExts)
	return a
}

// The most frequent event (about half of them are ChannelVarset), about a
// mapped extension's channel so the attribution has a leg to name.
var varsetFrame = []byte(`{"type":"ChannelVarset","asterisk_id":"02:fc:00:00:00:01","channel":{"id":"1795639568.114","name":"PJSIP/1001-00000064","state":"Up","protocol_id":"abc@pbx","caller":{"name":"Phone 1001","number":"1001"},"connected":{"name":"","number":"1002"},"dialplan":{"context":"phones","exten":"1002","priority":1}},"variable":"BRIDGEPEER","value":"PJSIP/1002-00000065"}`)

// handleBare is the event path without any logging: decode and apply.
func handleBare(a *Adapter, frame []byte, fatal chan error) {
	ev, err := decodeEvent(frame)
	if err != nil {
		panic(err)
	}
	a.mu.Lock()
	a.handleEvent(ev, fatal)
	a.mu.Unlock()
}

// With debug off the event path allocates what decoding and applying the
// event need and nothing for the debug log; with debug on it does build
// the record (so the measure can see it).
func TestEventPathDebugOffAllocatesNothingExtra(t *testing.T) {
	fatal := make(chan error, 1)
	measure := func(level slog.Level) (full, bare float64) {
		a := frameAdapter(t, level)
		for range 5 { // the channel, its leg and their events exist from here on
			a.handleFrame(varsetFrame, fatal)
		}
		full = testing.AllocsPerRun(200, func() { a.handleFrame(varsetFrame, fatal) })
		bare = testing.AllocsPerRun(200, func() { handleBare(a, varsetFrame, fatal) })
		return full, bare
	}
	if full, bare := measure(slog.LevelInfo); full != bare {
		t.Errorf("debug off: %v allocations per event, %v without logging", full, bare)
	}
	if full, bare := measure(slog.LevelDebug); full <= bare {
		t.Errorf("debug on: %v allocations per event, %v without logging: the measure cannot see the log", full, bare)
	}
}

// Secrets in a request's query or JSON body never reach the log.
func TestRequestLogRedactsSecrets(t *testing.T) {
	q, _ := url.ParseQuery("api_key=bridge:pw1&channel=c1&Password=pw2")
	if got := redactQuery(q); strings.Contains(got, "pw1") || strings.Contains(got, "pw2") || !strings.Contains(got, "channel=c1") {
		t.Errorf("query logged as %q", got)
	}
	req, err := http.NewRequest("POST", "http://127.0.0.1/ari/channels", strings.NewReader(`{"endpoint":"PJSIP/1001","variables":{"SIP_PASSWORD":"pw3","A":"b"},"api_key":"u:pw4"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := requestBody(req); strings.Contains(got, "pw3") || strings.Contains(got, "pw4") || !strings.Contains(got, `"A":"b"`) || !strings.Contains(got, "PJSIP/1001") {
		t.Errorf("body logged as %s", got)
	}
}

func BenchmarkHandleFrame(b *testing.B) {
	for _, c := range []struct {
		name  string
		level slog.Level
	}{{"debug-off", slog.LevelInfo}, {"debug-on", slog.LevelDebug}} {
		b.Run(c.name, func(b *testing.B) {
			a := frameAdapter(b, c.level)
			fatal := make(chan error, 1)
			b.ReportAllocs()
			for b.Loop() {
				a.handleFrame(varsetFrame, fatal)
			}
		})
	}
}
