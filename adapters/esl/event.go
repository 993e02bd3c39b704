package esl

import (
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// chEvent is the part of a FreeSWITCH plain event the adapter uses. Header
// names are as FreeSWITCH 1.10 sends them (see testdata/*.rx.raw).
type chEvent struct {
	Name     string // Event-Name
	Subclass string // Event-Subclass for CUSTOM
	Seq      uint64 // Event-Sequence, 0 when absent
	UUID     string // Unique-ID
	Other    string // Other-Leg-Unique-ID
	Dir      string // Call-Direction: inbound (the phone calls) or outbound (FS calls the phone)
	Answer   string // Answer-State
	State    string // Channel-Call-State
	ChanName string // Channel-Name
	Presence string // Channel-Presence-ID
	Cause    string // Hangup-Cause

	// OtherType is Other-Type: "originator" on a channel being called names
	// the channel that calls it (c_click_to_call's 1002 leg).
	OtherType string

	CallerNum, CallerName string // Caller-Caller-ID-*
	CalleeNum, CalleeName string // Caller-Callee-ID-*
	DestNum               string // Caller-Destination-Number
	SIPCallID             string // variable_sip_call_id
	CSTAID                int    // variable_csta_id
	MakeCall              bool   // variable_csta_makecall: the device leg of a MakeCall
	DialedUser            string // variable_dialed_user
	TransferDest          string // variable_transfer_destination ("blind:1003")
	AllowEvents           string // any *allow_events variable, e.g. the directory variable csta_allow_events
	// SIPHeaders are the custom headers mod_sofia puts on the INVITE of an
	// outbound channel (variable_sip_h_<Name>, variable_alert_info), by
	// canonical name; nil when there are none. See inviteHeaders.
	SIPHeaders map[string]string

	// App is the dialplan application the channel runs: Application of
	// CHANNEL_EXECUTE, variable_current_application of a channel dump.
	App string

	RegUser string // sofia::register/unregister/expire: from-user (username as fallback)

	JobUUID string // BACKGROUND_JOB
	Body    string // BACKGROUND_JOB result
}

// header reads a header the way FreeSWITCH encodes plain events: values are
// URL-encoded. An undecodable value is returned raw rather than dropped.
func header(h textproto.MIMEHeader, name string) string {
	v := h.Get(name)
	if v == "" || !strings.ContainsRune(v, '%') {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// decodeEvent extracts a chEvent from plain-event headers and body.
func decodeEvent(h textproto.MIMEHeader, body []byte) chEvent {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	e := decodeFields(func(name string) string { return header(h, name) }, keys)
	if e.Name == "BACKGROUND_JOB" {
		e.Body = string(body)
	}
	return e
}

// decodeFields builds a chEvent from a header getter; keys lists every
// header name present (for the headers matched by suffix).
func decodeFields(get func(string) string, keys []string) chEvent {
	e := chEvent{
		Name:       get("Event-Name"),
		Subclass:   get("Event-Subclass"),
		UUID:       get("Unique-ID"),
		Other:      get("Other-Leg-Unique-ID"),
		Dir:        get("Call-Direction"),
		Answer:     get("Answer-State"),
		State:      get("Channel-Call-State"),
		ChanName:   get("Channel-Name"),
		Presence:   get("Channel-Presence-ID"),
		Cause:      get("Hangup-Cause"),
		CallerNum:  get("Caller-Caller-ID-Number"),
		CallerName: get("Caller-Caller-ID-Name"),
		CalleeNum:  get("Caller-Callee-ID-Number"),
		CalleeName: get("Caller-Callee-ID-Name"),
		DestNum:    get("Caller-Destination-Number"),
		SIPCallID:  get("variable_sip_call_id"),
		DialedUser: get("variable_dialed_user"),
		JobUUID:    get("Job-UUID"),
		OtherType:  get("Other-Type"),
	}
	e.Seq, _ = strconv.ParseUint(get("Event-Sequence"), 10, 64)
	if e.Name == "CUSTOM" && strings.HasPrefix(e.Subclass, "sofia::") {
		// Registration events (sofia_reg.c) name the user like
		// sofia::register_attempt in traces/freeswitch/a_basic_call.all.rx.raw.
		if e.RegUser = get("from-user"); e.RegUser == "" {
			e.RegUser = get("username")
		}
	}
	if n, err := strconv.Atoi(get("variable_csta_id")); err == nil {
		e.CSTAID = n
	}
	e.MakeCall = get("variable_csta_makecall") == "true"
	e.TransferDest = get("variable_transfer_destination")
	if e.App = get("Application"); e.App == "" {
		e.App = get("variable_current_application")
	}
	if e.Other == "" {
		// The b-leg of a bridge and channel dumps may name the partner only here.
		e.Other = get("variable_signal_bond")
	}
	for _, k := range keys {
		lk := strings.ToLower(k)
		if strings.HasSuffix(lk, "allow_events") || strings.HasSuffix(lk, "allow-events") {
			if e.AllowEvents != "" {
				e.AllowEvents += ","
			}
			e.AllowEvents += get(k)
		}
	}
	e.SIPHeaders = inviteHeaders(get, keys)
	return e
}

// sipHeaderVar prefixes the channel variables mod_sofia sends as extra
// headers of the INVITE (sofia_glue_get_extra_headers, SOFIA_SIP_HEADER_PREFIX).
const sipHeaderVar = "variable_sip_h_"

// notCustom are the headers a Snom's $sip_header() does not give out
// (the dialog's own headers), with the compact forms of those that have
// one (RFC 3261 section 7.3.3), by canonical name.
var notCustom = map[string]bool{
	"Via": true, "To": true, "From": true, "Call-Id": true, "Expires": true,
	"Route": true, "Record-Route": true, "Contact": true, "Content-Type": true,
	"Cseq": true, "Content-Length": true, "Max-Forwards": true,
	"V": true, "T": true, "F": true, "I": true, "M": true, "C": true, "L": true,
}

// inviteHeaders collects the headers FreeSWITCH adds to the INVITE of an
// outbound channel: one per sip_h_<Name> variable, and Alert-Info from
// alert_info. Names are canonicalised (the event socket's MIME parsing
// has already changed the case of the part after "variable_", and the core
// matches $sip_header names case-insensitively). Empty values are left out.
func inviteHeaders(get func(string) string, keys []string) map[string]string {
	var hs map[string]string
	add := func(name, value string) {
		name = textproto.CanonicalMIMEHeaderKey(name)
		if value == "" || name == "" || notCustom[name] {
			return
		}
		if hs == nil {
			hs = map[string]string{}
		}
		hs[name] = value
	}
	for _, k := range keys {
		if len(k) > len(sipHeaderVar) && strings.EqualFold(k[:len(sipHeaderVar)], sipHeaderVar) {
			add(k[len(sipHeaderVar):], get(k))
		}
	}
	for _, k := range keys {
		// alert_info is FreeSWITCH's own variable for Alert-Info; when a
		// sip_h_Alert-Info is set too, the dedicated one is reported.
		if strings.EqualFold(k, "variable_alert_info") {
			add("Alert-Info", get(k))
		}
	}
	return hs
}

// userPart returns the user of "1001@example.com", "sofia/internal/1001@host:port"
// or "sip:1001@host".
func userPart(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "sips:"), "sip:")
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	return s
}

// advertisesTalk reports whether an Allow-Events value lists "talk".
func advertisesTalk(allow string) bool {
	for _, f := range strings.FieldsFunc(allow, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		if strings.EqualFold(f, "talk") {
			return true
		}
	}
	return false
}
