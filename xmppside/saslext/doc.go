// Package saslext implements SASL EXTERNAL for server-to-server XMPP
// streams, which UMPP's XMPP hosts must support (draft-mahy-impp-unified
// security considerations), with the certificate checks it rests on.
//
// Implemented:
//
//   - RFC 6120 §13.7.1.2 and §13.7.2, RFC 6125 §6: VerifyPeerCertificate
//     verifies the chain a peer presented against a certificate pool (for
//     client or server authentication, at the current time) and matches
//     the claimed domain against the leaf's DNS-IDs (a "*" wildcard only as
//     the whole left-most label, for exactly one label, not over a TLD),
//     SRV-IDs (id-on-dnsSRV "_xmpp-server.<domain>", RFC 4985) and
//     XmppAddrs (id-on-xmppAddr 1.3.6.1.5.5.7.8.5). The subject common name
//     is never used. PeerIdentities and ParseOtherNames expose the names,
//     e.g. for status output.
//   - RFC 6120 §6.4 with XEP-0178 §3: the EXTERNAL exchange. The
//     authorization identity must be empty ("=") or the stream's from
//     domain (CheckAuthzid, DecodeAuthzid); an empty initial response gets
//     an empty challenge (§6.4.3). Failures are answered with <failure/>
//     and not-authorized, invalid-authzid, invalid-mechanism,
//     incorrect-encoding, malformed-request or aborted.
//   - Raw drivers over any XML token stream: Negotiate (receiving side) and
//     Authenticate (initiating side), plus Mechanisms for the feature list.
//   - Mellium integration: External is a sasl.Mechanism (client: sends the
//     credentials' identity; server: passes the authzid to the permissions
//     func as the identity), ClientFeature wraps it in xmpp.SASL with our
//     domain as authzid, ServerFeature is the receiving side as an
//     xmpp.StreamFeature, and Offerable tells whether to list it.
//
// Why a separate ServerFeature rather than xmpp.SASLServer(permissions,
// External()): the permissions func only gets the sasl.Negotiator (TLS
// state and authzid), not the stream's from domain the certificate must be
// checked against.
//
// Limits in mellium v0.23.0 that callers must know:
//
//   - After a successful EXTERNAL and the stream restart, mellium's
//     receiving side lists no features but still waits for the peer to
//     select one, so an inbound s2s session negotiated entirely by mellium
//     does not become Ready after EXTERNAL. The s2s code should either run
//     the inbound stream itself with Negotiate, or add a required
//     post-authentication feature that returns Ready.
//   - A failed feature cannot be followed by another on the same stream,
//     hence Offerable: list EXTERNAL only when it would succeed (as
//     Prosody does) and dialback always.
//   - On the initiating side, a feature list holding only features mellium
//     has no StreamFeature for fails with "features advertised out of
//     order"; Prosody lists dialback and caps after EXTERNAL, so list
//     dialback.ReadyFeature with ClientFeature.
//
// Checked against Prosody 0.12.3 both ways: Prosody authenticates to
// Negotiate with <auth mechanism='EXTERNAL'>cC5leGFtcGxl</auth> (its
// domain as authzid), and a mellium session with xmpp.StartTLS,
// ClientFeature and dialback.ReadyFeature authenticates to Prosody.
//
// Not implemented: SASL mechanisms other than EXTERNAL, certificate
// revocation (OCSP, CRLs), DANE (RFC 7673), POSH (RFC 7711), and
// internationalized domain names in DNS-IDs (domains are compared as ASCII
// after lower-casing; XmppAddrs are compared after PRECIS preparation).
package saslext
