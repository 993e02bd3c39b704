package esl

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func TestCheckReply(t *testing.T) {
	tests := []struct {
		reply string
		want  error
	}{
		{"+OK Success\n", nil},
		{"UP 0 years, 0 days", nil},
		{"true", nil},
		{"-ERR No such channel!\n", pbx.ErrNoSuchCall},
		{"-ERR Invalid uuid\n", pbx.ErrNoSuchCall},
		{"-ERR USER_NOT_REGISTERED\n", pbx.ErrDeviceUnreachable},
		{"-ERR SUBSCRIBER_ABSENT\n", pbx.ErrDeviceUnreachable},
		{"-ERR NO_ANSWER\n", pbx.ErrDeviceUnreachable},
		{"-ERR NO_ROUTE_DESTINATION\n", pbx.ErrInvalidDestination},
		{"-ERR UNALLOCATED_NUMBER\n", pbx.ErrInvalidDestination},
		{"-ERR Operation failed\n", pbx.ErrNotSupported},
		{"-USAGE: <uuid> [cause]\n", pbx.ErrNotSupported},
		{"-ERR NORMAL_TEMPORARY_FAILURE\n", pbx.ErrUnavailable},
	}
	for _, tc := range tests {
		err := checkReply("cmd", tc.reply)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%q: %v", tc.reply, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%q: %v, want %v", tc.reply, err, tc.want)
		}
	}
}

func TestVarBlockEscaping(t *testing.T) {
	got := varBlock("[", "]", []chanVar{{"a", "x,y"}, {"b", "Alice Smith"}, {"c", "<sip:pbx>;answer-after=0"}})
	want := `[a=x\,y,b='Alice Smith',c=<sip:pbx>;answer-after=0]`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if varBlock("{", "}", nil) != "" {
		t.Error("empty block not empty")
	}
	for _, bad := range []string{"Call-Info <x>", ": x", "Bad Name: x", "X: it's", "X: a]b", "X: {x}"} {
		if _, err := autoAnswerVars([]string{bad}); err == nil {
			t.Errorf("header %q accepted", bad)
		}
	}
}

