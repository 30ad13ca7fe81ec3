package addressing

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
	"mellium.im/xmpp/jid"
)

// Scheme says which form an address was written in.
type Scheme string

// The forms Parse accepts. SchemeJID is not a URI scheme: it marks a bare or
// full JID written without one.
const (
	SchemeIM   Scheme = "im"   // RFC 3860 instant messaging URI
	SchemePres Scheme = "pres" // RFC 3859 presence URI
	SchemeSIP  Scheme = "sip"  // RFC 3261 §19.1 SIP URI
	SchemeSIPS Scheme = "sips" // RFC 3261 §19.1 SIPS URI
	SchemeXMPP Scheme = "xmpp" // RFC 5122 XMPP URI
	SchemeJID  Scheme = "jid"  // RFC 7622 JID, no scheme
)

// Sentinel errors. Every error this package's parsers and constructors
// return wraps one of them, and ErrEmptyLocal, ErrDomain and ErrTooLong also match
// ErrMalformed, so a caller that only distinguishes "unsupported scheme"
// (SIP 416) from "malformed" (SIP 400/404, XMPP jid-malformed) needs two
// checks.
var (
	ErrMalformed         = errors.New("malformed address")
	ErrUnsupportedScheme = errors.New("unsupported URI scheme")
	ErrEmptyLocal        = kindError{"empty or missing user part"}
	ErrDomain            = kindError{"invalid domain"}
	ErrTooLong           = kindError{"address part too long"}
)

// kindError is a refinement of ErrMalformed.
type kindError struct{ msg string }

func (e kindError) Error() string { return e.msg }
func (e kindError) Unwrap() error { return ErrMalformed }

// Limits: RFC 7622 §3.3 and §3.4 cap the localpart and resourcepart at 1023
// bytes; maxInput bounds the work done on any input before it is refused.
const (
	maxPart  = 1023
	maxInput = 8192
)

// Address is one user at a domain, optionally one resource (device or
// session) of that user. It is always held in normalized JID form, so two
// Addresses name the same entity exactly when they are ==:
//
//   - Local is a JID localpart: XEP-0106 escaped (canonically: no needless
//     \5c, not beginning or ending with \20), then PRECIS UsernameCaseMapped
//     (RFC 8265, RFC 7622 §3.3), at most 1023 bytes.
//   - Domain is lower case with U-labels for internationalized labels and no
//     final dot (see ParseDomain); it may also be an IPv4 address or an IPv6
//     address in brackets.
//   - Resource is empty or PRECIS OpaqueString (RFC 7622 §3.4), at most 1023
//     bytes; it maps to a SIP GRUU ";gr=" parameter (RFC 7247 §6).
//
// Use Parse, ParseJID, New or FromJID to make one; the methods assume a
// valid Address and render an invalid, hand-built one as best they can.
type Address struct {
	Local, Domain, Resource string
}

// New builds an Address from a JID localpart (already XEP-0106 escaped), a
// domain and an optional resource, normalizing each.
func New(local, domain, resource string) (Address, error) {
	a, err := newAddress(local, domain, resource)
	if err != nil {
		return Address{}, fmt.Errorf("addressing: %w", err)
	}
	return a, nil
}

func newAddress(local, domain, resource string) (Address, error) {
	l, err := normalizeJIDLocal(local)
	if err != nil {
		return Address{}, err
	}
	d, err := normalizeDomain(domain, true)
	if err != nil {
		return Address{}, err
	}
	r, err := normalizeResource(resource)
	if err != nil {
		return Address{}, err
	}
	return Address{Local: l, Domain: d, Resource: r}, nil
}

// FromJID converts a mellium JID. It fails for a JID with no localpart and
// for one this package would not produce itself (a domain that is not a host
// name, a localpart that is not canonically XEP-0106 escaped).
func FromJID(j jid.JID) (Address, error) {
	return New(j.Localpart(), j.Domainpart(), j.Resourcepart())
}

// ParseJID parses a bare or full JID (RFC 7622) with a localpart, such as
// "romeo@montague.example.net/orchard". It is Parse without URI schemes.
func ParseJID(s string) (Address, error) {
	if s == "" {
		return Address{}, fmt.Errorf("addressing: %w: empty JID", ErrMalformed)
	}
	if len(s) > maxInput {
		return Address{}, fmt.Errorf("addressing: JID %s: %w: longer than %d bytes", quote(s), ErrTooLong, maxInput)
	}
	if !utf8.ValidString(s) {
		return Address{}, fmt.Errorf("addressing: JID %s: %w: invalid UTF-8", quote(s), ErrMalformed)
	}
	// RFC 7622 §3.1: split at the first '/', then at the first '@' before it.
	rest, resource, hasResource := strings.Cut(s, "/")
	if hasResource && resource == "" {
		return Address{}, fmt.Errorf("addressing: JID %s: %w: empty resourcepart after '/'", quote(s), ErrMalformed)
	}
	local, domain, hasLocal := strings.Cut(rest, "@")
	if !hasLocal || local == "" {
		return Address{}, fmt.Errorf("addressing: JID %s: %w", quote(s), ErrEmptyLocal)
	}
	a, err := newAddress(local, domain, resource)
	if err != nil {
		return Address{}, fmt.Errorf("addressing: JID %s: %w", quote(s), err)
	}
	return a, nil
}

