// Command bench measures csta-bridge against the product's promises on the
// machine it runs on (docs/BENCHMARKS.md records the figures):
//
//	go run ./bench csta     # /csta throughput and latency vs a bare net/http server
//	go run ./bench actions  # action URL latency, loss and order; /csta with the sink slow or down
//	go run ./bench scale    # 10,000 extensions, 2,000 live calls: memory, start-up, reload, event → action URL
//	go run ./bench scale -nodes 10 -exts 100000 -calls 10000  # the same on a cluster of 10 simulators
//	go run ./bench soak     # mixed load for a while; goroutines and heap must not grow
//	go run ./bench stress -pbx ari|esl  # N phones × M calls in parallel on a real Asterisk/FreeSWITCH
//
// Each subcommand takes -help. The bridge runs in-process on the built-in
// PBX simulator, on 127.0.0.1 ports chosen by the kernel; all traffic stays
// on loopback and every load loop stops by itself (bounded in time and
// count). Timing goals are reported as met or not met; the exit status is 1
// only when a correctness check fails (a wrong answer, a lost or reordered
// action URL, a leak in soak), or with -strict when a timing goal is missed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type command struct {
	name, help string
	run        func(ctx context.Context, c *common, args []string) (int, error)
}

var commands = []command{
	{"csta", "/csta throughput and p50/p99/p999 latency, side by side with a bare net/http server (goal 1)", cmdCSTA},
	{"actions", "action URLs: event-to-GET latency, loss, order; /csta while the sink is slow or down (goal 2)", cmdActions},
	{"scale", "10,000 extensions and 2,000 live calls: RSS, start-up, reload, event → action URL (goal 3); -nodes N: a cluster of N simulators", cmdScale},
	{"soak", "mixed load for -duration; fails when goroutines or heap grew (goal 4)", cmdSoak},
	{"stress", "a real Asterisk or FreeSWITCH: N test phones × M calls in parallel, every reply and action URL checked", cmdStress},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: go run ./bench <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.help)
	}
	fmt.Fprintf(w, "\nRun go run ./bench <command> -help for its flags. Fuzzing: bench/fuzz.sh DURATION.\n")
}

// common are the flags and outputs every command shares.
type common struct {
	out    io.Writer
	log    *slog.Logger
	strict bool
	// cpuProfile, when set, profiles the run (go tool pprof FILE).
	cpuProfile  string
	stopProfile func()
	failed      bool // a goal was missed (timing) — only fatal with -strict
}

func (c *common) printf(format string, args ...any) { fmt.Fprintf(c.out, format, args...) }

// goal prints one goal's verdict.
func (c *common) goal(name string, met bool, detail string) {
	v := "MET"
	if !met {
		v = "NOT MET"
		c.failed = true
	}
	c.printf("GOAL %-52s %-8s %s\n", name, v, detail)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-help" || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, cmd := range commands {
		if cmd.name != args[0] {
			continue
		}
		c := &common{out: stdout}
		code, err := cmd.run(ctx, c, args[1:])
		if c.stopProfile != nil {
			c.stopProfile()
		}
		var ue usageError
		switch {
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "bench %s: %v\n", cmd.name, ue.err)
			return 2
		case err != nil:
			fmt.Fprintf(stderr, "bench %s: %v\n", cmd.name, err)
			if code == 0 {
				code = 1
			}
		}
		if code == 0 && c.strict && c.failed {
			code = 1
		}
		return code
	}
	fmt.Fprintf(stderr, "bench: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// flags returns a flag set with the shared flags bound to c; parse applies
// them.
func (c *common) flags(name string) (*flag.FlagSet, func(args []string) error) {
	fs := flag.NewFlagSet("bench "+name, flag.ContinueOnError)
	fs.SetOutput(c.out)
	level := fs.String("log", "", "bridge log level to stderr: debug, info, warn, error (default: no log, as logging is not what is measured)")
	fs.BoolVar(&c.strict, "strict", false, "exit 1 when a timing goal is not met, too")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (bench and bridge) to this file")
	return fs, func(args []string) error {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
		}
		if fs.NArg() > 0 {
			return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
		}
		if c.cpuProfile != "" {
			f, err := os.Create(c.cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return err
			}
			c.stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		}
		c.log = slog.New(slog.DiscardHandler)
		if *level != "" {
			var l slog.Level
			if err := l.UnmarshalText([]byte(*level)); err != nil {
				return usageError{fmt.Errorf("-log: %w", err)}
			}
			c.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
		}
		return nil
	}
}

// usageError is a bad command line: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

// header prints what the figures depend on.
func (c *common) header(name string) {
	c.printf("# bench %s — %s, GOMAXPROCS %d, %d CPUs (%s); shared machine: compare ratios within one run\n",
		name, runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), cpuModel())
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
