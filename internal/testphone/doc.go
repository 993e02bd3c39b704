// Package testphone is a small SIP phone for tests: it registers with a
// registrar (or works peer to peer), rings, answers on command or by itself
// when the INVITE asks for auto-answer, places calls, holds, and hangs up.
// It exists so that the PBX adapters can be driven against a real Asterisk
// or FreeSWITCH the way a desk phone would be, without a softphone binary.
//
// The phone honours the auto-answer requests CTI bridges send:
//
//	Call-Info: <sip:pbx>;answer-after=N
//	Alert-Info: <http://pbx>;info=alert-autoanswer;delay=N
//	P-Auto-Answer: normal
//
// and the in-dialog NOTIFYs of the Snom remote-control convention
// ("Event: talk" answers a ringing call or resumes a held one, "Event:
// hold" holds a connected call), which FreeSWITCH's uuid_phone_event sends.
//
// Media is negotiated (PCMU/PCMA) but no audio is played or recorded. Every
// socket binds 127.0.0.1; the phone speaks SIP over UDP only.
//
// CSTA_TEST_SIP_TRACE=1 prints every SIP message the phones of the process
// send and receive, with the time, to stderr.
package testphone
