package bridge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ctiTLS is a CTI server with a self-signed certificate (httptest's) that
// counts the action URLs it receives.
func ctiTLS(t *testing.T, clientCAs *x509.CertPool) (*httptest.Server, chan string, string) {
	got := make(chan string, 16)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path
	}))
	if clientCAs != nil {
		s.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	ca := filepath.Join(t.TempDir(), "cti-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return s, got, ca
}

// tlsExtension is 1001's YAML: its incoming action URL goes to url, with
// the given action_url.tls block.
func tlsExtension(url, tlsBlock string) map[string]string {
	y := "    settings:\n      action_incoming_url: " + url + "/incoming?csta_id=$csta_id\n"
	if tlsBlock != "" {
		y += "    action_url:\n      tls: " + tlsBlock + "\n"
	}
	return map[string]string{"1001": y}
}

// lastIncoming waits until every queued action URL is delivered and
// returns the outcome of 1001's action_incoming_url.
func lastIncoming(t *testing.T, h *harness) string {
	t.Helper()
	h.flush()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	h.app.notifier.Close(ctx)
	res := ""
	for _, r := range h.app.actions.recent.list() {
		if r.Ext == "1001" && r.Event == "action_incoming_url" {
			res = r.Result
		}
	}
	return res
}

func TestActionURLTLS(t *testing.T) {
	t.Run("system roots refuse a self-signed certificate", func(t *testing.T) {
		s, got, _ := ctiTLS(t, nil)
		h := start(t, tlsExtension(s.URL, ""))
		h.offer("1001", "c1", "555")
		if res := lastIncoming(t, h); !strings.HasPrefix(res, "failed:") || !strings.Contains(res, "certificate") {
			t.Errorf("without the CA: %q, want a certificate failure", res)
		}
		if len(got) != 0 {
			t.Error("the CTI server got the action URL over an unverified connection")
		}
	})
	t.Run("ca_file", func(t *testing.T) {
		s, got, ca := ctiTLS(t, nil)
		h := start(t, tlsExtension(s.URL, "{ca_file: "+ca+"}"))
		h.offer("1001", "c1", "555")
		if res := lastIncoming(t, h); res != "ok 200" {
			t.Errorf("with the CA: %q", res)
		}
		if p := <-got; p != "/incoming" {
			t.Errorf("CTI server got %q", p)
		}
	})
	t.Run("insecure_skip_verify is logged", func(t *testing.T) {
		s, got, _ := ctiTLS(t, nil)
		var buf lockedBuffer
		h := startLogged(t, tlsExtension(s.URL, "{insecure_skip_verify: true}"), slog.New(slog.NewTextHandler(&buf, nil)))
		h.offer("1001", "c1", "555")
		if res := lastIncoming(t, h); res != "ok 200" {
			t.Errorf("opted out of verification: %q", res)
		}
		<-got
		l := buf.lines("do not verify the server's certificate")
		if len(l) != 1 || !strings.Contains(l[0], "level=WARN") || !strings.Contains(l[0], "names=1001") {
			t.Errorf("warning: %q", l)
		}
	})
	t.Run("client certificate", func(t *testing.T) {
		dir := t.TempDir()
		certFile, keyFile, pool := clientCert(t, dir)
		s, got, ca := ctiTLS(t, pool)
		h := start(t, tlsExtension(s.URL, "{ca_file: "+ca+"}"))
		h.offer("1001", "c1", "555")
		if res := lastIncoming(t, h); !strings.HasPrefix(res, "failed:") {
			t.Errorf("no client certificate, server requires one: %q", res)
		}
		h = start(t, tlsExtension(s.URL, "{ca_file: "+ca+", cert_file: "+certFile+", key_file: "+keyFile+"}"))
		h.offer("1001", "c1", "555")
		if res := lastIncoming(t, h); res != "ok 200" {
			t.Errorf("with the client certificate: %q", res)
		}
		<-got
	})
}

// clientCert writes a self-signed client certificate and its key.
func clientCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "csta-bridge test phone"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "phone.crt"), filepath.Join(dir, "phone.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}
