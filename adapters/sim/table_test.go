package sim

import (
	"log/slog"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/config"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// TestTable plays the scenario table every PBX plays (internal/pbxtest)
// on the simulator, through the whole bridge.
func TestTable(t *testing.T) {
	exts := [3]string{"1001", "1002", "1003"}
	b := pbxtest.StartBridge(t, pbxtest.BridgeSetup{
		PBX:    "  type: sim\n  sim: {answer_after: never}\n",
		Exts:   map[string]string{exts[0]: "alice", exts[1]: "bob", exts[2]: "carol"},
		Domain: "pbx.test",
		NewPBX: func(cfg *config.Config, log *slog.Logger) (pbx.PBX, error) {
			return New(Options{NeverAnswer: true, Logger: log}), nil
		},
	})
	pbxtest.RunTable(t, pbxtest.NewSimRig(b, exts), pbxtest.Scenarios)
}
