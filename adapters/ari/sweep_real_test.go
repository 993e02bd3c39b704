package ari

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// TestSweepRealAsteriskWithoutHandler plays the sweep rows (issue 20) on
// a real Asterisk with the bridge pushing no hangup handler, as with a
// dialplan that lacks [csta-bridge-hangup]: what a call leaves while the
// bridge is stopped stays until the started bridge sweeps it. With the
// handler they are rows of TestTableRealAsterisk. Runs when
// CSTA_TEST_ARI_URL is set (README.md, "Integration test against a real
// Asterisk").
func TestSweepRealAsteriskWithoutHandler(t *testing.T) {
	env := realAsteriskEnv(t)
	b, phones, rest := startRealBridge(t, env, func(o *Options) { o.HangupHandler = "-" })
	rig := &pbxtest.SIPRig{B: b, Exts: env.exts, Phones: phones,
		Leftovers: func(ctx context.Context) (string, error) { return ownLeftovers(ctx, rest, env) },
		Clear:     func(ctx context.Context) error { return rest.clear(ctx, env.exts[:]...) },
	}
	pbxtest.RunTable(t, rig, pbxtest.SweepRows)
}

// ownLeftovers is what Asterisk has of the extensions' calls, as
// ariREST.leftovers lists it, without the empty bridges of other
// applications (another test's call being set up on a shared Asterisk):
// the bridge names its bridges after its application.
func ownLeftovers(ctx context.Context, rest *ariREST, env realAsterisk) (string, error) {
	chans, bridges, err := rest.lists(ctx, env.exts[:]...)
	if err != nil {
		return "", err
	}
	var own []ariObject
	for _, b := range bridges {
		if len(b.ChannelIDs) > 0 || strings.HasPrefix(b.Name, env.app+"/") {
			own = append(own, b)
		}
	}
	if len(chans)+len(own) == 0 {
		return "", nil
	}
	return fmt.Sprintf("channels %v, bridges %v", chans, own), nil
}
