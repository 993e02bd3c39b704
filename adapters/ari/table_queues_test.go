package ari

import (
	"context"
	"os"
	"testing"

	"github.com/csta-bridge/csta-bridge/internal/pbxtest"
)

// TestTableRealAsteriskQueues plays the queue and ring-group rows
// (pbxtest.QueueRows, issue 13) on a real Asterisk with app_queue. The
// dialplan numbers come from the environment, because they depend on the
// extensions the test phones use:
//
//	CSTA_TEST_ARI_QUEUE      a ring-all Queue() whose members are A and B as
//	                         Local/<ext>@csta-bridge-route/n (configs/asterisk/queues.conf)
//	CSTA_TEST_ARI_RINGGROUP  a Dial() of Local/<A>@…&Local/<B>@… (the ring-group example)
//	CSTA_TEST_ARI_HEADER     a number that sets __CSTA_SIP_HEADERS=X-Customer: 4711
//	                         and goes to A through the route
//
// A row whose number is not set is skipped with the reason. After every
// row the rig checks that Asterisk has no channel (Local halves included)
// and no bridge of the extensions left.
func TestTableRealAsteriskQueues(t *testing.T) {
	env := realAsteriskEnv(t)
	b, phones, rest := startRealBridge(t, env, nil)
	apps := map[string]string{}
	for kind, v := range map[string]string{pbxtest.AppQueue: "CSTA_TEST_ARI_QUEUE",
		pbxtest.AppRingGroup: "CSTA_TEST_ARI_RINGGROUP", pbxtest.AppHeader: "CSTA_TEST_ARI_HEADER"} {
		if n := os.Getenv(v); n != "" {
			apps[kind] = n
		}
	}
	rig := &pbxtest.SIPRig{B: b, Exts: env.exts, Phones: phones, Apps: apps,
		Lacking:   map[pbxtest.Need]string{},
		Leftovers: func(ctx context.Context) (string, error) { return rest.leftovers(ctx, env.exts[:]...) },
		Clear:     func(ctx context.Context) error { return rest.clear(ctx, env.exts[:]...) },
	}
	pbxtest.RunTable(t, rig, pbxtest.QueueRows)
}