// normalizeJIDLocal normalizes a localpart given in JID (escaped) form.
func normalizeJIDLocal(local string) (string, error) {
	if local == "" {
		return "", ErrEmptyLocal
	}
	l, err := precisLocal(local)
	if err != nil {
		return "", err
	}
	if !canonicalEscaping(l) {
		return "", fmt.Errorf("localpart %s: %w: not canonical XEP-0106 escaping (needless \\5c, or \\20 at either end)", quote(local), ErrMalformed)
	}
	return l, nil
}

// normalizeUserLocal turns an unescaped user name taken from a URI into a
// localpart: XEP-0106 escaping, then PRECIS (RFC 7247 §6).
func normalizeUserLocal(user string) (string, error) {
	if user == "" {
		return "", ErrEmptyLocal
	}
	e := Escape(user)
	return precisEscaped(user, e)
}

// precisEscaped applies PRECIS to the escaped form e of user and checks
// that PRECIS neither broke nor made an escape sequence (NFC can merge a
// combining mark into the last hex digit; width mapping can turn fullwidth
// characters into one), which would change the name the URI gave.
func precisEscaped(user, e string) (string, error) {
	l, err := precisLocal(e)
	if err != nil {
		return "", err
	}
	if countEscapes(l) != countEscapes(e) || !canonicalEscaping(l) {
		return "", fmt.Errorf("user part %s: %w: it does not survive XEP-0106 escaping and PRECIS unchanged", quote(user), ErrMalformed)
	}
	return l, nil
}

// precisLocal applies PRECIS UsernameCaseMapped and the RFC 7622 localpart
// checks. It calls golang.org/x/text/secure/precis, the very profile
// mellium.im/xmpp/jid applies (TestAgreesWithMellium and FuzzParse hold the
// two together), so that an error can say which part failed.
func precisLocal(local string) (string, error) {
	if len(local) > 4*maxPart {
		return "", fmt.Errorf("localpart %s: %w: longer than %d bytes", quote(local), ErrTooLong, maxPart)
	}
	if !utf8.ValidString(local) {
		return "", fmt.Errorf("localpart %s: %w: invalid UTF-8", quote(local), ErrMalformed)
	}
	l, err := precis.UsernameCaseMapped.String(local)
	if err != nil {
		return "", fmt.Errorf("localpart %s: %w: PRECIS UsernameCaseMapped: %w", quote(local), ErrMalformed, err)
	}
	if len(l) > maxPart {
		return "", fmt.Errorf("localpart %s: %w: longer than %d bytes", quote(local), ErrTooLong, maxPart)
	}
	// RFC 7622 §3.3.1: characters the profile allows but a localpart must not
	// hold.
	if i := strings.IndexAny(l, `"&'/:<>@`); i >= 0 {
		return "", fmt.Errorf("localpart %s: %w: character %q not allowed", quote(local), ErrMalformed, l[i])
	}
	return l, nil
}

func normalizeResource(res string) (string, error) {
	if res == "" {
		return "", nil
	}
	if len(res) > 4*maxPart {
		return "", fmt.Errorf("resourcepart %s: %w: longer than %d bytes", quote(res), ErrTooLong, maxPart)
	}
	if !utf8.ValidString(res) {
		return "", fmt.Errorf("resourcepart %s: %w: invalid UTF-8", quote(res), ErrMalformed)
	}
	r, err := precis.OpaqueString.String(res)
	if err != nil {
		return "", fmt.Errorf("resourcepart %s: %w: PRECIS OpaqueString: %w", quote(res), ErrMalformed, err)
	}
	if len(r) > maxPart {
		return "", fmt.Errorf("resourcepart %s: %w: longer than %d bytes", quote(res), ErrTooLong, maxPart)
	}
	return r, nil
}

// quote renders part of an input for an error message, cut short so that
// hostile input does not flood logs.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…(%d bytes)", s[:cut], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// Bare returns the address without its resource.
func (a Address) Bare() Address {
	a.Resource = ""
	return a
}

// IsBare reports whether the address has no resource.
func (a Address) IsBare() bool { return a.Resource == "" }

// JID returns the address as a mellium JID.
func (a Address) JID() (jid.JID, error) {
	j, err := jid.New(a.Local, a.Domain, a.Resource)
	if err != nil {
		return jid.JID{}, fmt.Errorf("addressing: JID %s: %w: %w", quote(a.String()), ErrMalformed, err)
	}
	return j, nil
}

// BareJID returns "local@domain".
func (a Address) BareJID() string { return a.Local + "@" + a.Domain }

// String returns the full JID, "local@domain" or "local@domain/resource".
func (a Address) String() string {
	if a.Resource == "" {
		return a.BareJID()
	}
	return a.Local + "@" + a.Domain + "/" + a.Resource
}

// URI renders the address in the given scheme (SchemeJID gives String).
// An unknown scheme gives the empty string.
func (a Address) URI(s Scheme) string {
	switch s {
	case SchemeIM:
		return a.IM()
	case SchemePres:
		return a.Pres()
	case SchemeSIP:
		return a.SIP()
	case SchemeSIPS:
		return a.SIPS()
	case SchemeXMPP:
		return a.XMPPURI()
	case SchemeJID:
		return a.String()
	}
	return ""
}
