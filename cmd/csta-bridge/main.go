// Command csta-bridge presents one virtual Snom phone per PBX extension to
// CTI software and carries its CSTA requests out on Asterisk or FreeSWITCH.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("csta-bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "/etc/csta-bridge/config.yaml", "configuration file")
	check := fs.Bool("check-config", false, "validate the configuration and exit (0 valid, 1 not)")
	version := fs.Bool("version", false, "print the version and exit")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "csta-bridge:", err)
		return 2
	}
	if *check {
		return checkConfig(*configPath, stdout, stderr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reload := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			select { // bursts of SIGHUP collapse into one reload
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	err = bridge.Run(ctx, bridge.Options{ConfigPath: *configPath, Logger: log, NewPBX: newPBX,
		NewLease: newLease, Version: versionString()}, reload)
	if err != nil {
		log.Error("csta-bridge failed", "err", err)
		return 1
	}
	return 0
}

// checkConfig runs the same loading and adapter validation as start-up.
func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err == nil {
		_, err = newPBX(cfg, slog.New(slog.DiscardHandler))
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (pbx %s, %d extensions)\n", path, cfg.PBX.Type, len(cfg.Extensions))
	// Settings stored at run time override the YAML: say which.
	lines, err := bridge.OverrideLines(cfg)
	if err != nil {
		fmt.Fprintln(stdout, "warning:", err)
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return 0
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		// journald stamps every line itself, so the time would only be noise there.
		if os.Getenv("JOURNAL_STREAM") != "" {
			opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}
		}
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format must be text or json, not %q", format)
}

// version and commit are set by the package build (-ldflags -X, see
// packaging/deb): git describe's tag or commit, and the full commit.
var version, commit string

// versionString is the version the package build set, else the module
// version and VCS revision from the build info.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	goVersion := runtime.Version()
	if ok {
		goVersion = bi.GoVersion
	}
	if version != "" {
		v := "csta-bridge " + version
		if commit != "" {
			v += " (" + commit + ")"
		}
		return v + " " + goVersion
	}
	if !ok {
		return "csta-bridge (no build info)"
	}
	v := "csta-bridge " + bi.Main.Version
	var rev, when, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " (" + rev + dirty
		if when != "" {
			v += ", " + when
		}
		v += ")"
	}
	return v + " " + bi.GoVersion
}
