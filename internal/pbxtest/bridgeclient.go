package pbxtest

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BridgeClient talks to a running bridge the way a CTI client and an
// operator do: /csta on the shared listener, /-/ready and /metrics on the
// admin listener. Every failure ends the test.
type BridgeClient struct {
	t             testing.TB
	shared, admin string // host:port
	http          *http.Client
	bound         time.Duration
}

// NewBridgeClient talks to the listeners at shared and admin; every
// request must be answered within answer, and the Wait methods give up
// after bound.
func NewBridgeClient(t testing.TB, shared, admin string, answer, bound time.Duration) *BridgeClient {
	return &BridgeClient{t: t, shared: shared, admin: admin, http: &http.Client{Timeout: answer}, bound: bound}
}

func (c *BridgeClient) adminGet(path string) (status int, body string) {
	c.t.Helper()
	resp, err := c.http.Get("http://" + c.admin + path)
	if err != nil {
		c.t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// Ready is the status /-/ready answers.
func (c *BridgeClient) Ready() int {
	c.t.Helper()
	status, _ := c.adminGet("/-/ready")
	return status
}

// poll asks cond every few milliseconds until it holds, and returns how
// long that took. The bridge's readiness and its metrics have no change
// notification outside the bridge package, so this is the one place that
// polls.
func (c *BridgeClient) poll(desc string, cond func() bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := time.NewTimer(c.bound)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			c.t.Fatalf("%s did not happen within %s", desc, c.bound)
		}
	}
	return time.Since(start)
}

// WaitReady waits until /-/ready answers want, and returns how long that
// took.
func (c *BridgeClient) WaitReady(want int) time.Duration {
	c.t.Helper()
	return c.poll(fmt.Sprintf("/-/ready answering %d", want), func() bool { return c.Ready() == want })
}

// Reconnects reads csta_bridge_pbx_reconnects_total from /metrics: the
// core counts a reconnect when it applies the adapter's Link up.
func (c *BridgeClient) Reconnects() int {
	c.t.Helper()
	_, metrics := c.adminGet("/metrics")
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(line, "csta_bridge_pbx_reconnects_total "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				c.t.Fatalf("/metrics: reconnects %q", v)
			}
			return n
		}
	}
	c.t.Fatal("/metrics has no csta_bridge_pbx_reconnects_total")
	return 0
}

// WaitReconnects waits until the core has counted exactly n reconnects
// (more is a failure), and returns how long that took.
func (c *BridgeClient) WaitReconnects(n int) time.Duration {
	c.t.Helper()
	return c.poll(fmt.Sprintf("reconnect %d counted by the core", n), func() bool {
		got := c.Reconnects()
		if got > n {
			c.t.Fatalf("%d reconnects, want %d", got, n)
		}
		return got == n
	})
}

// metric sums the samples of a metric (every label set) on /metrics.
func (c *BridgeClient) metric(name string) float64 {
	c.t.Helper()
	_, metrics := c.adminGet("/metrics")
	var sum float64
	for line := range strings.Lines(metrics) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[strings.LastIndexByte(rest, ' ')+1:]), 64)
		if err != nil {
			c.t.Fatalf("/metrics: %q", line)
		}
		sum += v
	}
	return sum
}

// WaitQuiet waits until the bridge has no live connection and no action
// URL queued or in flight: then every URL it fired has been answered.
func (c *BridgeClient) WaitQuiet() time.Duration {
	c.t.Helper()
	return c.poll("the bridge without calls and action URLs", func() bool {
		return c.metric("csta_bridge_calls") == 0 && c.metric("csta_bridge_action_url_queue_length") == 0
	})
}

// CSTA posts a request for ext in the SOAP envelope of Snom's templates
// and returns the status, the body and how long the answer took.
func (c *BridgeClient) CSTA(ext, service, inner string) (int, string, time.Duration) {
	c.t.Helper()
	body := `<?xml version="1.0" encoding="UTF-8"?> <SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:csta="http://www.ecma-international.org/standards/ecma-323/csta/ed4"> <SOAP-ENV:Body> <csta:` +
		service + `> ` + inner + ` </csta:` + service + `> </SOAP-ENV:Body> </SOAP-ENV:Envelope>`
	start := time.Now()
	resp, err := c.http.Post("http://"+c.shared+"/"+ext+"/csta", "text/xml", strings.NewReader(body))
	if err != nil {
		c.t.Fatalf("%s: no answer within %s: %v", service, c.http.Timeout, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s: reading answer: %v", service, err)
	}
	return resp.StatusCode, string(b), time.Since(start)
}

// OK posts a request that must succeed, and returns how long it took.
func (c *BridgeClient) OK(ext, service, inner string) time.Duration {
	c.t.Helper()
	code, body, took := c.CSTA(ext, service, inner)
	if code != http.StatusOK || !strings.Contains(body, service+"Response") {
		c.t.Fatalf("%s: status %d, body %s", service, code, body)
	}
	return took
}

// Fault posts a request that must fail with the CSTA error code, and
// returns how long the answer took.
func (c *BridgeClient) Fault(ext, service, inner, code string) time.Duration {
	c.t.Helper()
	status, body, took := c.CSTA(ext, service, inner)
	if status != http.StatusInternalServerError || !strings.Contains(body, "<csta:operation>"+code+"</csta:operation>") {
		c.t.Fatalf("%s: want fault %s, got status %d body %s", service, code, status, body)
	}
	return took
}

// ConnID is a ConnectionID element in Snom's bare-text form.
func ConnID(elem string, id int) string { return fmt.Sprintf("<csta:%s>%d</csta:%s>", elem, id, elem) }
