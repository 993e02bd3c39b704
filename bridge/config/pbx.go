package config

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

var (
	pbxKeys = []string{"type", "ari", "esl", "sim"}
	ariKeys = []string{"url", "username", "password", "password_file", "application", "context", "hangup_handler",
		"nats", "nodes"}
	eslKeys = []string{"address", "password", "password_file", "context", "phone_events", "nodes"}
	simKeys = []string{"answer_after"}
)

// maxSecretFile bounds what password_file may hold; a secret is a line.
const maxSecretFile = 64 << 10

func (d *decoder) pbx(e entry, given bool) PBX {
	p := PBX{Sim: Sim{AnswerAfter: DefaultAnswerAfter}}
	if !given {
		return p
	}
	f := d.fields(e.val, "pbx", e.line, pbxKeys)

	typ, ok := f["type"]
	if !ok {
		d.add(e.line, "pbx.type", "required: sim, ari or esl")
	} else if s, bad := d.strChecked(typ, "pbx.type"); bad {
		// already reported
	} else if !s.set {
		d.add(typ.line, "pbx.type", "required: sim, ari or esl")
	} else if s.v != TypeSim && s.v != TypeARI && s.v != TypeESL {
		d.add(typ.line, "pbx.type", "must be sim, ari or esl (got %q)", s.v)
	} else {
		p.Type = s.v
	}

	// Every section must be well-formed; only the selected one must be
	// complete, and only its password_file is read.
	if a, ok := f["ari"]; ok {
		p.ARI = d.ari(a, p.Type == TypeARI)
	} else if p.Type == TypeARI {
		d.add(e.line, "pbx.ari", "required when pbx.type is ari (url, username, password, application)")
	}
	if a, ok := f["esl"]; ok {
		p.ESL = d.esl(a, p.Type == TypeESL)
	} else if p.Type == TypeESL {
		d.add(e.line, "pbx.esl", "required when pbx.type is esl (address, password)")
	}
	if a, ok := f["sim"]; ok {
		p.Sim = d.sim(a)
	}
	return p
}

func (d *decoder) ari(e entry, selected bool) ARI {
	const path = "pbx.ari"
	f := d.fields(e.val, path, e.line, ariKeys)
	url := d.str(f["url"], path+".url")
	user := d.str(f["username"], path+".username")
	app := d.str(f["application"], path+".application")
	ctx := d.str(f["context"], path+".context")
	hh := d.str(f["hangup_handler"], path+".hangup_handler")
	a := ARI{URL: url.v, Username: user.v, Application: app.v, Context: ctx.v, HangupHandler: hh.v}
	if a.HangupHandler == "" {
		a.HangupHandler = "csta-bridge-hangup"
	}
	ne, cluster := f["nats"]
	if cluster {
		d.ariCluster(&a, f, ne, path)
		if !selected {
			return a
		}
	} else {
		if selected {
			d.require(url, e.line, path+".url", "such as http://127.0.0.1:8088/ari (or nats: for a cluster)")
			d.require(user, e.line, path+".username", "")
		}
		a.Password = d.password(f, path, e.line, selected)
		if n, ok := f["nodes"]; ok {
			d.add(n.line, path+".nodes", "lists the Asterisk nodes of a cluster; give nats: too")
		}
		if !selected {
			return a
		}
	}
	d.require(app, e.line, path+".application", "the Stasis application name used in the dialplan")
	if url.set && !cluster {
		if msg := checkHTTPURL(url.v); msg != "" {
			d.add(url.line, path+".url", "%s", msg)
		}
	}
	if app.set && (hasControl(app.v) || strings.ContainsAny(app.v, " \t,")) {
		d.add(app.line, path+".application", "must not contain spaces or commas (got %q)", app.v)
	}
	if hh.set && (hasControl(hh.v) || strings.ContainsAny(hh.v, " \t,()$")) {
		d.add(hh.line, path+".hangup_handler", "must be a dialplan context name, or none (got %q)", hh.v)
	}
	return a
}

