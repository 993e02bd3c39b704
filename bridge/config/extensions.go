package config

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	extensionKeys = []string{"endpoint", "display_name", "domain", "listen", "http_user", "http_pass",
		"http_scheme", "allow", "action_url", "auto_answer_headers", "settings", "node"}
	defaultsKeys = []string{"domain", "action_url", "auto_answer_headers", "http_scheme", "http_pass",
		"allow", "settings"}
	actionURLKeys = []string{"timeout", "retries", "tls"}
	// perExtension are extension keys that make no sense as a default.
	perExtension = []string{"endpoint", "display_name", "listen", "http_user", "node"}
)

// extRaw is an extension or the defaults block as written, each field with
// whether it was given, so that merging can tell "absent" from "empty".
type extRaw struct {
	endpoint, displayName, domain, listen opt[string]
	httpUser, httpPass, httpScheme        opt[string]
	allow                                 opt[[]netip.Prefix]
	timeout                               opt[time.Duration]
	retries                               opt[int]
	tls                                   tlsRaw
	headers                               opt[[]string]
	settings                              map[string]string
	node                                  opt[string]
}

// extFields decodes one extension (or defaults) and checks every field on
// its own; checks that need the merged result come later.
func (d *decoder) extFields(e entry, path string, known []string) extRaw {
	var r extRaw
	isDefaults := path == "defaults"
	if isDefaults {
		known = append(slices.Clip(known), perExtension...)
	}
	f := d.fields(e.val, path, e.line, known)
	if isDefaults {
		for _, k := range perExtension {
			if ke, ok := f[k]; ok {
				d.add(ke.line, keyPath(path, k), "cannot be a default: it differs for every extension; set it under extensions")
				delete(f, k)
			}
		}
	}
	p := func(k string) string { return path + "." + k }

	r.endpoint = d.str(f["endpoint"], p("endpoint"))
	if r.endpoint.set && (hasControl(r.endpoint.v) || strings.ContainsAny(r.endpoint.v, " \t")) {
		d.add(r.endpoint.line, p("endpoint"), "must not contain spaces or control characters (got %q)", r.endpoint.v)
	}
	r.node = d.str(f["node"], p("node"))
	r.displayName = d.str(f["display_name"], p("display_name"))
	if r.displayName.set && hasControl(r.displayName.v) {
		d.add(r.displayName.line, p("display_name"), "must not contain control characters")
	}
	r.domain = d.str(f["domain"], p("domain"))
	if r.domain.set {
		if msg := checkDomain(r.domain.v); msg != "" {
			d.add(r.domain.line, p("domain"), "%s", msg)
		}
	}
	r.listen = d.str(f["listen"], p("listen"))
	if r.listen.set {
		if _, msg := checkListen(r.listen.v); msg != "" {
			d.add(r.listen.line, p("listen"), "%s", msg)
		}
	}
	r.httpUser = d.str(f["http_user"], p("http_user"))
	if r.httpUser.set && (hasControl(r.httpUser.v) || strings.Contains(r.httpUser.v, ":")) {
		d.add(r.httpUser.line, p("http_user"), "must not contain a colon or control characters")
	}
	// An explicit empty http_pass is kept as given: it overrides defaults.
	if pe, ok := f["http_pass"]; ok {
		if s, given := d.scalar(pe, p("http_pass")); given {
			r.httpPass = opt[string]{v: s, set: true, line: pe.line}
		}
	}
	r.httpScheme = d.str(f["http_scheme"], p("http_scheme"))
	if s := r.httpScheme; s.set && s.v != SchemeNone && s.v != SchemeBasic && s.v != SchemeDigest {
		// Kept as given: defaults must not fill it in, and the checks that
		// depend on the scheme skip an unknown one.
		d.add(s.line, p("http_scheme"), "must be none, basic or digest (got %q)", s.v)
	}
	if ae, ok := f["allow"]; ok {
		r.allow = d.allow(ae, p("allow"))
	}
	if ae, ok := f["action_url"]; ok {
		r.timeout, r.retries, r.tls = d.actionURL(ae, p("action_url"))
	}
	if he, ok := f["auto_answer_headers"]; ok {
		r.headers = d.headers(he, p("auto_answer_headers"))
	}
	if se, ok := f["settings"]; ok {
		r.settings = d.settings(se, p("settings"))
	}
	return r
}

