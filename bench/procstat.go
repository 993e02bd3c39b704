package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// memSnapshot is the process's memory as the kernel and the Go runtime see
// it. The bench runs the bridge in-process, so these figures include the
// load generator, the simulated PBX, the action URL sink and the bare
// comparison server, not the bridge alone: they are an upper bound for it.
type memSnapshot struct {
	VmRSS, VmHWM uint64 // bytes, from /proc/self/status (HWM: peak RSS since start)
	HeapAlloc    uint64 // live heap objects after a forced GC
	HeapSys      uint64
	Sys          uint64 // everything the Go runtime got from the OS
	Goroutines   int
}

// snapshot forces two GCs (the second frees what the first's finalizers
// released) and reads the figures.
func snapshot() memSnapshot {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSnapshot{HeapAlloc: ms.HeapAlloc, HeapSys: ms.HeapSys, Sys: ms.Sys, Goroutines: runtime.NumGoroutine()}
	s.VmRSS, s.VmHWM, _ = procStatus()
	return s
}

func (s memSnapshot) String() string {
	return fmt.Sprintf("VmRSS %s, VmHWM %s, Go heap live %s (heap sys %s, runtime sys %s), goroutines %d",
		mib(s.VmRSS), mib(s.VmHWM), mib(s.HeapAlloc), mib(s.HeapSys), mib(s.Sys), s.Goroutines)
}

// procStatus reads VmRSS and VmHWM of this process (Linux only; zero
// elsewhere, with the error).
func procStatus() (rss, hwm uint64, err error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fields := strings.Fields(val) // "123456 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc/self/status: unexpected %s line %q", name, sc.Text())
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/self/status: %s: %w", name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// cpuTime is the CPU time this process has used so far, user and system,
// from /proc/self/stat (Linux; ok false elsewhere). Its resolution is the
// kernel's clock tick, 10 ms.
func cpuTime() (d time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields from after its closing parenthesis.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on every Linux
	return time.Duration(utime+stime) * tick, true
}
