// Package testenv starts the real programs tests talk to, on loopback
// addresses and free ports, and stops them when the test ends.
//
//   - [DNSMasq] runs dnsmasq as an authoritative-looking DNS server with the
//     records a test needs (SRV, A, AAAA, ...), and can report which queries
//     it received.
//   - [StartKamailio] runs Debian's Kamailio as a peer domain's SIMPLE
//     presence server (registrar, PUBLISH/SUBSCRIBE, MESSAGE relay).
//   - [StartProsody] runs Debian's Prosody as a plain XMPP peer domain.
//   - [StartBaresip] runs Debian's baresip as a headless SIP user agent,
//     driven over its ctrl_tcp module, with what it prints kept for the
//     test to read as a user would.
//   - [XMPPClientSession] and [XMPPSend] use mellium's client without
//     giving it a context that will be cancelled (see xmppclient.go).
//   - [FreePort] finds a free port on a loopback address.
//
// A helper skips the test with a clear message when its program is not
// installed, unless the environment variable UMPP_REQUIRE_PEERS is set (CI
// sets it after installing the programs, so there the tests always run and
// a missing program is a failure).
//
// Nothing here sends traffic outside 127.0.0.0/8 and ::1.
package testenv
