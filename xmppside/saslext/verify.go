package saslext

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// OIDXmppAddr returns id-on-xmppAddr (RFC 6120 §13.7.1.4), the otherName
// whose value is a UTF8String XMPP address.
func OIDXmppAddr() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5} }

// OIDDNSSRV returns id-on-dnsSRV (RFC 4985), the otherName whose value is
// an IA5String such as "_xmpp-server.example.com".
func OIDDNSSRV() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 7} }

func oidSubjectAltName() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{2, 5, 29, 17} }

// Errors of VerifyPeerCertificate; the returned errors wrap one of them.
var (
	ErrNoCertificate = errors.New("saslext: peer presented no certificate")
	ErrUntrusted     = errors.New("saslext: peer certificate not trusted")
	ErrNameMismatch  = errors.New("saslext: peer certificate not valid for the domain")
	ErrBadSAN        = errors.New("saslext: malformed subjectAltName")
)

// maxSANNames bounds the names read from one certificate.
const maxSANNames = 1024

// Identities are the presented identifiers of a certificate that RFC 6120
// §13.7.1.2 lets stand for an XMPP server domain.
type Identities struct {
	// DNS are the dNSName entries (DNS-IDs), wildcards included.
	DNS []string
	// SRV are the id-on-dnsSRV otherName entries (SRV-IDs) as written, e.g.
	// "_xmpp-server.example.com".
	SRV []string
	// XMPP are the id-on-xmppAddr otherName entries (XmppAddrs).
	XMPP []string
}

// PeerIdentities returns the identifiers that cert presents. The common
// name is not among them: RFC 6125 §6.4.4 allows it only as a fallback that
// Go's crypto/x509 dropped, and so do we.
func PeerIdentities(cert *x509.Certificate) (Identities, error) {
	ids := Identities{DNS: append([]string(nil), cert.DNSNames...)}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName()) {
			continue
		}
		srv, xmpp, err := ParseOtherNames(ext.Value)
		if err != nil {
			return ids, err
		}
		ids.SRV, ids.XMPP = srv, xmpp
	}
	return ids, nil
}

// ParseOtherNames reads the DER subjectAltName extension value san and
// returns its SRV-IDs (id-on-dnsSRV) and XmppAddrs (id-on-xmppAddr). Other
// name forms are skipped.
func ParseOtherNames(san []byte) (srv, xmpp []string, err error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(san, &seq)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadSAN, err)
	}
	if len(rest) != 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, nil, fmt.Errorf("%w: not a sequence", ErrBadSAN)
	}
	names := seq.Bytes
	for n := 0; len(names) > 0; n++ {
		if n >= maxSANNames {
			return nil, nil, fmt.Errorf("%w: more than %d names", ErrBadSAN, maxSANNames)
		}
		var gn asn1.RawValue
		names, err = asn1.Unmarshal(names, &gn)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrBadSAN, err)
		}
		// otherName is [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }.
		if gn.Class != asn1.ClassContextSpecific || gn.Tag != 0 || !gn.IsCompound {
			continue
		}
		var oid asn1.ObjectIdentifier
		inner, err := asn1.Unmarshal(gn.Bytes, &oid)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: otherName type: %w", ErrBadSAN, err)
		}
		isXMPP, isSRV := oid.Equal(OIDXmppAddr()), oid.Equal(OIDDNSSRV())
		if !isXMPP && !isSRV {
			continue
		}
		var explicit asn1.RawValue
		if _, err := asn1.Unmarshal(inner, &explicit); err != nil {
			return nil, nil, fmt.Errorf("%w: otherName value: %w", ErrBadSAN, err)
		}
		if explicit.Class != asn1.ClassContextSpecific || explicit.Tag != 0 || !explicit.IsCompound {
			return nil, nil, fmt.Errorf("%w: otherName value not [0] EXPLICIT", ErrBadSAN)
		}
		var str asn1.RawValue
		if _, err := asn1.Unmarshal(explicit.Bytes, &str); err != nil {
			return nil, nil, fmt.Errorf("%w: otherName string: %w", ErrBadSAN, err)
		}
		if str.Class != asn1.ClassUniversal {
			return nil, nil, fmt.Errorf("%w: otherName string of class %d", ErrBadSAN, str.Class)
		}
		v := string(str.Bytes)
		switch {
		case isXMPP && str.Tag == asn1.TagUTF8String && utf8.ValidString(v):
			xmpp = append(xmpp, v)
		case isSRV && str.Tag == asn1.TagIA5String && isASCII(v):
			srv = append(srv, v)
		default:
			return nil, nil, fmt.Errorf("%w: otherName %v with string tag %d", ErrBadSAN, oid, str.Tag)
		}
	}
	return srv, xmpp, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// normalizeDNS lower-cases an ASCII domain and drops one trailing dot.
