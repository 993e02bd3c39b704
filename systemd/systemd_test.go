// Package systemd_test checks the shipped unit, sysusers and tmpfiles files
// with systemd's own tools where they are installed.
package systemd_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	unitFile     = "csta-bridge.service"
	sysusersFile = "csta-bridge.sysusers.conf"
	tmpfilesFile = "csta-bridge.tmpfiles.conf"
	execStart    = "/usr/local/bin/csta-bridge -config /etc/csta-bridge/config.yaml"
)

// directives returns the unit's [Service] (and other) settings: key → values
// in file order.
func directives(t *testing.T, unit []byte) map[string][]string {
	t.Helper()
	d := make(map[string][]string)
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not KEY=VALUE", unitFile, line)
		}
		d[k] = append(d[k], v)
	}
	return d
}

// TestUnitContract checks, without systemd, the settings the rest of
// csta-bridge relies on: the notify protocol, the paths, the one capability.
func TestUnitContract(t *testing.T) {
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	d := directives(t, unit)
	for k, want := range map[string]string{
		"Type":                   "notify",
		"ExecStart":              execStart,
		"ExecReload":             "/bin/kill -HUP $MAINPID",
		"Restart":                "on-failure",
		"User":                   "csta-bridge",
		"Group":                  "csta-bridge",
		"ConfigurationDirectory": "csta-bridge",
		"StateDirectory":         "csta-bridge",
		"AmbientCapabilities":    "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet":  "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":        "yes",
		"ProtectSystem":          "strict",
	} {
		if got := d[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want exactly %q", k, got, want)
		}
	}
	if _, ok := d["TimeoutStopSec"]; !ok {
		t.Error("TimeoutStopSec is not set")
	}
	// Capabilities would only apply inside the user namespace: :80 fails.
	if v, ok := d["PrivateUsers"]; ok {
		t.Errorf("PrivateUsers=%q must not be set", v)
	}
	// sd_notify is a unix datagram.
	if fams := d["RestrictAddressFamilies"]; len(fams) != 1 || !slices.Contains(strings.Fields(fams[0]), "AF_UNIX") {
		t.Errorf("RestrictAddressFamilies=%q must allow AF_UNIX", fams)
	}
}

// tool returns the path of a systemd tool, or skips the test.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not in PATH; skipping the check with systemd's own tool", name)
	}
	return p
}

func run(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stage copies the unit to a temp dir with ExecStart pointing at a copy of
// true(1) there, since verify insists that the binary exists.
func stage(t *testing.T, edit func(string) string) string {
	t.Helper()
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("true(1) is not in PATH; cannot stand in for the csta-bridge binary")
	}
	bin, err := os.ReadFile(truePath)
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "csta-bridge")
	if err := os.WriteFile(fake, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	s := string(unit)
	if strings.Count(s, "ExecStart="+execStart+"\n") != 1 {
		t.Fatalf("%s has no single ExecStart=%s line", unitFile, execStart)
	}
	s = strings.Replace(s, "ExecStart=/usr/local/bin/csta-bridge ", "ExecStart="+fake+" ", 1)
	if edit != nil {
		s = edit(s)
	}
	if err := os.WriteFile(filepath.Join(dir, unitFile), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// verify runs systemd-analyze verify on the staged unit and returns the
// complaints about it.
//
// Invocation: --man=no skips looking up Documentation= man pages (not
// installed in containers); --recursive-errors=no reports only errors in
// our unit, not in whatever the host's network-online.target or
// multi-user.target pull in. verify needs no running systemd or D-Bus: it
// loads the unit in a private manager. It exits non-zero only for fatal
// errors (missing binary, no ExecStart, bad section); a misspelt key or a
// bad value is a warning, so every line naming the unit counts as a
// failure too. SYSTEMD_LOG_LEVEL=notice keeps those warnings while dropping
// debug chatter an admin's environment might switch on.
func verify(t *testing.T, analyze, dir string) (complaints []string, err error) {
	t.Helper()
	out, err := run(t, dir, []string{"SYSTEMD_LOG_LEVEL=notice", "SYSTEMD_COLORS=0"},
		analyze, "verify", "--man=no", "--recursive-errors=no", filepath.Join(dir, unitFile))
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(line, unitFile) {
			complaints = append(complaints, line)
		} else if line != "" {
			t.Logf("systemd-analyze verify (not about our unit): %s", line)
		}
	}
	return complaints, err
}

func TestVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	complaints, err := verify(t, analyze, stage(t, nil))
	if err != nil || len(complaints) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(complaints, "\n"))
	}
	// The check must be able to fail here: a misspelt key and a bad value
	// have to be reported.
	for _, edit := range []struct{ from, to string }{
		{"ProtectSystem=strict", "ProtectSytem=strict"},
		{"Restart=on-failure", "Restart=sometimes"},
	} {
		complaints, err := verify(t, analyze, stage(t, func(s string) string { return strings.Replace(s, edit.from, edit.to, 1) }))
		if err == nil && len(complaints) == 0 {
			t.Errorf("systemd-analyze verify did not notice %s → %s: the check is not meaningful here", edit.from, edit.to)
		}
	}
}

