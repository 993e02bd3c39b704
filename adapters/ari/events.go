package ari

import (
	"encoding/json"
	"errors"
	"strings"
)

// The adapter decodes ARI events into these types rather than through
// ari.DecodeEvent: v5.3.1's decoder fails on event types newer than the
// library (and its reader then panics), and its ChannelData has no
// protocol_id, which carries the SIP Call-ID. Only the fields the adapter
// uses are declared; unknown fields and event types are ignored.

type wireParty struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

type wireDialplan struct {
	Context  string `json:"context"`
	Exten    string `json:"exten"`
	Priority int64  `json:"priority"`
	AppName  string `json:"app_name"`
	AppData  string `json:"app_data"`
}

type wireChannel struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	State      string       `json:"state"`
	ProtocolID string       `json:"protocol_id"`
	Caller     wireParty    `json:"caller"`
	Connected  wireParty    `json:"connected"`
	Dialplan   wireDialplan `json:"dialplan"`
}

type wireBridge struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Type     string   `json:"bridge_type"`
	Channels []string `json:"channels"`
}

type wireEndpoint struct {
	Technology string `json:"technology"`
	Resource   string `json:"resource"`
	State      string `json:"state"`
}

// wireEvent is the union of the fields of the event types the adapter acts on.
type wireEvent struct {
	Type       string `json:"type"`
	AsteriskID string `json:"asterisk_id"`

	Channel  *wireChannel  `json:"channel"`
	Bridge   *wireBridge   `json:"bridge"`
	Endpoint *wireEndpoint `json:"endpoint"`

	// Dial
	Caller     *wireChannel `json:"caller"`
	Peer       *wireChannel `json:"peer"`
	DialStatus string       `json:"dialstatus"`

	// ChannelHangupRequest, ChannelDestroyed
	Cause    int    `json:"cause"`
	CauseTxt string `json:"cause_txt"`

	// ChannelVarset
	Variable string `json:"variable"`
	Value    string `json:"value"`

	// StasisStart
	Args           []string     `json:"args"`
	ReplaceChannel *wireChannel `json:"replace_channel"`

	// BridgeBlindTransfer
	Transferee *wireChannel `json:"transferee"`
	Result     string       `json:"result"`
	Exten      string       `json:"exten"`

	// BridgeAttendedTransfer
	FirstLeg  *wireChannel `json:"transferer_first_leg"`
	SecondLeg *wireChannel `json:"transferer_second_leg"`
	Target    *wireChannel `json:"transfer_target"`

	// DeviceStateChanged
	DeviceState *struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"device_state"`
}

var errNoType = errors.New("event has no type")

func decodeEvent(data []byte) (*wireEvent, error) {
	var ev wireEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, err
	}
	if ev.Type == "" {
		return nil, errNoType
	}
	ev.dropEmpty()
	return &ev, nil
}

// dropEmpty forgets the objects an event carries empty. Events that went
// through the ari library (an ari-proxy forwards them re-encoded) have every
// channel and bridge field of their type, set or not: a global variable's
// ChannelVarset has a channel without an id, a StasisStart a replace_channel
// without one.
func (ev *wireEvent) dropEmpty() {
	for _, c := range []**wireChannel{&ev.Channel, &ev.Caller, &ev.Peer, &ev.ReplaceChannel, &ev.Transferee,
		&ev.FirstLeg, &ev.SecondLeg, &ev.Target} {
		if *c != nil && (*c).ID == "" {
			*c = nil
		}
	}
	if ev.Bridge != nil && ev.Bridge.ID == "" {
		ev.Bridge = nil
	}
	if ev.Endpoint != nil && ev.Endpoint.Resource == "" {
		ev.Endpoint = nil
	}
}

// endpointOf turns a channel name ("PJSIP/1001-0000002a") into its endpoint
// ("PJSIP/1001"). Local and other non-device channels yield "".
func endpointOf(name string) string {
	if strings.HasPrefix(name, "Local/") {
		return ""
	}
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || strings.IndexByte(name, '/') < 0 {
		return ""
	}
	return name[:i]
}
