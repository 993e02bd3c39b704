package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen opens a unixgram socket as systemd would and points
// $NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	c := listen(t, filepath.Join(t.TempDir(), "notify"))
	for _, tc := range []struct {
		send func() (bool, error)
		want string
	}{
		{Ready, "READY=1"},
		{Stopping, "STOPPING=1"},
		{func() (bool, error) { return Status("ARI connected; 24 extensions") }, "STATUS=ARI connected; 24 extensions"},
		{func() (bool, error) { return Notify("READY=1\nSTATUS=x") }, "READY=1\nSTATUS=x"},
	} {
		ok, err := tc.send()
		if !ok || err != nil {
			t.Fatalf("send %q: %v, %v", tc.want, ok, err)
		}
		if got := recv(t, c); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestReloading(t *testing.T) {
	c := listen(t, filepath.Join(t.TempDir(), "notify"))
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	before := ts.Nano() / 1000
	if ok, err := Reloading(); !ok || err != nil {
		t.Fatalf("Reloading: %v, %v", ok, err)
	}
	got := recv(t, c)
	usec, found := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
	if !found {
		t.Fatalf("got %q", got)
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC %q: %v", usec, err)
	}
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	if n < before || n > ts.Nano()/1000 {
		t.Errorf("MONOTONIC_USEC=%d not within [%d, %d]", n, before, ts.Nano()/1000)
	}
}

func TestAbstractSocket(t *testing.T) {
	name := "@csta-bridge-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c := listen(t, name)
	// Make sure the name really is abstract, not a file called "@…".
	if tab, err := os.ReadFile("/proc/net/unix"); err == nil && !strings.Contains(string(tab), " "+name+"\n") {
		t.Fatalf("%s is not in /proc/net/unix", name)
	}
	if ok, err := Ready(); !ok || err != nil {
		t.Fatalf("Ready: %v, %v", ok, err)
	}
	if got := recv(t, c); got != "READY=1" {
		t.Errorf("got %q", got)
	}
}

func TestUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if ok, err := Ready(); ok || err != nil {
		t.Errorf("unset NOTIFY_SOCKET: %v, %v; want false, nil", ok, err)
	}
}

func TestErrors(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if ok, err := Ready(); ok || err == nil {
		t.Errorf("missing socket: %v, %v; want an error", ok, err)
	}
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	if ok, err := Ready(); ok || err == nil {
		t.Errorf("vsock: %v, %v; want an error", ok, err)
	}
	listen(t, filepath.Join(t.TempDir(), "notify"))
	if ok, err := Notify(""); ok || err == nil {
		t.Errorf("empty state: %v, %v; want an error", ok, err)
	}
}
