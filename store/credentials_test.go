package store_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"mellium.im/sasl"

	"github.com/umpp/umpp/store"
)

func derive(t testing.TB, user, realm, password string) store.Credentials {
	t.Helper()
	c, err := store.DeriveCredentials(user, realm, password)
	if err != nil {
		t.Fatalf("DeriveCredentials(%q, %q, password): %v", user, realm, err)
	}
	return c
}

// scramLogin runs a whole SCRAM exchange between mellium's client (the
// password the user typed) and mellium's server (fed by SCRAMLookup), as
// the XMPP host does, and returns the server's verdict.
func scramLogin(mech sasl.Mechanism, c store.Credentials, user, typed string) error {
	client := sasl.NewClient(mech, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(user), []byte(typed), nil
	}))
	server := sasl.NewServer(mech, nil, sasl.SaltedCredentials(func(u, _ []byte, name string) ([]byte, []byte, int64, error) {
		if string(u) != user {
			return nil, nil, 0, sasl.ErrAuthn
		}
		salt, salted, iter, ok := c.SCRAMLookup(name)
		if !ok {
			return nil, nil, 0, sasl.ErrAuthn
		}
		return salt, salted, iter, nil
	}))
	_, msg, err := client.Step(nil)
	if err != nil {
		return fmt.Errorf("client first: %w", err)
	}
	for {
		more, resp, err := server.Step(msg)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		if !more {
			// The client checks the server signature.
			if _, _, err := client.Step(resp); err != nil {
				return fmt.Errorf("client final: %w", err)
			}
			return nil
		}
		if _, msg, err = client.Step(resp); err != nil {
			return fmt.Errorf("client: %w", err)
		}
	}
}

func TestSCRAMLoginWithDerivedCredentials(t *testing.T) {
	c := derive(t, "juliet", "capulet.example", "r0m30myr0m30")
	tests := []struct {
		mech   sasl.Mechanism
		typed  string
		wantOK bool
	}{
		{sasl.ScramSha1, "r0m30myr0m30", true},
		{sasl.ScramSha256, "r0m30myr0m30", true},
		{sasl.ScramSha1, "r0m30myr0m31", false},
		{sasl.ScramSha256, "R0M30MYR0M30", false},
		{sasl.ScramSha256, "", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%q", tt.mech.Name, tt.typed), func(t *testing.T) {
			err := scramLogin(tt.mech, c, "juliet", tt.typed)
			if tt.wantOK && err != nil {
				t.Fatalf("login with the right password failed: %v", err)
			}
			if !tt.wantOK && err == nil {
				t.Fatal("login with a wrong password succeeded")
			}
		})
	}
}

// digestResponse is the RFC 7616 §3.4.1 response for qop=auth.
func digestResponse(h func([]byte) string, ha1, method, uri, nonce, nc, cnonce string) string {
	ha2 := h([]byte(method + ":" + uri))
	return h([]byte(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2))
}

// TestHA1AgainstRFC7616 checks the stored HA1 against the worked example
// of RFC 7616 §3.9.1: a client computing the response from the password
// must agree with a server that only has the HA1.
func TestHA1AgainstRFC7616(t *testing.T) {
	c := derive(t, "Mufasa", "http-auth@example.org", "Circle of Life")
	md5hex := func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
	sha256hex := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	const (
		nonce  = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
		cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
	)
	tests := []struct {
		alg  string
		h    func([]byte) string
		want string
	}{
		{"MD5", md5hex, "8ca523f5e9506fed4657c9700eebdbec"},
		{"SHA-256", sha256hex, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			ha1, ok := c.HA1(tt.alg)
			if !ok {
				t.Fatalf("HA1(%q) not found", tt.alg)
			}
			got := digestResponse(tt.h, ha1, "GET", "/dir/index.html", nonce, "00000001", cnonce)
			if got != tt.want {
				t.Errorf("response = %s, want %s (RFC 7616 §3.9.1)", got, tt.want)
			}
		})
	}
}

