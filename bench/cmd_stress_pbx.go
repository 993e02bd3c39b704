package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/csta-bridge/csta-bridge/adapters/ari"
	"github.com/csta-bridge/csta-bridge/adapters/esl"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// stressPBX is a real PBX as bench stress needs it: how the bridge is
// configured for it, and what the bench does behind the bridge's back
// (have the PBX call an extension, list and end what is left) over plain
// HTTP or a plain event socket — independent of the adapter under test.
type stressPBX interface {
	Name() string
	// BridgeYAML is the config's pbx: section body, indented by two spaces.
	BridgeYAML() string
	Endpoint(ext string) string
	NewAdapter(cfg *config.Config, log *slog.Logger) (pbx.PBX, error)
	// Originate has the PBX call ext from a party that is no phone.
	Originate(ctx context.Context, ext string) error
	// Left lists the PBX's channels and bridges that belong to exts, and
	// counts the others.
	Left(ctx context.Context, exts []string) (chans, bridges []string, others int, err error)
	// Clear hangs up the channels of exts, removes the bridges that hold
	// them and says how many channels there were. whole says no loop is
	// running (before and after the run): then every bridge of the
	// bridge's application goes too. A failed loop must not remove them:
	// they carry the other loops' live calls.
	Clear(ctx context.Context, exts []string, whole bool) (int, error)
}

// pbxTimeout bounds every request the bench sends the PBX itself.
const pbxTimeout = 5 * time.Second

