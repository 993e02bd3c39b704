package esl

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// PhoneEvents says when AnswerCall, HoldCall and RetrieveCall ask the phone
// itself (uuid_phone_event, a BroadSoft "talk"/"hold" NOTIFY).
type PhoneEvents uint8

const (
	// PhoneEventsAuto uses them when the phone advertised Allow-Events: talk.
	PhoneEventsAuto PhoneEvents = iota
	// PhoneEventsAlways tries them first for every phone (for phones that
	// support them without advertising it).
	PhoneEventsAlways
	// PhoneEventsNever always uses the PBX-side methods.
	PhoneEventsNever
)

// Options configures the adapter. Address, Password and Context come from
// the pbx.esl section of the configuration.
type Options struct {
	Address, Password, Context string // "127.0.0.1:8021", "ClueCon", "default"

	Logger *slog.Logger // nil discards; eslgo's own messages are logged at Debug

	// CommandTimeout bounds every ESL command and the connect handshake
	// (default 5s).
	CommandTimeout time.Duration
	// PingInterval is how often both connections are probed with
	// `api status` (default 10s). A connection that is closed or reset is
	// noticed at once; one that silently stops answering (a network path
	// that drops packets, a hung FreeSWITCH) within
	// PingInterval+CommandTimeout.
	PingInterval time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay (defaults 500ms
	// and 4s). The product promises that a FreeSWITCH that is back is
	// reconnected within 5 s: the longest wait between two attempts is
	// MaxBackoff, and the attempt itself (two connects, the subscription
	// and the channel listing) takes well under the second that is left
	// on a healthy FreeSWITCH.
	MinBackoff, MaxBackoff time.Duration
	// ReorderWindow is how long an event is held back so that events eslgo
	// delivered out of order can be sorted by Event-Sequence (default 40ms).
	ReorderWindow time.Duration
	// ConfirmTimeout is how long a phone-side action (uuid_phone_event) may
	// take to show up as an event before the adapter falls back to the
	// PBX-side method (default 2s).
	ConfirmTimeout time.Duration
	// HoldMusicWait bounds how long after a PBX-side hold (uuid_hold) a
	// retrieve waits for the hold music to start on the far party (default
	// 500ms, counted from the hold, so a retrieve sent later does not wait
	// at all): `uuid_hold off` stops only music already playing. Music
	// starts about 160 ms after the hold on FreeSWITCH 1.10; without hold
	// music nothing starts and the wait runs out.
	HoldMusicWait time.Duration
	// AnswerTimeout is how long the auto-answer call that replaces a ringing
	// one may take to be answered by the device (default 8s).
	AnswerTimeout time.Duration
	// PhoneEvents selects when uuid_phone_event is used (default auto).
	PhoneEvents PhoneEvents
	// RecheckDelay is how long after each resync the channels are listed
	// once more, to find channels FreeSWITCH had not listed yet (default
	// 1s; see sync.go).
	RecheckDelay time.Duration

	// newTimer starts the recheck timer; tests replace it to fire the
	// recheck when they choose. stop must be safe to call more than once.
	newTimer func(d time.Duration) (c <-chan time.Time, stop func())
}

func realTimer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CommandTimeout, 5*time.Second)
	def(&o.PingInterval, 10*time.Second)
	def(&o.MinBackoff, 500*time.Millisecond)
	def(&o.MaxBackoff, 4*time.Second)
	def(&o.ReorderWindow, 40*time.Millisecond)
	def(&o.ConfirmTimeout, 2*time.Second)
	def(&o.HoldMusicWait, 500*time.Millisecond)
	def(&o.AnswerTimeout, 8*time.Second)
	def(&o.RecheckDelay, time.Second)
	if o.newTimer == nil {
		o.newTimer = realTimer
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Address == "" {
		errs = append(errs, errors.New("address is required"))
	} else if _, _, err := net.SplitHostPort(o.Address); err != nil {
		errs = append(errs, fmt.Errorf("address %q: want host:port: %v", o.Address, err))
	}
	if o.Password == "" {
		errs = append(errs, errors.New("password is required"))
	} else if strings.ContainsAny(o.Password, "\r\n") {
		errs = append(errs, errors.New("password must not contain line breaks"))
	}
	if o.Context == "" {
		errs = append(errs, errors.New("context is required"))
	} else if !isToken(o.Context) {
		errs = append(errs, fmt.Errorf("context %q: only letters, digits and ._- are allowed", o.Context))
	}
	if o.PhoneEvents > PhoneEventsNever {
		errs = append(errs, fmt.Errorf("unknown phone events mode %d", o.PhoneEvents))
	}
	if len(errs) > 0 {
		return fmt.Errorf("esl: %w", errors.Join(errs...))
	}
	return nil
}

// isToken reports whether s is safe to put into an API command line as one
// argument: no spaces, quotes, separators or control characters.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.' || r == '_' || r == '-':
		default:
			return false
		}
	}
	return true
}
