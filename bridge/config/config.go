// Package config loads and validates the csta-bridge YAML file: the PBX to
// drive, the listeners, and the extensions (one virtual Snom phone each).
//
// Load and Parse are the only way in, so -check-config, start-up and SIGHUP
// reload all judge a file by the same rules. Decoding walks yaml.Nodes by hand
// rather than unmarshalling into structs: that way every problem, including
// semantic ones, carries the line it came from, and all problems of a file are
// reported together, sorted by line.
package config

import (
	"net/netip"
	"os"
	"time"
)

// Defaults applied where the file says nothing.
const (
	DefaultHTTPListen       = "127.0.0.1:8080"
	DefaultAdminListen      = "127.0.0.1:9090"
	DefaultStateFile        = "/var/lib/csta-bridge/settings.json"
	DefaultDomain           = "localhost"
	DefaultActionURLTimeout = 2 * time.Second
	DefaultAnswerAfter      = time.Second

	MaxActionURLTimeout = 60 * time.Second
	MaxActionURLRetries = 5
)

// PBX types.
const (
	TypeSim = "sim"
	TypeARI = "ari"
	TypeESL = "esl"
)

// HTTP authentication schemes of an extension.
const (
	SchemeNone   = "none"
	SchemeBasic  = "basic"
	SchemeDigest = "digest"
)

// Config is a loaded, validated configuration file.
type Config struct {
	Path      string // file it was loaded from
	PBX       PBX
	HTTP      HTTP
	Admin     Admin
	StateFile string // where settings changed through /dummy.htm persist; relative paths already resolved
	// Extensions sorted by Name, with `defaults:` merged in and defaults applied.
	Extensions []Extension
	Cluster    Cluster // standby bridges; zero for a lone one
}

// PBX selects and configures the PBX adapter. Only the section named by Type
// is checked for completeness; the others may be present (and must still be
// well-formed) so that switching Type is a one-line change.
type PBX struct {
	Type string // TypeSim, TypeARI or TypeESL
	ARI  ARI
	ESL  ESL
	Sim  Sim
}

// ARI is the Asterisk REST Interface connection.
type ARI struct {
	URL         string // http(s)://host:port/ari, without credentials
	Username    string
	Password    string // from `password` or the trimmed contents of `password_file`
	Application string // Stasis application name
	Context     string // dialplan context for MakeCall; empty = the adapter's choice
	// HangupHandler is the dialplan context of the hangup handler that ends
	// a call's other side while the bridge is away (configs/asterisk,
	// [csta-bridge-hangup]); "none" pushes none, for a dialplan without it.
	HangupHandler string
	// NATS, when its URL is set, makes a cluster: the Asterisk servers are
	// reached through the ari-proxy beside each, over NATS, instead of
	// URL/Username/Password (which are then empty).
	NATS NATS
	// Nodes are the Asterisk entity ids the cluster expects at start-up;
	// others join as their proxies announce them.
	Nodes []string
}

// ESL is the FreeSWITCH event socket connection.
type ESL struct {
	Address  string // host:port
	Password string // from `password` or the trimmed contents of `password_file`
	Context  string // dialplan context for MakeCall; empty = the adapter's choice
	// PhoneEvents: when AnswerCall/HoldCall/RetrieveCall ask the phone itself
	// (uuid_phone_event talk/hold): "auto" (phones marked as supporting it),
	// "always" or "never".
	PhoneEvents string
	// Nodes, when given, make a cluster: one connection per FreeSWITCH
	// server instead of Address/Password (which are then empty).
	Nodes []ESLNode
}

// ESLNode is one FreeSWITCH server of a cluster.
type ESLNode struct {
	Name     string // unique, names the node in `node:`, logs, metrics and /-/ready
	Address  string // host:port of its event socket
	Password string // its own, or pbx.esl's password when it gives none
}

// Sim configures the in-memory PBX.
type Sim struct {
	AnswerAfter time.Duration // when the far party of a MakeCall answers
	NeverAnswer bool          // `answer_after: never`: far parties keep ringing
}

// HTTP is the shared listener that serves /<extension>/csta and /csta.
type HTTP struct {
	Listen string // IP:port
	TLS    TLS
}

// TLS names a certificate and key file (relative paths already resolved).
// Both are set or neither.
type TLS struct {
	Cert, Key string
}

// Enabled reports whether the listener serves HTTPS.
func (t TLS) Enabled() bool { return t.Cert != "" && t.Key != "" }

// Admin is the listener for /metrics, /-/healthy, /-/ready and /sim/...
type Admin struct {
	Listen string // IP:port
}

// Extension is one virtual Snom phone.
type Extension struct {
	Name        string // the key under `extensions:`, e.g. "1001"; safe in a URL path
	Line        int    // line of that key in the file
	Endpoint    string // PBX endpoint (PJSIP/1001, user/1001); Name for sim when not given
	DisplayName string
	Domain      string // host part of $local etc.
	Listen      string // own IP:port, or ""
	HTTPUser    string
	HTTPPass    string
	HTTPScheme  string         // SchemeNone, SchemeBasic or SchemeDigest
	Allow       []netip.Prefix // masked; empty = everyone
	ActionURL   ActionURL
	// AutoAnswerHeaders go on the INVITE that makes the device answer by itself.
	// Empty (but given) means none.
	AutoAnswerHeaders []string
	// Node pins the extension to one node of a PBX cluster (a name from
	// pbx.esl.nodes); "" lets the adapter learn it from registrations.
	Node string
	// Settings holds Snom setting names verbatim (action_incoming_url, mac, ...).
	// Never nil. An empty value is set-but-empty: the action URL is disabled.
	Settings map[string]string
}

// ActionURL tunes the delivery of the extension's action URLs.
type ActionURL struct {
	Timeout time.Duration // per request, in (0, MaxActionURLTimeout]
	Retries int           // 0..MaxActionURLRetries
	TLS     ActionURLTLS  // for https action URLs
}

// DefaultAutoAnswerHeaders returns the auto-answer headers used when neither
// the extension nor `defaults:` gives any: both the Call-Info and the
// Alert-Info form, so that most SIP phones and softphones pick one up.
func DefaultAutoAnswerHeaders(domain string) []string {
	return []string{
		"Call-Info: <sip:" + domain + ">;answer-after=0",
		"Alert-Info: <http://" + domain + ">;info=alert-autoanswer;delay=0",
	}
}

// Load reads and parses the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration file's contents. path names the
// file in messages and anchors relative paths (state_file, password_file,
// tls); the only files Parse reads are password_file ones of the selected PBX.
//
// On failure it returns every problem found, one per line, sorted by line,
// each of the form "FILE:LINE: KEY: message". Secrets are never echoed.
func Parse(path string, data []byte) (*Config, error) {
	d := newDecoder(path)
	cfg := d.config(data)
	if err := d.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}
