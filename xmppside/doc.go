// Package xmppside is the XMPP host of umppd: client-to-server streams,
// the stanza router between local sessions, presence and rosters, with
// remote domains reached through a Remote (s2s or the UMPP session layer).
//
// # Use
//
//	srv, err := xmppside.New(xmppside.Options{
//		Domains: []string{"example.com"},
//		Users: db, Rosters: db, Offline: db, // store.Store
//		TLS:    tlsConfig,                  // with GetCertificate
//		Remote: remote,                     // nil: other domains bounce
//		Logger: logger,
//	})
//	err = srv.Listen([]string{":5222"}, []string{":5223"}) // binds; report readiness after
//	err = srv.Serve(ctx) // until ctx ends; streams get system-shutdown
//
// # Implemented
//
// RFC 6120 (XMPP Core), client side of a server:
//   - §4 streams: header checks (host-unknown for a domain not hosted,
//     invalid-namespace, unsupported-version), restarts, stream errors of
//     §4.9.3 with their own conditions, whitespace keepalives (§4.6.1),
//     connection-timeout when negotiation is not finished in
//     Options.HandshakeTimeout.
//   - §5 STARTTLS, mandatory on the c2s listener; XEP-0368 direct TLS on
//     its own listener (ALPN "xmpp-client").
//   - §6 SASL: SCRAM-SHA-256, SCRAM-SHA-1 (RFC 5802/7677, mellium's
//     server with the store's salted credentials) and PLAIN (RFC 4616),
//     all only after TLS. Failed logins are logged with jid and address
//     and throttled per remote IP (token bucket, bounded memory):
//     throttled attempts wait and get temporary-auth-failure.
//   - §7 resource binding: several resources per account, a generated
//     resource when none is asked for, and a new login to a bound full JID
//     replaces the old session, which gets the conflict stream error.
//     The RFC 3921 session IQ is accepted (advertised as optional).
//   - §8 stanzas: from is always stamped with the authenticated full JID
//     (a client's own from is discarded), xml:lang of the stream is added
//     when a stanza has none (§4.7.4), errors per §8.3 (never an error in
//     reply to an error).
//   - §11 restricted XML: DTDs (entity bombs), comments and processing
//     instructions get restricted-xml; only UTF-8; malformed XML gets
//     not-well-formed; an element over Options.MaxStanzaBytes or nested
//     deeper than 64 gets policy-violation before it is buffered whole.
//
// RFC 6121 (XMPP IM):
//   - §2 rosters: get, set, remove (cancelling subscriptions both ways),
//     pushes to the account's resources, roster versions from the store.
//   - §3 subscriptions: the full state machine of Appendix A
//     (none/to/from/both with pending-in/pending-out, pre-approval), stored
//     in store.Rosters so it survives restarts; subscription stanzas carry
//     bare JIDs; pending inbound requests are re-delivered at login.
//   - §4 presence: initial presence with probes of contacts (local:
//     their current presence; remote: a probe through Remote), broadcast
//     to subscribers and the account's other resources, directed
//     presence (remembered, and made unavailable on logout), unavailable
//     on disconnect.
//   - §8.5 routing: full JID to that resource (gone: chat/normal as bare,
//     groupchat bounced, headline dropped); bare JID to the available
//     resources of highest non-negative priority, all of them on ties
//     (headline: all non-negative); no such account: service-unavailable;
//     account with no available resource: chat/normal stored offline.
//     IQs to a bare JID are answered by the server on the account's behalf.
//
// XEPs: XEP-0030 service discovery (server and accounts), XEP-0199 ping,
// XEP-0092 software version, XEP-0160 offline messages with XEP-0203
// delay stamps (delivered in order after initial presence, deleted only
// after they were flushed to the client's stream), XEP-0368 direct TLS.
//
// Messages are forwarded as the bytes the client sent, only the start
// tag being rewritten, so thread, id, xml:lang and unknown children
// (receipts, chat states, corrections) arrive unchanged. Streams are read
// by a small XML scanner of this package (reader.go) that checks
// well-formedness and RFC 6120 §11 while recording the raw bytes of each
// top-level element; elements with non-ASCII bytes are also run through
// encoding/xml as a second opinion on names and characters. It has a
// fuzz target (FuzzStreamReader) that checks every element it accepts
// with encoding/xml.
//
// # Routing design
//
// Each stream has one reader goroutine (parses and routes) and, after
// binding, one writer goroutine draining a bounded queue
// (Options.QueueLen). A Locator maps bare JIDs to Endpoints; the default
// MemLocator is sharded, with no global lock on the routing path. When a
// recipient's queue is full the sender waits up to Options.SendTimeout,
// then the stanza is dropped and the sender gets a resource-constraint
// error of type wait. A multi-node deployment can supply its own Locator
// whose Endpoints forward to other nodes.
//
// # Server-to-server
//
// Streams with other domains (RFC 6120, STARTTLS required, then SASL
// EXTERNAL per XEP-0178 or Server Dialback per XEP-0220) are described in
// s2s.go. By default the s2s manager is the Remote for every non-local
// domain; the UMPP session layer, when it sets Options.Remote, hands
// plain-XMPP domains on to Server.S2S(). Stanzas from authenticated
// peers enter through Server.Receive.
//
// # Seams for the UMPP session layer
//
// The session layer (package session) makes the SIP users of our domains
// look like XMPP resources of their accounts (juliet@example.com/umpp-sip):
//   - It registers its own Endpoint for such a resource in the Locator
//     (Options.Locator); stanzas routed to it, errors included, reach the
//     SIP user. Endpoints that are not streams of this node also get the
//     account's roster pushes.
//   - Server.Submit injects what the SIP user sends, with the rules of a
//     c2s stanza from that resource: messages routed as in §8.5 (a bounce
//     comes back as a *StanzaError instead of an error stanza), the
//     outbound subscription handling, broadcast presence (initial
//     presence probes the contacts; their presence goes to the resource's
//     Endpoint) and directed presence. c2s streams and Submit share this
//     code through the origin interface (router.go); Submit keeps the
//     availability and directed presence of a resource until it submits
//     unavailable. Submit's messages are not counted in Metrics and its
//     broadcasts are not told to Options.Presence.
//   - Options.Presence (PresenceObserver) learns the broadcast presence
//     of the XMPP clients, to notify SIP watchers.
//   - Options.Roster (RosterObserver) learns every persisted roster item
//     change, whatever caused it, to authorize SIP watchers and start or
//     stop SIP subscriptions.
//   - Options.Messages (MessageObserver) learns of messages from other
//     domains (Receive, s2s) with their thread, to keep UMPP sessions
//     alive; the thread is found by a byte scan, not a DOM.
//   - Options.Remote takes stanzas for other domains (SIP domains among
//     them); Server.Receive takes stanzas from them.
//
// # Not implemented yet
//
//   - XEP-0288 bidirectional s2s, XEP-0198 on s2s, a direct-TLS s2s
//     listener, requiring verified certificates on outbound s2s streams
//     (today dialback or EXTERNAL authenticates us and TLS encrypts, but
//     the peer's certificate is not checked).
//   - Stream management (XEP-0198), carbons (XEP-0280), MAM, blocking,
//     privacy lists, in-band registration, SCRAM-*-PLUS channel binding,
//     roster versioning shortcuts (the full roster is always returned).
//   - Offline messages are delivered to the first c2s resource that
//     sends initial presence; two resources coming online at the same
//     moment may both get them. A resource's initial presence through
//     Submit does not flush them (they wait for an XMPP client).
//   - Namespace prefixes declared on the client's stream header and used
//     inside stanzas are not re-declared when forwarding (clients do not
//     do this in practice).
package xmppside
