package bridge

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Deflect lets the fake PBX forward calls (pbx.Deflector).
func (f *fakePBX) Deflect(ctx context.Context, c pbx.CallRef, dest string) error {
	return f.command(ctx, "Deflect", c.String()+" "+dest)
}

// featureURLs installs the four feature action URLs of ext at run time.
func (h *harness) featureURLs(ext string) {
	h.t.Helper()
	q := url.Values{"settings": {"save"}}
	for _, ev := range []string{"dnd_on", "dnd_off", "redirection_on", "redirection_off"} {
		q.Set("action_"+ev+"_url", h.sink.srv.URL+"/"+ev+"?ext=$active_user&fwd=$redirect_number&ev=$redirect_event")
	}
	if resp, _ := h.get("/"+ext+"/dummy.htm?"+q.Encode(), credentials(ext)); resp.StatusCode != http.StatusOK {
		h.t.Fatalf("dummy.htm: %d", resp.StatusCode)
	}
}

// command waits for the fake PBX to be sent the named command.
func (h *harness) command(name string) {
	h.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case got := <-h.pbx.entered:
			if got == name {
				return
			}
		case <-deadline:
			h.t.Fatalf("PBX never got %s; commands %q", name, h.pbx.calls())
		}
	}
}

const dev1001 = "<csta:device>1001</csta:device>"

func TestDNDByCSTAKeyAndSettings(t *testing.T) {
	h := start(t, map[string]string{"1002": "    settings:\n      dnd_mode: \"on\"\n"})
	h.featureURLs("1001")

	// CSTA.
	h.ok("1001", "SetDoNotDisturb", dev1001+"<csta:doNotDisturbOn>true</csta:doNotDisturbOn>")
	h.sink.expect(t, "1001", "dnd_on")
	if body := h.ok("1001", "GetDoNotDisturb", dev1001); !strings.Contains(body, "<csta:doNotDisturbOn>true</csta:doNotDisturbOn>") {
		t.Fatalf("GetDoNotDisturb: %s", body)
	}
	// A call while DND is on is refused at once and never announced.
	h.offer("1001", "c1", "555")
	h.command("ClearConnection")
	h.sink.none(t, h, "1001")

	// The key toggles it off, settings switch it back on.
	h.get("/1001/command.htm?key=DND", nil)
	if body := h.ok("1001", "GetDoNotDisturb", dev1001); !strings.Contains(body, ">false<") {
		t.Fatalf("after the DND key: %s", body)
	}
	h.get("/1001/dummy.htm?settings=save&dnd_mode=on", nil)
	if body := h.ok("1001", "GetDoNotDisturb", dev1001); !strings.Contains(body, ">true<") {
		t.Fatalf("after dnd_mode=on: %s", body)
	}
	// The YAML's initial value.
	if body := h.ok("1002", "GetDoNotDisturb", "<csta:device>sip:1002@pbx.test</csta:device>"); !strings.Contains(body, ">true<") {
		t.Fatalf("YAML dnd_mode on: %s", body)
	}
	// Another phone's device, a bad flag: precise faults, nothing changes.
	h.fault("1001", "SetDoNotDisturb", "<csta:device>1002</csta:device><csta:doNotDisturbOn>false</csta:doNotDisturbOn>", "invalidDeviceID")
	h.fault("1001", "SetDoNotDisturb", dev1001+"<csta:doNotDisturbOn>maybe</csta:doNotDisturbOn>", "invalidDoNotDisturb")
	if body := h.ok("1001", "GetDoNotDisturb", dev1001); !strings.Contains(body, ">true<") {
		t.Fatalf("a refused request changed DND: %s", body)
	}
}

func TestDNDKeyFiresActionURLs(t *testing.T) {
	h := start(t, nil)
	h.featureURLs("1001")
	h.get("/1001/command.htm?key=DND", nil)
	h.sink.expect(t, "1001", "dnd_on")
	h.get("/1001/command.htm?key=DND", nil)
	h.sink.expect(t, "1001", "dnd_off")
	h.get("/1001/dummy.htm?settings=save&dnd_mode=on", nil)
	h.sink.expect(t, "1001", "dnd_on")
}

