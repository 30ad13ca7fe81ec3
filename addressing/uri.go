package addressing

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Characters (besides ASCII letters and digits) that may appear unencoded in
// each part of an incoming URI. These follow the grammars, slightly widened
// where that cannot cause ambiguity; anything else must be percent-encoded.
// Raw non-ASCII (IRI-style UTF-8) is tolerated everywhere.
const (
	sipUserRaw   = "-_.!~*'()&=+$,;?/"  // RFC 3261 §25.1 user
	sipParamRaw  = "-_.!~*'()[]/:&+$"   // RFC 3261 §25.1 paramchar
	imUserRaw    = "-._~!$&'()*+,;=/"   // RFC 3986 unreserved, sub-delims and '/'
	xmppNodeRaw  = "-._~!$&'()*+,;="    // RFC 5122 nodeid, widened to sub-delims
	xmppResRaw   = "-._~!$&'()*+,;=:@/" // RFC 5122 resid, plus '/'
	hostRaw      = "-._~[]:"            // host names, IP literals, a port to refuse
	sipUserOut   = "-_.!~*'()&=+$,/"    // user minus ';' and '?', which confuse parsers
	sipParamOut  = "-_.!~*'()/:&+$"     // paramchar minus '[' ']'
	imUserOut    = "-._~!$&'*+=/"       // RFC 5322 atext that RFC 3986 allows raw
	xmppNodeOut  = "-._~!$()*+,;="      // RFC 5122 unreserved and nodeallow
	xmppResOut   = "-._~!$&'()*+,:;=@"  // RFC 5122 unreserved and resallow
	upperHexDigs = "0123456789ABCDEF"
)

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func inSet(c byte, set string) bool {
	return isAlnum(c) || strings.IndexByte(set, c) >= 0
}

// Parse parses an address written as an im:, pres:, sip:, sips: or xmpp: URI
// (scheme in any case) or as a bare or full JID with no scheme, and returns
// it normalized, with the form it was written in.
//
// URIs: the user part is percent-decoded as UTF-8 and, except for xmpp:,
// XEP-0106 escaped before PRECIS (RFC 7247 §6), so "sip:o'malley@sip.example"
// gives o\27malley@sip.example. An xmpp: URI carries the JID itself (RFC 5122
// §2.2), so its decoded node keeps its backslashes and only the characters a
// localpart cannot hold are escaped. In sip: and sips: URIs a ";gr=" parameter
// becomes the resource (RFC 7247 §6, RFC 5627), other parameters and headers
// are ignored, and a password or a port is an error: an address of record
// has neither. In xmpp: URIs an authority ("xmpp://me@host/..."), query and
// fragment are ignored. im: and pres: headers are ignored.
//
// A user part is required everywhere. Errors wrap ErrUnsupportedScheme for
// any other scheme (tel:, soap.beep:, ...) and ErrMalformed (or one of its
// refinements ErrEmptyLocal, ErrDomain, ErrTooLong) for everything else.
func Parse(s string) (Address, Scheme, error) {
	if s == "" {
		return Address{}, "", fmt.Errorf("addressing: %w: empty address", ErrMalformed)
	}
	if len(s) > maxInput {
		return Address{}, "", fmt.Errorf("addressing: %s: %w: longer than %d bytes", quote(s), ErrTooLong, maxInput)
	}
	scheme, rest, ok := splitScheme(s)
	if !ok {
		a, err := ParseJID(s)
		if err != nil {
			return Address{}, "", err
		}
		return a, SchemeJID, nil
	}
	var sch Scheme
	switch {
	case strings.EqualFold(scheme, "sip"):
		sch = SchemeSIP
	case strings.EqualFold(scheme, "sips"):
		sch = SchemeSIPS
	case strings.EqualFold(scheme, "im"):
		sch = SchemeIM
	case strings.EqualFold(scheme, "pres"):
		sch = SchemePres
	case strings.EqualFold(scheme, "xmpp"):
		sch = SchemeXMPP
	default:
		return Address{}, "", fmt.Errorf("addressing: %s: %w %s", quote(s), ErrUnsupportedScheme, quote(scheme))
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c <= ' ' || c == 0x7f {
			return Address{}, "", fmt.Errorf("addressing: %s: %w: whitespace or control character at byte %d", quote(s), ErrMalformed, len(scheme)+1+i)
		}
	}
	var (
		a   Address
		err error
	)
	switch sch {
	case SchemeSIP, SchemeSIPS:
		a, err = parseSIP(rest)
	case SchemeIM, SchemePres:
		a, err = parseMailbox(rest)
	case SchemeXMPP:
		a, err = parseXMPP(rest)
	}
	if err != nil {
		return Address{}, "", fmt.Errorf("addressing: %s URI %s: %w", sch, quote(s), err)
	}
	return a, sch, nil
}

