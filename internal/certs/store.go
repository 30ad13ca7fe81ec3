package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Store holds the certificate umppd presents and the roots it trusts, and
// swaps both atomically on Reload. Its methods are safe for concurrent use.
type Store struct {
	mu                        sync.Mutex // serializes reloads; guards the file names
	certFile, keyFile, caFile string

	cert  atomic.Pointer[tls.Certificate]
	roots atomic.Pointer[x509.CertPool]
}

// New loads the certificate chain in certFile with its private key in
// keyFile, and the PEM certificates in caFile (when not "") as roots
// trusted in addition to the system's.
func New(certFile, keyFile, caFile string) (*Store, error) {
	s := &Store{certFile: certFile, keyFile: keyFile, caFile: caFile}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the certificate, key and CA files (on SIGHUP). On any
// error the store keeps what it had and returns the error. Connections
// already established are not affected; new handshakes use the new
// certificate.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.load(s.certFile, s.keyFile, s.caFile)
}

// ReloadFiles is Reload from other files, for a configuration whose [tls]
// names changed. On error the store keeps its files and certificate.
func (s *Store) ReloadFiles(certFile, keyFile, caFile string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(certFile, keyFile, caFile); err != nil {
		return err
	}
	s.certFile, s.keyFile, s.caFile = certFile, keyFile, caFile
	return nil
}

func (s *Store) load(certFile, keyFile, caFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("certs: load %s and %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return fmt.Errorf("certs: parse %s: %w", certFile, err)
		}
		cert.Leaf = leaf
	}
	roots, err := loadRoots(caFile)
	if err != nil {
		return err
	}
	s.cert.Store(&cert)
	s.roots.Store(roots)
	return nil
}

// loadRoots returns the system roots (or an empty pool where the system
// has none) plus the certificates in caFile.
func loadRoots(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("certs: read CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("certs: CA file %s: no PEM certificate found", caFile)
	}
	return pool, nil
}

// loadLeaf loads a certificate and key pair and returns the parsed leaf
// certificate.
func loadLeaf(certFile, keyFile string) (*x509.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	if cert.Leaf != nil {
		return cert.Leaf, nil
	}
	return x509.ParseCertificate(cert.Certificate[0])
}

// Certificate returns the current certificate.
func (s *Store) Certificate() *tls.Certificate { return s.cert.Load() }

// Leaf returns the current parsed end-entity certificate, for status
// output (subject, SANs, expiry). The caller must not modify it.
func (s *Store) Leaf() *x509.Certificate { return s.cert.Load().Leaf }

// GetCertificate is a tls.Config.GetCertificate returning the current
// certificate whatever the SNI: every hosted domain is in the one
// certificate.
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// GetClientCertificate is a tls.Config.GetClientCertificate presenting the
// current certificate on connections umppd opens (XMPP s2s, SIP over TLS),
// so peers can authenticate our domain from it.
func (s *Store) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// RootCAs returns the roots trusted for peers: the system's plus the
// configured CA file, as of the last successful load.
func (s *Store) RootCAs() *x509.CertPool { return s.roots.Load() }

// ServerConfig returns a TLS configuration for listeners: TLS 1.2 or
// newer, the current certificate on every handshake.
//
// It requests a client certificate but does not verify it
// (tls.RequestClientCert): a handshake never fails for the client's
// certificate. XMPP clients send none; an XMPP s2s peer's certificate is
// checked later against the domain it claims in its stream header, with
// VerifyPeer, to offer SASL EXTERNAL (RFC 6120 §13.7.1.2.1, XEP-0178),
// and a peer whose certificate does not verify can still authenticate
// with dialback. The SIP side likewise checks a peer's certificate
// against the domain in the request (RFC 5922 §7.3).
//
// The returned value is fresh on each call and may be modified.
func (s *Store) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.GetCertificate,
		ClientAuth:     tls.RequestClientCert,
	}
}

// ClientConfig returns a TLS configuration for a connection umppd opens
// to serverName: TLS 1.2 or newer, the server verified against RootCAs
// for serverName, and our certificate presented when asked for. Call it
// per connection: it takes the roots current at the call.
func (s *Store) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		ServerName:           serverName,
		RootCAs:              s.roots.Load(),
		GetClientCertificate: s.GetClientCertificate,
	}
}

// VerifyPeer checks a certificate chain a peer presented (leaf first, as
// in tls.ConnectionState.PeerCertificates) against RootCAs for the DNS
// name domain. Any extended key usage is accepted: s2s peers commonly
// present a server-only certificate as client.
func (s *Store) VerifyPeer(chain []*x509.Certificate, domain string) error {
	if len(chain) == 0 {
		return errors.New("certs: verify peer: no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:       domain,
		Roots:         s.roots.Load(),
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("certs: verify peer %s: %w", domain, err)
	}
	return nil
}
