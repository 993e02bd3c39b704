package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func hit(ev, id string) urlHit { return urlHit{Event: ev, ID: id} }

// play feeds hits to seqMatch until the wanted URLs are all seen and
// returns the first error.
func play(l labels, want []string, anyOrder bool, hits ...urlHit) ([]string, error) {
	left := want
	for _, h := range hits {
		var err error
		if left, err = seqMatch(l, left, anyOrder, h); err != nil {
			return left, err
		}
	}
	return left, nil
}

func TestSeqMatchInOrder(t *testing.T) {
	l := labels{}
	left, err := play(l, []string{"incoming:a1", "offhook", "connected:a1"}, false,
		hit("incoming", "-3"), hit("offhook", ""), hit("connected", "-3"))
	if err != nil || len(left) != 0 {
		t.Fatalf("left %v, err %v", left, err)
	}
	if l["a1"] != "-3" {
		t.Fatalf("a1 bound to %q", l["a1"])
	}

	cases := []struct {
		name string
		want []string
		hits []urlHit
		err  string
	}{
		{"wrong event", []string{"incoming:a1", "offhook"}, []urlHit{hit("incoming", "1"), hit("connected", "1")},
			"got connected:1, wanted next offhook"},
		{"reordered", []string{"hold:a1", "unhold:a1"}, []urlHit{hit("unhold", "1")}, "got unhold:1, wanted next hold:a1"},
		{"other call's id", []string{"incoming:a1", "connected:a1"}, []urlHit{hit("incoming", "1"), hit("connected", "2")},
			"got connected:2, wanted next connected:a1"},
		{"second label reuses an id", []string{"incoming:a1", "outgoing:a2"}, []urlHit{hit("incoming", "1"), hit("outgoing", "1")},
			"already a1's"},
		{"device event with an id", []string{"offhook"}, []urlHit{hit("offhook", "4")}, "wanted next offhook"},
		{"call event without id", []string{"incoming:a1"}, []urlHit{hit("incoming", "")}, "no csta_id for a1"},
		{"more than wanted", []string{"onhook"}, []urlHit{hit("onhook", ""), hit("onhook", "")}, "unexpected onhook"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := play(labels{}, c.want, false, c.hits...)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err %v, want %q", err, c.err)
			}
		})
	}
}

func TestSeqMatchAnyOrderKeepsEachCallsOrder(t *testing.T) {
	want := []string{"transfer:a1", "attended:a1", "disconnected:a1", "transfer:a2", "attended:a2", "disconnected:a2"}
	l := labels{"a1": "1", "a2": "2"}
	left, err := play(l, want, true, hit("transfer", "2"), hit("transfer", "1"), hit("attended", "1"),
		hit("attended", "2"), hit("disconnected", "2"), hit("disconnected", "1"))
	if err != nil || len(left) != 0 {
		t.Fatalf("interleaved calls: left %v, err %v", left, err)
	}
	_, err = play(labels{"a1": "1", "a2": "2"}, want, true, hit("transfer", "1"), hit("disconnected", "1"))
	if err == nil || !strings.Contains(err.Error(), "wanted next attended:a1 or transfer:a2") {
		t.Fatalf("a call's own order: err %v", err)
	}
}

func TestLabelsBind(t *testing.T) {
	l := labels{}
	if err := l.bind("a1", "5"); err != nil {
		t.Fatal(err)
	}
	if err := l.bind("c1", "5"); err != nil {
		t.Fatalf("another extension may have the same id: %v", err)
	}
	if err := l.bind("a1", "6"); err == nil {
		t.Fatal("a1 rebound to another id")
	}
	if err := l.bind("a2", "5"); err == nil {
		t.Fatal("a2 took a1's id")
	}
}

