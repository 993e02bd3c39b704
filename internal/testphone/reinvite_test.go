package testphone

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// rawPBX speaks SIP over one UDP socket by hand, so a test can send
// messages in an order and at a pace no SIP stack would choose.
type rawPBX struct {
	t    *testing.T
	conn net.PacketConn
	to   net.Addr
}

func newRawPBX(t *testing.T, phone *Phone) *rawPBX {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	to, err := net.ResolveUDPAddr("udp", phone.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return &rawPBX{t: t, conn: conn, to: to}
}

func (x *rawPBX) addr() string { return x.conn.LocalAddr().String() }

func (x *rawPBX) send(msg string) {
	x.t.Helper()
	if _, err := x.conn.WriteTo([]byte(msg), x.to); err != nil {
		x.t.Fatal(err)
	}
}

// next reads the next SIP message until ctx ends.
func (x *rawPBX) next(ctx context.Context) sip.Message {
	x.t.Helper()
	dl, _ := ctx.Deadline()
	_ = x.conn.SetReadDeadline(dl)
	buf := make([]byte, 65535)
	n, _, err := x.conn.ReadFrom(buf)
	if err != nil {
		x.t.Fatalf("waiting for a SIP message: %v", err)
	}
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		x.t.Fatalf("unreadable SIP message: %v\n%s", err, buf[:n])
	}
	return m
}

// final waits for the final response to the INVITE with cseq, answering
// nothing else; a request from the phone in between fails the test.
func (x *rawPBX) final(ctx context.Context, cseq uint32) *sip.Response {
	x.t.Helper()
	for {
		switch m := x.next(ctx).(type) {
		case *sip.Response:
			if m.CSeq().SeqNo == cseq && m.CSeq().MethodName == sip.INVITE && !m.IsProvisional() {
				return m
			}
		case *sip.Request:
			x.t.Fatalf("phone sent %s while the PBX waited for the answer to INVITE %d:\n%s", m.Method, cseq, m)
		}
	}
}

const rawSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-16\r\na=sendrecv\r\n"

// rawDialog is the PBX's side of one call to the phone.
type rawDialog struct {
	x             *rawPBX
	callID, tag   string
	toTag, phone  string // the phone's tag and user
	cseq          uint32
	branchCounter int
}

func (d *rawDialog) request(method string, cseq uint32, body string, extra ...string) string {
	d.branchCounter++
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:%s@%s SIP/2.0\r\n", method, d.phone, d.x.to)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;rport;branch=z9hG4bK-%s-%d\r\n", d.x.addr(), d.callID, d.branchCounter)
	fmt.Fprintf(&b, "From: <sip:1055@127.0.0.1>;tag=%s\r\n", d.tag)
	if d.toTag != "" {
		fmt.Fprintf(&b, "To: <sip:%s@127.0.0.1>;tag=%s\r\n", d.phone, d.toTag)
	} else {
		fmt.Fprintf(&b, "To: <sip:%s@127.0.0.1>\r\n", d.phone)
	}
	fmt.Fprintf(&b, "Contact: <sip:asterisk@%s>\r\nCall-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n", d.x.addr(), d.callID, cseq, method)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// TestReInviteRightAfterAnswer plays what Asterisk does when it connects
// an auto-answered call it originated and updates the connected line: the
// ACK of the phone's 200 OK and, half a millisecond later, a re-INVITE
// with P-Asserted-Identity. The phone must answer it and stay in the call
// (it used to give up with "auto-answer failed: rtp session is closed"
// and send BYE when the re-INVITE's media update overtook diago's start of
// the media monitor). Several calls, as the race is one of timing.
func TestReInviteRightAfterAnswer(t *testing.T) {
	p := startPhone(t, Options{User: "1053"})
	x := newRawPBX(t, p)
	for i := range 10 {
		ctx := waitCtx(t)
		d := &rawDialog{x: x, callID: fmt.Sprintf("reinvite-%d-%d", i, time.Now().UnixNano()), tag: fmt.Sprintf("pbx%d", i), phone: p.User(), cseq: 100}
		x.send(d.request("INVITE", d.cseq, rawSDP, "Call-Info: <sip:127.0.0.1>;answer-after=0"))
		in, err := p.Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok := x.final(ctx, d.cseq)
		if ok.StatusCode != sip.StatusOK {
			t.Fatalf("call %d: INVITE answered %d", i, ok.StatusCode)
		}
		d.toTag, _ = ok.To().Params.Get("tag")
		// ACK and re-INVITE back to back, as Asterisk sends them.
		ack := d.request("ACK", d.cseq, "")
		d.cseq++
		reinvite := d.request("INVITE", d.cseq, rawSDP, "P-Asserted-Identity: <sip:1055@127.0.0.1>")
		x.send(ack)
		x.send(reinvite)
		if res := x.final(ctx, d.cseq); res.StatusCode != sip.StatusOK {
			t.Fatalf("call %d: re-INVITE answered %d %s", i, res.StatusCode, res.Reason)
		}
		x.send(d.request("ACK", d.cseq, ""))
		if _, err := in.WaitState(ctx, StateConnected); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		d.cseq++
		x.send(d.request("BYE", d.cseq, ""))
		for {
			m := x.next(ctx)
			if res, ok := m.(*sip.Response); ok && res.CSeq().MethodName == sip.BYE {
				if res.StatusCode != sip.StatusOK {
					t.Fatalf("call %d: BYE answered %d", i, res.StatusCode)
				}
				break
			}
			if req, ok := m.(*sip.Request); ok {
				t.Fatalf("call %d: phone sent %s during the call:\n%s", i, req.Method, req)
			}
		}
		mustState(t, ctx, in, StateEnded)
		if r := in.EndReason(); r != "hung up by the far end" {
			t.Fatalf("call %d ended: %s", i, r)
		}
	}
}
