package esl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
	"github.com/csta-bridge/csta-bridge/internal/testphone"
)

// TestTableRealFreeSWITCH plays the scenario table (internal/pbxtest) on
// a real FreeSWITCH with test phones, through the whole bridge. It runs
// when CSTA_TEST_ESL_ADDR is set (README.md, "Integration test"). Calls
// from outside are loopback channels playing a tone, as IVRs and ring
// groups built with loopback reach a phone.
func TestTableRealFreeSWITCH(t *testing.T) {
	env := realFreeSWITCHEnv(t)
	b, phones := pbxtest.StartReal(t, pbxtest.RealSetup{Exts: env.exts, Registrar: env.sip, Password: env.sipPass,
		EndpointPrefix: "user/", Bridge: pbxtest.BridgeSetup{
			PBX:    fmt.Sprintf("  type: esl\n  esl: {address: %q, password: %q, context: %q}\n", env.addr, env.pass, env.context),
			Domain: env.domain,
			NewPBX: func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
				return New(Options{Address: cfg.PBX.ESL.Address, Password: cfg.PBX.ESL.Password, Context: cfg.PBX.ESL.Context,
					Logger: log, AnswerTimeout: 4 * time.Second}) // the "phone ignores auto-answer" row waits for it
			},
		}})
	cli := &rawESL{addr: env.addr, pass: env.pass}
	// The first extension answers and holds on the phone's own talk/hold
	// events (csta_allow_events), the others by the auto-answer swap and
	// uuid_hold: the table plays once with each as A.
	t.Run("A answers on talk events", func(t *testing.T) {
		rig := freeSWITCHRig(b, cli, env, env.exts, phones)
		rig.Lacking = map[pbxtest.Need]string{
			pbxtest.NeedIgnoreAutoAnswer: "A answers on the talk event, whatever its auto-answer policy",
		}
		pbxtest.RunTable(t, rig, pbxtest.Scenarios)
	})
	t.Run("A answers by auto-answer swap", func(t *testing.T) {
		exts := [3]string{env.exts[1], env.exts[2], env.exts[0]}
		rig := freeSWITCHRig(b, cli, env, exts, [3]*testphone.Phone{phones[1], phones[2], phones[0]})
		rig.Lacking = map[pbxtest.Need]string{pbxtest.NeedRingGroupAnswer: ringGroupBySwap}
		pbxtest.RunTable(t, rig, pbxtest.Scenarios)
	})
}

// freeSWITCHRig is the table's rig on a real FreeSWITCH with extensions
// exts (A, B, C) played by phones.
func freeSWITCHRig(b *pbxtest.Bridge, cli *rawESL, env realFreeSWITCH, exts [3]string, phones [3]*testphone.Phone) *pbxtest.SIPRig {
	return &pbxtest.SIPRig{B: b, Exts: exts, Phones: phones,
		// The vanilla dialplan's Local_Extension sends unanswered calls to voicemail.
		Quirks: []pbxtest.Quirk{pbxtest.QuirkVoicemailOnReject},
		// The vanilla dialplan's echo, music on hold and conference room.
		// 78<ext>: answer, a prompt, transfer to <ext> (README.md, "Test dialplan").
		// 79<ext><ext>: a ring group of A and B; 76<ext>: <ext> with
		// X-Customer: 4711 set by the dialplan (README.md, "Integration test").
		Apps: map[string]string{pbxtest.AppEcho: "9196", pbxtest.AppMusic: "9664", pbxtest.AppConference: "3000",
			pbxtest.AppTransfer: "78", pbxtest.AppRingGroup: "79" + exts[0] + exts[1], pbxtest.AppHeader: "76" + exts[0]},
		Outside: func(ctx context.Context, ext string) error {
			// endless_playback: originate's &app(...) ends its argument at
			// the first ')', so a looped tone_stream loses its loops and the
			// caller hangs up after about 2 s, in the middle of a row.
			// A loopback pair started by the event socket runs L16 and
			// FreeSWITCH offers a phone only its caller's codec; exported
			// to the phone's channel, absolute_codec_string=PCMU makes the
			// offer one a Snom (and the test phone) can answer in place.
			// CSTA_TEST_ESL_OUTSIDE_APP puts another application on the
			// calling side, e.g. conference(3000): a conference room that
			// dials the extension out.
			app := "endless_playback(tone_stream://%(1000,0,440))"
			if a := os.Getenv("CSTA_TEST_ESL_OUTSIDE_APP"); a != "" {
				app = a
			}
			reply, err := cli.api(ctx, "bgapi originate {origination_caller_id_number=+4930123456,absolute_codec_string=PCMU,export_vars=absolute_codec_string}loopback/"+ext+"/"+env.context+
				" &"+app)
			if err == nil && !strings.HasPrefix(reply, "+OK") {
				err = fmt.Errorf("originate: %s", reply)
			}
			return err
		},
		Leftovers: func(ctx context.Context) (string, error) {
			chans, err := cli.channelsOf(ctx, exts)
			if err != nil || len(chans) == 0 {
				return "", err
			}
			return fmt.Sprint(chans), nil
		},
		Clear: func(ctx context.Context) error {
			chans, err := cli.channelsOf(ctx, exts)
			for _, c := range chans {
				_, _ = cli.api(ctx, "api uuid_kill "+c.UUID)
			}
			return err
		},
	}
}

