// Package certs provides the TLS certificate umppd presents on every
// listener and every outbound connection: SIP over TLS (RFC 3261 §26.2,
// RFC 5922 for how SIP domain certificates are checked), XMPP c2s STARTTLS
// and direct TLS (RFC 6120 §5, XEP-0368) and XMPP s2s, where the same
// certificate is presented as a client certificate so that a peer can
// authenticate us with SASL EXTERNAL (RFC 6120 §13.7, XEP-0178).
//
// When the configuration names no certificate, [LoadOrCreate] makes a
// self-signed one for the hosted domains under the data directory and
// reuses it on later runs while it still fits. [Store] holds the current
// certificate for the listeners and swaps it atomically on [Store.Reload]
// (SIGHUP), so running connections keep theirs and new handshakes get the
// new one.
//
// Deliberately not here: ACME, OCSP stapling, DANE (RFC 7673) and the
// XMPP-specific otherName SANs (id-on-xmppAddr, SRVName); a certificate
// naming the domains as DNS names is accepted by XMPP servers (RFC 6125
// DNS-ID).
package certs
