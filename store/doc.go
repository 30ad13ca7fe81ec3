// Package store defines what umppd persists (accounts, rosters with their
// presence-subscription states, offline messages, and the presence
// subscriptions the gateway keeps to users of other domains, which
// draft-mahy-impp-unified-proposal §4.2 has it re-establish after a
// restart) behind small interfaces, and how passwords become stored
// credentials.
//
// The default implementation is SQLite (package store/sqlite). A
// PostgreSQL implementation for several umppd nodes sharing one store is
// an addition behind the same interfaces; package store/storetest is the
// conformance suite every implementation must pass.
//
// Addresses are bare JIDs in normalized string form; the store compares
// them byte for byte, so callers normalize (PRECIS, RFC 7622) before every
// call.
//
// # Credentials
//
// Passwords are never stored. DeriveCredentials normalizes a password
// with the PRECIS OpaqueString profile (RFC 8265 §4.2, which RFC 7677 and
// RFC 6120 name for SCRAM and PLAIN) and keeps:
//
//   - a random 16-byte salt, DefaultIterations (4096) PBKDF2 iterations
//     and the SCRAM SaltedPassword for SHA-1 and SHA-256 (RFC 5802 §3,
//     RFC 7677); mellium's SCRAM server takes them through
//     Credentials.SCRAMLookup, and SASL PLAIN (inside TLS only) checks a
//     password with Credentials.VerifyPassword, in constant time;
//   - for SIP digest authentication (RFC 3261 §22.4, RFC 7616, RFC 8760),
//     HA1 = H(username ":" realm ":" password) in hex, with MD5 and
//     SHA-256, where username is the account's localpart and realm its
//     domain; Credentials.HA1 returns them by algorithm name. HA1 does
//     not depend on the salt: a realm change needs a new password.
//
// Credentials print without their secrets (String, GoString), and no
// function of this package logs or returns a password in an error.
//
// Not provided: SCRAM-SHA-512 and SHA-512-256 digests (no stored hash for
// them), and per-account iteration counts above the default (the field
// exists; DeriveCredentials always uses DefaultIterations).
package store