// extChannel matches channel names of an extension: PJSIP/1004-0000001a,
// Local/1004@phones-00000003;1, sofia/internal/1004@127.0.0.1,
// loopback/1004-a.
func extChannel(name string, exts []string) bool {
	for _, e := range exts {
		re := regexp.MustCompile(`(^|/)` + regexp.QuoteMeta(e) + `([-@;]|$)`)
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// --- Asterisk ---

type ariStress struct {
	url, user, pass, app, context string
	// outside is the exten@context the far half of an originated Local
	// channel runs (the testbed's 602@tests plays music on hold).
	outside string
	http    *http.Client
}

func (a *ariStress) Name() string { return "ari" }

func (a *ariStress) BridgeYAML() string {
	return fmt.Sprintf("  type: ari\n  ari: {url: %q, username: %q, password: %q, application: %q, context: %q}\n",
		a.url, a.user, a.pass, a.app, a.context)
}

func (a *ariStress) Endpoint(ext string) string { return "PJSIP/" + ext }

func (a *ariStress) NewAdapter(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
	return ari.New(ari.Options{URL: cfg.PBX.ARI.URL, Username: cfg.PBX.ARI.Username, Password: cfg.PBX.ARI.Password,
		Application: cfg.PBX.ARI.Application, Context: cfg.PBX.ARI.Context, Logger: log})
}

func (a *ariStress) do(ctx context.Context, method, path string, q url.Values, out any) error {
	ctx, cancel := context.WithTimeout(ctx, pbxTimeout)
	defer cancel()
	u := strings.TrimSuffix(a.url, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.user, a.pass)
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode > 299 {
		return fmt.Errorf("ARI %s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

func (a *ariStress) Originate(ctx context.Context, ext string) error {
	exten, octx, _ := strings.Cut(a.outside, "@")
	return a.do(ctx, http.MethodPost, "/channels", url.Values{
		"endpoint": {"Local/" + ext + "@" + a.context}, "context": {octx}, "extension": {exten}, "priority": {"1"},
		"callerId": {"Outside <+4930123456>"}, "timeout": {"30"}}, nil)
}

type ariChannel struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	State  string `json:"state"`
	Caller struct {
		Number string `json:"number"`
	} `json:"caller"`
	Dialplan struct {
		Context string `json:"context"`
		Exten   string `json:"exten"`
	} `json:"dialplan"`
}

type ariBridge struct {
	ID       string   `json:"id"`
	Type     string   `json:"bridge_type"`
	Creator  string   `json:"creator"`
	Name     string   `json:"name"`
	Channels []string `json:"channels"`
}

func (a *ariStress) ours(ctx context.Context, exts []string, whole bool) (chans []ariChannel, bridges []ariBridge, others int, err error) {
	var all []ariChannel
	var allB []ariBridge
	if err = a.do(ctx, http.MethodGet, "/channels", nil, &all); err != nil {
		return nil, nil, 0, err
	}
	if err = a.do(ctx, http.MethodGet, "/bridges", nil, &allB); err != nil {
		return nil, nil, 0, err
	}
	ids := map[string]bool{}
	for _, c := range all {
		if extChannel(c.Name, exts) || slices.Contains(exts, c.Caller.Number) {
			chans = append(chans, c)
			ids[c.ID] = true
		} else {
			others++
		}
	}
	for _, b := range allB {
		// The bridge's own bridges are created by its Stasis application;
		// an empty one is left over by it too. While loops run, those of
		// other loops are live calls: only the ones holding exts' channels
		// are ours.
		mine := whole && (b.Creator == a.app || b.Creator == "Stasis" && len(b.Channels) == 0)
		for _, id := range b.Channels {
			mine = mine || ids[id]
		}
		if mine {
			bridges = append(bridges, b)
		} else {
			others++
		}
	}
	return chans, bridges, others, nil
}

func (a *ariStress) Left(ctx context.Context, exts []string) (chans, bridges []string, others int, err error) {
	cs, bs, others, err := a.ours(ctx, exts, true)
	for _, c := range cs {
		chans = append(chans, fmt.Sprintf("%s %s (%s) caller %s at %s,%s", c.ID, c.Name, c.State, c.Caller.Number,
			c.Dialplan.Context, c.Dialplan.Exten))
	}
	for _, b := range bs {
		bridges = append(bridges, fmt.Sprintf("%s %s creator %s channels %v", b.ID, b.Type, b.Creator, b.Channels))
	}
	return chans, bridges, others, err
}

func (a *ariStress) Clear(ctx context.Context, exts []string, whole bool) (int, error) {
	cs, bs, _, err := a.ours(ctx, exts, whole)
	if err != nil {
		return 0, err
	}
	for _, c := range cs {
		_ = a.do(ctx, http.MethodDelete, "/channels/"+c.ID, nil, nil) // may be gone meanwhile
	}
	for _, b := range bs {
		_ = a.do(ctx, http.MethodDelete, "/bridges/"+b.ID, nil, nil)
	}
	return len(cs), nil
}

// --- FreeSWITCH ---

type eslStress struct {
	addr, pass, context, domain string
}

func (f *eslStress) Name() string { return "esl" }

func (f *eslStress) BridgeYAML() string {
	return fmt.Sprintf("  type: esl\n  esl: {address: %q, password: %q, context: %q}\n", f.addr, f.pass, f.context)
}

func (f *eslStress) Endpoint(ext string) string { return "user/" + ext }

func (f *eslStress) NewAdapter(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
	return esl.New(esl.Options{Address: cfg.PBX.ESL.Address, Password: cfg.PBX.ESL.Password, Context: cfg.PBX.ESL.Context,
		Logger: log})
}

// api sends one command on a connection of its own: the bench's traffic
// stays apart from the adapter's session (and from eslgo).
func (f *eslStress) api(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, pbxTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", f.addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	r := textproto.NewReader(bufio.NewReader(conn))
	read := func() (textproto.MIMEHeader, string, error) {
		h, err := r.ReadMIMEHeader()
		if err != nil {
			return nil, "", err
		}
		n, _ := strconv.Atoi(h.Get("Content-Length"))
		if n < 0 || n > 16<<20 {
			return nil, "", fmt.Errorf("event socket: Content-Length %d", n)
		}
		body := make([]byte, n)
		_, err = io.ReadFull(r.R, body)
		return h, string(body), err
	}
	if _, _, err := read(); err != nil { // auth/request
		return "", fmt.Errorf("event socket: %w", err)
	}
	if _, err := fmt.Fprintf(conn, "auth %s\n\n", f.pass); err != nil {
		return "", err
	}
	if h, _, err := read(); err != nil || !strings.HasPrefix(h.Get("Reply-Text"), "+OK") {
		return "", fmt.Errorf("event socket auth refused (%v)", err)
	}
	if _, err := fmt.Fprintf(conn, "%s\n\n", cmd); err != nil {
		return "", err
	}
	h, body, err := read()
	if err != nil {
		return "", fmt.Errorf("event socket %q: %w", strings.Fields(cmd)[0:2], err)
	}
	if body == "" {
		body = h.Get("Reply-Text")
	}
	return body, nil
}

// Originate has the PBX call ext from a loopback channel playing a tone.
// A loopback pair started by the event socket has no originating session
// to take a codec from and runs L16, and FreeSWITCH offers the phone only
// the caller's codec: an INVITE with L16 alone, which a Snom, like the test
// phone (PCMU/PCMA), cannot answer (the answer in place of a phone taking
// talk events then ends INCOMPATIBLE_DESTINATION; an answer swap hid it, as
// the swap's own INVITE offers the profile's codecs). absolute_codec_string
// exported to the phone's channel makes the offer PCMU, transcoded from the
// loopback's L16: what a Snom needs as well. The tone is played by
// endless_playback: originate's &app(...) ends its argument at the first
// ')', so "playback(tone_stream://%(...);loops=-1)" lost its loops and the
// caller hung up after two seconds, in the middle of a slow cycle.
func (f *eslStress) Originate(ctx context.Context, ext string) error {
	reply, err := f.api(ctx, "bgapi originate {origination_caller_id_number=+4930123456,absolute_codec_string=PCMU,export_vars=absolute_codec_string}loopback/"+ext+"/"+f.context+
		" &endless_playback(tone_stream://%(1000,0,440))")
	if err == nil && !strings.HasPrefix(reply, "+OK") {
		err = fmt.Errorf("originate loopback/%s: %s", ext, strings.TrimSpace(reply))
	}
	return err
}

type fsChannel struct {
	UUID, Name, CIDNum, Dest, CallState string
}

func (f *eslStress) channels(ctx context.Context) ([]fsChannel, error) {
	reply, err := f.api(ctx, "api show channels as json")
	if err != nil {
		return nil, err
	}
	var out struct {
		Rows []struct {
			UUID      string `json:"uuid"`
			Name      string `json:"name"`
			CIDNum    string `json:"cid_num"`
			Dest      string `json:"dest"`
			CallState string `json:"callstate"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(reply), &out); err != nil {
		return nil, fmt.Errorf("show channels as json: %v: %.200q", err, reply)
	}
	var cs []fsChannel
	for _, r := range out.Rows {
		cs = append(cs, fsChannel{r.UUID, r.Name, r.CIDNum, r.Dest, r.CallState})
	}
	return cs, nil
}

func (f *eslStress) ours(ctx context.Context, exts []string) (mine []fsChannel, others int, err error) {
	all, err := f.channels(ctx)
	if err != nil {
		return nil, 0, err
	}
	for _, c := range all {
		if extChannel(c.Name, exts) || slices.Contains(exts, c.CIDNum) || slices.Contains(exts, c.Dest) {
			mine = append(mine, c)
		} else {
			others++
		}
	}
	return mine, others, nil
}

func (f *eslStress) Left(ctx context.Context, exts []string) (chans, bridges []string, others int, err error) {
	cs, others, err := f.ours(ctx, exts)
	for _, c := range cs {
		chans = append(chans, fmt.Sprintf("%s %s (%s) %s -> %s", c.UUID, c.Name, c.CallState, c.CIDNum, c.Dest))
	}
	// FreeSWITCH has no bridge objects of its own: a bridged call is two
	// channels, listed above.
	return chans, nil, others, err
}

func (f *eslStress) Clear(ctx context.Context, exts []string, _ bool) (int, error) {
	cs, _, err := f.ours(ctx, exts)
	if err != nil {
		return 0, err
	}
	for _, c := range cs {
		_, _ = f.api(ctx, "api uuid_kill "+c.UUID) // may be gone meanwhile
	}
	return len(cs), nil
}
