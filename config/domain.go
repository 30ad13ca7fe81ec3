package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// NormalizeDomain checks that s is a DNS host name as hosted and peer
// domains must be (RFC 1123 §2.1: labels of 1 to 63 letters, digits and
// hyphens, not starting or ending with a hyphen, 253 characters in all)
// and returns it in lower case. IP addresses and a trailing dot are
// refused. Internationalized names must be given in their A-label
// (xn--) form.
func NormalizeDomain(s string) (string, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("empty domain")
	case len(s) > 253:
		return "", fmt.Errorf("domain %q is %d characters long, more than 253", s, len(s))
	case strings.HasSuffix(s, "."):
		return "", fmt.Errorf("domain %q: leave out the trailing dot", s)
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return "", fmt.Errorf("%q is an IP address, not a domain", s)
	}
	for label := range strings.SplitSeq(s, ".") {
		if err := checkLabel(label); err != nil {
			return "", fmt.Errorf("invalid domain %q: %w", s, err)
		}
	}
	return strings.ToLower(s), nil
}

func checkLabel(label string) error {
	switch {
	case label == "":
		return fmt.Errorf("empty label")
	case len(label) > 63:
		return fmt.Errorf("label %q is %d characters long, more than 63", label, len(label))
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Errorf("label %q starts or ends with '-'", label)
	}
	for _, c := range []byte(label) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("label %q contains %q; only letters, digits and '-' are allowed", label, c)
		}
	}
	return nil
}
