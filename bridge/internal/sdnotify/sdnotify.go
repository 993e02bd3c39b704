// Package sdnotify tells systemd about the service's state (sd_notify(3))
// without linking libsystemd: one datagram to $NOTIFY_SOCKET.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Notify sends state (newline-separated VAR=value assignments) to the
// service manager. It returns false, nil when not run under systemd with
// Type=notify ($NOTIFY_SOCKET unset).
func Notify(state string) (bool, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return false, nil
	}
	if state == "" {
		return false, errors.New("sdnotify: empty state")
	}
	// Only paths and abstract names ("@…", which package net maps to a
	// leading NUL) are datagram sockets; systemd ≥ 254 also knows vsock:.
	if name[0] != '/' && name[0] != '@' {
		return false, fmt.Errorf("sdnotify: unsupported NOTIFY_SOCKET %q", name)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	// A datagram send blocks only if systemd's queue is full; do not hang on it.
	if err := conn.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	return true, nil
}

// Ready reports that start-up (or a reload) has finished.
func Ready() (bool, error) { return Notify("READY=1") }

// Stopping reports that the service is shutting down.
func Stopping() (bool, error) { return Notify("STOPPING=1") }

// Status sets the free-form status line systemctl status shows.
func Status(s string) (bool, error) { return Notify("STATUS=" + s) }

// Reloading reports that a reload has begun; send Ready when it is done.
// MONOTONIC_USEC lets Type=notify-reload (systemd ≥ 253) tell this reload
// from an earlier one; older systemd ignores it.
func Reloading() (bool, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return false, fmt.Errorf("sdnotify: clock_gettime: %w", err)
	}
	return Notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}
