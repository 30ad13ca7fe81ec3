// Package dialback implements Server Dialback (XEP-0220) with the key
// generation of XEP-0185, the building blocks UMPP's XMPP host uses to
// authenticate server-to-server streams when SASL EXTERNAL (package
// saslext) is not possible.
//
// Implemented:
//
//   - XEP-0185 §2: Key and CheckKey compute and check
//     HMAC-SHA256(hex(SHA256(secret)), receiving + " " + originating + " " +
//     streamID) in hexadecimal; LoadOrCreateSecret keeps the secret in
//     dataDir/dialback.secret (32 random bytes, mode 0600).
//   - XEP-0220 §2.1 and §2.3: the <db:result/> and <db:verify/> elements
//     (Element, Decode, Parse, TokenReader) with their checks: from and to
//     must be domains (ErrImproperAddressing and ErrInvalidFrom say which
//     stream error to close with), a db:verify needs an id, keys are at most
//     MaxKeyLen bytes, decoding is bounded in depth and size.
//   - XEP-0220 §2.4: type='error' answers with a stanza error condition
//     (Error, the Condition constants) and the urn:xmpp:features:dialback
//     stream feature with <errors/> (Feature, DecodeFeature).
//   - The three roles as drivers over any XML token stream (Stream) or a
//     mellium session (SessionStream): the originating server (Originate),
//     the receiving server (Receiver.HandleResult, which calls the
//     authoritative server back through a caller-provided DialFunc and
//     StreamVerifier), and the authoritative server (Authority.HandleVerify).
//   - Mellium stream features for whole streams: OriginatingFeature for
//     outbound s2s sessions and ReceivingFeature for inbound ones. Dialback
//     has no stream restart, so both return Authn|Ready. ReadyFeature lets
//     an outbound session authenticated by SASL EXTERNAL finish when the
//     peer lists dialback again afterwards.
//
// Checked against Prosody 0.12.3 in all three roles (see
// testdata/prosody-0.12.3.xml for its exact elements). Prosody puts the
// stream id and the key in its db:result answers, sends db:verify on a
// stream it has just authenticated itself on (so db:verify must also be
// handled after negotiation), advertises <dialback/> without <errors/> but
// handles type='error' answers (it closes the stream with not-authorized
// and bounces the queued stanzas).
//
// Not implemented, by design or not yet:
//
//   - Resolving and connecting to the authoritative server: that is the
//     caller's DialFunc (SRV _xmpp-server._tcp, TLS, certificate policy).
//   - XEP-0288 (bidirectional s2s) and XEP-0344 (dialback key reuse,
//     multiplexing several domain pairs on one stream) beyond what the
//     caller does by calling Receiver.HandleResult for every db:result it
//     reads after negotiation. ReceivingFeature authenticates one domain
//     pair per stream.
//   - Piggybacking verifies and results concurrently on one stream:
//     StreamVerifier sends one db:verify at a time.
//   - Dialback over unencrypted streams: the mellium features require the
//     Secure state (UMPP XMPP hosts must use STARTTLS).
//
// Mellium v0.23.0 notes for callers: ReceiveSession refuses an s2s stream
// header that carries a from, so receive with xmpp.NewSession(ctx,
// location, origin, conn, xmpp.Received|xmpp.S2S, negotiator) after reading
// the peer's header; and mellium picks at random among required features
// on the initiating side, so list either OriginatingFeature or saslext's
// ClientFeature in one session, not both.
package dialback