func TestHA1Algorithms(t *testing.T) {
	c := derive(t, "romeo", "montague.example", "secret")
	tests := []struct {
		alg    string
		want   string
		wantOK bool
	}{
		{"MD5", c.HA1MD5, true},
		{"md5", c.HA1MD5, true},
		{"", c.HA1MD5, true},
		{"MD5-sess", c.HA1MD5, true},
		{"SHA-256", c.HA1SHA256, true},
		{"sha-256-sess", c.HA1SHA256, true},
		{"-sess", "", false},
		{"SHA-512-256", "", false},
		{"SHA256", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			got, ok := c.HA1(tt.alg)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("HA1(%q) = %q, %v; want %q, %v", tt.alg, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if _, ok := (store.Credentials{}).HA1("MD5"); ok {
		t.Error("empty credentials have an MD5 HA1")
	}
	if len(c.HA1MD5) != 32 || len(c.HA1SHA256) != 64 {
		t.Errorf("HA1 lengths = %d, %d; want 32, 64 hex digits", len(c.HA1MD5), len(c.HA1SHA256))
	}
}

func TestSCRAMLookup(t *testing.T) {
	c := derive(t, "romeo", "montague.example", "secret")
	tests := []struct {
		mech   string
		want   []byte
		wantOK bool
	}{
		{"SCRAM-SHA-1", c.SaltedSHA1, true},
		{"SCRAM-SHA-1-PLUS", c.SaltedSHA1, true},
		{"SCRAM-SHA-256", c.SaltedSHA256, true},
		{"SCRAM-SHA-256-PLUS", c.SaltedSHA256, true},
		{"PLAIN", nil, false},
		{"SCRAM-SHA-512", nil, false},
		{"", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.mech, func(t *testing.T) {
			salt, salted, iter, ok := c.SCRAMLookup(tt.mech)
			if ok != tt.wantOK || !bytes.Equal(salted, tt.want) {
				t.Fatalf("SCRAMLookup(%q) = %x, %v; want %x, %v", tt.mech, salted, ok, tt.want, tt.wantOK)
			}
			if ok && (!bytes.Equal(salt, c.Salt) || iter != store.DefaultIterations) {
				t.Errorf("SCRAMLookup(%q) salt, iter = %x, %d; want %x, %d", tt.mech, salt, iter, c.Salt, store.DefaultIterations)
			}
		})
	}
	if _, _, _, ok := (store.Credentials{}).SCRAMLookup("SCRAM-SHA-256"); ok {
		t.Error("empty credentials answer a SCRAM lookup")
	}
	if len(c.SaltedSHA1) != 20 || len(c.SaltedSHA256) != 32 || len(c.Salt) != store.SaltSize {
		t.Errorf("lengths sha1=%d sha256=%d salt=%d; want 20, 32, %d", len(c.SaltedSHA1), len(c.SaltedSHA256), len(c.Salt), store.SaltSize)
	}
}

func TestVerifyPassword(t *testing.T) {
	tests := []struct {
		name     string
		password string
		typed    string
		want     bool
	}{
		{"same", "correct horse", "correct horse", true},
		{"wrong", "correct horse", "correct horsf", false},
		{"case matters", "correct horse", "Correct horse", false},
		{"empty typed", "correct horse", "", false},
		{"prefix", "correct horse", "correct", false},
		// OpaqueString maps non-ASCII spaces to U+0020 and applies NFC.
		{"no-break space", "correct horse", "correct\u00a0horse", true},
		{"decomposed accent", "caf\u00e9", "cafe\u0301", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := derive(t, "romeo", "montague.example", tt.password)
			if got := c.VerifyPassword(tt.typed); got != tt.want {
				t.Errorf("VerifyPassword = %v, want %v", got, tt.want)
			}
		})
	}
	if (store.Credentials{}).VerifyPassword("") {
		t.Error("empty credentials accept the empty password")
	}
	t.Run("sha1 only", func(t *testing.T) {
		c := derive(t, "romeo", "montague.example", "secret")
		c.SaltedSHA256 = nil
		if !c.VerifyPassword("secret") || c.VerifyPassword("secreT") {
			t.Error("credentials with only SCRAM-SHA-1 do not verify like the password")
		}
	})
}

func TestDeriveCredentialsRejects(t *testing.T) {
	tests := []struct {
		name, user, realm, password string
	}{
		{"empty password", "romeo", "montague.example", ""},
		{"control character", "romeo", "montague.example", "bad\x07bell"},
		{"empty username", "", "montague.example", "secret"},
		{"empty realm", "romeo", "", "secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := store.DeriveCredentials(tt.user, tt.realm, tt.password)
			if err == nil {
				t.Fatal("DeriveCredentials succeeded")
			}
			if tt.password != "" && strings.Contains(err.Error(), tt.password) {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestDeriveCredentialsFreshSalt(t *testing.T) {
	a := derive(t, "romeo", "montague.example", "secret")
	b := derive(t, "romeo", "montague.example", "secret")
	if bytes.Equal(a.Salt, b.Salt) || bytes.Equal(a.SaltedSHA256, b.SaltedSHA256) {
		t.Error("two derivations of the same password share a salt")
	}
	if a.HA1MD5 != b.HA1MD5 {
		t.Error("HA1 depends on the salt; SIP clients could not compute it")
	}
}

func TestCredentialsPrintNoSecrets(t *testing.T) {
	c := derive(t, "romeo", "montague.example", "secret")
	u := store.User{JID: "romeo@montague.example", Credentials: c}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, u)
		secrets := []string{c.HA1MD5, c.HA1SHA256, hex.EncodeToString(c.Salt), fmt.Sprint(c.Salt), fmt.Sprint(c.SaltedSHA256), fmt.Sprintf("%#v", []byte(c.SaltedSHA1))}
		for _, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("Sprintf(%q, user) = %s, shows %s", verb, out, secret)
			}
		}
	}
}

func BenchmarkDeriveCredentials(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.DeriveCredentials("romeo", "montague.example", "secret"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	c := derive(b, "romeo", "montague.example", "secret")
	b.ReportAllocs()
	for b.Loop() {
		if !c.VerifyPassword("secret") {
			b.Fatal("VerifyPassword = false")
		}
	}
}
