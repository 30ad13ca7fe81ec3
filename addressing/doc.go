// Package addressing knows what UMPP addresses look like and where their
// domains live.
//
// # Addresses
//
// An Address is one user at a domain, optionally one resource, held in the
// normalized form of a JID (RFC 7622): the single identity behind the im:,
// pres:, sip:, sips: and xmpp: URIs and the JID by which a UMPP user is known
// on both protocols. Parse reads any of those forms; the methods IM, Pres,
// SIP, SIPS, XMPPURI and String write them. The mapping follows RFC 7247 §6:
//
//   - URI to JID: drop the scheme, split at the '@', percent-decode the user
//     part as UTF-8, escape it with XEP-0106 (so "o'malley" becomes
//     o\27malley), then apply PRECIS UsernameCaseMapped (RFC 8265, the same
//     profile mellium.im/xmpp/jid applies); a SIP ";gr=" GRUU parameter
//     becomes the resource.
//   - JID to URI: unescape XEP-0106 and percent-encode what the target user
//     part does not allow (RFC 3261 §19.1 / §25.1 for sip: and sips:, RFC
//     3860 and RFC 3859 for im: and pres:); the resource becomes ";gr=".
//   - xmpp: URIs (RFC 5122) carry the JID itself: the escaped localpart is
//     percent-encoded as it is (a backslash becomes %5C), and on input only
//     the characters a localpart cannot hold are escaped.
//   - Domains are held lower case in U-labels (RFC 7622 §3.2) and written in
//     A-labels into URIs; DomainToASCII gives the A-label form for DNS.
//     ParseDomain validates hosted and peer domain names for configuration.
//
// Escape and Unescape implement XEP-0106 (JID Escaping) on their own: a
// backslash is escaped only when it starts one of the ten escape sequences,
// and one that does not is left alone on unescaping.
//
// Errors wrap ErrUnsupportedScheme (a SIP server answers 416) or
// ErrMalformed (400 or 404 on SIP, jid-malformed on XMPP); ErrEmptyLocal,
// ErrDomain and ErrTooLong refine ErrMalformed.
//
// # Resolution
//
// The Resolver, in this package too (files resolve*.go), finds how to reach
// a peer domain: RFC 3263 for SIP, RFC 3861 _im._sip and _pres._sip SRV
// records, and RFC 6120 §3.2 _xmpp-server._tcp for XMPP.
//
// # Deliberately not done
//
//   - Name-addr forms ("Romeo <sip:romeo@...>") and display names: callers
//     pass the URI alone; sipgo parses headers.
//   - tel: URIs, sip: URIs with user=phone semantics (the parameter is
//     ignored, the user part taken as a name), and telephone-number
//     normalization.
//   - Addresses without a user part (a bare domain, "sip:example.com"): an
//     Address names a user.
//   - Ports, passwords, and SIP URI parameters other than gr: an address of
//     record has no port or password (refused), and transport, maddr, lr and
//     the rest are about routing, not identity (ignored), as are headers,
//     xmpp: queries and fragments.
//   - RFC 2822 quoted-string local parts in im:/pres: URIs: percent-encoded
//     quotes are kept as characters and escaped.
//   - JIDs whose localpart is not in canonical XEP-0106 form (a needless
//     \5c, \20 at either end) are refused rather than rewritten, because the
//     SIP side could not give them back unchanged.
package addressing
