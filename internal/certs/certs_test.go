package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parsePEMCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", certPEM)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerateCoversNames(t *testing.T) {
	certPEM, keyPEM, err := Generate([]string{"a.example", "b.example"},
		[]net.IP{net.ParseIP("127.0.0.2"), net.ParseIP("::1")}, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	c := parsePEMCert(t, certPEM)
	tests := []struct {
		name string
		ok   bool
	}{
		{"a.example", true},
		{"b.example", true},
		{"127.0.0.2", true},
		{"::1", true},
		{"c.example", false},
		{"127.0.0.3", false},
		{"x.a.example", false},
	}
	for _, tt := range tests {
		err := c.VerifyHostname(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("VerifyHostname(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	if d := time.Until(c.NotAfter); d < 119*time.Minute || d > 2*time.Hour {
		t.Errorf("expires in %v, want about 2h", d)
	}
	// A pool holding only the certificate verifies it: tests of other
	// packages rely on that.
	pool := x509.NewCertPool()
	pool.AddCert(c)
	if _, err := c.Verify(x509.VerifyOptions{DNSName: "b.example", Roots: pool}); err != nil {
		t.Errorf("self-signed certificate does not verify against itself: %v", err)
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name     string
		domains  []string
		ips      []net.IP
		validFor time.Duration
		want     string
	}{
		{"no names", nil, nil, time.Hour, "no domain or IP address"},
		{"zero validity", []string{"a.example"}, nil, 0, "not positive"},
		{"negative validity", []string{"a.example"}, nil, -time.Hour, "not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Generate(tt.domains, tt.ips, tt.validFor)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Generate error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	certFile, keyFile, created, err := LoadOrCreate(dir, []string{"montague.example.net"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("first call: created = false")
	}
	if want := filepath.Join(dir, "tls", "selfsigned.crt"); certFile != want {
		t.Errorf("certFile = %q, want %q", certFile, want)
	}
	if want := filepath.Join(dir, "tls", "selfsigned.key"); keyFile != want {
		t.Errorf("keyFile = %q, want %q", keyFile, want)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(filepath.Dir(keyFile)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("tls dir mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	if got := logs.String(); !strings.Contains(got, "level=INFO") ||
		!strings.Contains(got, certFile) || !strings.Contains(got, "montague.example.net") {
		t.Errorf("log does not say what was generated where: %q", got)
	}
	leaf, err := loadLeaf(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"montague.example.net", "localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("generated certificate: %v", err)
		}
	}
	if d := time.Until(leaf.NotAfter); d < 364*24*time.Hour {
		t.Errorf("generated certificate expires in %v, want a year", d)
	}
	first, _ := os.ReadFile(certFile)

	// Second run with the same domains: reused.
	logs.Reset()
	_, _, created, err = LoadOrCreate(dir, []string{"montague.example.net"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second call: created = true, want the certificate reused")
	}
	if again, _ := os.ReadFile(certFile); !bytes.Equal(first, again) {
		t.Error("second call rewrote the certificate")
	}
	if strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("reuse logged at info: %q", logs.String())
	}

	// A domain added: regenerated, with the reason logged.
	logs.Reset()
	_, _, created, err = LoadOrCreate(dir, []string{"montague.example.net", "verona.example.org"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("domain added: created = false")
	}
	if !strings.Contains(logs.String(), "does not name verona.example.org") {
		t.Errorf("log does not say why it regenerated: %q", logs.String())
	}
	leaf, err = loadLeaf(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("verona.example.org"); err != nil {
		t.Errorf("regenerated certificate: %v", err)
	}
}

func TestLoadOrCreateRegenerates(t *testing.T) {
	domains := []string{"montague.example.net"}
	tests := []struct {
		name   string
		spoil  func(t *testing.T, certFile, keyFile string)
		reason string
	}{
		{"expiring", func(t *testing.T, certFile, keyFile string) {
			c, k, err := Generate(domains, nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, certFile, c)
			writeFile(t, keyFile, k)
		}, "existing certificate expires"},
		{"garbage", func(t *testing.T, certFile, _ string) {
			writeFile(t, certFile, []byte("not a certificate"))
		}, "existing certificate unusable"},
		{"key of another certificate", func(t *testing.T, _, keyFile string) {
			_, k, err := Generate(domains, nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, keyFile, k)
		}, "existing certificate unusable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile, _, err := LoadOrCreate(dir, domains, nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.spoil(t, certFile, keyFile)
			var logs bytes.Buffer
			_, _, created, err := LoadOrCreate(dir, domains, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if !created {
				t.Error("created = false")
			}
			if !strings.Contains(logs.String(), tt.reason) {
				t.Errorf("log = %q, want the reason %q", logs.String(), tt.reason)
			}
			if _, err := loadLeaf(certFile, keyFile); err != nil {
				t.Errorf("regenerated pair does not load: %v", err)
			}
		})
	}
}

func TestLoadOrCreateNoDomains(t *testing.T) {
	if _, _, _, err := LoadOrCreate(t.TempDir(), nil, nil); err == nil {
		t.Fatal("LoadOrCreate with no domains succeeded")
	}
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writePair generates a certificate for domains into dir and returns its
// file names and PEM.
func writePair(t *testing.T, dir, prefix string, domains ...string) (certFile, keyFile string, certPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := Generate(domains, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, prefix+".crt")
	keyFile = filepath.Join(dir, prefix+".key")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	return certFile, keyFile, certPEM
}

// serve accepts TLS connections with cfg on a loopback listener, completes
// each handshake and sends the client's certificates (if any) on peers.
func serve(t *testing.T, cfg *tls.Config) (addr string, peers <-chan []*x509.Certificate) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan []*x509.Certificate, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err == nil {
				ch <- tc.ConnectionState().PeerCertificates
				io.Copy(io.Discard, tc)
			}
			tc.Close()
		}
	}()
	return ln.Addr().String(), ch
}

// handshake connects to addr and returns the server's leaf certificate.
func handshake(t *testing.T, addr string, cfg *tls.Config) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func TestStoreReloadSwapsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, oldPEM := writePair(t, dir, "server", "a.example")
	s, err := New(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, s.ServerConfig())
	insecure := &tls.Config{InsecureSkipVerify: true, ServerName: "a.example"}

	oldLeaf := parsePEMCert(t, oldPEM)
	if got := handshake(t, addr, insecure); !got.Equal(oldLeaf) {
		t.Fatalf("server presented %v, want the loaded certificate", got.Subject)
	}

	// Replace the files with a certificate for another domain, reload.
	_, _, newPEM := writePair(t, dir, "server", "b.example")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	newLeaf := parsePEMCert(t, newPEM)
	if got := handshake(t, addr, insecure); !got.Equal(newLeaf) {
		t.Errorf("after reload server presented %v (%v), want the new certificate", got.Subject, got.DNSNames)
	}
	if !s.Leaf().Equal(newLeaf) {
		t.Errorf("Leaf() = %v after reload, want the new certificate", s.Leaf().DNSNames)
	}

	// Break the key file: reload fails and the new certificate stays.
	writeFile(t, keyFile, []byte("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n"))
	if err := s.Reload(); err == nil {
		t.Error("reload with a broken key succeeded")
	} else if !strings.Contains(err.Error(), keyFile) {
		t.Errorf("reload error %q does not name the file", err)
	}
	if got := handshake(t, addr, insecure); !got.Equal(newLeaf) {
		t.Errorf("after failed reload server presented %v, want the previous certificate", got.DNSNames)
	}

	// Remove the certificate file: same.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Error("reload with a missing certificate succeeded")
	}
	if got := handshake(t, addr, insecure); !got.Equal(newLeaf) {
		t.Errorf("after failed reload server presented %v, want the previous certificate", got.DNSNames)
	}
}

func TestStoreClientAndServer(t *testing.T) {
	dir := t.TempDir()
	// Server a.example trusts b.example through its CA file and vice versa,
	// as two umppd peers on loopback would.
	aCert, aKey, aPEM := writePair(t, dir, "a", "a.example")
	bCert, bKey, bPEM := writePair(t, dir, "b", "b.example")
	a, err := New(aCert, aKey, bCert)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(bCert, bKey, aCert)
	if err != nil {
		t.Fatal(err)
	}
	addr, peers := serve(t, a.ServerConfig())

	// b connects to a: verifies a's certificate, presents its own.
	if got := handshake(t, addr, b.ClientConfig("a.example")); !got.Equal(parsePEMCert(t, aPEM)) {
		t.Errorf("client saw %v", got.DNSNames)
	}
	chain := <-peers
	if len(chain) == 0 || !chain[0].Equal(parsePEMCert(t, bPEM)) {
		t.Fatalf("server got client chain %v, want b's certificate", chain)
	}
	if err := a.VerifyPeer(chain, "b.example"); err != nil {
		t.Errorf("VerifyPeer(b.example): %v", err)
	}
	if err := a.VerifyPeer(chain, "c.example"); err == nil {
		t.Error("VerifyPeer accepted b's certificate for c.example")
	}
	if err := b.VerifyPeer(chain, "b.example"); err == nil {
		t.Error("VerifyPeer accepted a certificate not in the roots")
	}
	if err := a.VerifyPeer(nil, "b.example"); err == nil {
		t.Error("VerifyPeer accepted no certificate")
	}

	// Wrong name: the client refuses.
	if c, err := tls.Dial("tcp", addr, b.ClientConfig("c.example")); err == nil {
		c.Close()
		t.Error("client accepted a.example's certificate for c.example")
	}
	// A client that presents no certificate is still served.
	if got := handshake(t, addr, &tls.Config{RootCAs: b.RootCAs(), ServerName: "a.example"}); got == nil {
		t.Error("no server certificate")
	}
	if chain := <-peers; len(chain) != 0 {
		t.Errorf("server saw a client certificate from a client that sent none")
	}
	if a.ServerConfig().MinVersion != tls.VersionTLS12 || a.ClientConfig("x").MinVersion != tls.VersionTLS12 {
		t.Error("TLS minimum version is not 1.2")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writePair(t, dir, "a", "a.example")
	notPEM := filepath.Join(dir, "ca.txt")
	writeFile(t, notPEM, []byte("hello"))
	tests := []struct {
		name                      string
		certFile, keyFile, caFile string
		want                      string
	}{
		{"missing cert", filepath.Join(dir, "nope.crt"), keyFile, "", "nope.crt"},
		{"cert as key", certFile, certFile, "", "a.crt"},
		{"missing CA", certFile, keyFile, filepath.Join(dir, "nope-ca.pem"), "nope-ca.pem"},
		{"CA not PEM", certFile, keyFile, notPEM, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.certFile, tt.keyFile, tt.caFile)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