func TestCleanDestination(t *testing.T) {
	ok := map[string]string{"1002": "1002", "+4930123": "+4930123", "sip:1003@pbx;user=phone": "1003",
		"sips:*97@pbx": "*97", "tel:+49301": "+49301", " 1002 ": "1002"}
	for in, want := range ok {
		if got, err := cleanDestination(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "sip:@pbx", "10 02", "1002&park()", "1002,1003", "x'y", "a\nb"} {
		if _, err := cleanDestination(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCheckEndpoint(t *testing.T) {
	for _, ok := range []string{"user/1001", "user/1001@pbx.example.com", "sofia/internal/1001@10.0.0.1:5060"} {
		if err := checkEndpoint(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1001", "user/10 01", "user/1001,user/1002", "{x=y}user/1001"} {
		if err := checkEndpoint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for attempt := 0; attempt < 20; attempt++ {
		nominal := lo << min(attempt, 10)
		if nominal > hi {
			nominal = hi
		}
		for range 50 {
			d := backoff(lo, hi, attempt)
			if d < nominal/2 || d > nominal {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, nominal/2, nominal)
			}
		}
	}
}

// The product promises that a FreeSWITCH that is back is reconnected
// within 5 s. With the defaults the longest wait between two attempts must
// leave a second for the attempt itself (two connects, the subscription,
// the channel listing).
func TestDefaultBackoffKeepsReconnectPromise(t *testing.T) {
	var o Options
	o.setDefaults()
	const promise, attemptBudget = 5 * time.Second, time.Second
	if o.MaxBackoff > promise-attemptBudget {
		t.Fatalf("default MaxBackoff %v leaves less than %v of the %v promise", o.MaxBackoff, attemptBudget, promise)
	}
	for attempt := range 30 {
		if d := backoff(o.MinBackoff, o.MaxBackoff, attempt); d > promise-attemptBudget {
			t.Fatalf("attempt %d waits %v", attempt, d)
		}
	}
}

func TestJobTableKeepsEarlyResults(t *testing.T) {
	j := newJobTable()
	j.complete("early", "+OK early\n")
	if got := <-j.wait("early"); got != "+OK early\n" {
		t.Errorf("early result %q", got)
	}
	ch := j.wait("late")
	j.complete("late", "-ERR NO_ANSWER\n")
	if got := <-ch; got != "-ERR NO_ANSWER\n" {
		t.Errorf("late result %q", got)
	}
	// Results nobody waits for expire.
	now := time.Now()
	j.now = func() time.Time { return now }
	j.complete("orphan", "x")
	j.now = func() time.Time { return now.Add(j.keep + time.Second) }
	j.complete("other", "y")
	if _, ok := j.early["orphan"]; ok {
		t.Error("orphan result kept forever")
	}
	j.complete("", "ignored")
	if _, ok := j.early[""]; ok {
		t.Error("result without id kept")
	}
}

func TestReordererSortsWithinWindow(t *testing.T) {
	r := newReorderer(20 * time.Millisecond)
	out := make(chan chEvent, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// All held before the reorderer runs: a loaded machine may run this
	// goroutine late between two pushes.
	for _, seq := range []uint64{5, 3, 9, 4} {
		r.push(chEvent{Seq: seq})
	}
	go r.run(ctx, out)
	var got []uint64
	for range 4 {
		select {
		case e := <-out:
			got = append(got, e.Seq)
		case <-time.After(waitFor):
			t.Fatal("reorderer stalled")
		}
	}
	if want := []uint64{3, 4, 5, 9}; !slicesEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

// An event that follows the last one released is passed on at once; one
// after a gap waits for the events before it (or the window), and events
// the adapter does not reorder (BACKGROUND_JOB) close their gap.
func TestReordererReleasesFollowersAtOnce(t *testing.T) {
	r := newReorderer(time.Hour) // only a sequence can release an event
	r.last = 9                   // as if event 9 had been released
	out := make(chan chEvent, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.run(ctx, out)
	next := func() uint64 {
		t.Helper()
		select {
		case e := <-out:
			return e.Seq
		case <-time.After(waitFor):
			t.Fatal("reorderer stalled")
			return 0
		}
	}
	r.push(chEvent{Seq: 10})
	if got := next(); got != 10 {
		t.Fatalf("first event %d, want 10", got)
	}
	r.push(chEvent{Seq: 12})
	r.push(chEvent{Seq: 14})
	r.push(chEvent{Seq: 11})
	var got []uint64
	for range 2 {
		got = append(got, next())
	}
	if want := []uint64{11, 12}; !slicesEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	select {
	case e := <-out:
		t.Fatalf("event %d released across the gap at 13", e.Seq)
	default:
	}
	r.pass(13) // a BACKGROUND_JOB
	if got := next(); got != 14 {
		t.Fatalf("after the marker: %d, want 14", got)
	}
}

func slicesEqual(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHangupCauses(t *testing.T) {
	ringing := &leg{dir: pbx.Incoming}
	calling := &leg{dir: pbx.Outgoing}
	talking := &leg{dir: pbx.Incoming, answered: true, connected: true}
	tests := []struct {
		l     *leg
		cause string
		want  pbx.Cause
	}{
		{ringing, "ORIGINATOR_CANCEL", pbx.CauseCancelled},
		{calling, "ORIGINATOR_CANCEL", pbx.CauseNormal},
		{ringing, "NO_ANSWER", pbx.CauseNoAnswer},
		{ringing, "USER_BUSY", pbx.CauseRejected},
		{calling, "USER_BUSY", pbx.CauseBusy},
		{ringing, "CALL_REJECTED", pbx.CauseRejected},
		{calling, "UNALLOCATED_NUMBER", pbx.CauseUnreachable},
		{calling, "USER_NOT_REGISTERED", pbx.CauseUnreachable},
		{talking, "NORMAL_CLEARING", pbx.CauseNormal},
		{&leg{rejected: true}, "NORMAL_CLEARING", pbx.CauseRejected},
		// The loser of a ring-all (issue 13), whichever way it lost.
		{ringing, "LOSE_RACE", pbx.CauseAnsweredElsewhere},
		{talking, "LOSE_RACE", pbx.CauseNormal},
	}
	for _, tc := range tests {
		if got := hangupCause(tc.l, tc.cause); got != tc.want {
			t.Errorf("%+v %s: %v, want %v", *tc.l, tc.cause, got, tc.want)
		}
	}
}

func TestDecodeEventFromCapture(t *testing.T) {
	evs := loadEvents(t, "c_click_to_call")
	e := find(t, evs, "CHANNEL_CREATE", "1cff0516")
	got := decodeEvent(mimeOf(e.Headers), nil)
	if got.Name != "CHANNEL_CREATE" || got.Seq != 3793 || got.Dir != "outbound" ||
		got.ChanName != "sofia/internal/1001@127.0.0.1:5181" || got.Presence != "1001@127.0.0.1" ||
		got.DialedUser != "1001" || got.CallerNum != "1002" {
		t.Errorf("decoded %+v", got)
	}
}
