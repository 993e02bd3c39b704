package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/csta-bridge/csta-bridge/adapters/sim"
	"github.com/csta-bridge/csta-bridge/bridge"
	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// TestRunEndsWhenTheLeaseIsLost: a bridge started from a config with a
// cluster section takes the lease under its name; when another holder
// replaces it, Run stops the bridge and returns ErrLeaseLost (the service
// manager restarts it as a standby).
func TestRunEndsWhenTheLeaseIsLost(t *testing.T) {
	n := startNATS(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf("pbx: {type: sim}\nhttp: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\n"+
		"state_file: %s\nextensions: {\"201\": {}}\ncluster:\n  name: bridge-x\n  lease_ttl: 3s\n  nats: {url: %q}\n",
		filepath.Join(dir, "state.json"), n.url())
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	nc, err := nats.Connect(n.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1,
		TTL: 3 * time.Second, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, Key, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	p := sim.New(sim.Options{})
	done := make(chan error, 1)
	go func() {
		done <- bridge.Run(ctx, bridge.Options{ConfigPath: path, Logger: pbxtest.TestLogger(t), Notify: func(string) {},
			NewPBX:   func(*config.Config, *slog.Logger) (pbx.PBX, error) { return p, nil },
			NewLease: func(c *config.Config, log *slog.Logger) (bridge.Lease, error) { return FromConfig(c.Cluster, log) },
		}, nil)
	}()
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case err := <-done:
			t.Fatalf("Run ended before taking the lease: %v", err)
		case <-ctx.Done():
			t.Fatal("the bridge never took the lease")
		}
		if e != nil && string(e.Value()) == "bridge-x" {
			break
		}
	}
	if _, err := kv.Put(ctx, Key, []byte("usurper")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, bridge.ErrLeaseLost) {
			t.Fatalf("Run returned %v, want ErrLeaseLost", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not end after the lease was taken away")
	}
}
