package fakeari

import (
	"testing"
)

var testApps = map[string]AppKind{"600": AppEcho, "602": AppMusic, "604": AppConference, "78": AppTransfer}

// until reads events up to and including the one of typ for channel id,
// and returns the channels the others were about.
func (s eventStream) until(t *testing.T, typ, id string) []string {
	t.Helper()
	var about []string
	for {
		ev := s.next(t)
		if ev.Type == typ && ev.Channel.ID == id {
			return about
		}
		about = append(about, ev.Type+" "+ev.Channel.ID)
	}
}

// A Local channel the application dials to an application number (how
// MakeCall reaches one): its ;2 half runs the application, which answers,
// so both halves are Up; the ;2 half never enters Stasis; both stay until
// hung up.
func TestAppAnswersLocalDial(t *testing.T) {
	for number, kind := range map[string]AppKind{"600": AppEcho, "602": AppMusic, "604": AppConference} {
		t.Run(string(kind), func(t *testing.T) {
			f := New(Options{Endpoints: []string{"PJSIP/1001"}, Apps: testApps})
			t.Cleanup(f.Close)
			events := listen(t, f)
			if st := do(t, f, "POST", "/channels/create?endpoint=Local/"+number+"@from-internal/n&app=csta-bridge&channelId=l"); st != 200 {
				t.Fatalf("create: %d", st)
			}
			events.skip(t, "StasisStart", "l")
			if st := do(t, f, "POST", "/channels/l/dial"); st != 204 {
				t.Fatalf("dial: %d", st)
			}
			events.skip(t, "ChannelStateChange", "l")
			l1, l2 := f.Channel("l"), f.Channel("l;2")
			if l1 == nil || l2 == nil || l1.State != "Up" || l2.State != "Up" {
				t.Fatalf("halves %+v and %+v, want both Up", l1, l2)
			}
			if l2.InStasis || l2.Exten != number || l2.AppName == "Stasis" {
				t.Errorf("the ;2 half %+v, want it running the application at %s outside Stasis", l2, number)
			}
			if st := do(t, f, "DELETE", "/channels/l"); st != 204 {
				t.Fatalf("hangup: %d", st)
			}
			for _, e := range events.until(t, "ChannelDestroyed", "l") {
				if e == "StasisStart l;2" {
					t.Errorf("the ;2 half entered Stasis")
				}
			}
			if left := f.Leftovers(); left != "" {
				t.Errorf("after the hangup the fake has %s", left)
			}
		})
	}
}

// A caller continued to an application number (a deflect to it)
// leaves Stasis, is answered by the application and stays until hung up.
func TestAppAnswersContinue(t *testing.T) {
	f := New(Options{Endpoints: []string{"PJSIP/1001"}, Apps: testApps})
	t.Cleanup(f.Close)
	events := listen(t, f)
	id := f.PhoneDials("PJSIP/1001", "1002")
	events.skip(t, "StasisStart", id)
	if st := do(t, f, "POST", "/channels/"+id+"/continue?context=from-internal&extension=602&priority=1"); st != 204 {
		t.Fatalf("continue: %d", st)
	}
	events.skip(t, "StasisEnd", id)
	c := f.Channel(id)
	if c == nil || c.State != "Up" || c.InStasis || c.Exten != "602" || c.AppName != "MusicOnHold" {
		t.Fatalf("continued channel %+v, want it Up in MusicOnHold at 602, out of Stasis", c)
	}
	if err := f.Hangup(id, 16); err != nil {
		t.Fatal(err)
	}
	if left := f.Leftovers(); left != "" {
		t.Errorf("after the hangup the fake has %s", left)
	}
}

// 78<ext>: the application answers the caller, then sends it through the
// snippet of <ext>: Stasis(app,dial,<ext>) with the caller Up; with no
// application connected, the snippet dials the phone plainly. A number
// after the prefix that is no extension is no application.
func TestAppTransferRoutesToExtension(t *testing.T) {
	f := New(Options{Endpoints: []string{"PJSIP/1001", "PJSIP/1002"}, Apps: testApps})
	t.Cleanup(f.Close)
	events := listen(t, f)
	id := f.PhoneDials("PJSIP/1001", "781002")
	events.skip(t, "StasisStart", id)
	c := f.Channel(id)
	if c == nil || c.State != "Up" || !c.InStasis || c.Exten != "1002" || c.AppData != "csta-bridge,dial,1002" {
		t.Fatalf("caller %+v, want it Up in Stasis(csta-bridge,dial,1002)", c)
	}

	if st := do(t, f, "POST", "/channels/create?endpoint=Local/781002@from-internal/n&app=csta-bridge&channelId=l"); st != 200 {
		t.Fatalf("create: %d", st)
	}
	if st := do(t, f, "POST", "/channels/l/dial"); st != 204 {
		t.Fatalf("dial: %d", st)
	}
	events.skip(t, "StasisStart", "l;2")
	if l1, l2 := f.Channel("l"), f.Channel("l;2"); l1.State != "Up" || l2.State != "Up" || l2.AppData != "csta-bridge,dial,1002" {
		t.Errorf("Local halves %+v and %+v, want both Up, ;2 in Stasis(csta-bridge,dial,1002)", l1, l2)
	}

	other := f.PhoneDials("PJSIP/1001", "789999")
	events.skip(t, "StasisStart", other)
	if c := f.Channel(other); c.State != "Ring" || c.AppData != "csta-bridge,dial,789999" {
		t.Errorf("caller of 789999 %+v, want it ringing into Stasis(csta-bridge,dial,789999)", c)
	}

	g := New(Options{Endpoints: []string{"PJSIP/1001", "PJSIP/1002"}, Apps: testApps})
	t.Cleanup(g.Close)
	a := g.PhoneDials("PJSIP/1001", "781002")
	var rang bool
	for _, ch := range g.Channels() {
		if ch.Endpoint == "PJSIP/1002" && ch.State == "Ringing" {
			rang = true
		}
	}
	if c := g.Channel(a); c == nil || c.State != "Up" || c.InStasis || !rang {
		t.Errorf("without the application: caller %+v, 1002 ringing %v; want the caller Up and 1002 ringing", c, rang)
	}
}
