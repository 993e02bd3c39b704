package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// invalidFiles pairs every testdata/invalid-*.yaml with the exact error text
// an administrator sees.
var invalidFiles = map[string]string{
	"invalid-action-url.yaml": `
testdata/invalid-action-url.yaml:3: defaults.action_url.timeout: must be more than 0s and at most 60s (got "0s")
testdata/invalid-action-url.yaml:3: defaults.action_url.retries: must be from 0 to 5 (got 6)
testdata/invalid-action-url.yaml:7: extensions.1001.action_url.timeout: must be more than 0s and at most 60s (got "61s")
testdata/invalid-action-url.yaml:8: extensions.1001.action_url.retries: must be a whole number (got "two")
testdata/invalid-action-url.yaml:10: extensions.1002.action_url.retry: unknown key (expected timeout, retries, tls)
testdata/invalid-action-url.yaml:10: extensions.1002.action_url.timeout: must be a duration such as 2s or 500ms (got "2")`,
	"invalid-aliases.yaml": `
testdata/invalid-aliases.yaml:4: defaults."<<": merge keys nested too deeply (or an anchor merges itself)`,
	"invalid-allow.yaml": `
testdata/invalid-allow.yaml:3: defaults.allow: must be a list such as [10.0.0.0/8, 192.0.2.7], not "10.0.0.0/8"
testdata/invalid-allow.yaml:7: extensions.1001.allow[0]: must be an IP address or CIDR prefix such as 10.0.0.0/8 (got "10.0.0.0/33")
testdata/invalid-allow.yaml:9: extensions.1001.allow[2]: must be an IP address or CIDR prefix such as 10.0.0.0/8 (got "example.com")
testdata/invalid-allow.yaml:10: extensions.1001.allow[3]: must be an IP address or CIDR prefix such as 10.0.0.0/8 (got "fe80::1%eth0")
testdata/invalid-allow.yaml:11: extensions.1001.allow[4]: must be a single value, not a list`,
	"invalid-ari-incomplete.yaml": `
testdata/invalid-ari-incomplete.yaml:3: pbx.ari.username: required
testdata/invalid-ari-incomplete.yaml:3: pbx.ari.password: required (or password_file)
testdata/invalid-ari-incomplete.yaml:4: pbx.ari.url: must be an http or https URL such as http://127.0.0.1:8088/ari (got "ws://127.0.0.1:8088/ari")
testdata/invalid-ari-incomplete.yaml:5: pbx.ari.application: must not contain spaces or commas (got "csta bridge")`,
	"invalid-ari-url.yaml": `
testdata/invalid-ari-url.yaml:4: pbx.ari.url: must not contain credentials; use username and password (got "http://admin:xxxxx@127.0.0.1:8088/ari")
testdata/invalid-ari-url.yaml:7: pbx.ari.password_file: give password or password_file, not both (password is at line 6)`,
	"invalid-auth.yaml": `
testdata/invalid-auth.yaml:7: extensions.1001.http_scheme: must be none, basic or digest (got "digset")
testdata/invalid-auth.yaml:8: extensions.1002.http_pass: required when http_scheme is digest
testdata/invalid-auth.yaml:11: extensions.1003.http_user: is set but http_scheme is none; use basic or digest, or remove http_user
testdata/invalid-auth.yaml:15: extensions.1004.http_user: "alice" is already used by extension 1001 (line 5); http_user must be unique
testdata/invalid-auth.yaml:18: extensions.1005.http_user: must not contain a colon or control characters`,
	"invalid-duplicate-key.yaml": `
testdata/invalid-duplicate-key.yaml:5: extensions.1001.display_name: duplicate key (first at line 4)
testdata/invalid-duplicate-key.yaml:6: extensions.1001: duplicate key (first at line 3)`,
	"invalid-empty.yaml": `
testdata/invalid-empty.yaml: file is empty`,
	"invalid-endpoint.yaml": `
testdata/invalid-endpoint.yaml:5: extensions.1001.endpoint: required when pbx.type is ari (such as PJSIP/1001)
testdata/invalid-endpoint.yaml:7: extensions.1002.endpoint: must be TECH/RESOURCE such as PJSIP/1002 (got "1002")
testdata/invalid-endpoint.yaml:9: extensions.1003.endpoint: must be TECH/RESOURCE such as PJSIP/1003 (got "PJSIP/")`,
	"invalid-esl.yaml": `
testdata/invalid-esl.yaml:4: pbx.esl.address: must be host:port such as 127.0.0.1:8021 (got "127.0.0.1")
testdata/invalid-esl.yaml:5: pbx.esl.password_file: stat testdata/missing.secret: no such file or directory
testdata/invalid-esl.yaml:8: extensions.1001.endpoint: must be TECH/RESOURCE such as user/1001 (got "1001")
testdata/invalid-esl.yaml:9: extensions.1002.endpoint: required when pbx.type is esl (such as user/1002)`,
	"invalid-extension-name.yaml": `
testdata/invalid-extension-name.yaml:3: extensions."10 01": name must be made of letters, digits and _ . + - (it appears in URL paths)
testdata/invalid-extension-name.yaml:4: extensions."..": name must be made of letters, digits and _ . + - (it appears in URL paths)
testdata/invalid-extension-name.yaml:5: extensions."1001/csta": name must be made of letters, digits and _ . + - (it appears in URL paths)
testdata/invalid-extension-name.yaml:6: extensions."": name must be made of letters, digits and _ . + - (it appears in URL paths)`,
	"invalid-headers.yaml": `
testdata/invalid-headers.yaml:3: defaults.auto_answer_headers: must be a list such as ["Call-Info: <sip:pbx>;answer-after=0"], not "Call-Info: <sip:pbx>;answer-after=0"
testdata/invalid-headers.yaml:8: extensions.1001.auto_answer_headers[1]: must look like "Name: value" (got "Call Info: x")
testdata/invalid-headers.yaml:9: extensions.1001.auto_answer_headers[2]: must look like "Name: value" (got "Alert-Info:")
testdata/invalid-headers.yaml:10: extensions.1001.auto_answer_headers[3]: must look like "Name: value" (got "no colon")`,
	"invalid-listen.yaml": `
testdata/invalid-listen.yaml:3: http.listen: host must be an IP address, not a name (got "localhost:8080")
testdata/invalid-listen.yaml:8: extensions.1001.listen: port must be a number from 1 to 65535 (got "127.0.0.11:99999")
testdata/invalid-listen.yaml:10: extensions.1002.listen: "127.0.0.1:8081" conflicts with admin.listen "0.0.0.0:8081" (line 5)
testdata/invalid-listen.yaml:14: extensions.1004.listen: ":80" conflicts with extensions.1003.listen "127.0.0.12:80" (line 12)`,
	"invalid-pbx-missing.yaml": `
testdata/invalid-pbx-missing.yaml:1: pbx: required (with type: sim, ari or esl)`,
	"invalid-pbx-type.yaml": `
testdata/invalid-pbx-type.yaml:2: pbx.type: must be sim, ari or esl (got "asterisk")`,
	"invalid-settings.yaml": `
testdata/invalid-settings.yaml:4: defaults.settings.action_incoming_url: must be empty or an absolute http or https URL (got "ftp://crm.local/in?c=$remote")
testdata/invalid-settings.yaml:8: extensions.1001.settings.action_outgoing_url: must be empty or an absolute http or https URL (got "crm.local/out.php?c=$remote")
testdata/invalid-settings.yaml:9: extensions.1001.settings.action_connected_url: must not contain spaces or control characters; write %20 (got "http://crm.local/c.php?name=$display_remote now")
testdata/invalid-settings.yaml:10: extensions.1001.settings.action_missed_url: must be empty or an absolute http or https URL (got "http://user:xxxxx@/missed")
testdata/invalid-settings.yaml:13: extensions.1001.settings.action-bad: setting names are made of letters, digits and _ (Snom setting names such as action_incoming_url)
testdata/invalid-settings.yaml:14: extensions.1001.settings.user_name1: must be a single value, not a mapping`,
	"invalid-sim-duration.yaml": `
testdata/invalid-sim-duration.yaml:4: pbx.sim.answer_after: must be a duration such as 1s, or never (got "soon")`,
	"invalid-sim.yaml": `
testdata/invalid-sim.yaml:4: pbx.sim.answer_after: must not be negative (got "-1s")
testdata/invalid-sim.yaml:5: only one YAML document is allowed (found a second one)`,
	"invalid-state-file.yaml": `
testdata/invalid-state-file.yaml:2: state_file: must be a file path (leave the key out for /var/lib/csta-bridge/settings.json)`,
	"invalid-syntax.yaml": `
testdata/invalid-syntax.yaml:2: found character that cannot start any token`,
	"invalid-tls.yaml": `
testdata/invalid-tls.yaml:5: http.tls.key: required with http.tls.cert (give both or neither)
testdata/invalid-tls.yaml:6: http.tls.chain: unknown key (expected cert, key)`,
	"invalid-top-level.yaml": `
testdata/invalid-top-level.yaml:1: the file must be a mapping with the keys pbx, http, admin, state_file, defaults and extensions, not a list`,
	"invalid-types.yaml": `
testdata/invalid-types.yaml:2: pbx.type: must be a single value, not a list
testdata/invalid-types.yaml:3: http: must be a mapping (key: value), not "127.0.0.1:8080"
testdata/invalid-types.yaml:5: admin.listen: must be a single value, not a mapping
testdata/invalid-types.yaml:6: extensions: must be a mapping (key: value), not a list`,
	"invalid-unknown-key.yaml": `
testdata/invalid-unknown-key.yaml:3: htpp: unknown key (did you mean http?)
testdata/invalid-unknown-key.yaml:6: defaults.http_user: cannot be a default: it differs for every extension; set it under extensions
testdata/invalid-unknown-key.yaml:9: extensions.1001.http_shceme: unknown key (did you mean http_scheme?)
testdata/invalid-unknown-key.yaml:10: extensions.1001.endpont: unknown key (did you mean endpoint?)
testdata/invalid-unknown-key.yaml:11: extensions.1001.colour: unknown key (expected endpoint, display_name, domain, listen, http_user, http_pass, http_scheme, allow, action_url, auto_answer_headers, settings, node)`,
}

func TestInvalidFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := invalidFiles[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expected error in invalidFiles", f)
		}
	}
	for name, want := range invalidFiles {
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(filepath.Join("testdata", name))
			if err == nil {
				t.Fatalf("Load succeeded, want error:%s", want)
			}
			if cfg != nil {
				t.Errorf("Load returned a config together with an error")
			}
			if got := err.Error(); got != strings.TrimPrefix(want, "\n") {
				t.Errorf("error mismatch\ngot:\n%s\nwant:\n%s", got, strings.TrimPrefix(want, "\n"))
			}
		})
	}
}

// Every problem is an *Error reachable through the joined error.
func TestErrorsAreStructured(t *testing.T) {
	_, err := Load("testdata/invalid-auth.yaml")
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error %T does not unwrap to a list", err)
	}
	prev := 0
	for _, e := range joined.Unwrap() {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("problem %T is not a *Error", e)
		}
		if ce.File != "testdata/invalid-auth.yaml" || ce.Line < prev || ce.Key == "" {
			t.Errorf("bad problem %+v (previous line %d)", ce, prev)
		}
		prev = ce.Line
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "c.yaml", Line: 42, Key: "extensions.1001.http_scheme", Msg: "bad"}, "c.yaml:42: extensions.1001.http_scheme: bad"},
		{Error{File: "c.yaml", Line: 3, Msg: "syntax"}, "c.yaml:3: syntax"},
		{Error{File: "c.yaml", Msg: "file is empty"}, "c.yaml: file is empty"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestConfigsLoad keeps every shipped configuration loadable.
func TestConfigsLoad(t *testing.T) {
	n := 0
	err := filepath.WalkDir("../../configs", func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return nil
		}
		n++
		if _, err := Load(path); err != nil {
			t.Errorf("%v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no YAML files found under ../../configs")
	}
}

func TestExampleConfig(t *testing.T) {
	cfg, err := Load("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PBX.Type != TypeSim || cfg.PBX.Sim.AnswerAfter != time.Second || cfg.PBX.Sim.NeverAnswer {
		t.Errorf("pbx = %+v", cfg.PBX)
	}
	if cfg.HTTP.Listen != "127.0.0.1:8080" || cfg.Admin.Listen != "127.0.0.1:9090" || cfg.HTTP.TLS.Enabled() {
		t.Errorf("listeners = %+v %+v", cfg.HTTP, cfg.Admin)
	}
	if want := filepath.Join("../../configs", "csta-bridge-state.json"); cfg.StateFile != want {
		t.Errorf("state file %q, want %q (relative to the config's directory)", cfg.StateFile, want)
	}
	type auth struct{ name, display, user, pass, scheme string }
	var got []auth
	for _, x := range cfg.Extensions {
		got = append(got, auth{x.Name, x.DisplayName, x.HTTPUser, x.HTTPPass, x.HTTPScheme})
	}
	want := []auth{
		{"1001", "Alice", "alice", "secret", SchemeDigest},
		{"1002", "Bob", "", "", SchemeNone},
		{"1003", "Carol", "carol", "secret", SchemeBasic},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("extensions = %+v, want %+v", got, want)
	}
	events := map[string]string{
		"incoming": "action_incoming_url", "outgoing": "action_outgoing_url",
		"connected": "action_connected_url", "disconnected": "action_disconnected_url",
		"missed": "action_missed_url", "hold": "action_hold", "unhold": "action_unhold",
		"transfer": "action_transfer", "offhook": "action_offhook_url", "onhook": "action_onhook_url",
	}
	for _, x := range cfg.Extensions {
		if x.Domain != "pbx.example.com" || x.Endpoint != x.Name {
			t.Errorf("%s: domain %q endpoint %q", x.Name, x.Domain, x.Endpoint)
		}
		for ev, setting := range events {
			want := "http://127.0.0.1:9090/sim/actions/" + ev +
				"?local=$local&remote=$remote&csta_id=$csta_id&call_id=$call-id&display_remote=$display_remote"
			if got := x.Settings[setting]; got != want {
				t.Errorf("%s: %s = %q, want %q", x.Name, setting, got, want)
			}
		}
	}
}

// base is the smallest valid file; tests append to it.
const base = "pbx: {type: sim}\n"

func parse(t *testing.T, yml string) *Config {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror:\n%v", yml, err)
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	cfg := parse(t, base+"extensions:\n  \"1001\":\n")
	want := &Config{
		Path:      "test.yaml",
		PBX:       PBX{Type: TypeSim, Sim: Sim{AnswerAfter: time.Second}},
		HTTP:      HTTP{Listen: DefaultHTTPListen},
		Admin:     Admin{Listen: DefaultAdminListen},
		StateFile: DefaultStateFile,
		Extensions: []Extension{{
			Name:       "1001",
			Line:       3,
			Endpoint:   "1001",
			Domain:     "localhost",
			HTTPScheme: SchemeNone,
			ActionURL:  ActionURL{Timeout: 2 * time.Second},
			AutoAnswerHeaders: []string{
				"Call-Info: <sip:localhost>;answer-after=0",
				"Alert-Info: <http://localhost>;info=alert-autoanswer;delay=0",
			},
			Settings: map[string]string{},
		}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestEmptyExtensionsAllowed(t *testing.T) {
	for _, yml := range []string{base, base + "extensions:\n", base + "extensions: {}\n"} {
		if cfg := parse(t, yml); len(cfg.Extensions) != 0 {
			t.Errorf("%q: extensions %v", yml, cfg.Extensions)
		}
	}
}

func TestMerge(t *testing.T) {
	const defaults = base + `defaults:
  domain: pbx.example.com
  action_url: {timeout: 5s, retries: 2}
  auto_answer_headers: ["X-Auto: yes"]
  http_scheme: digest
  http_pass: shared
  allow: [10.0.0.0/8]
  settings:
    action_incoming_url: http://crm/in?c=$remote
    action_missed_url: http://crm/missed
    language: Deutsch
extensions:
`
	for _, tc := range []struct {
		name  string
		ext   string
		check func(t *testing.T, x Extension)
	}{
		{"all from defaults", `  "1":
    http_user: one
`, func(t *testing.T, x Extension) {
			eq(t, "domain", x.Domain, "pbx.example.com")
			eq(t, "action_url", x.ActionURL, ActionURL{Timeout: 5 * time.Second, Retries: 2})
			eq(t, "headers", x.AutoAnswerHeaders, []string{"X-Auto: yes"})
			eq(t, "scheme", x.HTTPScheme, SchemeDigest)
			eq(t, "pass", x.HTTPPass, "shared")
			eq(t, "allow", x.Allow, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
			eq(t, "settings", x.Settings, map[string]string{
				"action_incoming_url": "http://crm/in?c=$remote", "action_missed_url": "http://crm/missed", "language": "Deutsch"})
		}},
		{"extension wins", `  "1":
    domain: other.example.com
    http_user: one
    http_pass: own
    http_scheme: basic
    allow: [192.0.2.1]
    auto_answer_headers: []
`, func(t *testing.T, x Extension) {
			eq(t, "domain", x.Domain, "other.example.com")
			eq(t, "pass", x.HTTPPass, "own")
			eq(t, "scheme", x.HTTPScheme, SchemeBasic)
			eq(t, "allow", x.Allow, []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")})
			eq(t, "headers", x.AutoAnswerHeaders, []string{})
		}},
		{"action_url field by field", `  "1":
    http_user: one
    action_url: {retries: 0}
`, func(t *testing.T, x Extension) {
			eq(t, "action_url", x.ActionURL, ActionURL{Timeout: 5 * time.Second, Retries: 0})
		}},
		{"settings key by key; blank disables", `  "1":
    http_user: one
    settings:
      action_incoming_url: http://other/in
      action_missed_url:
      mac: 000413AABBCC
`, func(t *testing.T, x Extension) {
			eq(t, "settings", x.Settings, map[string]string{
				"action_incoming_url": "http://other/in", "action_missed_url": "", "language": "Deutsch", "mac": "000413AABBCC"})
		}},
		{"explicit empty allow means everyone", `  "1":
    http_user: one
    allow: []
`, func(t *testing.T, x Extension) {
			eq(t, "allow", len(x.Allow), 0)
		}},
		{"scheme none overrides a default scheme", `  "1":
    http_scheme: none
`, func(t *testing.T, x Extension) {
			eq(t, "scheme", x.HTTPScheme, SchemeNone)
			eq(t, "user", x.HTTPUser, "")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parse(t, defaults+tc.ext)
			if len(cfg.Extensions) != 1 {
				t.Fatalf("extensions: %+v", cfg.Extensions)
			}
			tc.check(t, cfg.Extensions[0])
		})
	}
}

func TestDefaultsDoNotLeakBetweenExtensions(t *testing.T) {
	cfg := parse(t, base+`defaults:
  settings: {action_incoming_url: "http://crm/in"}
extensions:
  "1":
    settings: {action_incoming_url: "http://one/in"}
  "2": {}
`)
	eq(t, "1", cfg.Extensions[0].Settings["action_incoming_url"], "http://one/in")
	eq(t, "2", cfg.Extensions[1].Settings["action_incoming_url"], "http://crm/in")
}

func TestAutoAnswerHeadersFollowDomain(t *testing.T) {
	cfg := parse(t, base+"extensions:\n  \"1\": {domain: pbx.lan}\n")
	eq(t, "headers", cfg.Extensions[0].AutoAnswerHeaders, DefaultAutoAnswerHeaders("pbx.lan"))
}

func TestSchemeDefault(t *testing.T) {
	cfg := parse(t, base+`extensions:
  "1": {http_user: u, http_pass: p}
  "2": {}
`)
	eq(t, "with user", cfg.Extensions[0].HTTPScheme, SchemeBasic)
	eq(t, "without", cfg.Extensions[1].HTTPScheme, SchemeNone)
}

func TestExtensionsSortedWithLines(t *testing.T) {
	cfg := parse(t, base+`extensions:
  "b": {}
  "10": {}
  "a": {}
  "2": {}
`)
	var names []string
	var lines []int
	for _, x := range cfg.Extensions {
		names = append(names, x.Name)
		lines = append(lines, x.Line)
	}
	eq(t, "names", names, []string{"10", "2", "a", "b"})
	eq(t, "lines", lines, []int{4, 6, 5, 3})
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	cfg, err := Load("testdata/good-anchors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.PBX.Sim.NeverAnswer {
		t.Errorf("answer_after never not applied: %+v", cfg.PBX.Sim)
	}
	two := cfg.Extensions[1]
	eq(t, "user", two.HTTPUser, "two")
	eq(t, "scheme", two.HTTPScheme, SchemeDigest)
	eq(t, "pass", two.HTTPPass, "agentpass")
	eq(t, "settings", two.Settings, map[string]string{
		"action_incoming_url": "http://crm.local/in?c=$remote", "action_missed_url": "http://crm.local/missed"})
	eq(t, "one's settings", cfg.Extensions[0].Settings, map[string]string{"action_incoming_url": "http://crm.local/in?c=$remote"})
}

func TestARIWithPasswordFile(t *testing.T) {
	cfg, err := Load("testdata/good-ari.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "ari", cfg.PBX.ARI, ARI{URL: "https://pbx.example.com:8089/ari", Username: "csta-bridge",
		Password: "s3cret-ari", Application: "csta-bridge", Context: "from-internal", HangupHandler: "csta-bridge-hangup"})
	eq(t, "tls", cfg.HTTP.TLS, TLS{Cert: "testdata/tls/cert.pem", Key: "/etc/csta-bridge/key.pem"})
	if !cfg.HTTP.TLS.Enabled() {
		t.Error("TLS not enabled")
	}
	eq(t, "state", cfg.StateFile, "/var/lib/csta-bridge/state.json")
	eq(t, "allow", cfg.Extensions[0].Allow, []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("10.0.0.0/8")})
	eq(t, "listen", cfg.Extensions[1].Listen, "192.0.2.202:80")
}

// TestARIHangupHandler: the context of the hangup handler the bridge
// pushes (issue 20), "none" for a dialplan without it; anything that is no
// context name is refused with its line.
func TestARIHangupHandler(t *testing.T) {
	const base = "pbx:\n  type: ari\n  ari: {url: 'http://127.0.0.1:8088/ari', username: u, password: p, application: a"
	eq(t, "default", parse(t, base+"}\n").PBX.ARI.HangupHandler, "csta-bridge-hangup")
	eq(t, "own", parse(t, base+", hangup_handler: my-hangup}\n").PBX.ARI.HangupHandler, "my-hangup")
	eq(t, "none", parse(t, base+", hangup_handler: none}\n").PBX.ARI.HangupHandler, "none")
	for _, bad := range []string{"'a b'", "'x,s,1'", "'${X}'"} {
		_, err := Parse("c.yaml", []byte(base+", hangup_handler: "+bad+"}\n"))
		if err == nil || !strings.Contains(err.Error(), "c.yaml:3: pbx.ari.hangup_handler: must be a dialplan context name, or none") {
			t.Errorf("hangup_handler %s: %v", bad, err)
		}
	}
}

func TestESL(t *testing.T) {
	cfg, err := Load("testdata/good-esl.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "esl", cfg.PBX.ESL, ESL{Address: "freeswitch.lan:8021", Password: "ClueCon", PhoneEvents: "always"})
	eq(t, "endpoint", cfg.Extensions[1].Endpoint, "sofia/internal/1001@10.0.0.5")
}

func TestESLPhoneEvents(t *testing.T) {
	cfg := parse(t, "pbx:\n  type: esl\n  esl: {address: 127.0.0.1:8021, password: x}\n")
	eq(t, "default", cfg.PBX.ESL.PhoneEvents, "auto")
	_, err := Parse("c.yaml", []byte("pbx:\n  type: esl\n  esl: {address: 127.0.0.1:8021, password: x, phone_events: sometimes}\n"))
	if err == nil || err.Error() != `c.yaml:3: pbx.esl.phone_events: must be auto, always or never (got "sometimes")` {
		t.Errorf("bad phone_events: %v", err)
	}
}

// Unselected PBX sections may mention secret files that are not on this
// machine; only the selected one is read.
func TestPasswordFileOnlyReadWhenSelected(t *testing.T) {
	parse(t, "pbx:\n  type: sim\n  ari: {password_file: /nonexistent/secret}\n  esl: {password_file: /nonexistent/secret}\n")
}

func TestPasswordFileProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("empty", " \n")
	write("big", strings.Repeat("x", maxSecretFile+1))
	write("ok", "ClueCon\n")
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"ok":    "",
		"empty": "is empty",
		"big":   "is larger than 65536 bytes",
		"fifo":  "is not a regular file", // and does not block
		".":     "is not a regular file",
	} {
		yml := "pbx:\n  type: esl\n  esl: {address: 127.0.0.1:8021, password_file: " + file + "}\n"
		cfg, err := Parse(filepath.Join(dir, "c.yaml"), []byte(yml))
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", file, err)
			} else {
				eq(t, "password", cfg.PBX.ESL.Password, "ClueCon")
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "c.yaml:3: pbx.esl.password_file: ") {
			t.Errorf("%s: error %v, want %q", file, err, want)
		}
	}
}

// TestProblems covers single checks with inline files: each yields exactly
// the given problems.
func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name, yml string
		want      []string
	}{
		{"type missing", "pbx: {}\n", []string{"test.yaml:1: pbx.type: required: sim, ari or esl"}},
		{"type null", "pbx:\n  type:\n", []string{"test.yaml:2: pbx.type: required: sim, ari or esl"}},
		{"ari section missing", "pbx: {type: ari}\n", []string{
			"test.yaml:1: pbx.ari: required when pbx.type is ari (url, username, password, application)"}},
		{"esl section missing", "pbx: {type: esl}\n", []string{
			"test.yaml:1: pbx.esl: required when pbx.type is esl (address, password)"}},
		{"esl bad port", "pbx: {type: esl, esl: {address: 'pbx:0', password: x}}\n", []string{
			`test.yaml:1: pbx.esl.address: port must be a number from 1 to 65535 (got "pbx:0")`}},
		{"esl missing password", "pbx:\n  type: esl\n  esl:\n    address: pbx:8021\n", []string{
			"test.yaml:3: pbx.esl.password: required (or password_file)"}},
		{"ari url not a url", "pbx: {type: ari, ari: {url: 'http://[::1', username: u, password: p, application: a}}\n", []string{
			"test.yaml:1: pbx.ari.url: must be an http or https URL such as http://127.0.0.1:8088/ari"}},
		{"ari secret never echoed", "pbx: {type: ari, ari: {url: 'ftp://u:topsecret@h/', username: u, password: p, application: a}}\n", []string{
			`test.yaml:1: pbx.ari.url: must not contain credentials; use username and password (got "ftp://u:xxxxx@h/")`}},
		{"answer_after zero", base[:len(base)-2] + ", sim: {answer_after: 0s}}\n", nil},
		{"listen empty host", base + "http: {listen: ':8080'}\n", nil},
		{"listen ipv6", base + "http: {listen: '[::1]:8080'}\n", nil},
		{"listen no port", base + "http: {listen: 127.0.0.1}\n", []string{
			`test.yaml:2: http.listen: must be IP:port such as 127.0.0.1:8080 (got "127.0.0.1")`}},
		{"listen port name", base + "http: {listen: '127.0.0.1:http'}\n", []string{
			`test.yaml:2: http.listen: port must be a number from 1 to 65535 (got "127.0.0.1:http")`}},
		{"listen same as admin default", base + "http: {listen: '127.0.0.1:9090'}\n", []string{
			`test.yaml:2: http.listen: "127.0.0.1:9090" conflicts with admin.listen "127.0.0.1:9090" (the default)`}},
		{"extension on wildcard of http", base + "http: {listen: '[::]:80'}\nextensions:\n  a: {listen: '192.0.2.1:80'}\n", []string{
			`test.yaml:4: extensions.a.listen: "192.0.2.1:80" conflicts with http.listen "[::]:80" (line 2)`}},
		{"ipv4 wildcard does not cover ipv6", base + "http: {listen: '0.0.0.0:80'}\nextensions:\n  a: {listen: '[::1]:80'}\n", nil},
		{"port 0 never conflicts", base + "http: {listen: '127.0.0.1:0'}\nadmin: {listen: '127.0.0.1:0'}\n", nil},
		{"timeout max ok", base + "defaults: {action_url: {timeout: 60s, retries: 5}}\n", nil},
		{"negative retries", base + "defaults: {action_url: {retries: -1}}\n", []string{
			"test.yaml:2: defaults.action_url.retries: must be from 0 to 5 (got -1)"}},
		{"action url https and fragment vars", base + "defaults: {settings: {action_setup_url: 'HTTPS://h:8443/p#x=$mac'}}\n", nil},
		{"action url var in path", base + "defaults: {settings: {action_setup_url: 'http://h/$mac&/s.xml'}}\n", nil},
		{"action url var as host", base + "defaults: {settings: {action_setup_url: 'http://$phone_ip/x'}}\n", nil},
		{"non-action setting is free text", base + "defaults: {settings: {language: 'any thing: here'}}\n", nil},
		{"http_pass blank in extension keeps default", base + "defaults: {http_pass: p}\nextensions:\n  a:\n    http_user: u\n    http_pass:\n", nil},
		{"http_pass empty string overrides default", base + "defaults: {http_pass: p}\nextensions:\n  a:\n    http_user: u\n    http_pass: ''\n", []string{
			"test.yaml:4: extensions.a.http_pass: required when http_scheme is basic"}},
		{"digest needs user", base + "extensions:\n  a: {http_scheme: digest, http_pass: p}\n", []string{
			"test.yaml:3: extensions.a.http_user: required when http_scheme is digest"}},
		{"user from merge key line", base + "extensions:\n  a: &x {http_user: u, http_pass: p}\n  b: {<<: *x}\n", []string{
			`test.yaml:3: extensions.b.http_user: "u" is already used by extension a (line 3); http_user must be unique`}},
		{"domain", base + "defaults: {domain: 'a b'}\n", []string{
			`test.yaml:2: defaults.domain: must be a host name or IP address such as pbx.example.com (got "a b")`}},
		{"endpoint spaces", base + "extensions:\n  a: {endpoint: 'PJSIP/a b'}\n", []string{
			`test.yaml:3: extensions.a.endpoint: must not contain spaces or control characters (got "PJSIP/a b")`}},
		{"per-extension keys in defaults", base + "defaults:\n  listen: 127.0.0.1:81\n  endpoint: x\n", []string{
			"test.yaml:3: defaults.listen: cannot be a default: it differs for every extension; set it under extensions",
			"test.yaml:4: defaults.endpoint: cannot be a default: it differs for every extension; set it under extensions"}},
		{"non-string key", base + "extensions:\n  [a]: {}\n", []string{
			"test.yaml:3: extensions: keys must be plain strings, not a list"}},
		{"dotted extension name quoted in path", base + "extensions:\n  a.b: {bogus: 1}\n", []string{
			`test.yaml:3: extensions."a.b".bogus: unknown key (expected endpoint, display_name, domain, listen, http_user, http_pass, http_scheme, allow, action_url, auto_answer_headers, settings, node)`}},
		{"merge of a scalar", base + "defaults:\n  <<: 3\n", []string{
			`test.yaml:3: defaults."<<": can only merge mappings, not "3"`}},
		{"state file relative", base + "state_file: s.json\n", nil},
		{"tls key only", base + "http:\n  tls: {key: k.pem}\n", []string{
			"test.yaml:3: http.tls.cert: required with http.tls.key (give both or neither)"}},
		{"problems sorted by line across sections", "extensions:\n  a: {http_scheme: x}\npbx: {type: y}\n", []string{
			`test.yaml:2: extensions.a.http_scheme: must be none, basic or digest (got "x")`,
			`test.yaml:3: pbx.type: must be sim, ari or esl (got "y")`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.yml))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("file:\n%s\ngot:\n%s\nwant:\n%s", tc.yml, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestStateFileResolvedAgainstConfigDir(t *testing.T) {
	cfg, err := Parse("/etc/csta-bridge/config.yaml", []byte(base+"state_file: state/s.json\n"))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "state", cfg.StateFile, "/etc/csta-bridge/state/s.json")
}

// A crafted file must fail fast, not expand exponentially.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(base + "extensions:\n  a: &l0 {}\n")
	for i := 1; i < 30; i++ {
		b.WriteString("  b" + strconv.Itoa(i) + ": &l" + strconv.Itoa(i) + " {<<: [*l" + strconv.Itoa(i-1) + ", *l" + strconv.Itoa(i-1) + "]}\n")
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse("bomb.yaml", []byte(b.String()))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "too many alias expansions") {
			t.Errorf("error = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Parse did not return")
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "testdata/does-not-exist.yaml") {
		t.Errorf("error = %v", err)
	}
}

func TestCheckActionURL(t *testing.T) {
	for s, ok := range map[string]bool{
		"":                                    true,
		"http://crm/in?c=$remote&id=$csta_id": true,
		"https://crm:8443/x?h=$sip_header(X-Foo)&c=$call-id": true,
		"http://u:p@crm/x":    true,
		"http://crm/a b":      false,
		"http://crm/a\tb":     false,
		"/relative?x=$remote": false,
		"mailto:x@y":          false,
		"http:///nohost":      false,
		"http://crm/%zz":      false,
	} {
		if got := checkActionURL(s) == ""; got != ok {
			t.Errorf("checkActionURL(%q) ok = %v, want %v", s, got, ok)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://u:pw@h/x?a=b@c":  "http://u:xxxxx@h/x?a=b@c",
		"http://u@h/":            "http://u@h/",
		"http://h/p?mail=a@b":    "http://h/p?mail=a@b",
		"no scheme:pw@host":      "no scheme:pw@host",
		"https://a:b:c@h:1#frag": "https://a:xxxxx@h:1#frag",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestListenerOverlaps(t *testing.T) {
	l := func(s string) listener {
		x, msg := checkListen(s)
		if msg != "" {
			t.Fatalf("%s: %s", s, msg)
		}
		return x
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:80", "127.0.0.1:80", true},
		{"127.0.0.1:80", "127.0.0.1:81", false},
		{"127.0.0.1:80", "127.0.0.2:80", false},
		{":80", "127.0.0.2:80", true},
		{"0.0.0.0:80", "127.0.0.2:80", true},
		{"0.0.0.0:80", "[::1]:80", false},
		{"0.0.0.0:80", "[::]:80", true},
		{"[::]:80", "[::1]:80", true},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1:80", true},
		{"127.0.0.1:0", "127.0.0.1:0", false},
	} {
		if got := l(tc.a).overlaps(l(tc.b)); got != tc.want {
			t.Errorf("%s vs %s: %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := l(tc.b).overlaps(l(tc.a)); got != tc.want {
			t.Errorf("%s vs %s: %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestUnknownKeySuggestion(t *testing.T) {
	eq(t, "typo", unknownKeyMsg("HTTP_User", extensionKeys), "unknown key (did you mean http_user?)")
	eq(t, "far", unknownKeyMsg("zzz", []string{"a1", "b2"}), "unknown key (expected a1, b2)")
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}