func (d *decoder) allow(e entry, path string) opt[[]netip.Prefix] {
	items, ok := d.list(e, path, "[10.0.0.0/8, 192.0.2.7]")
	if !ok {
		return opt[[]netip.Prefix]{}
	}
	out := make([]netip.Prefix, 0, len(items))
	for _, it := range items {
		s, bad := d.strChecked(it, it.key)
		if bad {
			continue
		}
		if !s.set {
			d.add(it.line, it.key, "must be an IP address or CIDR prefix such as 10.0.0.0/8 (got nothing)")
			continue
		}
		pfx, msg := parseAllow(s.v)
		if msg != "" {
			d.add(it.line, it.key, "%s", msg)
			continue
		}
		out = append(out, pfx)
	}
	return opt[[]netip.Prefix]{v: out, set: true, line: e.line}
}

func (d *decoder) actionURL(e entry, path string) (opt[time.Duration], opt[int], tlsRaw) {
	var t opt[time.Duration]
	var r opt[int]
	var tr tlsRaw
	f := d.fields(e.val, path, e.line, actionURLKeys)
	if te, ok := f["tls"]; ok {
		tr = d.actionURLTLS(te, path+".tls")
	}
	if te, ok := f["timeout"]; ok {
		if v, text, ok := d.duration(te, path+".timeout"); ok {
			if v <= 0 || v > MaxActionURLTimeout {
				d.add(te.line, path+".timeout", "must be more than 0s and at most %gs (got %q)",
					MaxActionURLTimeout.Seconds(), text)
			} else {
				t = opt[time.Duration]{v: v, set: true, line: te.line}
			}
		}
	}
	if re, ok := f["retries"]; ok {
		if v, ok := d.integer(re, path+".retries"); ok {
			if v < 0 || v > MaxActionURLRetries {
				d.add(re.line, path+".retries", "must be from 0 to %d (got %d)", MaxActionURLRetries, v)
			} else {
				r = opt[int]{v: v, set: true, line: re.line}
			}
		}
	}
	return t, r, tr
}

func (d *decoder) headers(e entry, path string) opt[[]string] {
	items, ok := d.list(e, path, `["Call-Info: <sip:pbx>;answer-after=0"]`)
	if !ok {
		return opt[[]string]{}
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, bad := d.strChecked(it, it.key)
		if bad {
			continue
		}
		if msg := checkHeader(s.v); msg != "" {
			d.add(it.line, it.key, "%s", msg)
			continue
		}
		out = append(out, s.v)
	}
	return opt[[]string]{v: out, set: true, line: e.line}
}

// settings decodes Snom settings. A blank value is kept as "": on a Snom
// phone an empty action URL setting means "do not send", which is how an
// extension switches off an action URL it would get from defaults.
func (d *decoder) settings(e entry, path string) map[string]string {
	out := make(map[string]string)
	for _, se := range d.mapping(e.val, path, e.line, nil) {
		key := keyPath(path, se.key)
		if msg := checkSettingName(se.key); msg != "" {
			d.add(se.line, key, "%s", msg)
			continue
		}
		if v := d.resolve(se.val); v != nil && v.Kind != yaml.ScalarNode {
			d.add(se.line, key, "must be a single value, not %s", describe(v))
			continue
		}
		v, _ := d.scalar(se, key)
		if hasControl(v) {
			d.add(se.line, key, "must not contain control characters")
			continue
		}
		if strings.HasPrefix(se.key, "action_") {
			if msg := checkActionURL(v); msg != "" {
				d.add(se.line, key, "%s", msg)
				continue
			}
		}
		out[se.key] = v
	}
	return out
}

// mergeDefaults fills every field the extension leaves out from defaults;
// settings merge key by key, action_url field by field (they are separate
// fields here already), lists are replaced, not appended.
func mergeDefaults(ext, def extRaw) extRaw {
	pick := func(dst *opt[string], src opt[string]) {
		if !dst.set {
			*dst = src
		}
	}
	pick(&ext.domain, def.domain)
	pick(&ext.httpPass, def.httpPass)
	pick(&ext.httpScheme, def.httpScheme)
	if !ext.allow.set {
		ext.allow = def.allow
	}
	if !ext.timeout.set {
		ext.timeout = def.timeout
	}
	if !ext.retries.set {
		ext.retries = def.retries
	}
	if !ext.headers.set {
		ext.headers = def.headers
	}
	ext.tls = mergeTLS(ext.tls, def.tls)
	merged := maps.Clone(def.settings)
	if merged == nil {
		merged = make(map[string]string)
	}
	maps.Copy(merged, ext.settings)
	ext.settings = merged
	return ext
}