// splitScheme finds a URI scheme (RFC 3986 §3.1) before the first ':' that
// comes before any '@' or '/'; a JID cannot have one there.
func splitScheme(s string) (scheme, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return s[:i], s[i+1:], true
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// parseSIP parses what follows "sip:" or "sips:" (RFC 3261 §19.1.1):
// userinfo "@" hostport *(";" param) ["?" headers].
func parseSIP(rest string) (Address, error) {
	at := strings.IndexByte(rest, '@')
	if at < 0 {
		return Address{}, fmt.Errorf("%w: no user part", ErrEmptyLocal)
	}
	if strings.IndexByte(rest[at+1:], '@') >= 0 {
		return Address{}, fmt.Errorf("%w: more than one '@'", ErrMalformed)
	}
	userinfo := rest[:at]
	if userinfo == "" {
		return Address{}, fmt.Errorf("%w: empty user part", ErrEmptyLocal)
	}
	if strings.IndexByte(userinfo, ':') >= 0 {
		return Address{}, fmt.Errorf("%w: a password in the user part is not accepted", ErrMalformed)
	}
	user, err := percentDecode(userinfo, sipUserRaw, "user part")
	if err != nil {
		return Address{}, err
	}
	after := rest[at+1:]
	hostEnd := strings.IndexAny(after, ";?")
	if hostEnd < 0 {
		hostEnd = len(after)
	}
	domain, err := parseHost(after[:hostEnd])
	if err != nil {
		return Address{}, err
	}
	params, _, _ := strings.Cut(after[hostEnd:], "?")
	gr, err := grParam(params)
	if err != nil {
		return Address{}, err
	}
	local, err := normalizeUserLocal(user)
	if err != nil {
		return Address{}, err
	}
	res, err := normalizeResource(gr)
	if err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain, Resource: res}, nil
}

// grParam returns the decoded value of the "gr" parameter among params
// (";name[=value]..."); "gr" with no or an empty value means no resource.
func grParam(params string) (string, error) {
	if params == "" {
		return "", nil
	}
	var (
		gr   string
		seen bool
	)
	rest := params[1:] // drop the first ';'
	for more := true; more; {
		var p string
		p, rest, more = strings.Cut(rest, ";")
		name, value, _ := strings.Cut(p, "=")
		if name == "" {
			return "", fmt.Errorf("%w: empty URI parameter name", ErrMalformed)
		}
		if !strings.EqualFold(name, "gr") {
			continue
		}
		if seen {
			return "", fmt.Errorf("%w: more than one gr parameter", ErrMalformed)
		}
		seen = true
		v, err := percentDecode(value, sipParamRaw, "gr parameter")
		if err != nil {
			return "", err
		}
		gr = v
	}
	return gr, nil
}

// parseMailbox parses what follows "im:" or "pres:" (RFC 3860 §3, RFC 3859
// §3): a single mailbox local "@" domain, then optional "?" headers.
func parseMailbox(rest string) (Address, error) {
	to, _, _ := strings.Cut(rest, "?")
	at := strings.IndexByte(to, '@')
	if at < 0 {
		return Address{}, fmt.Errorf("%w: no user part", ErrEmptyLocal)
	}
	if strings.IndexByte(to[at+1:], '@') >= 0 {
		return Address{}, fmt.Errorf("%w: more than one '@'", ErrMalformed)
	}
	if at == 0 {
		return Address{}, fmt.Errorf("%w: empty user part", ErrEmptyLocal)
	}
	user, err := percentDecode(to[:at], imUserRaw, "user part")
	if err != nil {
		return Address{}, err
	}
	domain, err := parseHost(to[at+1:])
	if err != nil {
		return Address{}, err
	}
	local, err := normalizeUserLocal(user)
	if err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain}, nil
}

// parseXMPP parses what follows "xmpp:" (RFC 5122 §2.3):
// ["//" authority "/"] node "@" host ["/" resource] ["?" query] ["#" fragment].
func parseXMPP(rest string) (Address, error) {
	if strings.HasPrefix(rest, "//") {
		slash := strings.IndexByte(rest[2:], '/')
		if slash < 0 {
			return Address{}, fmt.Errorf("%w: only an authority, no address", ErrEmptyLocal)
		}
		rest = rest[2+slash+1:]
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, _, _ = strings.Cut(rest, "?")
	path, resource, hasRes := strings.Cut(rest, "/")
	at := strings.IndexByte(path, '@')
	if at < 0 {
		return Address{}, fmt.Errorf("%w: no node", ErrEmptyLocal)
	}
	if strings.IndexByte(path[at+1:], '@') >= 0 {
		return Address{}, fmt.Errorf("%w: more than one '@'", ErrMalformed)
	}
	if at == 0 {
		return Address{}, fmt.Errorf("%w: empty node", ErrEmptyLocal)
	}
	if hasRes && resource == "" {
		return Address{}, fmt.Errorf("%w: empty resource after '/'", ErrMalformed)
	}
	node, err := percentDecode(path[:at], xmppNodeRaw, "node")
	if err != nil {
		return Address{}, err
	}
	domain, err := parseHost(path[at+1:])
	if err != nil {
		return Address{}, err
	}
	res, err := percentDecode(resource, xmppResRaw, "resource")
	if err != nil {
		return Address{}, err
	}
	local, err := precisEscaped(node, escapeForbidden(node))
	if err != nil {
		return Address{}, err
	}
	if res, err = normalizeResource(res); err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain, Resource: res}, nil
}

