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
	// One simulator for every bridge the rows start: a restarted bridge
	// finds the calls of the PBX it left.
	// Outside numbers answer at once, as the dialplan applications rows
	// dial do.
	sim := New(Options{AnswerAfter: 0, Logger: pbxtest.TestLogger(t)})
	b := pbxtest.StartBridge(t, pbxtest.BridgeSetup{
		PBX:    "  type: sim\n  sim: {answer_after: 0s}\n",
		Exts:   map[string]string{exts[0]: "alice", exts[1]: "bob", exts[2]: "carol"},
		Domain: "pbx.test",
		NewPBX: func(*config.Config, *slog.Logger) (pbx.PBX, error) { return sim, nil },
	})
	pbxtest.RunTable(t, pbxtest.NewSimRig(b, exts, sim.Handler()), pbxtest.Scenarios)
}