func (d *decoder) esl(e entry, selected bool) ESL {
	const path = "pbx.esl"
	f := d.fields(e.val, path, e.line, eslKeys)
	addr := d.str(f["address"], path+".address")
	ctx := d.str(f["context"], path+".context")
	ne, cluster := f["nodes"]
	// In a cluster pbx.esl's password is the nodes' default, not required.
	pass := d.secret(f, path, e.line, selected, selected && !cluster)
	pe := d.str(f["phone_events"], path+".phone_events")
	s := ESL{Address: addr.v, Password: pass, Context: ctx.v, PhoneEvents: "auto"}
	if pe.set {
		switch pe.v {
		case "auto", "always", "never":
			s.PhoneEvents = pe.v
		default:
			d.add(pe.line, path+".phone_events", "must be auto, always or never (got %q)", pe.v)
		}
	}
	if cluster {
		s.Nodes = d.eslNodes(ne, path+".nodes", pass, selected)
		if addr.set {
			d.add(addr.line, path+".address", "give address or nodes, not both (nodes is at line %d)", ne.line)
		}
		s.Address, s.Password = "", ""
		return s
	}
	if !selected {
		return s
	}
	d.require(addr, e.line, path+".address", "such as 127.0.0.1:8021 (or nodes: for a cluster)")
	if addr.set {
		if msg := checkHostPort(addr.v); msg != "" {
			d.add(addr.line, path+".address", "%s", msg)
		}
	}
	return s
}

func (d *decoder) sim(e entry) Sim {
	s := Sim{AnswerAfter: DefaultAnswerAfter}
	f := d.fields(e.val, "pbx.sim", e.line, simKeys)
	a, ok := f["answer_after"]
	if !ok {
		return s
	}
	const path = "pbx.sim.answer_after"
	v, ok := d.scalar(a, path)
	switch {
	case !ok:
		return s
	case v == "never":
		return Sim{NeverAnswer: true}
	}
	dur, err := time.ParseDuration(v)
	if err != nil {
		d.add(a.line, path, "must be a duration such as 1s, or never (got %q)", v)
		return s
	}
	if dur < 0 {
		d.add(a.line, path, "must not be negative (got %q)", v)
		return s
	}
	s.AnswerAfter = dur
	return s
}

// require reports a missing mandatory value at the line of its section.
func (d *decoder) require(o opt[string], sectionLine int, path, hint string) {
	if o.set {
		return
	}
	line := sectionLine
	if o.line > 0 {
		line = o.line
	}
	if hint != "" {
		d.add(line, path, "required (%s)", hint)
		return
	}
	d.add(line, path, "required")
}

// password returns `password`, or the contents of `password_file` (read only
// for the selected PBX, so a laptop without the secret can still check a
// config that merely mentions it).
func (d *decoder) password(f map[string]entry, path string, sectionLine int, selected bool) string {
	return d.secret(f, path, sectionLine, selected, selected)
}

// secret is password with reading the file (read) and requiring a value
// (required) decided apart.
func (d *decoder) secret(f map[string]entry, path string, sectionLine int, read, required bool) string {
	pe, hasPass := f["password"]
	fe := f["password_file"]
	pass := d.str(pe, path+".password")
	file := d.str(fe, path+".password_file")
	if pass.set && file.set {
		d.add(fe.line, path+".password_file", "give password or password_file, not both (password is at line %d)", pe.line)
		return ""
	}
	if file.set {
		if !read {
			return ""
		}
		s, err := readSecret(d.resolvePath(file.v))
		if err != nil {
			d.add(fe.line, path+".password_file", "%v", err)
			return ""
		}
		return s
	}
	if required && !pass.set {
		line := sectionLine
		if hasPass {
			line = pe.line
		}
		d.add(line, path+".password", "required (or password_file)")
	}
	return pass.v
}

// readSecret reads a small regular file (not a FIFO or device that could
// block or never end) and trims surrounding white space.
func readSecret(name string) (string, error) {
	// Stat before Open: opening a FIFO blocks until somebody writes to it.
	st, err := os.Stat(name)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d bytes; it should hold only the password", name, maxSecretFile)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return s, nil
}
