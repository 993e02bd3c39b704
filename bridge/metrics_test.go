package bridge

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// /metrics carries what every Go service exports, under the standard
// names, and CSTA latency by service and result; promlint finds nothing.
func TestMetricsRuntimeAndLatency(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "c1", "030123")
	h.sink.expect(t, "1001", "incoming:-1")
	h.ok("1001", "AnswerCall", conn("callToBeAnswered", -1))
	h.fault("1001", "RetrieveCall", conn("callToBeRetrieved", -1), "invalidObjectState")

	resp, err := http.Get("http://" + h.app.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	problems, err := promlint.New(strings.NewReader(page)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{
		"\ngo_goroutines ", "\ngo_threads ", "\ngo_memstats_alloc_bytes ", "\ngo_memstats_heap_inuse_bytes ",
		"\ngo_memstats_sys_bytes ", "\ngo_gc_duration_seconds_count ", "\ngo_info{",
		"\nprocess_open_fds ", "\nprocess_max_fds ", "\nprocess_resident_memory_bytes ",
		"\nprocess_virtual_memory_bytes ", "\nprocess_cpu_seconds_total ", "\nprocess_start_time_seconds ",
		"\n# TYPE csta_bridge_csta_request_duration_seconds histogram",
		`csta_bridge_csta_request_duration_seconds_count{result="ok",service="AnswerCall"} 1`,
		`csta_bridge_csta_request_duration_seconds_count{result="invalidObjectState",service="RetrieveCall"} 1`,
		`csta_bridge_csta_requests_total{result="invalidObjectState",service="RetrieveCall"} 1`,
		"\ncsta_bridge_csta_refusals_unlogged_total 0",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}
