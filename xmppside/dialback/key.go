package dialback

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SecretFile is the name of the file, inside the data directory, that holds
// the dialback secret.
const SecretFile = "dialback.secret"

// SecretSize is the number of random bytes in a secret made by
// LoadOrCreateSecret.
const SecretSize = 32

// Key computes the dialback key of XEP-0185 §2:
//
//	HMAC-SHA256(hex(SHA256(secret)), receiving + " " + originating + " " + streamID)
//
// in lower-case hexadecimal. The HMAC key is the hexadecimal form of the
// hashed secret, as in the XEP's example and in the servers that implement
// it. receiving is the domain that received the stream (the one that will
// call back), originating the domain that opened it, and streamID the ID the
// receiving server put in its response stream header.
func Key(secret []byte, receiving, originating, streamID string) string {
	sum := sha256.Sum256(secret)
	mac := hmac.New(sha256.New, []byte(hex.EncodeToString(sum[:])))
	// Writes to a hash.Hash never fail.
	_, _ = mac.Write([]byte(receiving + " " + originating + " " + streamID))
	return hex.EncodeToString(mac.Sum(nil))
}

// CheckKey reports whether key is the dialback key for the given inputs. The
// comparison takes the same time whatever the key.
func CheckKey(secret []byte, receiving, originating, streamID, key string) bool {
	want := Key(secret, receiving, originating, streamID)
	return subtle.ConstantTimeCompare([]byte(want), []byte(key)) == 1
}

// LoadOrCreateSecret returns the dialback secret kept in
// dataDir/dialback.secret, creating the file with SecretSize random bytes and
// mode 0600 when it does not exist yet. A file that exists but holds fewer
// than SecretSize bytes, or that others can read, is refused rather than
// silently replaced.
func LoadOrCreateSecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, SecretFile)
	secret, err := readSecret(path)
	if err == nil {
		return secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	secret = make([]byte, SecretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("dialback: generate secret: %w", err)
	}
	// O_EXCL: if another process created the file meanwhile, use its secret.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readSecret(path)
	}
	if err != nil {
		return nil, fmt.Errorf("dialback: create secret: %w", err)
	}
	if _, err := f.Write(secret); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("dialback: write secret %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("dialback: write secret %s: %w", path, err)
	}
	return secret, nil
}

func readSecret(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("dialback: read secret: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("dialback: secret %s has mode %v, want 0600", path, info.Mode().Perm())
	}
	secret, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dialback: read secret: %w", err)
	}
	if len(secret) < SecretSize {
		return nil, fmt.Errorf("dialback: secret %s holds %d bytes, want %d", path, len(secret), SecretSize)
	}
	return secret, nil
}
