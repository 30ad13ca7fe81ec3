package saslext_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"reflect"
	"testing"

	"github.com/umpp/umpp/xmppside/saslext"
)

func TestVerifyPeerCertificate(t *testing.T) {
	root := newCA(t, "test root")
	inter := root.intermediate(t, "test intermediate")
	stranger := newCA(t, "someone else's root")
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)

	state := func(certs ...*x509.Certificate) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: certs}
	}
	leaf := func(o leafOpts) tls.ConnectionState {
		c, _ := root.issue(t, o)
		return state(c)
	}
	viaInter, _ := inter.issue(t, leafOpts{dns: []string{"a.example"}})
	untrusted, _ := stranger.issue(t, leafOpts{dns: []string{"a.example"}})

	tests := []struct {
		name    string
		state   tls.ConnectionState
		domain  string
		wantErr error
	}{
		{"DNS-ID", leaf(leafOpts{dns: []string{"a.example"}}), "a.example", nil},
		{"DNS-ID ignores case and trailing dot", leaf(leafOpts{dns: []string{"A.Example."}}), "a.example", nil},
		{"DNS-ID among others", leaf(leafOpts{dns: []string{"x.example", "a.example"}}), "a.example", nil},
		{"wildcard matches one label", leaf(leafOpts{dns: []string{"*.example.org"}}), "a.example.org", nil},
		{"wildcard does not match the parent", leaf(leafOpts{dns: []string{"*.example.org"}}), "example.org", saslext.ErrNameMismatch},
		{"wildcard does not match two labels", leaf(leafOpts{dns: []string{"*.example.org"}}), "a.b.example.org", saslext.ErrNameMismatch},
		{"partial-label wildcard refused", leaf(leafOpts{dns: []string{"a*.example.org"}}), "ab.example.org", saslext.ErrNameMismatch},
		{"wildcard not left-most refused", leaf(leafOpts{dns: []string{"a.*.example.org"}}), "a.b.example.org", saslext.ErrNameMismatch},
		{"wildcard over a TLD refused", leaf(leafOpts{dns: []string{"*.org"}}), "example.org", saslext.ErrNameMismatch},
		{"SRV-ID", leaf(leafOpts{srv: []string{"_xmpp-server.a.example"}}), "a.example", nil},
		{"SRV-ID of the client service refused", leaf(leafOpts{srv: []string{"_xmpp-client.a.example"}}), "a.example", saslext.ErrNameMismatch},
		{"SRV-ID of another domain", leaf(leafOpts{srv: []string{"_xmpp-server.b.example"}}), "a.example", saslext.ErrNameMismatch},
		{"XmppAddr", leaf(leafOpts{xmpp: []string{"a.example"}}), "a.example", nil},
		{"XmppAddr of a user refused", leaf(leafOpts{xmpp: []string{"admin@a.example"}}), "a.example", saslext.ErrNameMismatch},
		{"wrong domain", leaf(leafOpts{dns: []string{"b.example"}, xmpp: []string{"b.example"}}), "a.example", saslext.ErrNameMismatch},
		{"expired", leaf(leafOpts{dns: []string{"a.example"}, expired: true}), "a.example", saslext.ErrUntrusted},
		{"chain through an intermediate", state(viaInter, inter.cert), "a.example", nil},
		{"intermediate missing", state(viaInter), "a.example", saslext.ErrUntrusted},
		{"untrusted root", state(untrusted), "a.example", saslext.ErrUntrusted},
		{"code-signing only", leaf(leafOpts{dns: []string{"a.example"}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}), "a.example", saslext.ErrUntrusted},
		{"no client certificate", state(), "a.example", saslext.ErrNoCertificate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := saslext.VerifyPeerCertificate(tc.state, tc.domain, roots)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("VerifyPeerCertificate: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("VerifyPeerCertificate = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestPeerIdentities(t *testing.T) {
	root := newCA(t, "root")
	c, _ := root.issue(t, leafOpts{
		dns:  []string{"a.example"},
		srv:  []string{"_xmpp-server.a.example"},
		xmpp: []string{"a.example", "ünïcode.example"},
	})
	got, err := saslext.PeerIdentities(c)
	if err != nil {
		t.Fatal(err)
	}
	want := saslext.Identities{
		DNS:  []string{"a.example"},
		SRV:  []string{"_xmpp-server.a.example"},
		XMPP: []string{"a.example", "ünïcode.example"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PeerIdentities = %+v, want %+v", got, want)
	}
}

func TestParseOtherNamesMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		der  []byte
	}{
		{"empty", nil},
		{"not a sequence", []byte{0x04, 0x01, 0x00}},
		{"trailing bytes", []byte{0x30, 0x00, 0x00}},
		{"truncated", []byte{0x30, 0x05, 0xa0, 0x03}},
		// otherName xmppAddr whose value is an INTEGER.
		{"xmppAddr not a string", []byte{0x30, 0x11, 0xa0, 0x0f, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05, 0xa0, 0x03, 0x02, 0x01, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := saslext.ParseOtherNames(tc.der); !errors.Is(err, saslext.ErrBadSAN) {
				t.Errorf("ParseOtherNames(% x) error = %v, want ErrBadSAN", tc.der, err)
			}
		})
	}
}

func FuzzParseOtherNames(f *testing.F) {
	f.Add([]byte{0x30, 0x11, 0xa0, 0x0f, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05, 0xa0, 0x03, 0x0c, 0x01, 0x61})
	f.Add([]byte{0x30, 0x0b, 0x82, 0x09, 'a', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'})
	f.Fuzz(func(t *testing.T, der []byte) {
		srv, xmpp, err := saslext.ParseOtherNames(der)
		if err != nil {
			return
		}
		ids := saslext.Identities{SRV: srv, XMPP: xmpp}
		// Matching must not panic whatever the names are.
		_ = ids.Matches("a.example")
		srvOnly := saslext.Identities{SRV: srv}
		for _, s := range srv {
			if s != "" && srvOnly.Matches(s) {
				t.Errorf("SRV-ID %q matches itself as a domain", s)
			}
		}
	})
}