func TestNormalizeGroupsFailuresByCause(t *testing.T) {
	fs := []failure{
		{"HoldCall", "status 500: invalidObjectState: ari: hold 1004/csta-out-1796408964638-61: not supported for this call"},
		{"HoldCall", "status 500: invalidObjectState: ari: hold 1009/csta-out-1796408999999-7: not supported for this call"},
		{"AnswerCall", "status 500: invalidConnectionID: esl: answer 1001/24904f30-3ae1-4c3d-8a0c-8070d0ec9d46: no such call"},
		{"action URLs of 1004", "still waiting for hold:a1 after 15s (this step got: )"},
		{"HoldCall", "status 500: invalidObjectState: ari: hold 1004/csta-out-1796408964638-1061: not supported for this call"},
		{"action URLs of 1001", "got hold:-16, wanted next disconnected:a1 (this step so far: hold:-16)"},
		{"action URLs of 1003", "got hold:-93, wanted next disconnected:a1 (this step so far: hold:-93)"},
		{"ClearConnection", "status 500: invalidConnectionID: no call -39 on extension 1002"},
		{"ClearConnection", "status 500: invalidConnectionID: no call -5 on extension 1003"},
	}
	g := groupFailures(fs)
	if len(g) != 5 || g[0].Count != 3 || !strings.HasPrefix(g[0].Key, "HoldCall: ") || g[1].Count != 2 || g[2].Count != 2 || !strings.Contains(g[2].Key, "no call <id> on extension #") {
		t.Fatalf("groups %+v", g)
	}
	if !strings.Contains(g[0].Example, "1004/csta-out-1796408964638-61") {
		t.Fatalf("the example must be verbatim: %q", g[0].Example)
	}
	if strings.Contains(g[3].Key, "24904f30") || !strings.Contains(g[3].Key, "<uuid>") {
		t.Fatalf("uuid not normalized: %q", g[3].Key)
	}
}

func TestFaultText(t *testing.T) {
	body := `<SOAP-ENV:Fault> <SOAP-ENV:faultcode>Client</SOAP-ENV:faultcode> <SOAP-ENV:faultstring>CSTA Error</SOAP-ENV:faultstring> <SOAP-ENV:detail> <csta:CSTAErrorCode xmlns:csta="x"> <csta:operation>invalidConnectionID</csta:operation> </csta:CSTAErrorCode> <!-- esl: answer 1001/x: no such call --> </SOAP-ENV:detail> </SOAP-ENV:Fault>`
	if got := faultText(body); got != "invalidConnectionID: esl: answer 1001/x: no such call" {
		t.Fatalf("faultText %q", got)
	}
}

