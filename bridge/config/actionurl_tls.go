package config

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strconv"
)

// ActionURLTLS is how https action URLs check the CTI server and present
// the phone, like a Snom phone's settings: ca_file adds trusted
// certificates to the system roots (Snom: custom_certificates),
// insecure_skip_verify switches the check off for labs (Snom:
// tls_server_authentication: off), and cert_file/key_file are the client
// certificate a server may ask for (a Snom presents its built-in device
// certificate). Paths are resolved; the zero value means the system roots.
type ActionURLTLS struct {
	CAFile             string
	CertFile, KeyFile  string
	InsecureSkipVerify bool
}

// Config builds the tls.Config these settings describe (nil for the zero
// value: the system roots). It reads the files again, so a reload picks up
// a renewed certificate.
func (t ActionURLTLS) Config() (*tls.Config, error) {
	if t == (ActionURLTLS{}) {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		roots, err := x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if msg := addCAFile(roots, t.CAFile); msg != "" {
			return nil, &tlsFileError{t.CAFile, msg}
		}
		c.RootCAs = roots
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

type tlsFileError struct{ path, msg string }

func (e *tlsFileError) Error() string { return e.path + ": " + e.msg }

// addCAFile adds the PEM certificates of path to pool; it returns a problem
// or "".
func addCAFile(pool *x509.CertPool, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "cannot read it: " + err.Error()
	}
	if !pool.AppendCertsFromPEM(b) {
		return "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
	}
	return ""
}

var actionURLTLSKeys = []string{"ca_file", "cert_file", "key_file", "insecure_skip_verify"}

// tlsRaw is action_url.tls as written in one block.
type tlsRaw struct {
	ca, cert, key opt[string]
	insecure      opt[bool]
}

func (d *decoder) actionURLTLS(e entry, path string) tlsRaw {
	var r tlsRaw
	f := d.fields(e.val, path, e.line, actionURLTLSKeys)
	for _, k := range []struct {
		name string
		dst  *opt[string]
	}{{"ca_file", &r.ca}, {"cert_file", &r.cert}, {"key_file", &r.key}} {
		o := d.str(f[k.name], path+"."+k.name)
		if o.set {
			o.v = d.resolvePath(o.v)
		}
		*k.dst = o
	}
	if ie, ok := f["insecure_skip_verify"]; ok {
		if s, given := d.scalar(ie, path+".insecure_skip_verify"); given {
			v, err := strconv.ParseBool(s)
			if err != nil {
				d.add(ie.line, path+".insecure_skip_verify", "must be true or false (got %q)", s)
			} else {
				r.insecure = opt[bool]{v: v, set: true, line: ie.line}
			}
		}
	}
	if r.ca.set {
		if msg := addCAFile(x509.NewCertPool(), r.ca.v); msg != "" {
			d.add(r.ca.line, path+".ca_file", "%s", msg)
			r.ca = opt[string]{}
		}
	}
	return r
}

func mergeTLS(ext, def tlsRaw) tlsRaw {
	for _, p := range []struct{ dst, src *opt[string] }{{&ext.ca, &def.ca}, {&ext.cert, &def.cert}, {&ext.key, &def.key}} {
		if !p.dst.set {
			*p.dst = *p.src
		}
	}
	if !ext.insecure.set {
		ext.insecure = def.insecure
	}
	return ext
}

// checkTLS checks the merged settings of one extension and returns them.
func (d *decoder) checkTLS(r tlsRaw, path string, line int) ActionURLTLS {
	t := ActionURLTLS{CAFile: r.ca.v, CertFile: r.cert.v, KeyFile: r.key.v, InsecureSkipVerify: r.insecure.v}
	p := path + ".action_url.tls"
	switch {
	case r.cert.set && !r.key.set:
		d.add(r.cert.line, p+".key_file", "required with cert_file (give both or neither)")
		return ActionURLTLS{}
	case r.key.set && !r.cert.set:
		d.add(r.key.line, p+".cert_file", "required with key_file (give both or neither)")
		return ActionURLTLS{}
	}
	if t.InsecureSkipVerify && t.CAFile != "" {
		d.add(r.insecure.line, p+".insecure_skip_verify",
			"true trusts every certificate, so ca_file %s would never be used: give one or the other", t.CAFile)
	}
	if t.CertFile != "" {
		k := [2]string{t.CertFile, t.KeyFile}
		msg, done := d.keyPairs[k]
		if !done {
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				msg = err.Error()
			}
			if d.keyPairs == nil {
				d.keyPairs = make(map[[2]string]string)
			}
			d.keyPairs[k] = msg
		}
		if msg != "" {
			d.add(max(r.cert.line, line), p+".cert_file", "cannot load the client certificate and key: %s", msg)
			return ActionURLTLS{}
		}
	}
	return t
}
