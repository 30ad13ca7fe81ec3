package store

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