// exposure matches e.g. "→ Overall exposure level for csta-bridge.service: 1.4 OK 🙂".
var exposure = regexp.MustCompile(`Overall exposure level for \S+: (\d+)\.(\d) ([A-Z]+)`)

// TestSecurity runs systemd-analyze security on the unit file. systemd
// rates exposure 0.0–10.0: ≥9.0 UNSAFE, ≥7.5 EXPOSED, ≥5.0 MEDIUM, ≥1.0 OK,
// >0 SAFE, 0 PERFECT (src/analyze/analyze-security.c). We require OK or
// better, i.e. below 5.0.
func TestSecurity(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	dir := stage(t, nil)
	out, err := run(t, dir, []string{"SYSTEMD_COLORS=0"}, analyze, "security", "--offline=true", "--no-pager",
		filepath.Join(dir, unitFile))
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposure.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	whole, _ := strconv.Atoi(m[1])
	tenth, _ := strconv.Atoi(m[2])
	level := whole*10 + tenth
	t.Logf("overall exposure level %s.%s %s", m[1], m[2], m[3])
	if level >= 50 || !slices.Contains([]string{"OK", "SAFE", "PERFECT"}, m[3]) {
		t.Errorf("exposure %s.%s %s, want OK or better (< 5.0); details:\n%s", m[1], m[2], m[3], out)
	}
}

// TestSysusersTmpfiles applies the sysusers and tmpfiles files to a scratch
// root and checks the user, directories and modes they produce. Both tools
// honour --root; tmpfiles must chown, so this needs root.
func TestSysusersTmpfiles(t *testing.T) {
	sysusers := tool(t, "systemd-sysusers")
	tmpfiles := tool(t, "systemd-tmpfiles")
	if os.Geteuid() != 0 {
		t.Skip("not root: systemd-tmpfiles cannot chown in a scratch root")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/csta-bridge"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(root, "etc/csta-bridge/config.yaml")
	if err := os.WriteFile(cfg, []byte("pbx: {type: sim}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	abs := func(f string) string { p, _ := filepath.Abs(f); return p }
	if out, err := run(t, root, nil, sysusers, "--root="+root, abs(sysusersFile)); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	var uid, gid int
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == "csta-bridge" {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			if f[5] != "/var/lib/csta-bridge" || !strings.HasSuffix(f[6], "nologin") {
				t.Errorf("passwd entry %q: want home /var/lib/csta-bridge and a nologin shell", line)
			}
		}
	}
	if uid == 0 || gid == 0 {
		t.Fatalf("no csta-bridge system user in:\n%s", passwd)
	}
	if out, err := run(t, root, nil, tmpfiles, "--root="+root, "--create", abs(tmpfilesFile)); err != nil || out != "" {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	for _, want := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{
		{"etc/csta-bridge", os.ModeDir | 0o750, 0, gid},
		{"etc/csta-bridge/config.yaml", 0o640, 0, gid},
		{"var/lib/csta-bridge", os.ModeDir | 0o750, uid, gid},
	} {
		fi, err := os.Stat(filepath.Join(root, want.path))
		if err != nil {
			t.Error(err)
			continue
		}
		st := statOwner(fi)
		if fi.Mode() != want.mode || st[0] != want.uid || st[1] != want.gid {
			t.Errorf("/%s: %v %d:%d, want %v %d:%d", want.path, fi.Mode(), st[0], st[1], want.mode, want.uid, want.gid)
		}
	}
}

// statOwner returns a file's uid and gid.
func statOwner(fi os.FileInfo) [2]int {
	st := fi.Sys().(*syscall.Stat_t)
	return [2]int{int(st.Uid), int(st.Gid)}
}
