package csta

import "testing"

// BenchmarkDecode measures Decode on plain bodies (the fast path), the same
// bodies on the general path alone (encoding/xml), and a body outside the
// plain shape (CDATA: a failed fast attempt, then the general path).
func BenchmarkDecode(b *testing.B) {
	cases := []struct {
		name, file string
		decode     func([]byte) error
	}{
		{"spec-answercall", "spec-answercall", decodeErr},
		{"spec-answercall/general", "spec-answercall", generalErr},
		{"snom-makecall-bare-ed5", "snom-makecall-bare-ed5", decodeErr},
		{"snom-makecall-bare-ed5/general", "snom-makecall-bare-ed5", generalErr},
		{"cdata-clearconnection", "bare-no-namespace-clearconnection", decodeErr},
		{"envelope-consultationcall", "envelope-consultationcall", decodeErr},
		{"envelope-consultationcall/general", "envelope-consultationcall", generalErr},
		{"bare-ed5-generatedigits-children", "bare-ed5-generatedigits-children", decodeErr},
		{"bare-ed5-generatedigits-children/general", "bare-ed5-generatedigits-children", generalErr},
		{"bare-ed5-snapshotdevice", "bare-ed5-snapshotdevice", decodeErr},
		{"bare-ed5-snapshotdevice/general", "bare-ed5-snapshotdevice", generalErr},
	}
	for _, c := range cases {
		body := readGolden(b, c.file+".req.xml")
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := c.decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func decodeErr(body []byte) error {
	_, err := Decode(body)
	return err
}

func generalErr(body []byte) error {
	if _, e := generalDecode(body); e != nil {
		return e
	}
	return nil
}

func BenchmarkEncodeResponse(b *testing.B) {
	cases := []struct {
		name string
		req  *Request
		res  Result
	}{
		{"AnswerCall-envelope", &Request{Service: AnswerCall, Envelope: true}, Result{}},
		{"MakeCall-bare", &Request{Service: MakeCall}, Result{CallingDevice: &ConnectionID{CallID: "2", DeviceID: "sip:455455@ser.intern.snom.de"}}},
		{"SnapshotDevice-2-envelope", &Request{Service: SnapshotDevice, Envelope: true}, Result{Connections: []SnapshotEntry{
			{Conn: ConnectionID{CallID: "-12", DeviceID: "sip:455455@ser.intern.snom.de"}, State: "connected"},
			{Conn: ConnectionID{CallID: "3", DeviceID: "sip:455455@ser.intern.snom.de"}, State: "hold"},
		}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				EncodeResponse(c.req, c.res)
			}
		})
	}
}

func BenchmarkEncodeFault(b *testing.B) {
	e := &Error{Code: InvalidConnectionID, Message: "missing element callToBeAnswered"}
	b.ReportAllocs()
	for b.Loop() {
		EncodeFault(true, e)
	}
}

// BenchmarkDecodeRefused measures Decode on the bad bodies of bench's
// faults mix (a client hammering /csta), which the fast path refuses
// itself, against the general path alone.
func BenchmarkDecodeRefused(b *testing.B) {
	const env = `<?xml version="1.0" encoding="UTF-8"?> <SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:csta="http://www.ecma-international.org/standards/ecma-323/csta/ed4"> <SOAP-ENV:Body> `
	bodies := []struct{ name, body string }{
		{"cut-off", `<csta:AnswerCall><callToBeAnswered>`},
		{"unknown-service", env + `<csta:MakeCoffee> <csta:strength>9</csta:strength> </csta:MakeCoffee> </SOAP-ENV:Body> </SOAP-ENV:Envelope>`},
		{"missing-connection", env + `<csta:HoldCall>  </csta:HoldCall> </SOAP-ENV:Body> </SOAP-ENV:Envelope>`},
		{"not-xml", `garbage`},
	}
	for _, c := range bodies {
		body := []byte(c.body)
		for _, path := range []struct {
			name   string
			decode func([]byte) (*Request, *Error)
		}{
			{"", func(b []byte) (*Request, *Error) { r, err := Decode(b); e, _ := err.(*Error); return r, e }},
			{"/general", generalDecode},
		} {
			b.Run(c.name+path.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, e := path.decode(body); e == nil {
						b.Fatal("accepted")
					}
				}
			})
		}
	}
}