// extensions decodes, merges and checks every extension, and returns them
// sorted by name.
func (d *decoder) extensions(e entry, pbxType string, def extRaw, ls []namedListener) ([]Extension, []namedListener) {
	var out []Extension
	users := make(map[string]entry) // http_user -> first extension using it
	for _, xe := range d.mapping(e.val, "extensions", e.line, nil) {
		path := keyPath("extensions", xe.key)
		if msg := checkExtensionName(xe.key); msg != "" {
			d.add(xe.line, path, "%s", msg)
			continue
		}
		r := mergeDefaults(d.extFields(xe, path, extensionKeys), def)
		x := Extension{
			Name:        xe.key,
			Line:        xe.line,
			Endpoint:    r.endpoint.v,
			DisplayName: r.displayName.v,
			Domain:      DefaultDomain,
			Listen:      r.listen.v,
			HTTPUser:    r.httpUser.v,
			HTTPPass:    r.httpPass.v,
			Allow:       r.allow.v,
			ActionURL:   ActionURL{Timeout: DefaultActionURLTimeout, Retries: r.retries.v},
			Settings:    r.settings,
		}
		if r.domain.set {
			x.Domain = r.domain.v
		}
		if r.timeout.set {
			x.ActionURL.Timeout = r.timeout.v
		}
		x.AutoAnswerHeaders = DefaultAutoAnswerHeaders(x.Domain)
		if r.headers.set {
			x.AutoAnswerHeaders = r.headers.v
		}

		x.ActionURL.TLS = d.checkTLS(r.tls, path, xe.line)
		d.checkEndpoint(&x, r.endpoint, pbxType, path)
		d.checkNode(&x, r.node, pbxType, path)
		d.checkAuth(&x, r, path)

		if x.HTTPUser != "" {
			if first, dup := users[x.HTTPUser]; dup {
				d.add(r.httpUser.line, path+".http_user", "%q is already used by extension %s (line %d); http_user must be unique",
					x.HTTPUser, first.key, first.line)
			} else {
				users[x.HTTPUser] = xe
			}
		}
		if r.listen.set {
			if l, msg := checkListen(r.listen.v); msg == "" {
				ls = append(ls, namedListener{listener: l, key: path + ".listen", text: r.listen.v, line: r.listen.line})
			}
		}
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b Extension) int { return strings.Compare(a.Name, b.Name) })
	return out, ls
}

func (d *decoder) checkEndpoint(x *Extension, ep opt[string], pbxType, path string) {
	example := map[string]string{TypeARI: "PJSIP/" + x.Name, TypeESL: "user/" + x.Name}[pbxType]
	switch {
	case pbxType == TypeSim && !ep.set:
		x.Endpoint = x.Name
	case example == "":
		// pbx.type is missing or wrong; that is reported once, elsewhere.
	case !ep.set:
		d.add(x.Line, path+".endpoint", "required when pbx.type is %s (such as %s)", pbxType, example)
	case !validTechResource(ep.v):
		d.add(ep.line, path+".endpoint", "must be TECH/RESOURCE such as %s (got %q)", example, ep.v)
	}
}

// validTechResource: both ARI endpoints (PJSIP/1001) and FreeSWITCH dial
// strings (user/1001, sofia/internal/1001@host) name a technology first.
func validTechResource(s string) bool {
	tech, res, ok := strings.Cut(s, "/")
	return ok && tech != "" && res != ""
}

func (d *decoder) checkAuth(x *Extension, r extRaw, path string) {
	switch {
	case r.httpScheme.set:
		x.HTTPScheme = r.httpScheme.v
	case x.HTTPUser != "":
		x.HTTPScheme = SchemeBasic
	default:
		x.HTTPScheme = SchemeNone
	}
	switch x.HTTPScheme {
	case SchemeNone:
		if x.HTTPUser != "" {
			d.add(r.httpUser.line, path+".http_user", "is set but http_scheme is none; use basic or digest, or remove http_user")
		}
	case SchemeBasic, SchemeDigest:
		if x.HTTPUser == "" {
			d.add(x.Line, path+".http_user", "required when http_scheme is %s", x.HTTPScheme)
		}
		if x.HTTPPass == "" {
			d.add(x.Line, path+".http_pass", "required when http_scheme is %s", x.HTTPScheme)
		}
	}
}
