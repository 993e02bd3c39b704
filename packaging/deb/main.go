package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
)

func main() {
	out := flag.String("out", "dist", "directory for the .deb")
	version := flag.String("version", "", "Debian version (default: from git: the tag, or 0.0~gitDATE.COMMIT)")
	arch := flag.String("arch", "", "Debian architecture, amd64 or arm64 (default: this machine's)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// go run runs in the module's directory or below; the package builds from its root.
	root, err := moduleRoot()
	if err == nil {
		var res Result
		res, err = Build(ctx, Options{Root: root, OutDir: *out, Version: *version, Arch: *arch})
		if err == nil {
			fmt.Printf("%s (version %s, csta-bridge -version: %s)\n", res.Path, res.Version, res.VCSVersion)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "deb:", err)
	os.Exit(1)
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, "go.mod")) && fileExists(filepath.Join(d, "cmd/csta-bridge")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no csta-bridge module above %s", dir)
		}
	}
}