type realFreeSWITCH struct {
	addr, pass, sip, sipPass, domain, context string
	exts                                      [3]string
}

func realFreeSWITCHEnv(t *testing.T) realFreeSWITCH {
	t.Helper()
	e := realFreeSWITCH{addr: os.Getenv("CSTA_TEST_ESL_ADDR"), pass: os.Getenv("CSTA_TEST_ESL_PASS"),
		sip: os.Getenv("CSTA_TEST_ESL_SIP"), sipPass: os.Getenv("CSTA_TEST_ESL_SIP_PASS"),
		domain: os.Getenv("CSTA_TEST_ESL_DOMAIN"), context: os.Getenv("CSTA_TEST_ESL_CONTEXT"),
		exts: pbxtest.EnvExtensions(t, "CSTA_TEST_ESL_EXTENSIONS")}
	if e.addr == "" {
		t.Skip("CSTA_TEST_ESL_ADDR not set: no FreeSWITCH to test against")
	}
	if e.pass == "" {
		t.Fatal("CSTA_TEST_ESL_PASS must hold the event socket password")
	}
	host, _, err := net.SplitHostPort(e.sip)
	if err != nil {
		t.Fatalf("CSTA_TEST_ESL_SIP=%q must name the SIP profile (UDP host:port) the test phones register with: %v", e.sip, err)
	}
	if e.domain == "" {
		e.domain = host
	}
	if e.context == "" {
		e.context = "default"
	}
	return e
}

// rawESL sends one command per connection over the event socket: what the
// rig checks and does behind the bridge's back, independent of the
// adapter (and of eslgo) under test.
type rawESL struct{ addr, pass string }

func (c *rawESL) api(ctx context.Context, cmd string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	r := textproto.NewReader(bufio.NewReader(conn))
	read := func() (textproto.MIMEHeader, string, error) {
		h, err := r.ReadMIMEHeader()
		if err != nil {
			return nil, "", err
		}
		n, _ := strconv.Atoi(h.Get("Content-Length"))
		body := make([]byte, n)
		_, err = io.ReadFull(r.R, body)
		return h, string(body), err
	}
	if _, _, err := read(); err != nil { // auth/request
		return "", err
	}
	if _, err := fmt.Fprintf(conn, "auth %s\n\n", c.pass); err != nil {
		return "", err
	}
	if h, _, err := read(); err != nil || !strings.HasPrefix(h.Get("Reply-Text"), "+OK") {
		return "", fmt.Errorf("event socket auth: %q %v", h.Get("Reply-Text"), err)
	}
	if _, err := fmt.Fprintf(conn, "%s\n\n", cmd); err != nil {
		return "", err
	}
	h, body, err := read()
	if err != nil {
		return "", err
	}
	if body == "" {
		body = h.Get("Reply-Text")
	}
	return body, nil
}

// fsChannel is a row of `show channels as json`, as far as the rig looks.
type fsChannel struct {
	UUID     string `json:"uuid"`
	Name     string `json:"name"`
	CIDNum   string `json:"cid_num"`
	Dest     string `json:"dest"`
	Presence string `json:"presence_id"`
}

// channelsOf lists FreeSWITCH's channels of the extensions (their
// phones', their loopback callers', calls to or from them): other calls on
// a shared FreeSWITCH are none of the test's business.
func (c *rawESL) channelsOf(ctx context.Context, exts [3]string) ([]fsChannel, error) {
	body, err := c.api(ctx, "api show channels as json")
	if err != nil {
		return nil, err
	}
	var list struct {
		Rows []fsChannel `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, fmt.Errorf("show channels as json: %w: %.200s", err, body)
	}
	var mine []fsChannel
	for _, ch := range list.Rows {
		for _, e := range exts {
			if strings.Contains(ch.Name, "/"+e+"@") || strings.Contains(ch.Name, "loopback/"+e+"-") ||
				ch.CIDNum == e || ch.Dest == e || strings.HasPrefix(ch.Presence, e+"@") {
				mine = append(mine, ch)
				break
			}
		}
	}
	return mine, nil
}
