package config

var (
	httpKeys  = []string{"listen", "tls"}
	tlsKeys   = []string{"cert", "key"}
	adminKeys = []string{"listen"}
)

func (d *decoder) http(e entry, ls []namedListener) (HTTP, []namedListener) {
	h := HTTP{Listen: DefaultHTTPListen}
	f := d.fields(e.val, "http", e.line, httpKeys)
	h.Listen, ls = d.listen(f["listen"], "http.listen", DefaultHTTPListen, ls)
	if t, ok := f["tls"]; ok {
		tf := d.fields(t.val, "http.tls", t.line, tlsKeys)
		cert := d.str(tf["cert"], "http.tls.cert")
		key := d.str(tf["key"], "http.tls.key")
		switch {
		case cert.set && key.set:
			h.TLS = TLS{Cert: d.resolvePath(cert.v), Key: d.resolvePath(key.v)}
		case cert.set:
			d.add(cert.line, "http.tls.key", "required with http.tls.cert (give both or neither)")
		case key.set:
			d.add(key.line, "http.tls.cert", "required with http.tls.key (give both or neither)")
		}
	}
	return h, ls
}

func (d *decoder) admin(e entry, ls []namedListener) (Admin, []namedListener) {
	var a Admin
	f := d.fields(e.val, "admin", e.line, adminKeys)
	a.Listen, ls = d.listen(f["listen"], "admin.listen", DefaultAdminListen, ls)
	return a, ls
}

// listen decodes a listen address (def when not given) and records it for
// the clash check.
func (d *decoder) listen(e entry, path, def string, ls []namedListener) (string, []namedListener) {
	o := d.str(e, path)
	if !o.set {
		if def == "" {
			return "", ls
		}
		l, _ := checkListen(def)
		return def, append(ls, namedListener{listener: l, key: path, text: def})
	}
	l, msg := checkListen(o.v)
	if msg != "" {
		d.add(o.line, path, "%s", msg)
		return o.v, ls
	}
	return o.v, append(ls, namedListener{listener: l, key: path, text: o.v, line: o.line})
}