func TestForwarding(t *testing.T) {
	h := start(t, nil)
	h.featureURLs("1001")

	// Bad input: precise faults, state unchanged.
	h.fault("1001", "SetForwarding", dev1001+"<csta:forwardingType>forwardDND</csta:forwardingType><csta:forwardDN>1002</csta:forwardDN><csta:activateForward>true</csta:activateForward>", "invalidForwardingType")
	h.fault("1001", "SetForwarding", dev1001+"<csta:forwardingType>forwardImmediate</csta:forwardingType><csta:forwardDN> </csta:forwardDN><csta:activateForward>true</csta:activateForward>", "invalidForwardingDestination")
	h.fault("1001", "SetForwarding", dev1001+"<csta:forwardingType>forwardImmediate</csta:forwardingType><csta:forwardDN>10 02</csta:forwardDN><csta:activateForward>true</csta:activateForward>", "invalidForwardingDestination")
	h.fault("1001", "SetForwarding", "<csta:device>sip:1003@pbx.test</csta:device><csta:forwardingType>forwardImmediate</csta:forwardingType><csta:forwardDN>1002</csta:forwardDN><csta:activateForward>true</csta:activateForward>", "invalidDeviceID")
	if body := h.ok("1001", "GetForwarding", dev1001); strings.Contains(body, ">true<") {
		t.Fatalf("a refused request switched forwarding on: %s", body)
	}

	// Forward always: the caller is deflected, the phone never rings.
	h.ok("1001", "SetForwarding", dev1001+"<csta:forwardingType>forwardImmediate</csta:forwardingType><csta:forwardDN>1002</csta:forwardDN><csta:activateForward>true</csta:activateForward>")
	hits := h.sink.expect(t, "1001", "redirection_on")
	if hits[0].Query.Get("fwd") != "1002" || hits[0].Query.Get("ev") != "all" {
		t.Errorf("redirection_on variables %v", hits[0].Query)
	}
	body := h.ok("1001", "GetForwarding", dev1001)
	if !strings.Contains(body, "<csta:forwardingType>forwardImmediate</csta:forwardingType><csta:forwardStatus>true</csta:forwardStatus><csta:forwardDN>1002</csta:forwardDN>") {
		t.Fatalf("GetForwarding: %s", body)
	}
	h.offer("1001", "c1", "555")
	h.command("Deflect")
	if got := h.pbx.calls(); got[len(got)-1] != "Deflect 1001/c1 1002" {
		t.Fatalf("commands %q", got)
	}

	// Forward on busy: the first call rings, the second is deflected.
	h.ok("1001", "SetForwarding", dev1001+"<csta:forwardingType>forwardBusy</csta:forwardingType><csta:forwardDN>sip:1003@pbx.test</csta:forwardDN><csta:activateForward>true</csta:activateForward>")
	h.sink.expect(t, "1001", "redirection_on")
	h.offer("1001", "c2", "556")
	h.sink.expect(t, "1001", "incoming")
	h.offer("1001", "c3", "557")
	h.command("Deflect")
	if got := h.pbx.calls(); got[len(got)-1] != "Deflect 1001/c3 1003" {
		t.Fatalf("commands %q", got)
	}
	h.pbx.emit(pbx.Event{Kind: pbx.EventCleared, Call: pbx.CallRef{Ext: "1001", ID: "c2"}, Cause: pbx.CauseCancelled})
	h.sink.expect(t, "1001", "missed")

	// Forward on no answer, by settings: the call rings, then is deflected
	// (not a missed call).
	h.get("/1001/dummy.htm?settings=save&redirect_event=time&redirect_time_number=1002&redirect_time=1", nil)
	h.sink.expect(t, "1001", "redirection_on")
	h.offer("1001", "c4", "558")
	h.sink.expect(t, "1001", "incoming")
	h.command("Deflect")
	h.flush()
	if got := h.pbx.calls(); got[len(got)-1] != "Deflect 1001/c4 1002" {
		t.Fatalf("commands %q", got)
	}

	// Switching another type off changes nothing; the one in force, off.
	h.ok("1001", "SetForwarding", dev1001+"<csta:forwardingType>forwardImmediate</csta:forwardingType><csta:activateForward>false</csta:activateForward>")
	h.ok("1001", "SetForwarding", dev1001+"<csta:forwardingType>forwardNoAns</csta:forwardingType><csta:activateForward>false</csta:activateForward>")
	h.sink.expect(t, "1001", "redirection_off")
	h.sink.none(t, h, "1001")
}

