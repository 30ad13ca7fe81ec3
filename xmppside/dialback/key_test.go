package dialback_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/umpp/umpp/xmppside/dialback"
)

func TestKey(t *testing.T) {
	// The first row is XEP-0185 §2's example inputs; the expected values were
	// computed outside Go (Python hashlib/hmac) from the XEP's formula, with
	// the hexadecimal SHA-256 of the secret as HMAC key.
	tests := []struct {
		name                          string
		secret                        string
		receiving, originating, strID string
		want                          string
	}{
		{"xep-0185 example", "s3cr3tf0rd14lb4ck", "domain2.tld", "domain1.tld", "D60000229F",
			"5e598fae34b90be084fb6a4a8a543ceb33549140bac9d829ef8d734d900616e4"},
		{"roles swapped", "s3cr3tf0rd14lb4ck", "domain1.tld", "domain2.tld", "D60000229F",
			"72a7940505e61af109711d24642342bdbd136777e9fce7ea8c7739a766e0b911"},
		{"other stream id", "s3cr3tf0rd14lb4ck", "domain2.tld", "domain1.tld", "D60000229G",
			"cce59bb4a8deb0e408f885a8b3159af37516a27af2ee0f7fdd6bec488824f323"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := dialback.Key([]byte(tc.secret), tc.receiving, tc.originating, tc.strID)
			if got != tc.want {
				t.Errorf("Key = %s, want %s", got, tc.want)
			}
			if !dialback.CheckKey([]byte(tc.secret), tc.receiving, tc.originating, tc.strID, tc.want) {
				t.Errorf("CheckKey rejects the expected key")
			}
			if dialback.CheckKey([]byte(tc.secret+"x"), tc.receiving, tc.originating, tc.strID, tc.want) {
				t.Errorf("CheckKey accepts the key under another secret")
			}
		})
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	dir := t.TempDir()
	first, err := dialback.LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(first) != dialback.SecretSize {
		t.Fatalf("secret has %d bytes, want %d", len(first), dialback.SecretSize)
	}
	path := filepath.Join(dir, dialback.SecretFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	again, err := dialback.LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !bytes.Equal(first, again) {
		t.Errorf("second call returned another secret")
	}
	other, err := dialback.LoadOrCreateSecret(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, other) {
		t.Errorf("two data directories got the same secret")
	}

	// Refused: readable by others, too short, missing directory.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dialback.LoadOrCreateSecret(dir); err == nil {
		t.Errorf("world-readable secret accepted")
	}
	short := t.TempDir()
	if err := os.WriteFile(filepath.Join(short, dialback.SecretFile), []byte("tiny"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dialback.LoadOrCreateSecret(short); err == nil {
		t.Errorf("4-byte secret accepted")
	}
	if _, err := dialback.LoadOrCreateSecret(filepath.Join(dir, "missing", "dir")); err == nil {
		t.Errorf("secret created in a missing directory")
	}
}
