package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

func TestIncomingCallLifecycle(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "c1", "+4930123456")
	hits := h.sink.expect(t, "1001", "incoming:-1")
	if got := hits[0].Query.Get("remote"); got != "sip:+4930123456@pbx.test" {
		t.Errorf("$remote = %q", got)
	}
	h.ok("1001", "AnswerCall", conn("callToBeAnswered", -1))
	h.sink.expect(t, "1001", "offhook", "connected:-1")
	h.ok("1001", "HoldCall", conn("callToBeHeld", -1))
	h.sink.expect(t, "1001", "hold:-1")
	h.ok("1001", "RetrieveCall", conn("callToBeRetrieved", -1))
	h.sink.expect(t, "1001", "unhold:-1")
	h.ok("1001", "ClearConnection", conn("connectionToBeCleared", -1))
	h.sink.expect(t, "1001", "disconnected:-1", "onhook")
	want := []string{"Answer 1001/c1", "Hold 1001/c1", "Retrieve 1001/c1", "ClearConnection 1001/c1"}
	if got := h.pbx.calls(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("PBX commands %q, want %q", got, want)
	}
	// The id is gone and never reused: a stale id is refused, a new call gets -2.
	h.fault("1001", "HoldCall", conn("callToBeHeld", -1), "invalidConnectionID")
	h.offer("1001", "c2", "1002")
	h.sink.expect(t, "1001", "incoming:-2")
}

func TestMissedCallAndReject(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "c1", "555")
	h.sink.expect(t, "1001", "incoming:-1")
	h.pbx.emit(pbx.Event{Kind: pbx.EventCleared, Call: pbx.CallRef{Ext: "1001", ID: "c1"}, Cause: pbx.CauseCancelled})
	h.sink.expect(t, "1001", "missed:-1")

	// Rejecting a ringing call is not a missed call (Snom fires nothing).
	h.offer("1001", "c2", "555")
	h.sink.expect(t, "1001", "incoming:-2")
	h.ok("1001", "ClearConnection", conn("connectionToBeCleared", -2))
	h.offer("1001", "c3", "556")
	h.sink.expect(t, "1001", "incoming:-3")
}

func TestStateChecks(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "c1", "555")
	h.sink.expect(t, "1001", "incoming:-1")
	h.fault("1001", "RetrieveCall", conn("callToBeRetrieved", -1), "invalidObjectState")
	h.fault("1001", "HoldCall", conn("callToBeHeld", -1), "invalidObjectState")
	h.ok("1001", "AnswerCall", conn("callToBeAnswered", -1))
	h.fault("1001", "AnswerCall", conn("callToBeAnswered", -1), "invalidObjectState")
	h.fault("1001", "RetrieveCall", conn("callToBeRetrieved", -1), "invalidObjectState")
	// Transfer without a held call.
	h.offer("1001", "c2", "556")
	h.fault("1001", "TransferCall", conn("heldCall", -1)+conn("activeCall", -2), "invalidObjectState")
	h.fault("1001", "AnswerCall", "<csta:callToBeAnswered>abc</csta:callToBeAnswered>", "invalidConnectionID")
	h.fault("1001", "AnswerCall", conn("callToBeAnswered", 99), "invalidConnectionID")
	// A call of another extension is not this phone's.
	h.fault("1002", "ClearConnection", conn("connectionToBeCleared", -1), "invalidConnectionID")
	for _, c := range h.pbx.calls() {
		if !strings.HasPrefix(c, "Answer 1001/c1") {
			t.Errorf("a refused request reached the PBX: %s", c)
		}
	}
}

