package store

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/text/secure/precis"
)

// DefaultIterations is the PBKDF2 iteration count DeriveCredentials uses,
// the minimum RFC 7677 §4 recommends for SCRAM-SHA-256.
const DefaultIterations = 4096

// SaltSize is the length in bytes of the random salt DeriveCredentials
// draws.
const SaltSize = 16

// Credentials is what an account stores instead of its password.
type Credentials struct {
	Salt       []byte // random, at least 16 bytes
	Iterations int    // PBKDF2 iteration count, at least 4096
	// SCRAM SaltedPassword := Hi(Normalize(password), salt, i) (RFC 5802 §3).
	SaltedSHA1   []byte
	SaltedSHA256 []byte
	// SIP digest HA1 := H(username ":" realm ":" password), hex, with the
	// account's domain as realm (RFC 3261 §22.4, RFC 8760 for SHA-256).
	HA1MD5    string
	HA1SHA256 string
}

// String hides the secrets, so a Credentials value logged or printed by
// mistake shows nothing an attacker could use offline.
func (c Credentials) String() string {
	return fmt.Sprintf("store.Credentials{Iterations: %d, ...}", c.Iterations)
}

// GoString is String for the %#v verb.
func (c Credentials) GoString() string { return c.String() }

// normalizePassword applies the PRECIS OpaqueString profile (RFC 8265
// §4.2), which SCRAM's Normalize() is in RFC 7677 and XMPP's SASL PLAIN in
// RFC 6120. An empty password, or one with code points the profile
// refuses (controls, unassigned), is an error.
func normalizePassword(password string) (string, error) {
	p, err := precis.OpaqueString.String(password)
	if err != nil {
		return "", err
	}
	return p, nil
}

// DeriveCredentials turns a password into stored credentials for the
// account username@realm: username is the account's localpart and realm
// its domain (the SIP digest realm). The password is normalized with the
// PRECIS OpaqueString profile first, so the SCRAM, PLAIN and SIP digest
// forms all derive from the same string; a password the profile refuses
// is an error that does not repeat the password.
func DeriveCredentials(username, realm, password string) (Credentials, error) {
	if username == "" {
		return Credentials{}, errors.New("store: derive credentials: empty username")
	}
	if realm == "" {
		return Credentials{}, fmt.Errorf("store: derive credentials for %s: empty realm", username)
	}
	p, err := normalizePassword(password)
	if err != nil {
		return Credentials{}, fmt.Errorf("store: derive credentials for %s@%s: password: %w", username, realm, err)
	}
	salt := make([]byte, SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return Credentials{}, fmt.Errorf("store: derive credentials for %s@%s: salt: %w", username, realm, err)
	}
	c := Credentials{Salt: salt, Iterations: DefaultIterations}
	if c.SaltedSHA1, err = saltedPassword(sha1.New, p, salt, DefaultIterations); err != nil {
		return Credentials{}, fmt.Errorf("store: derive credentials for %s@%s: %w", username, realm, err)
	}
	if c.SaltedSHA256, err = saltedPassword(sha256.New, p, salt, DefaultIterations); err != nil {
		return Credentials{}, fmt.Errorf("store: derive credentials for %s@%s: %w", username, realm, err)
	}
	a1 := username + ":" + realm + ":" + p
	m := md5.Sum([]byte(a1))
	s := sha256.Sum256([]byte(a1))
	c.HA1MD5 = hex.EncodeToString(m[:])
	c.HA1SHA256 = hex.EncodeToString(s[:])
	return c, nil
}

// saltedPassword is SCRAM's Hi(password, salt, i), which is PBKDF2 with
// HMAC-H and an output the size of H (RFC 5802 §2.2).
func saltedPassword(h func() hash.Hash, password string, salt []byte, iter int) ([]byte, error) {
	k, err := pbkdf2.Key(h, password, salt, iter, h().Size())
	if err != nil {
		return nil, fmt.Errorf("pbkdf2: %w", err)
	}
	return k, nil
}

// VerifyPassword reports whether password is the account's password, for
// SASL PLAIN (only ever offered inside TLS). It recomputes the SCRAM
// SaltedPassword (SHA-256 when stored, else SHA-1) and compares in
// constant time. Credentials without a salt or salted password match no
// password.
func (c Credentials) VerifyPassword(password string) bool {
	if len(c.Salt) == 0 || c.Iterations <= 0 {
		return false
	}
	h, want := sha256.New, c.SaltedSHA256
	if len(want) == 0 {
		h, want = sha1.New, c.SaltedSHA1
	}
	if len(want) == 0 {
		return false
	}
	p, err := normalizePassword(password)
	if err != nil {
		return false
	}
	got, err := saltedPassword(h, p, c.Salt, c.Iterations)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, want) == 1
}

// SCRAMLookup returns what a SCRAM server needs for mechanism mech
// ("SCRAM-SHA-1", "SCRAM-SHA-256", or their "-PLUS" channel-binding
// variants): the salt, the SaltedPassword and the iteration count, shaped
// for mellium.im/sasl's SaltedCredentialsFetcher. ok is false for any
// other mechanism or when the account has no credentials for it.
func (c Credentials) SCRAMLookup(mech string) (salt, salted []byte, iter int64, ok bool) {
	switch strings.TrimSuffix(strings.ToUpper(mech), "-PLUS") {
	case "SCRAM-SHA-1":
		salted = c.SaltedSHA1
	case "SCRAM-SHA-256":
		salted = c.SaltedSHA256
	default:
		return nil, nil, 0, false
	}
	if len(salted) == 0 || len(c.Salt) == 0 || c.Iterations <= 0 {
		return nil, nil, 0, false
	}
	return c.Salt, salted, int64(c.Iterations), true
}

// HA1 returns the hex HA1 for a SIP digest algorithm (RFC 7616 §3.4.2
// names): "MD5" or "SHA-256", and their "-sess" variants, for which the
// caller derives the session HA1 from this one and the nonces. ok is false
// for any other algorithm or when the hash is not stored. An empty
// algorithm means MD5, as in RFC 2617.
func (c Credentials) HA1(algorithm string) (string, bool) {
	var ha1 string
	a := strings.ToUpper(algorithm)
	switch base := strings.TrimSuffix(a, "-SESS"); {
	case base == "" && a != "":
		return "", false // a bare "-sess"
	case base == "", base == "MD5":
		ha1 = c.HA1MD5
	case base == "SHA-256":
		ha1 = c.HA1SHA256
	default:
		return "", false
	}
	return ha1, ha1 != ""
}
