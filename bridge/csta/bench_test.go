package csta

import "testing"

func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"spec-answercall", "snom-makecall-bare-ed5"} {
		body := readGolden(b, name+".req.xml")
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := Decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeResponse(b *testing.B) {
	cases := []struct {
		name string
		req  *Request
		res  Result
	}{
		{"AnswerCall-envelope", &Request{Service: AnswerCall, Envelope: true}, Result{}},
		{"MakeCall-bare", &Request{Service: MakeCall}, Result{CallingDevice: &ConnectionID{CallID: "2", DeviceID: "sip:455455@ser.intern.snom.de"}}},
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