// parseHost percent-decodes and normalizes a URI host, refusing a port.
func parseHost(host string) (string, error) {
	if host == "" {
		return "", fmt.Errorf("%w: empty host", ErrDomain)
	}
	h, err := percentDecode(host, hostRaw, "host")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrDomain, err)
	}
	if strings.HasPrefix(h, "[") {
		if end := strings.IndexByte(h, ']'); end >= 0 && end < len(h)-1 {
			return "", fmt.Errorf("%w: host %s has a port; an address of record has none", ErrDomain, quote(host))
		}
	} else if strings.IndexByte(h, ':') >= 0 {
		return "", fmt.Errorf("%w: host %s has a port; an address of record has none", ErrDomain, quote(host))
	}
	return normalizeDomain(h, true)
}

// percentDecode checks that s holds only letters, digits, characters in raw,
// non-ASCII bytes and %XX escapes, and decodes the escapes. The result must
// be valid UTF-8.
func percentDecode(s, raw, what string) (string, error) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
				return "", fmt.Errorf("%w: %s %s: bad percent escape at byte %d", ErrMalformed, what, quote(s), i)
			}
			n++
			i += 2
		case c >= 0x80 || inSet(c, raw):
		default:
			return "", fmt.Errorf("%w: %s %s: character %q must be percent-encoded", ErrMalformed, what, quote(s), c)
		}
	}
	out := s
	if n > 0 {
		b := make([]byte, 0, len(s)-2*n)
		for i := 0; i < len(s); i++ {
			if s[i] == '%' {
				b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
				i += 2
				continue
			}
			b = append(b, s[i])
		}
		out = string(b)
	}
	if !utf8.ValidString(out) {
		return "", fmt.Errorf("%w: %s %s: not valid UTF-8 once percent-decoded", ErrMalformed, what, quote(s))
	}
	return out, nil
}

// appendPercent writes s to b, percent-encoding every byte that is not a
// letter, a digit or in keep (so all non-ASCII UTF-8 is encoded).
func appendPercent(b *strings.Builder, s, keep string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && inSet(c, keep) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHexDigs[c>>4])
		b.WriteByte(upperHexDigs[c&15])
	}
}

// IM returns the RFC 3860 URI "im:user@domain" (no resource).
func (a Address) IM() string { return a.mailboxURI("im:") }

// Pres returns the RFC 3859 URI "pres:user@domain" (no resource).
func (a Address) Pres() string { return a.mailboxURI("pres:") }

func (a Address) mailboxURI(scheme string) string {
	var b strings.Builder
	b.Grow(len(scheme) + 3*len(a.Local) + 1 + len(a.Domain))
	b.WriteString(scheme)
	appendPercent(&b, Unescape(a.Local), imUserOut)
	b.WriteByte('@')
	b.WriteString(asciiDomain(a.Domain))
	return b.String()
}

// SIP returns the RFC 3261 URI "sip:user@domain", with ";gr=resource" when
// the address has a resource (RFC 7247 §6). The user part is the unescaped
// localpart, percent-encoded where RFC 3261 requires it (and for ';' and
// '?', which it allows but which trip up parsers); the host is in A-labels.
func (a Address) SIP() string { return a.sipURI("sip:") }

// SIPS is SIP with the "sips:" scheme.
func (a Address) SIPS() string { return a.sipURI("sips:") }

func (a Address) sipURI(scheme string) string {
	var b strings.Builder
	b.Grow(len(scheme) + 3*len(a.Local) + 1 + len(a.Domain) + 4 + 3*len(a.Resource))
	b.WriteString(scheme)
	appendPercent(&b, Unescape(a.Local), sipUserOut)
	b.WriteByte('@')
	b.WriteString(asciiDomain(a.Domain))
	if a.Resource != "" {
		b.WriteString(";gr=")
		appendPercent(&b, a.Resource, sipParamOut)
	}
	return b.String()
}

// XMPPURI returns the RFC 5122 URI "xmpp:node@domain[/resource]". The node
// is the JID localpart as it is (escaped), percent-encoded, so a backslash
// becomes %5C; the host is in A-labels.
func (a Address) XMPPURI() string {
	var b strings.Builder
	b.Grow(5 + 3*len(a.Local) + 1 + len(a.Domain) + 1 + 3*len(a.Resource))
	b.WriteString("xmpp:")
	appendPercent(&b, a.Local, xmppNodeOut)
	b.WriteByte('@')
	b.WriteString(asciiDomain(a.Domain))
	if a.Resource != "" {
		b.WriteByte('/')
		appendPercent(&b, a.Resource, xmppResOut)
	}
	return b.String()
}