func TestParseExtsAndPlan(t *testing.T) {
	exts, err := parseExts("1001-1003, 1010,1011")
	if err != nil || !slices.Equal(exts, []string{"1001", "1002", "1003", "1010", "1011"}) {
		t.Fatalf("%v %v", exts, err)
	}
	for _, bad := range []string{"", "10a", "1003-1001", "1001-1001,1001", "1-1000"} {
		if _, err := parseExts(bad); err == nil {
			t.Errorf("parseExts(%q) accepted", bad)
		}
	}
	p, err := planExts(exts, "transfer", 2)
	if err != nil || !slices.Equal(p.Subjects, []string{"1001", "1002"}) || !slices.Equal(p.Targets, []string{"1003", "1010"}) ||
		!slices.Equal(p.Callers, []string{"1011"}) {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := planExts(exts, "transfer", 3); err == nil {
		t.Fatal("3 transfer loops on 5 extensions: no caller left")
	}
	p, _ = planExts(exts, "basic", 2)
	if !slices.Equal(p.Callers, []string{"1003", "1010"}) {
		t.Fatalf("callers %v: at most one per loop", p.Callers)
	}
}

func TestStressOptionsStayOnLoopback(t *testing.T) {
	base := stressOptions{PBX: "ari", ARIURL: "http://127.0.0.1:8088/ari", ARIOutside: "602@tests", SIP: "127.0.0.1:5060",
		Exts: []string{"1001", "1002"}, Mix: "basic", Phones: 1, Cycles: 1, StepTimeout: time.Second, Timeout: time.Minute}
	if err := base.check(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(o *stressOptions){
		"ARI elsewhere": func(o *stressOptions) { o.ARIURL = "http://10.0.0.1:8088/ari" },
		"SIP elsewhere": func(o *stressOptions) { o.SIP = "192.0.2.1:5060" },
		"ESL elsewhere": func(o *stressOptions) { o.PBX = "esl"; o.ESLAddr = "pbx.example:8021" },
		"credentials":   func(o *stressOptions) { o.ARIURL = "http://u:p@127.0.0.1:8088/ari" },
		"mix":           func(o *stressOptions) { o.Mix = "chaos" },
		"no caller":     func(o *stressOptions) { o.Phones = 2 },
	} {
		o := base
		mod(&o)
		if err := o.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSummaryLines(t *testing.T) {
	r := &stressResult{PBX: "ari", Mix: "basic", Phones: 2, Cycles: 3, OK: 5, Failed: 1, Elapsed: 2 * time.Second,
		Requests:     map[string]latencies{"HoldCall": {time.Millisecond, 3 * time.Millisecond}},
		RequestFails: map[string]int{"HoldCall": 1},
		Failures:     []failure{{"HoldCall", "status 500: invalidObjectState"}},
		LeftChannels: []string{"1.2 PJSIP/1001-00000001 (Up)"}}
	if r.Pass() {
		t.Fatal("a failed cycle passed")
	}
	out := strings.Join(r.summaryLines(), "\n")
	for _, want := range []string{"STRESS FAIL pbx=ari mix=basic phones=2 cycles=3: 5 ok, 1 failed, 0 not run; 3.00 cycles/s",
		"HoldCall                p50 1.000ms  p99 3.000ms  max 3.000ms  (200: 2, failed: 1)",
		"left on the PBX: 1 channels, 0 bridges", "channel 1.2 PJSIP/1001-00000001", "1× HoldCall: status 500: invalidObjectState"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	r = &stressResult{OK: 6, Requests: map[string]latencies{}}
	if !r.Pass() {
		t.Fatal("a clean run failed")
	}
}

// TestStressRealPBX runs the stress core on the real PBXs of the
// integration tests (CSTA_TEST_ARI_URL, CSTA_TEST_ESL_ADDR and their
// variables; skipped without them) at small scale: both mixes, on the
// three extensions CSTA_TEST_*_EXTENSIONS name (default 1001,1002,1003).
// The transfer mix plays 4 cycles: each kind with each caller.
func TestStressRealPBX(t *testing.T) {
	for _, pbxName := range []string{"ari", "esl"} {
		t.Run(pbxName, func(t *testing.T) {
			prefix := "CSTA_TEST_" + strings.ToUpper(pbxName) + "_"
			gate := map[string]string{"ari": "URL", "esl": "ADDR"}[pbxName]
			if os.Getenv(prefix+gate) == "" {
				t.Skipf("%s not set: no real PBX", prefix+gate)
			}
			exts, err := parseExts(envOr(prefix+"EXTENSIONS", "1001,1002,1003"))
			if err != nil {
				t.Fatal(err)
			}
			o := stressOptions{PBX: pbxName, Exts: exts, StepTimeout: 15 * time.Second, Timeout: 5 * time.Minute,
				Reports: 5, ARIURL: os.Getenv("CSTA_TEST_ARI_URL"), ARIUser: os.Getenv("CSTA_TEST_ARI_USER"),
				ARIPass: os.Getenv("CSTA_TEST_ARI_PASS"), ARIApp: envOr("CSTA_TEST_ARI_APP", "csta-bridge"),
				ARIContext: envOr("CSTA_TEST_ARI_CONTEXT", "from-internal"), ARIOutside: envOr("CSTA_TEST_ARI_OUTSIDE", "602@tests"),
				ESLAddr: os.Getenv("CSTA_TEST_ESL_ADDR"), ESLPass: os.Getenv("CSTA_TEST_ESL_PASS"),
				ESLContext: envOr("CSTA_TEST_ESL_CONTEXT", "default"), SIP: os.Getenv(prefix + "SIP"),
				SIPPass: os.Getenv(prefix + "SIP_PASS")}
			for _, mix := range []struct {
				name           string
				phones, cycles int
			}{{"basic", 2, 3}, {"transfer", 1, 4}} {
				t.Run(mix.name, func(t *testing.T) {
					o := o
					o.Mix, o.Phones, o.Cycles = mix.name, mix.phones, mix.cycles
					var out bytes.Buffer
					o.Out = &out
					ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
					defer cancel()
					res, err := stress(ctx, o)
					if res != nil {
						out.WriteString(strings.Join(res.summaryLines(), "\n"))
					}
					t.Log("\n" + out.String())
					if err != nil {
						t.Fatal(err)
					}
					if !res.Pass() || res.OK != mix.phones*mix.cycles {
						t.Fatalf("%d of %d cycles passed; see the log", res.OK, mix.phones*mix.cycles)
					}
				})
			}
		})
	}
}
