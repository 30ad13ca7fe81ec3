// Package session is the UMPP core: it ties the SIP server (package
// sipside) and the XMPP host (package xmppside) into one UMPP server as
// draft-mahy-impp-unified-proposal-00 describes. SIP sets up sessions and
// carries presence between domains; XMPP carries the messages.
//
// This package owns, or will own as the issues land:
//   - the session table: thread id <-> SIP dialog <-> local and remote full
//     JIDs (draft §4.1), with every session ending (BYE, idle, peer failure,
//     shutdown) and removed;
//   - presence subscriptions between domains (draft §4.2), persisted and
//     re-established after restarts;
//   - the community bridge between XMPP and SIMPLE users (RFC 7247,
//     RFC 8048, RFC 7572, RFC 7573);
//   - the one table that maps SIP status codes and XMPP stanza error
//     conditions onto each other (RFC 7247 §7), in errors.go.
//
// The package defines the small interfaces it needs from the protocol
// adapters; sipside and xmppside satisfy them. It depends only on
// addressing, pidf and store among our packages.
package session
