// Package sipside is the SIP server of a UMPP domain
// (draft-mahy-impp-unified-proposal): transports, request validation,
// OPTIONS, the registrar and pager-mode MESSAGE between local users.
//
// # Lifecycle
//
//	s, err := sipside.New(sipside.Options{Domains: ..., Users: ..., TLS: ..., Listen: ...})
//	err = s.Listen(ctx)   // binds UDP, TCP and TLS; Port 0 picks a port, see s.Addrs()
//	err = s.Serve(ctx)    // until ctx ends, then closes listeners and sipgo's layers
//
// # Implemented
//
//   - RFC 3261 §18 transports over sipgo: UDP, TCP, TLS. On UDP every
//     datagram is first normalized (folded header lines joined, §7.3.1;
//     LWS around ';' '=' '/' in Via/From/To/Contact removed; octets past
//     Content-Length dropped, §18.3), and ";rport" is added to the top Via
//     (RFC 3581 applied as server policy, like Kamailio's force_rport), so
//     responses go back to the packet's source.
//   - RFC 3261 §8.2 and §16.3 request checks, in one validator in front of
//     every handler (validate.go): version (505), required and
//     single-valued headers, CSeq method and ranges, Content-Length,
//     Max-Forwards range (400), body size (413), unknown method (501),
//     Request-URI scheme (416), headers in the Request-URI (400),
//     Require/Proxy-Require (420 with Unsupported), body types per method
//     (415 with Accept), Contact form in REGISTER (400). Messages sipgo's
//     parser refuses are read by our fallback parser (rawmsg.go) and
//     answered 400, 416 or 505 when their Via can be read, or dropped.
//     All 49 RFC 4475 messages are answered as that RFC describes; the
//     table is in torture_test.go.
//   - RFC 3261 §11 OPTIONS, answered by the server for its domains.
//   - RFC 3261 §10.3 registrar: digest authentication (§22, RFC 8760
//     SHA-256 and MD5 challenges, SHA-256 first, qop=auth, stateless MAC'd
//     nonces with stale=true on expiry, nonce-count replay refusal, failed
//     attempts per source IP limited, then 403); Min/Max/default Expires
//     and 423; several contacts; Contact: * with Expires: 0; per-contact
//     expires; Call-ID/CSeq ordering; 200 listing all bindings. Bindings
//     live behind Registrations (in memory: sharded, swept, bounded per
//     user).
//   - RFC 3428 pager-mode MESSAGE from authenticated local users (407
//     Proxy-Authenticate) to local users: forked to every registered
//     contact as a new UAC transaction; 200 once one contact answers 2xx,
//     480 when none is registered or none accepts, 404 for an unknown
//     user, 483 at Max-Forwards 0. message/cpim bodies (RFC 3862) are
//     parsed (ParseCPIM) and their From must be the sender. Targets in
//     other domains go to the Gateway interface; without one they are
//     refused with 403 (no open relay). Requests for domains we do not
//     serve are never relayed (404).
//   - RFC 3903 PUBLISH for Event: presence by the presentity itself
//     (digest 401): SIP-ETag/SIP-If-Match, initial/refresh/modify/remove,
//     412 for an unknown entity-tag, 423 under Min-Expires, 489 Bad Event
//     for other packages, bodies checked with package pidf (413/415/400).
//     Publications of one presentity are composed by joining their tuples.
//   - RFC 6665 / RFC 3856 SUBSCRIBE and NOTIFY for Event: presence: 200
//     with a To tag and our Contact, an immediate NOTIFY with the current
//     PIDF (or CPIM-PIDF when that is all the Accept allows), a NOTIFY on
//     every PUBLISH, refresh in the dialog, Expires: 0 (and fetch) ends with
//     a NOTIFY "terminated", expiry ends with "terminated;reason=timeout",
//     481 for unknown dialogs, 489 for other packages. Who may watch whom
//     is PresencePolicy's decision (nil: only oneself). State is in memory.
//
// # Not yet
//
//   - INVITE sessions (an INVITE to a local user is answered 480; with a
//     To tag, 481), CANCEL matching beyond sipgo's, BYE.
//   - Presence state shared between several umppd processes, winfo
//     (RFC 3857), partial PIDF (RFC 5262), pending subscriptions awaiting
//     the presentity's approval (policy answers yes or no at once), and
//     Record-Route/route sets in subscription dialogs (NOTIFY goes straight
//     to the subscriber's Contact).
//   - Requests from other domains (MESSAGE from a non-local From is
//     refused 403 until peer authentication exists).
//   - Over TCP/TLS the fallback parser and datagram normalization do not
//     apply (sipgo frames streams itself): unparseable stream data closes
//     the connection, and a folded From tag or an RFC 2543 request without
//     From tag is answered 400 by sipgo.
//   - Outbound connection reuse for contacts behind NAT (RFC 5626), Path,
//     GRUU.
//   - im:/pres: URIs are read by a small local function (uri.go) until
//     package addressing is available.
package sipside
