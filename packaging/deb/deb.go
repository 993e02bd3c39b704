// Command deb builds csta-bridge's Debian package with nfpm (go run ./packaging/deb): the binary
// (version from git), the systemd unit, sysusers and tmpfiles snippets, the
// example configuration as a conffile and maintainer scripts. The daemon
// does not import it.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

// Options of one build. Root is the module's directory.
type Options struct {
	Root    string
	OutDir  string
	Version string // Debian version; "" = from git
	Arch    string // Debian architecture; "" = this machine's
}

// Result names what was built.
type Result struct {
	Path       string // the .deb
	Version    string // Debian version
	VCSVersion string // what csta-bridge -version prints first
}

// Build compiles the binary and packs it.
func Build(ctx context.Context, o Options) (Result, error) {
	var res Result
	vcs, commit, debVer, err := gitVersion(ctx, o.Root)
	if err != nil && o.Version == "" {
		return res, err
	}
	if err != nil { // not a git checkout (a source tarball): the version given is all there is
		vcs, commit = o.Version, ""
	}
	if o.Version != "" {
		debVer = o.Version
	}
	arch := o.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	work, err := os.MkdirTemp("", "csta-bridge-deb-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "csta-bridge")
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s", vcs, commit)
	if out, err := run(ctx, o.Root, []string{"CGO_ENABLED=0", "GOARCH=" + arch}, goTool(), "build", "-trimpath",
		"-ldflags", ldflags, "-o", bin, "./cmd/csta-bridge"); err != nil {
		return res, fmt.Errorf("go build: %v\n%s", err, out)
	}
	// The packaged unit runs the packaged binary (Debian never installs to /usr/local).
	unit, err := os.ReadFile(filepath.Join(o.Root, "systemd/csta-bridge.service"))
	if err != nil {
		return res, err
	}
	if n := bytes.Count(unit, []byte("/usr/local/bin/csta-bridge")); n != 2 {
		// ExecStart and the install comment; anything else means the unit changed shape.
		return res, fmt.Errorf("systemd/csta-bridge.service names /usr/local/bin/csta-bridge %d times, want 2", n)
	}
	unit = bytes.ReplaceAll(unit, []byte("/usr/local/bin/csta-bridge"), []byte("/usr/bin/csta-bridge"))
	example, err := os.ReadFile(filepath.Join(o.Root, "configs/example.yaml"))
	if err != nil {
		return res, err
	}
	// /etc is read-only for the service (ProtectSystem=strict): stored settings go to its StateDirectory.
	const stateLine = "state_file: csta-bridge-state.json\n"
	if bytes.Count(example, []byte(stateLine)) != 1 {
		return res, fmt.Errorf("configs/example.yaml has no single %q line", strings.TrimSpace(stateLine))
	}
	example = bytes.Replace(example, []byte(stateLine), []byte("state_file: /var/lib/csta-bridge/settings.json\n"), 1)
	staged := map[string][]byte{"csta-bridge.service": unit, "config.yaml": example,
		"postinst": []byte(postinst), "prerm": []byte(prerm), "postrm": []byte(postrm)}
	for name, b := range staged {
		if err := os.WriteFile(filepath.Join(work, name), b, 0o644); err != nil {
			return res, err
		}
	}
	in := func(p string) string { return filepath.Join(work, p) }
	src := func(p string) string { return filepath.Join(o.Root, p) }
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:        "csta-bridge",
		Arch:        arch,
		Platform:    "linux",
		Version:     debVer,
		Section:     "net",
		Priority:    "optional",
		Maintainer:  "csta-bridge maintainers <csta-bridge@localhost>",
		Description: "Snom CSTA bridge for Asterisk and FreeSWITCH\nPresents one virtual Snom desk phone per PBX extension to CTI software:\nCSTA requests on /csta, action URLs on every call event.",
		Homepage:    "https://github.com/csta-bridge/csta-bridge",
		License:     "proprietary",
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				{Source: bin, Destination: "/usr/bin/csta-bridge", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
				{Source: in("csta-bridge.service"), Destination: "/usr/lib/systemd/system/csta-bridge.service",
					FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: src("systemd/csta-bridge.sysusers.conf"), Destination: "/usr/lib/sysusers.d/csta-bridge.conf",
					FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: src("systemd/csta-bridge.tmpfiles.conf"), Destination: "/usr/lib/tmpfiles.d/csta-bridge.conf",
					FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Destination: "/etc/csta-bridge", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o750}},
				// A conffile: dpkg keeps the admin's edits on upgrade. root:root
				// until postinst has the group.
				{Source: in("config.yaml"), Destination: "/etc/csta-bridge/config.yaml", Type: files.TypeConfigNoReplace,
					FileInfo: &files.ContentFileInfo{Mode: 0o640}},
			},
			Scripts: nfpm.Scripts{PostInstall: in("postinst"), PreRemove: in("prerm"), PostRemove: in("postrm")},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return res, err
	}
	pkgr, err := nfpm.Get("deb")
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return res, err
	}
	out := filepath.Join(o.OutDir, pkgr.ConventionalFileName(info))
	f, err := os.Create(out)
	if err != nil {
		return res, err
	}
	if err := pkgr.Package(info, f); err != nil {
		f.Close()
		return res, fmt.Errorf("nfpm: %w", err)
	}
	if err := f.Close(); err != nil {
		return res, err
	}
	return Result{Path: out, Version: debVer, VCSVersion: vcs}, nil
}

var tagRE = regexp.MustCompile(`^v?(\d+\.\d+\.\d+.*)$`)

// gitVersion returns git describe's tag or commit (plus -dirty), the full
// commit, and a Debian version: the tag without its v, or
// 0.0~gitYYYYMMDDhhmmss.SHORT between tags' absence.
func gitVersion(ctx context.Context, root string) (vcs, commit, deb string, err error) {
	g := func(args ...string) (string, error) {
		out, err := run(ctx, root, nil, "git", args...)
		if err != nil {
			return "", fmt.Errorf("git %s: %v: %s (the package takes its version from git)", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(out), nil
	}
	if vcs, err = g("describe", "--tags", "--always", "--dirty"); err != nil {
		return
	}
	if commit, err = g("rev-parse", "HEAD"); err != nil {
		return
	}
	if m := tagRE.FindStringSubmatch(vcs); m != nil {
		deb = strings.ReplaceAll(m[1], "-dirty", "+dirty")
		deb = strings.Replace(deb, "-", "+", 1)
		return
	}
	when, err := g("log", "-1", "--format=%cd", "--date=format-local:%Y%m%d%H%M%S")
	if err != nil {
		return
	}
	deb = "0.0~git" + when + "." + commit[:7]
	if strings.HasSuffix(vcs, "-dirty") {
		deb += "+dirty"
	}
	return
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "TZ=UTC"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
