// Package sipside is the SIP server of a UMPP domain
// (draft-mahy-impp-unified-proposal): transports, request validation,
// OPTIONS, the registrar, pager-mode MESSAGE between local users,
// presence (PUBLISH, SUBSCRIBE/NOTIFY as notifier and as subscriber), and
// the INVITEs that set up XMPP message sessions (the draft's §4.1).
//
// # Lifecycle
//
//	s, err := sipside.New(sipside.Options{Domains: ..., Users: ..., TLS: ..., Listen: ...})
//	err = s.Listen(ctx)   // binds UDP, TCP and TLS; Port 0 picks a port, see s.Addrs()
//	err = s.Serve(ctx)    // until ctx ends, then closes listeners and sipgo's layers
//
// # Implemented
//
//   - RFC 3261 §18 transports over sipgo: UDP, TCP, TLS. Every message is
//     first normalized (folded header lines joined, §7.3.1; LWS around ';'
//     '=' '/' in Via/From/To/Contact removed; octets past Content-Length
//     dropped, §18.3), and ";rport" is added to the top Via (RFC 3581
//     applied as server policy, like Kamailio's force_rport), so responses
//     go back to the packet's source. On TCP and TLS we frame messages
//     ourselves before sipgo reads them (stream.go: Content-Length
//     framing, §18.3; CRLF keep-alives and RFC 5626 ping/pong; header
//     section bounded to 64 KiB), run the same checks as on UDP, and hand
//     sipgo only messages its stream parser accepts, so a bad message gets
//     its 400/416/505 and the connection keeps serving. Only a lost
//     boundary (negative, malformed or conflicting Content-Length) ends
//     the connection, after a 400; an oversize body gets 413 and is
//     skipped.
//   - RFC 3261 §8.2 and §16.3 request checks, in one validator in front of
//     every handler (validate.go): version (505), required and
//     single-valued headers, CSeq method and ranges, Content-Length,
//     Max-Forwards range (400), body size (413), unknown method (501),
//     Request-URI scheme (416), headers in the Request-URI (400),
//     Require/Proxy-Require (420 with Unsupported), body types per method
//     (415 with Accept), Contact form in REGISTER (400). Messages sipgo's
//     parser refuses are read by our fallback parser (rawmsg.go) and
//     answered 400, 416 or 505 when their Via can be read, or dropped.
//     All 49 RFC 4475 messages are answered as that RFC describes over
//     UDP, and 46 of them over TCP too (three cannot be sent on a stream
//     as they stand; the reasons are in torture_test.go).
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
//     Proxy-Authenticate) and from users of authenticated peer domains
//     (peer.go) to local users: forked to every registered contact as a
//     new UAC transaction; 200 once one contact answers 2xx, 480 when
//     none accepts, 404 for an unknown user, 483 at Max-Forwards 0. A
//     user without registered contacts is handed to the Gateway (which
//     reaches their XMPP resources; Message.Peer says the sender is a
//     peer domain's user) and its status is the answer; without a
//     Gateway, 480. message/cpim bodies (RFC 3862) are parsed
//     (ParseCPIM) and their From must be the sender. Targets in other
//     domains from local senders go to the Gateway; without one, and
//     for peers always, they are refused with 403 (no open relay).
//   - Server.SendMessage (message_out.go): the gateway's outbound
//     pager MESSAGE (from a local user, or from anyone to a local user),
//     forked to a local user's contacts (ErrNoSuchUser,
//     ErrOffline, or the best final status as a *StatusError), or sent
//     to another domain's SIP servers found by the Resolver, tried in
//     order on transport failure (2xx nil; final status, 404 without a
//     SIP server, 503 unreachable or unresolvable, 408 out of time as
//     *StatusError).
//   - RFC 3903 PUBLISH for Event: presence by the presentity itself
//     (digest 401): SIP-ETag/SIP-If-Match, initial/refresh/modify/remove,
//     412 for an unknown entity-tag, 423 under Min-Expires, 489 Bad Event
//     for other packages, bodies checked with package pidf (413/415/400).
//     Publications of one presentity are composed by joining their
//     tuples (in entity-tag order), together with the document the
//     gateway holds for it (Server.SetPresence: a local user's XMPP
//     presence, or a remote presentity's state; it never expires).
//     Options.PresenceChanged hears of every change of the SIP-published
//     part of a local presentity (new, modified, removed or expired
//     publications), from one goroutine, in order, outside our locks
//     (presence_events.go).
//   - RFC 6665 / RFC 3856 SUBSCRIBE and NOTIFY for Event: presence: 200
//     with a To tag and our Contact, an immediate NOTIFY with the current
//     PIDF (or CPIM-PIDF when that is all the Accept allows), a NOTIFY on
//     every PUBLISH, refresh in the dialog, Expires: 0 (and fetch) ends with
//     a NOTIFY "terminated", expiry ends with "terminated;reason=timeout",
//     481 for unknown dialogs, 489 for other packages. State is in memory.
//   - Watcher authorization (RFC 3856 §6.6, RFC 8048 §4): PresencePolicy
//     answers allow, deny (403) or pending (nil policy: only oneself). A
//     pending subscription gets 200 and NOTIFY "pending" with no body, and
//     hears nothing of the presentity until Server.Authorize: approval
//     sends NOTIFY "active" with the current PIDF, refusal (or a later
//     withdrawal) NOTIFY "terminated;reason=rejected".
//   - Presentities of other domains (draft §4.2, the gateway subscribing
//     on a local watcher's behalf): with Options.RemotePresence, a
//     SUBSCRIBE from an authenticated local user to a user of another
//     domain is served here like a local one: RemotePresence.Watch
//     decides instead of PresencePolicy (usually pending until the remote
//     side answers and the gateway calls Authorize), NOTIFYs carry the
//     SetPresence document, and Unwatch reports the end of the watcher's
//     last subscription (Expires: 0, expiry, rejection; not shutdown).
//     Without RemotePresence such SUBSCRIBEs get 404.
//   - SUBSCRIBE flood protection: a token bucket per source IP (bounded
//     table) answers 503 with Retry-After before any digest or store work,
//     logged once per interval; subscriptions are bounded per watcher and
//     per presentity (403).
//   - The draft's §4.1 INVITE for XMPP message sessions (invite.go,
//     invite_uac.go, dialog.go): offers parsed with package session/sdp
//     (415 for non-SDP, 488 without an xmpp/tcp message stream), answered
//     through the SessionHandler (480 offline, 404 unknown, 403 refused),
//     ACK, BYE from either side, CANCEL (487), re-INVITE; Server.Invite
//     sends such offers to a peer found by the Resolver. Dialogs are kept
//     in one bounded table and get BYE on shutdown.
//   - Outgoing subscriptions (subscriber.go, RFC 6665 as subscriber):
//     Server.Subscribe sends the draft's §4.2 SUBSCRIBE pres:, takes the
//     NOTIFYs of its dialog, refreshes before expiry, re-subscribes after
//     481, timeouts or "terminated;reason=deactivated" (a peer restart),
//     stops on rejected/noresource/403/489/603, and unsubscribes on
//     shutdown (Expires: 0).
//   - Shutdown: before the transports close, in parallel and bounded by
//     about two seconds, outgoing subscriptions are ended with Expires: 0,
//     dialogs with BYE, and every inbound subscription gets NOTIFY
//     "terminated;reason=deactivated" so its subscriber comes back later
//     (RFC 6665 §4.2.2).
//   - Requests from peer domains (peer.go, RFC 5922, the draft's §5):
//     with Options.PeerPolicy, a SUBSCRIBE, INVITE or MESSAGE whose From
//     is a peer domain's user is taken without digest authentication once
//     it is proven to come from that domain's server: a TLS client
//     certificate that verifies against Options.RootCAs (else the system
//     roots) and names the domain (subjectAltName URI sip:domain or DNS
//     name), or a source address among the domain's SIP servers as the
//     Resolver finds them (cached for the records' TTL, or 60 s). Else
//     403 "Peer not authenticated". TLS listeners request (not require)
//     client certificates for this. Requests leave from the first
//     listener's address, so that peers checking ours see the address
//     they resolved. Requests inside a dialog are matched by the dialog.
//
// # Not yet
//
//   - Our own client certificate on outgoing TLS connections (sipgo's
//     client TLS configuration is left at its defaults), and the subject
//     CN as an identity (RFC 5922 §7.1 makes it optional; only
//     subjectAltName is read). INVITEs without an offer (offer in the
//     200) get 488.
//   - Presence state shared between several umppd processes, winfo
//     (RFC 3857), partial PIDF (RFC 5262), and Record-Route/route sets in
//     subscription dialogs (NOTIFY goes straight to the subscriber's
//     Contact). Authorization decisions are not remembered by sipside:
//     later SUBSCRIBEs ask PresencePolicy again.
//   - Requests from domains that are not peers (refused 403), and
//     relaying between other domains.
//   - The SUBSCRIBE rate limit is per source IP, so a peer domain's
//     server subscribing for many users shares one bucket; raise
//     Options.SubscribeRate for such deployments.
//   - Outbound connection reuse for contacts behind NAT (RFC 5626), Path,
//     GRUU.
package sipside
