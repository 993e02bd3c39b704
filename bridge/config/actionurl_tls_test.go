package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestActionURLTLSConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	src := `pbx: {type: sim}
defaults:
  action_url:
    tls: {insecure_skip_verify: true}
extensions:
  "1001":
    action_url: {tls: {ca_file: missing.pem}}
  "1002":
    action_url: {tls: {ca_file: not.pem, insecure_skip_verify: false}}
  "1003":
    action_url: {tls: {cert_file: phone.crt}}
  "1004":
    action_url: {tls: {insecure_skip_verify: maybe}}
  "1005": {}
`
	_, err := Parse(path, []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"config.yaml:7: extensions.1001.action_url.tls.ca_file: cannot read it",
		"config.yaml:9: extensions.1002.action_url.tls.ca_file: holds no PEM certificate",
		"config.yaml:11: extensions.1003.action_url.tls.key_file: required with cert_file",
		"config.yaml:13: extensions.1004.action_url.tls.insecure_skip_verify: must be true or false",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// A CA and the opt-out together make no sense.
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte(testCA), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Parse(path, []byte("pbx: {type: sim}\ndefaults:\n  action_url: {tls: {ca_file: ca.pem}}\nextensions:\n  \"1001\":\n    action_url: {tls: {insecure_skip_verify: true}}\n"))
	if err == nil || !strings.Contains(err.Error(), "extensions.1001.action_url.tls.insecure_skip_verify: true trusts every certificate") {
		t.Errorf("CA and opt-out: %v", err)
	}
	// Defaults merge field by field; paths are relative to the file.
	cfg, err := Parse(path, []byte("pbx: {type: sim}\ndefaults:\n  action_url: {timeout: 1s, tls: {ca_file: ca.pem}}\nextensions:\n  \"1001\": {}\n  \"1002\":\n    action_url: {retries: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cfg.Extensions {
		if e.ActionURL.TLS.CAFile != ca || e.ActionURL.TLS.InsecureSkipVerify {
			t.Errorf("%s: %+v", e.Name, e.ActionURL.TLS)
		}
		c, err := e.ActionURL.TLS.Config()
		if err != nil || c == nil || c.RootCAs == nil {
			t.Errorf("%s: tls.Config %v, %v", e.Name, c, err)
		}
	}
}

// testCA is a long-expired self-signed test certificate: ca_file only needs
// a parsable PEM certificate.
const testCA = `-----BEGIN CERTIFICATE-----
MIIBhTCCASugAwIBAgIQIRi6zePL6mKjOipn+dNuaTAKBggqhkjOPQQDAjASMRAw
DgYDVQQKEwdBY21lIENvMB4XDTE3MTAyMDE5NDMwNloXDTE4MTAyMDE5NDMwNlow
EjEQMA4GA1UEChMHQWNtZSBDbzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABD0d
7VNhbWvZLWPuj/RtHFjvtJBEwOkhbN/BnnE8rnZR8+sbwnc/KhCk3FhnpHZnQz7B
5aETbbIgmuvewdjvSBSjYzBhMA4GA1UdDwEB/wQEAwICpDATBgNVHSUEDDAKBggr
BgEFBQcDATAPBgNVHRMBAf8EBTADAQH/MCkGA1UdEQQiMCCCDmxvY2FsaG9zdDo1
NDUzgg4xMjcuMC4wLjE6NTQ1MzAKBggqhkjOPQQDAgNIADBFAiEA2zpJEPQyz6/l
Wf86aX6PepsntZv2GYlA5UpabfT2EZICICpJ5h/iI+i341gBmLiAFQOyTDT+/wQc
6MF9+Yw1Yy0t
-----END CERTIFICATE-----
`
