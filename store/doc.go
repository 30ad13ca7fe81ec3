// Package store defines what umppd persists (accounts, rosters with their
// presence-subscription states, offline messages) behind small interfaces,
// and how passwords become stored credentials.
//
// The default implementation is SQLite (package store/sqlite). A
// PostgreSQL implementation for several umppd nodes sharing one store is
// an addition behind the same interfaces.
//
// Passwords are never stored. An account keeps, per RFC 5802 and RFC 7677,
// a random salt, an iteration count and the SCRAM SaltedPassword for
// SHA-1 and SHA-256 (mellium's SCRAM server needs SaltedPassword), and,
// for SIP digest authentication (RFC 3261 §22.4, RFC 8760), the HA1 hashes
// H(user:realm:password) with MD5 and SHA-256 for the user's domain as
// realm.
package store
