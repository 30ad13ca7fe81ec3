package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// SelfSignedValidity is how long a certificate made by LoadOrCreate is
// valid.
const SelfSignedValidity = 365 * 24 * time.Hour

// renewBefore is how close to expiry a self-signed certificate is replaced
// rather than reused.
const renewBefore = 24 * time.Hour

// Generate makes a self-signed ECDSA P-256 certificate whose subject
// alternative names are the given DNS names and IP addresses, valid from
// one minute ago for validFor. It returns the certificate and its PKCS #8
// private key, both PEM-encoded. The certificate is its own issuer, so a
// pool holding only it verifies it (useful for tests without a CA).
func Generate(domains []string, ips []net.IP, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(domains) == 0 && len(ips) == 0 {
		return nil, nil, errors.New("certs: generate: no domain or IP address to certify")
	}
	if validFor <= 0 {
		return nil, nil, fmt.Errorf("certs: generate: validity %v is not positive", validFor)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate serial number: %w", err)
	}
	cn := "umppd"
	if len(domains) > 0 {
		cn = domains[0]
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"umppd self-signed"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validFor),
		DNSNames:     slices.Clone(domains),
		IPAddresses:  slices.Clone(ips),
		// Like "openssl req -x509": a self-signed certificate that is its
		// own trust anchor. OpenSSL-based peers (Prosody, Kamailio) accept
		// it in their CA file only when it may sign certificates.
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		// Server for our listeners, client for s2s and SIP TLS connections
		// we open.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: marshal key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// LoadOrCreate returns the paths of the self-signed certificate and key
// under dataDir/tls (selfsigned.crt, selfsigned.key), used when the
// configuration names no certificate. A certificate left by an earlier run
// is reused when it still names every domain and is more than a day from
// expiry; otherwise a new one is generated for the domains plus
// "localhost", 127.0.0.1 and ::1, valid for a year, and created is true.
// The directory is made with mode 0700 and the key written with mode 0600.
func LoadOrCreate(dataDir string, domains []string, log *slog.Logger) (certFile, keyFile string, created bool, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(domains) == 0 {
		return "", "", false, errors.New("certs: self-signed certificate: no hosted domain")
	}
	dir := filepath.Join(dataDir, "tls")
	certFile = filepath.Join(dir, "selfsigned.crt")
	keyFile = filepath.Join(dir, "selfsigned.key")

	why, err := unusable(certFile, keyFile, domains, time.Now())
	if err != nil {
		return "", "", false, err
	}
	if why == "" {
		log.Debug("reusing self-signed certificate", "cert", certFile, "domains", domains)
		return certFile, keyFile, false, nil
	}

	names := slices.Clone(domains)
	if !slices.Contains(names, "localhost") {
		names = append(names, "localhost")
	}
	certPEM, keyPEM, err := Generate(names, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, SelfSignedValidity)
	if err != nil {
		return "", "", false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, fmt.Errorf("certs: self-signed certificate: %w", err)
	}
	// MkdirAll leaves an existing directory alone; the key must not be
	// readable by others even if someone loosened it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", "", false, fmt.Errorf("certs: self-signed certificate: %w", err)
	}
	// Key first: a certificate next to a stale key is worse than the reverse,
	// which the next run detects as a mismatch and regenerates.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return "", "", false, fmt.Errorf("certs: write self-signed key: %w", err)
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return "", "", false, fmt.Errorf("certs: write self-signed certificate: %w", err)
	}
	log.Info("generated self-signed certificate", "cert", certFile, "key", keyFile,
		"domains", domains, "valid_for", SelfSignedValidity.String(), "reason", why)
	return certFile, keyFile, true, nil
}

// unusable says why the certificate pair at certFile/keyFile cannot be
// reused for domains at now, or "" if it can. Only failures other than a
// missing or unreadable pair (which is a reason to regenerate) are errors.
func unusable(certFile, keyFile string, domains []string, now time.Time) (string, error) {
	if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
		return "no certificate yet", nil
	} else if err != nil {
		return "", fmt.Errorf("certs: self-signed certificate: %w", err)
	}
	leaf, err := loadLeaf(certFile, keyFile)
	if err != nil {
		return fmt.Sprintf("existing certificate unusable: %v", err), nil
	}
	if now.Add(renewBefore).After(leaf.NotAfter) {
		return fmt.Sprintf("existing certificate expires %s", leaf.NotAfter.UTC().Format(time.RFC3339)), nil
	}
	for _, d := range domains {
		if err := leaf.VerifyHostname(d); err != nil {
			return fmt.Sprintf("existing certificate does not name %s", d), nil
		}
	}
	return "", nil
}

// writeFileAtomic writes data to a temporary file in name's directory and
// renames it over name, so a reader never sees half a file.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