// The features survive a reload and a restart (state file), the status
// page and -check-config show the stored values next to the YAML's, and
// the admin drops them.
func TestFeaturesPersistAndDrop(t *testing.T) {
	h := start(t, map[string]string{"1001": "    settings:\n      dnd_mode: \"off\"\n"})
	h.ok("1001", "SetDoNotDisturb", dev1001+"<csta:doNotDisturbOn>true</csta:doNotDisturbOn>")
	h.ok("1001", "SetForwarding", dev1001+"<csta:forwardingType>forwardBusy</csta:forwardingType><csta:forwardDN>1003</csta:forwardDN><csta:activateForward>true</csta:activateForward>")
	if err := h.app.Reload(); err != nil {
		t.Fatal(err)
	}
	if body := h.ok("1001", "GetDoNotDisturb", dev1001); !strings.Contains(body, ">true<") {
		t.Fatalf("after reload: %s", body)
	}
	cfgPath := filepath.Join(h.dir, "config.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := OverrideLines(cfg)
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0], `dnd_mode="on" (YAML: "off")`) ||
		!strings.Contains(lines[0], `redirect_busy_number="1003" (not in YAML)`) {
		t.Fatalf("OverrideLines = %q, %v", lines, err)
	}
	status := adminGet(t, h.app, "/ext/1001")
	for _, want := range []string{`<td id="dnd">on</td>`, `<td id="forwarding">busy → 1003</td>`,
		`<tr class="stored"><td>dnd_mode</td><td class="url">on</td><td class="url">off</td></tr>`} {
		if !strings.Contains(status, want) {
			t.Fatalf("status page lacks the stored values (%s):\n%s", want, status)
		}
	}

	// Restart: a new bridge on the same config and state file.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.app.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	app2, err := New(Options{ConfigPath: cfgPath, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		NewPBX: func(*config.Config, *slog.Logger) (pbx.PBX, error) { return newFakePBX(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := app2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app2.Stop(context.Background()) })
	h.app = app2
	if body := h.ok("1001", "GetDoNotDisturb", dev1001); !strings.Contains(body, ">true<") {
		t.Fatalf("after restart: %s", body)
	}
	if body := h.ok("1001", "GetForwarding", dev1001); !strings.Contains(body, "<csta:forwardingType>forwardBusy</csta:forwardingType><csta:forwardStatus>true</csta:forwardStatus><csta:forwardDN>1003</csta:forwardDN>") {
		t.Fatalf("after restart: %s", body)
	}

	// The admin drops them: the YAML applies again, the file forgets them.
	req, _ := http.NewRequest(http.MethodDelete, "http://"+app2.AdminAddr()+"/stored/1001", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE /stored/1001: %v %v", resp, err)
	}
	resp.Body.Close()
	if body := h.ok("1001", "GetDoNotDisturb", dev1001); !strings.Contains(body, ">false<") {
		t.Fatalf("after drop: %s", body)
	}
	if lines, err := OverrideLines(cfg); err != nil || len(lines) != 0 {
		t.Fatalf("after drop OverrideLines = %q, %v", lines, err)
	}

	// A corrupt state file is reported by -check-config and ignored by the bridge.
	if err := os.WriteFile(cfg.StateFile, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OverrideLines(cfg); err == nil {
		t.Fatal("OverrideLines accepted a corrupt state file")
	}
}

func adminGet(t *testing.T, a *App, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + a.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A reload logs at Info which YAML settings the state file overrides.
func TestOverridesLoggedOnReload(t *testing.T) {
	var buf lockedBuffer
	h := startLogged(t, nil, slog.New(slog.NewTextHandler(&buf, nil)))
	h.ok("1001", "SetDoNotDisturb", dev1001+"<csta:doNotDisturbOn>true</csta:doNotDisturbOn>")
	if err := h.app.Reload(); err != nil {
		t.Fatal(err)
	}
	lines := buf.lines("state file overrides YAML settings")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[0], `dnd_mode=\"on\" (not in YAML)`) {
		t.Fatalf("reload logged %q", lines)
	}
}
