package saslext_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/umpp/umpp/xmppside/saslext"
)

// ca is a certificate authority of the tests.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newCA(t *testing.T, name string) *ca {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert: cert, key: key}
}

// intermediate returns a CA signed by c.
func (c *ca) intermediate(t *testing.T, name string) *ca {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert: cert, key: key}
}

type leafOpts struct {
	dns, srv, xmpp []string
	expired        bool
	eku            []x509.ExtKeyUsage
}

func otherName(t *testing.T, oid asn1.ObjectIdentifier, tag int, v string) []byte {
	t.Helper()
	str, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(v)})
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: str})
	if err != nil {
		t.Fatal(err)
	}
	oidDER, err := asn1.Marshal(oid)
	if err != nil {
		t.Fatal(err)
	}
	gn, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oidDER, explicit...)})
	if err != nil {
		t.Fatal(err)
	}
	return gn
}

// sanExtension builds a subjectAltName with dNSName, SRVName and xmppAddr
// entries (crypto/x509 cannot write otherNames).
func sanExtension(t *testing.T, o leafOpts) pkix.Extension {
	t.Helper()
	var names []byte
	for _, d := range o.dns {
		gn, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(d)})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, gn...)
	}
	for _, s := range o.srv {
		names = append(names, otherName(t, saslext.OIDDNSSRV(), asn1.TagIA5String, s)...)
	}
	for _, x := range o.xmpp {
		names = append(names, otherName(t, saslext.OIDXmppAddr(), asn1.TagUTF8String, x)...)
	}
	seq, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: names})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: seq}
}

// issue makes a leaf certificate signed by c and returns it with the TLS
// certificate (leaf plus chain) a server would present.
func (c *ca) issue(t *testing.T, o leafOpts, chain ...*x509.Certificate) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	key := newKey(t)
	notBefore, notAfter := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if o.expired {
		notBefore, notAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	}
	eku := o.eku
	if eku == nil {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial(t),
		Subject:         pkix.Name{CommonName: "ignored.example"},
		NotBefore:       notBefore,
		NotAfter:        notAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     eku,
		ExtraExtensions: []pkix.Extension{sanExtension(t, o)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	for _, ch := range chain {
		tc.Certificate = append(tc.Certificate, ch.Raw)
	}
	return leaf, tc
}