func normalizeDNS(s string) string {
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// matchDNSID reports whether the DNS-ID presented matches domain (RFC 6125
// §6.4.3): equal ignoring case, or a wildcard "*" that is the whole
// left-most label and stands for exactly one label, with at least two labels
// after it.
func matchDNSID(presented, domain string) bool {
	p, d := normalizeDNS(presented), normalizeDNS(domain)
	if p == "" || d == "" {
		return false
	}
	if !strings.Contains(p, "*") {
		return p == d
	}
	rest, ok := strings.CutPrefix(p, "*.")
	if !ok || strings.Contains(rest, "*") || strings.Count(rest, ".") < 1 {
		return false
	}
	label, dRest, ok := strings.Cut(d, ".")
	return ok && label != "" && dRest == rest
}

// matchSRVID reports whether the SRV-ID presented is _xmpp-server.domain
// (RFC 6125 §6.5.1, RFC 6120 §13.7.1.2.1). No wildcards.
func matchSRVID(presented, domain string) bool {
	name, ok := strings.CutPrefix(normalizeDNS(presented), "_xmpp-server.")
	return ok && name != "" && !strings.Contains(name, "*") && name == normalizeDNS(domain)
}

// matchXmppAddr reports whether the XmppAddr presented is the bare domain
// (RFC 6120 §13.7.1.4), compared after XMPP address preparation.
func matchXmppAddr(presented, domain string) bool {
	p, err := jid.Parse(presented)
	if err != nil || p.Localpart() != "" || p.Resourcepart() != "" {
		return false
	}
	d, err := jid.Parse(domain)
	if err != nil {
		return false
	}
	return p.Equal(d)
}

// Matches reports whether one of the identities is valid for domain.
func (ids Identities) Matches(domain string) bool {
	for _, n := range ids.DNS {
		if matchDNSID(n, domain) {
			return true
		}
	}
	for _, n := range ids.SRV {
		if matchSRVID(n, domain) {
			return true
		}
	}
	for _, n := range ids.XMPP {
		if matchXmppAddr(n, domain) {
			return true
		}
	}
	return false
}

// VerifyPeerCertificate checks the certificate a peer server presented in
// the TLS handshake state for domain, as RFC 6120 §13.7.2 and XEP-0178
// require before SASL EXTERNAL succeeds: the chain must verify against roots
// (nil means the system roots) at the current time, for client or server
// authentication, and the leaf must present a DNS-ID, SRV-ID
// (_xmpp-server) or XmppAddr for domain.
func VerifyPeerCertificate(state tls.ConnectionState, domain string, roots *x509.CertPool) error {
	if len(state.PeerCertificates) == 0 {
		return ErrNoCertificate
	}
	leaf := state.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range state.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	ids, err := PeerIdentities(leaf)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNameMismatch, err)
	}
	if !ids.Matches(domain) {
		return fmt.Errorf("%w: %s (DNS %q, SRV %q, XmppAddr %q)", ErrNameMismatch, domain, ids.DNS, ids.SRV, ids.XMPP)
	}
	return nil
}
