package addressing

import (
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// maxDomainASCII is the longest domain name DNS can carry in presentation
// form without the final dot (RFC 1035 §2.3.4 255 octets on the wire).
const maxDomainASCII = 253

// ParseDomain validates s as the name of a hosted or peer domain and returns
// it in the form an Address holds: lower case, U-labels for internationalized
// labels (RFC 7622 §3.2 wants U-labels in JIDs; use DomainToASCII for DNS and
// SIP), no final dot.
//
// The name must be a DNS host name: labels of 1 to 63 letters, digits or
// hyphens, not starting or ending with a hyphen, at most 253 octets in
// A-label form. Internationalized names are accepted in either form and
// checked with IDNA2008 (UTS #46 non-transitional mapping). Single-label
// names such as "localhost" are allowed (useful for tests and private
// deployments); a name whose last label is all digits is refused so that it
// cannot be mistaken for an IPv4 address, and IP literals are refused too:
// a domain served here has a name.
func ParseDomain(s string) (string, error) {
	d, err := normalizeDomain(s, false)
	if err != nil {
		return "", fmt.Errorf("addressing: %w", err)
	}
	return d, nil
}

// DomainToASCII returns the A-label (ASCII) form of a domain as held in an
// Address or returned by ParseDomain, for DNS queries and SIP host parts.
// IP literals are returned unchanged.
func DomainToASCII(domain string) (string, error) {
	if isASCII(domain) {
		return domain, nil
	}
	a, err := idna.Display.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("addressing: domain %s: %w: %w", quote(domain), ErrDomain, err)
	}
	return a, nil
}

// asciiDomain is DomainToASCII for the renderers, which cannot fail on a
// valid Address; an invalid one is rendered as it is.
func asciiDomain(domain string) string {
	a, err := DomainToASCII(domain)
	if err != nil {
		return domain
	}
	return a
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// normalizeDomain is ParseDomain, optionally also accepting IP literals
// (an IPv4 address, or an IPv6 address in brackets) as a JID domainpart may
// be one (RFC 7622 §3.2).
func normalizeDomain(s string, allowIP bool) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty domain", ErrDomain)
	}
	if len(s) > maxInput {
		return "", fmt.Errorf("domain %s: %w: longer than %d bytes", quote(s), ErrDomain, maxInput)
	}
	if s[0] == '[' {
		if !allowIP {
			return "", fmt.Errorf("domain %s: %w: an IP literal is not a domain name", quote(s), ErrDomain)
		}
		return normalizeIPv6(s)
	}
	// RFC 7622 §3.2: a final dot is stripped before anything else.
	d := strings.TrimSuffix(s, ".")
	if ip, err := netip.ParseAddr(d); err == nil && ip.Is4() {
		if !allowIP {
			return "", fmt.Errorf("domain %s: %w: an IP address is not a domain name", quote(s), ErrDomain)
		}
		return ip.String(), nil
	}
	if isASCII(d) {
		d = lowerASCII(d)
	}
	if isASCII(d) && !strings.Contains(d, "xn--") {
		// Fast path: plain LDH names need no IDNA processing.
		if err := checkLDH(d); err != nil {
			return "", fmt.Errorf("domain %s: %w: %w", quote(s), ErrDomain, err)
		}
		return d, nil
	}
	a, err := idna.Display.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("domain %s: %w: %w", quote(s), ErrDomain, err)
	}
	if err := checkLDH(a); err != nil {
		return "", fmt.Errorf("domain %s: %w: %w", quote(s), ErrDomain, err)
	}
	u, err := idna.Display.ToUnicode(a)
	if err != nil {
		return "", fmt.Errorf("domain %s: %w: %w", quote(s), ErrDomain, err)
	}
	return u, nil
}

func normalizeIPv6(s string) (string, error) {
	if len(s) < 3 || s[len(s)-1] != ']' {
		return "", fmt.Errorf("domain %s: %w: unterminated IPv6 literal", quote(s), ErrDomain)
	}
	ip, err := netip.ParseAddr(s[1 : len(s)-1])
	if err != nil || !ip.Is6() || ip.Is4In6() || ip.Zone() != "" {
		return "", fmt.Errorf("domain %s: %w: not an IPv6 address", quote(s), ErrDomain)
	}
	return "[" + ip.String() + "]", nil
}

// lowerASCII lower-cases ASCII letters, allocating only when needed.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// labelError describes why an ASCII domain name is not a host name.
type labelError string

func (e labelError) Error() string { return string(e) }

// checkLDH checks an ASCII, lower-case domain name against the host name
// rules of RFC 1123 §2.1 and the DNS length limits.
func checkLDH(d string) error {
	if d == "" {
		return labelError("empty name")
	}
	if len(d) > maxDomainASCII {
		return labelError(fmt.Sprintf("name is %d bytes, longer than %d", len(d), maxDomainASCII))
	}
	allDigits := true
	start := 0
	for i := 0; i <= len(d); i++ {
		if i < len(d) && d[i] != '.' {
			c := d[i]
			switch {
			case 'a' <= c && c <= 'z':
				allDigits = false
			case '0' <= c && c <= '9':
			case c == '-':
				allDigits = false
			default:
				return labelError(fmt.Sprintf("character %q not allowed in a host name", c))
			}
			continue
		}
		label := d[start:i]
		switch {
		case label == "":
			return labelError("empty label")
		case len(label) > 63:
			return labelError(fmt.Sprintf("label %q longer than 63 bytes", label[:16]+"…"))
		case label[0] == '-' || label[len(label)-1] == '-':
			return labelError(fmt.Sprintf("label %q starts or ends with a hyphen", label))
		case len(label) >= 4 && label[2] == '-' && label[3] == '-' && !strings.HasPrefix(label, "xn--"):
			// RFC 5891 §4.2.3.1 reserves "??--" labels for IDNA.
			return labelError(fmt.Sprintf("label %q has hyphens in the third and fourth places", label))
		}
		if i < len(d) {
			allDigits = true
		}
		start = i + 1
	}
	if allDigits {
		return labelError("the last label is all digits")
	}
	return nil
}