func TestMakeCallAndConsultationTransfer(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "in1", "+4930111")
	h.sink.expect(t, "1001", "incoming:-1")
	h.ok("1001", "AnswerCall", conn("callToBeAnswered", -1))
	h.ok("1001", "HoldCall", conn("callToBeHeld", -1))
	h.sink.expect(t, "1001", "offhook", "connected:-1", "hold:-1")

	body := h.ok("1001", "MakeCall", "<csta:callingDevice></csta:callingDevice><csta:calledDirectoryNumber>tel:+49 30 222</csta:calledDirectoryNumber>")
	if !strings.Contains(body, "<csta:callID>1</csta:callID>") || !strings.Contains(body, "sip:1001@pbx.test") {
		t.Fatalf("MakeCallResponse lacks the new call: %s", body)
	}
	h.sink.expect(t, "1001", "outgoing:1")
	calls := h.pbx.calls()
	if last := calls[len(calls)-1]; last != "MakeCall 1001 1 +4930222 true" {
		t.Fatalf("PBX MakeCall = %q", last)
	}
	ref := mcRef(t, h, "1001", 1)
	h.pbx.emit(pbx.Event{Kind: pbx.EventOriginated, Call: ref}) // late confirmation: no second outgoing
	h.pbx.emit(pbx.Event{Kind: pbx.EventConnected, Call: ref})
	h.sink.expect(t, "1001", "connected:1")

	body = h.ok("1001", "TransferCall", conn("heldCall", -1)+conn("activeCall", 1))
	if !strings.Contains(body, "transferredCall") {
		t.Errorf("TransferCallResponse lacks transferredCall: %s", body)
	}
	h.sink.expect(t, "1001", "transfer:-1", "attended:-1", "transfer:1", "attended:1",
		"disconnected:-1", "disconnected:1", "onhook")
	if last := h.pbx.calls()[len(h.pbx.calls())-1]; last != "Transfer 1001/in1 "+ref.String() {
		t.Errorf("PBX Transfer = %q", last)
	}
}

// mcRef finds the CallRef the core chose for MakeCall id.
func mcRef(t *testing.T, h *harness, ext string, id int) pbx.CallRef {
	t.Helper()
	var ref pbx.CallRef
	h.app.sb.do(context.Background(), func() {
		if c := h.app.sb.phones[ext].calls[id]; c != nil {
			ref = c.ref
		}
	})
	if ref.ID == "" {
		t.Fatalf("no call %d on %s", id, ext)
	}
	return ref
}

func TestSingleStepTransferAndClearCall(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "c1", "555")
	h.ok("1001", "AnswerCall", conn("callToBeAnswered", -1))
	body := h.ok("1001", "SingleStepTransferCall", conn("activeCall", -1)+"<csta:transferredTo>sip:a@bc.com</csta:transferredTo>")
	if !strings.Contains(body, "<csta:transferredCall>") {
		t.Errorf("no transferredCall: %s", body)
	}
	h.sink.expect(t, "1001", "incoming:-1", "offhook", "connected:-1", "transfer:-1", "blind:-1", "disconnected:-1", "onhook")
	if last := h.pbx.calls()[len(h.pbx.calls())-1]; last != "SingleStepTransfer 1001/c1 sip:a@bc.com" {
		t.Errorf("PBX SST = %q", last)
	}
	h.offer("1001", "c2", "556")
	h.sink.expect(t, "1001", "incoming:-2")
	h.ok("1001", "ClearCall", conn("callToBeCleared", -2))
	h.fault("1001", "SingleStepTransferCall", conn("activeCall", -2)+"<csta:transferredTo>1002</csta:transferredTo>", "invalidConnectionID")
	h.fault("1001", "SingleStepTransferCall", conn("activeCall", -2)+"<csta:transferredTo></csta:transferredTo>", "invalidCalledDeviceID")
}

func TestMakeCallErrors(t *testing.T) {
	h := start(t, nil)
	h.fault("1001", "MakeCall", "<csta:callingDevice>sip:9999@pbx.test</csta:callingDevice><csta:calledDirectoryNumber>1002</csta:calledDirectoryNumber>", "invalidCallingDeviceID")
	h.fault("1001", "MakeCall", "<csta:callingDevice>1001</csta:callingDevice><csta:calledDirectoryNumber> </csta:calledDirectoryNumber>", "invalidCalledDeviceID")
	h.pbx.mu.Lock()
	h.pbx.fail["MakeCall"] = fmt.Errorf("sim: %w", pbx.ErrDeviceUnreachable)
	h.pbx.mu.Unlock()
	h.fault("1001", "MakeCall", "<csta:callingDevice>1001@pbx.test</csta:callingDevice><csta:calledDirectoryNumber>1002</csta:calledDirectoryNumber>", "invalidCallingDeviceID")
	h.pbx.mu.Lock()
	delete(h.pbx.fail, "MakeCall")
	h.pbx.mu.Unlock()
	// The failed call burned id 1: the next one is 2.
	body := h.ok("1001", "MakeCall", "<csta:callingDevice>sip:1001@pbx.test</csta:callingDevice><csta:calledDirectoryNumber>1002</csta:calledDirectoryNumber>")
	if !strings.Contains(body, "<csta:callID>2</csta:callID>") {
		t.Errorf("want callID 2: %s", body)
	}
	h.sink.expect(t, "1001", "offhook", "outgoing:2")
}

