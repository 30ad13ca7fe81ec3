package sipside

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/addressing"
)

// This file is the one place that turns URIs into accounts. sipgo parses
// sip:/sips: URIs but keeps im:/pres: ones opaque; package addressing
// reads all four and normalizes the result to a bare JID (RFC 7247 §6).

// addressOf reads the address-of-record named by a sip, sips, im or pres
// URI: URI parameters, headers and a port are not part of it.
func addressOf(u sip.Uri) (addressing.Address, bool) {
	var s string
	switch strings.ToLower(u.Scheme) {
	case "sip", "sips":
		if u.Host == "" {
			return addressing.Address{}, false
		}
		s = u.Scheme + ":" + u.User + "@" + u.Host
	case "im", "pres":
		s = u.Scheme + ":" + u.Raw()
	default:
		return addressing.Address{}, false
	}
	a, _, err := addressing.Parse(s)
	if err != nil {
		return addressing.Address{}, false
	}
	return a, true
}

// uriHost returns the host of a URI (for a URI without a user part too),
// lower-cased, or "".
func uriHost(u sip.Uri) string {
	switch strings.ToLower(u.Scheme) {
	case "sip", "sips":
		return strings.ToLower(u.Host)
	case "im", "pres":
		if a, ok := addressOf(u); ok {
			return a.Domain
		}
	}
	return ""
}

// aorOf maps a URI to the bare JID of its account.
func aorOf(u sip.Uri) (string, bool) {
	a, ok := addressOf(u)
	if !ok {
		return "", false
	}
	return a.BareJID(), true
}

// digestJID maps a digest username and realm (our domain) to the bare
// JID whose HA1 the store keeps.
func digestJID(username, realm string) (string, bool) {
	a, _, err := addressing.Parse("sip:" + username + "@" + realm)
	if err != nil {
		return "", false
	}
	return a.BareJID(), true
}
