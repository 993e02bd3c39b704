package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInstallUpgradeRemove builds the package and installs it on this
// machine with dpkg (CI runs as root on Debian): -version and -check-config
// of the installed binary and example, an upgrade that keeps the admin's
// edited config, remove, purge. Without systemd running, the maintainer
// scripts must still succeed.
func TestInstallUpgradeRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: dpkg -i needs root (CI runs as root)")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: not a Debian machine or not a git checkout", tool)
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "csta-bridge").Output(); err == nil &&
		strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed") {
		t.Skipf("a csta-bridge package is installed here (%s): the test does not touch it", out)
	}
	_, userErr := exec.Command("getent", "passwd", "csta-bridge").Output()
	userExisted := userErr == nil

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	v1, err := Build(ctx, Options{Root: root, OutDir: filepath.Join(out, "1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s", v1.Path)
	v2, err := Build(ctx, Options{Root: root, OutDir: filepath.Join(out, "2"), Version: v1.Version + "+upgrade1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sh(t, "dpkg", "--purge", "csta-bridge")
		if !userExisted { // leave the machine as it was
			sh(t, "userdel", "csta-bridge")
			sh(t, "groupdel", "csta-bridge")
		}
	})

	mustSh(t, "dpkg", "-i", v1.Path)
	if got := mustSh(t, "/usr/bin/csta-bridge", "-version"); !strings.HasPrefix(got, "csta-bridge "+v1.VCSVersion+" (") ||
		strings.Contains(got, "(devel)") {
		t.Errorf("-version printed %q, want csta-bridge %s (commit) …", got, v1.VCSVersion)
	}
	const cfg = "/etc/csta-bridge/config.yaml"
	if got := mustSh(t, "/usr/bin/csta-bridge", "-check-config", "-config", cfg); !strings.Contains(got, "OK") {
		t.Errorf("-check-config: %q", got)
	}
	checkOwner(t, cfg, 0o640)
	checkOwner(t, "/etc/csta-bridge", os.ModeDir|0o750)
	for _, p := range []string{"/usr/lib/systemd/system/csta-bridge.service", "/usr/lib/sysusers.d/csta-bridge.conf",
		"/usr/lib/tmpfiles.d/csta-bridge.conf", "/var/lib/csta-bridge"} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	if unit, _ := os.ReadFile("/usr/lib/systemd/system/csta-bridge.service"); !strings.Contains(string(unit),
		"ExecStart=/usr/bin/csta-bridge -config /etc/csta-bridge/config.yaml") {
		t.Error("the packaged unit does not run /usr/bin/csta-bridge")
	}

	// The admin edits the config; an upgrade keeps it, without asking
	// (dpkg would fail here reading a prompt's answer from no terminal).
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	const mark = "# edited by the admin\n"
	if _, err := f.WriteString(mark); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mustSh(t, "dpkg", "-i", v2.Path)
	if got := mustSh(t, "dpkg-query", "-W", "-f=${Version}", "csta-bridge"); got != v2.Version {
		t.Errorf("installed version %q after the upgrade, want %q", got, v2.Version)
	}
	if b, _ := os.ReadFile(cfg); !strings.HasSuffix(string(b), mark) {
		t.Error("the upgrade replaced the edited config")
	}
	checkOwner(t, cfg, 0o640)
	mustSh(t, "/usr/bin/csta-bridge", "-check-config", "-config", cfg)

	mustSh(t, "dpkg", "--remove", "csta-bridge")
	if _, err := os.Stat("/usr/bin/csta-bridge"); !os.IsNotExist(err) {
		t.Errorf("binary after remove: %v", err)
	}
	if _, err := os.Stat(cfg); err != nil {
		t.Errorf("remove must keep the config until purge: %v", err)
	}
	mustSh(t, "dpkg", "--purge", "csta-bridge")
	for _, p := range []string{"/etc/csta-bridge", "/var/lib/csta-bridge"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s after purge: %v", p, err)
		}
	}
}

// checkOwner: root:csta-bridge with mode.
func checkOwner(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Error(err)
		return
	}
	gid := mustSh(t, "getent", "group", "csta-bridge")
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != mode || st.Uid != 0 || !strings.Contains(gid, ":"+strconv.FormatUint(uint64(st.Gid), 10)+":") {
		t.Errorf("%s: %v %d:%d, want %v root:csta-bridge (%s)", p, fi.Mode(), st.Uid, st.Gid, mode, gid)
	}
}

func sh(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdin = nil // no terminal: a dpkg prompt fails the test
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		// dpkg refuses at once while another dpkg or apt (a machine's
		// unattended upgrades, another test run) holds its lock, and
		// offers nothing to wait on: try again until the deadline.
		if err == nil || !dpkgLocked(string(out)) {
			return strings.TrimSpace(string(out)), err
		}
		select {
		case <-ctx.Done():
			return strings.TrimSpace(string(out)), err
		case <-time.After(time.Second):
		}
	}
}

func dpkgLocked(out string) bool {
	return strings.Contains(out, "dpkg frontend lock") || strings.Contains(out, "is locked by another process") ||
		strings.Contains(out, "dpkg status database is locked")
}

func mustSh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := sh(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}