func TestPBXErrorsBecomeFaults(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{pbx.ErrNoSuchCall, "invalidConnectionID"},
		{pbx.ErrInvalidState, "invalidObjectState"},
		{pbx.ErrNotSupported, "requestIncompatibleWithObject"},
		{pbx.ErrUnavailable, "resourceOutOfService"},
		{errors.New("boom"), "generic"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			h := start(t, nil)
			h.offer("1001", "c1", "555")
			h.pbx.mu.Lock()
			h.pbx.fail["Answer"] = fmt.Errorf("fake: %w", tc.err)
			h.pbx.mu.Unlock()
			h.fault("1001", "AnswerCall", conn("callToBeAnswered", -1), tc.code)
			h.sink.expect(t, "1001", "incoming:-1")
			h.sink.none(t, h, "1001") // a failed answer fires nothing
		})
	}
}

func TestReplyTimeBounded(t *testing.T) {
	h := start(t, nil)
	h.app.svc.timeout = 200 * time.Millisecond
	h.pbx.mu.Lock()
	h.pbx.block = make(chan struct{}) // the PBX never answers
	h.pbx.mu.Unlock()
	defer close(h.pbx.block)
	h.offer("1001", "c1", "555")
	h.fault("1001", "AnswerCall", conn("callToBeAnswered", -1), "resourceBusy")
}

func TestClientHangupStillExecutes(t *testing.T) {
	h := start(t, nil)
	h.offer("1001", "c1", "555")
	h.sink.expect(t, "1001", "incoming:-1")
	release := make(chan struct{})
	h.pbx.mu.Lock()
	h.pbx.block = release
	h.pbx.mu.Unlock()

	// A TAPI driver writes its request and closes the socket without reading.
	c, err := net.Dial("tcp", h.app.SharedAddr())
	if err != nil {
		t.Fatal(err)
	}
	body := soap("AnswerCall", conn("callToBeAnswered", -1))
	fmt.Fprintf(c, "POST /1001/csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	select {
	case <-h.pbx.entered:
	case <-time.After(waitFor):
		t.Fatal("the request never reached the PBX")
	}
	c.Close()
	close(release)
	h.sink.expect(t, "1001", "offhook", "connected:-1")
}

