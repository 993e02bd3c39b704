package testphone

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// traceEnv names the variable that makes every test phone print each SIP
// message it sends or receives, with the time, to stderr: the way to see
// what a PBX really sent when a call misbehaves (no packet capture needed).
const traceEnv = "CSTA_TEST_SIP_TRACE"

var traceOnce sync.Once

// enableTrace switches sipgo's message trace on, process-wide, when the
// variable is set; sipgo has one trace hook for the whole process.
func enableTrace() {
	traceOnce.Do(func() {
		if os.Getenv(traceEnv) == "" {
			return
		}
		sip.SIPDebugTracer(stderrTracer{})
		sip.SIPDebug = true
	})
}

type stderrTracer struct{}

func (stderrTracer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	traceLine("read", transport, laddr, "<-", raddr, msg)
}

func (stderrTracer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {
	traceLine("write", transport, laddr, "->", raddr, msg)
}

var traceMu sync.Mutex

func traceLine(dir, transport, laddr, arrow, raddr string, msg []byte) {
	traceMu.Lock()
	defer traceMu.Unlock()
	fmt.Fprintf(os.Stderr, "=== SIP %s %s %s %s %s %s ===\n%s\n",
		time.Now().UTC().Format("15:04:05.000000"), dir, transport, laddr, arrow, raddr, msg)
}
