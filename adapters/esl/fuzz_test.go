package esl

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/textproto"
	"testing"

	"github.com/csta-bridge/csta-bridge/adapters/esl/internal/fakeesl"
)

func mimeOf(hs []fakeesl.Header) textproto.MIMEHeader {
	m := textproto.MIMEHeader{}
	for _, h := range hs {
		m.Add(h.Name, h.Value)
	}
	return m
}

// FuzzDecodeEvent feeds arbitrary plain-event bodies (as eslgo would parse
// them: MIME headers, then an optional body) to the event decoding and the
// state machine.
func FuzzDecodeEvent(f *testing.F) {
	for _, name := range []string{"a_basic_call", "j_phone_refer_attended"} {
		for i, e := range loadEvents(f, name) {
			if i%7 == 0 {
				f.Add(e.Bytes())
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		h, err := textproto.NewReader(r).ReadMIMEHeader()
		if err != nil && len(h) == 0 {
			return
		}
		body, _ := io.ReadAll(r)
		ev := decodeEvent(h, body)
		_ = advertisesTalk(ev.AllowEvents)
		_ = userPart(ev.ChanName) + userPart(ev.Presence)
		s := newCallState(slog.New(slog.DiscardHandler), newOutQueue())
		s.setExtensions(testExts)
		s.handle(ev)
		ev.Name = "CHANNEL_HANGUP"
		s.handle(ev)
		if len(s.legs) != 0 {
			t.Fatalf("channel %q still tracked after its hangup", ev.UUID)
		}
	})
}

// FuzzParseChannels checks the decoding of `show channels as json`,
// `uuid_dump <uuid> json`, `show registrations as json` and `strepoch`
// replies.
func FuzzParseChannels(f *testing.F) {
	for _, name := range []string{"h_show_channels", "l_registrations"} {
		c, err := fakeesl.LoadCapture("testdata/" + name + ".filtered.rx.raw")
		if err != nil {
			f.Fatal(err)
		}
		for _, r := range c.APIResponses() {
			f.Add(r)
		}
	}
	f.Add(`{"row_count": 0}`)
	f.Fuzz(func(t *testing.T, body string) {
		rows, err := parseShowChannels(body)
		if err == nil {
			for _, r := range rows {
				if r.UUID == "" {
					t.Fatal("row without uuid")
				}
			}
		}
		if ev, err := parseDump(body); err == nil && ev.UUID == "" {
			t.Fatal("dump without uuid accepted")
		}
		if regs, err := parseShowRegistrations(body); err != nil && regs != nil {
			t.Fatal("registrations returned with an error")
		}
		if n, err := parseEpoch(body); err == nil && n <= 0 {
			t.Fatalf("clock %d accepted", n)
		}
	})
}