func TestHTTPSurface(t *testing.T) {
	h := start(t, nil)
	base := "http://" + h.app.SharedAddr()
	get := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/1001/csta"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /csta = %d, want 405", code)
	}
	if code, _ := h.post("/9999/csta", soap("AnswerCall", conn("callToBeAnswered", -1)), nil); code != http.StatusNotFound {
		t.Errorf("unknown extension = %d, want 404", code)
	}
	if code, _ := h.post("/1001/csta", strings.Repeat("x", maxCSTABody+1), nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body = %d, want 413", code)
	}
	// Basic auth on 1002, routed by path and by user name.
	if code, _ := h.post("/1002/csta", soap("AnswerCall", conn("callToBeAnswered", -1)), nil); code != http.StatusUnauthorized {
		t.Errorf("no credentials = %d, want 401", code)
	}
	wrong := func(r *http.Request) { r.SetBasicAuth("bob", "nope") }
	if code, _ := h.post("/1002/csta", soap("AnswerCall", conn("callToBeAnswered", -1)), wrong); code != http.StatusUnauthorized {
		t.Errorf("wrong password = %d, want 401", code)
	}
	h.offer("1002", "b1", "555")
	h.sink.expect(t, "1002", "incoming:-1")
	right := func(r *http.Request) { r.SetBasicAuth("bob", "pw") }
	if code, body := h.post("/csta", soap("AnswerCall", conn("callToBeAnswered", -1)), right); code != http.StatusOK {
		t.Errorf("plain /csta as bob = %d %s", code, body)
	}
	h.sink.expect(t, "1002", "offhook", "connected:-1")
	// Plain /csta without credentials gets a challenge (Digest, since 1003 uses it).
	resp, err := http.Post(base+"/csta", "text/xml", strings.NewReader(soap("AnswerCall", conn("callToBeAnswered", -1))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Digest ") {
		t.Errorf("plain /csta without credentials = %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Malformed XML is a fault, not a crash.
	if code, body := h.post("/1001/csta", "<SOAP-ENV:Envelope><broken", nil); code != http.StatusInternalServerError || !strings.Contains(body, "CSTAErrorCode") {
		t.Errorf("malformed = %d %s", code, body)
	}
}

func TestAllowList(t *testing.T) {
	h := start(t, map[string]string{"1001": "    allow: [10.9.9.0/24]\n"})
	if code, _ := h.post("/1001/csta", soap("AnswerCall", conn("callToBeAnswered", -1)), nil); code != http.StatusForbidden {
		t.Errorf("from 127.0.0.1 = %d, want 403", code)
	}
}

// A MakeCall whose call ends (busy) before the PBX's answer arrives must not
// leave a phantom call behind.
func TestMakeCallEndsBeforeReply(t *testing.T) {
	h := start(t, nil)
	release := make(chan struct{})
	h.pbx.mu.Lock()
	h.pbx.block = release
	h.pbx.mu.Unlock()
	done := make(chan string)
	go func() {
		_, body := h.post("/1001/csta", soap("MakeCall", "<csta:callingDevice></csta:callingDevice><csta:calledDirectoryNumber>1002</csta:calledDirectoryNumber>"), nil)
		done <- body
	}()
	<-h.pbx.entered
	ref := mcRef(t, h, "1001", 1)
	h.pbx.emit(pbx.Event{Kind: pbx.EventCleared, Call: ref, Cause: pbx.CauseBusy})
	h.flush()
	close(release)
	if body := <-done; !strings.Contains(body, "<csta:callID>1</csta:callID>") {
		t.Fatalf("MakeCall reply %s", body)
	}
	h.flush()
	var n int
	h.app.sb.do(context.Background(), func() { n = len(h.app.sb.phones["1001"].calls) })
	if n != 0 {
		t.Fatalf("%d calls left on 1001", n)
	}
	h.sink.none(t, h, "1001")
}

// MakeCall's action URLs carry the SIP Call-ID the PBX reports for the new
// call, the same one in every URL of the call.
func TestMakeCallCallID(t *testing.T) {
	h := start(t, nil)
	u := h.sink.srv.URL
	if err := h.app.setRuntimeSettings("1001", map[string]string{
		"action_outgoing_url":  u + "/outgoing?ext=$active_user&csta_id=$csta_id&cid=$call-id",
		"action_connected_url": u + "/connected?ext=$active_user&csta_id=$csta_id&cid=$call-id",
	}, false); err != nil {
		t.Fatal(err)
	}
	// The PBX reports the new call (with its Call-ID) before MakeCall returns.
	h.pbx.onMakeCall = func(req pbx.MakeCallRequest) {
		h.pbx.emit(pbx.Event{Kind: pbx.EventOriginated, Call: req.Call, SIPCallID: "abc@pbx"})
	}
	h.ok("1001", "MakeCall", "<csta:callingDevice></csta:callingDevice><csta:calledDirectoryNumber>1002</csta:calledDirectoryNumber>")
	out := h.sink.next(t, "1001", "outgoing")[0]
	ref := mcRef(t, h, "1001", 1)
	h.pbx.emit(pbx.Event{Kind: pbx.EventConnected, Call: ref, SIPCallID: "other@pbx"})
	conn := h.sink.next(t, "1001", "connected")[0]
	if out.Query.Get("cid") != "abc@pbx" || conn.Query.Get("cid") != "abc@pbx" {
		t.Errorf("$call-id: outgoing %q, connected %q, want abc@pbx for both", out.Query.Get("cid"), conn.Query.Get("cid"))
	}
}
