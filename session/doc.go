// Package session is the UMPP core: it ties the SIP server (package
// sipside) and the XMPP host (package xmppside) into one UMPP server as
// draft-mahy-impp-unified-proposal-00 describes. SIP sets up sessions and
// carries presence between domains; XMPP carries the messages.
//
// What it holds today:
//   - the session table (table.go): thread id <-> SIP dialog <-> local and
//     remote full JIDs (draft §4.1) behind the Table interface, with every
//     session ending (BYE, idle, peer failure, shutdown) and removed, and
//     the messages queued during setup handed back in order;
//   - the message mapping between SIP MESSAGE and XMPP <message/>
//     (message.go, message_xml.go, message_sip.go): RFC 7572 pager mode,
//     message/cpim (RFC 3862, cpim.go) and isComposing (RFC 3994) <->
//     XEP-0085 chat states (composing.go);
//   - the one table that maps SIP status codes and XMPP stanza error
//     conditions onto each other (RFC 7247 §7), in errors.go;
//   - subpackage sdp: the draft's session descriptions.
//
// Still to come (issue 5): the gateway that drives sipside and xmppside
// through these pieces, presence subscriptions between domains (draft
// §4.2) persisted and re-established after restarts, and the PIDF <->
// XMPP presence bridge for local users (RFC 8048).
//
// The package defines the small interfaces it needs from the protocol
// adapters; sipside and xmppside satisfy them. It depends only on
// addressing, pidf and store among our packages.
package session
