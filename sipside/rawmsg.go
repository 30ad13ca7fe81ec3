package sipside

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// This file holds our own minimal reading of raw SIP bytes. sipgo's parser
// is the real one; this one is only asked about messages sipgo refuses, so
// that a request whose Via we can still read gets a 400, 416 or 505 instead
// of silence (RFC 4475 §3.1.2, §3.3.3), and to normalize datagrams before
// sipgo sees them (header folding, RFC 3261 §7.3.1).

// rawHeader is one header field line, unfolded.
type rawHeader struct {
	name  string // lower-case long form ("via", "call-id")
	value string // trimmed
}

// rawMessage is what parseRaw extracts from a message.
type rawMessage struct {
	response bool
	// Request line, split on single spaces. lineOK is false when the line
	// did not have exactly three single-space separated parts.
	method, uri, version string
	lineOK               bool
	headers              []rawHeader
}

// compactNames maps the RFC 3261 §7.3.3 (and extension) compact forms.
var compactNames = map[string]string{
	"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length",
	"c": "content-type", "m": "contact", "k": "supported", "s": "subject",
	"e": "content-encoding", "o": "event", "u": "allow-events", "r": "refer-to",
}

// maxRawHeaders bounds the work parseRaw does on hostile input.
const maxRawHeaders = 256

var errRawMalformed = errors.New("sipside: malformed message")

// headerSection returns the header section (without the empty line that
// ends it) and the body; the body is nil when there is no empty line. A
// line is empty when it holds nothing or a lone CR before its LF.
func headerSection(b []byte) (head, body []byte) {
	start := 0
	for {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return b, nil
		}
		if line := b[start : start+i]; len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			head = bytes.TrimSuffix(bytes.TrimSuffix(b[:start], []byte("\n")), []byte("\r"))
			return head, b[start+i+1:]
		}
		start += i + 1
	}
}

// splitLines splits on LF, dropping a CR before it.
func splitLines(b []byte) []string {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// parseRaw reads the start line and header fields of a SIP message. It
// never fails on odd header contents; it fails only when there is no
// start line at all or too many header lines.
func parseRaw(b []byte) (*rawMessage, error) {
	head, _ := headerSection(b)
	lines := splitLines(head)
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return nil, fmt.Errorf("parse raw: empty start line: %w", errRawMalformed)
	}
	m := &rawMessage{}
	start := lines[0]
	if strings.HasPrefix(start, "SIP/") {
		m.response = true
	} else {
		parts := strings.Split(start, " ")
		if len(parts) == 3 && parts[0] != "" && parts[1] != "" && parts[2] != "" {
			m.method, m.uri, m.version, m.lineOK = parts[0], parts[1], parts[2], true
		} else {
			f := strings.Fields(start)
			if len(f) == 0 {
				return nil, fmt.Errorf("parse raw: start line: %w", errRawMalformed)
			}
			m.method = f[0]
			if len(f) >= 2 {
				m.uri = f[1]
			}
			if len(f) >= 3 {
				m.version = f[len(f)-1]
			}
		}
	}
	for _, l := range lines[1:] {
		// A CR not followed by LF is no line end; it must not become
		// one in a response built from these values.
		l = strings.ReplaceAll(l, "\r", " ")
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(m.headers) > 0 {
			h := &m.headers[len(m.headers)-1]
			h.value = strings.TrimSpace(h.value + " " + strings.TrimSpace(l))
			continue
		}
		colon := strings.IndexByte(l, ':')
		if colon <= 0 {
			continue // not a header line; ignored like an unknown header
		}
		name := strings.ToLower(strings.TrimSpace(l[:colon]))
		if long, ok := compactNames[name]; ok {
			name = long
		}
		if len(m.headers) >= maxRawHeaders {
			return nil, fmt.Errorf("parse raw: more than %d header lines: %w", maxRawHeaders, errRawMalformed)
		}
		m.headers = append(m.headers, rawHeader{name: name, value: strings.TrimSpace(l[colon+1:])})
	}
	return m, nil
}

// values returns every value of a header, comma lists split for Via.
func (m *rawMessage) values(name string) []string {
	var out []string
	for _, h := range m.headers {
		if h.name != name {
			continue
		}
		if name == "via" {
			out = append(out, splitComma(h.value)...)
			continue
		}
		out = append(out, h.value)
	}
	return out
}

// first returns the first value of a header, or "".
func (m *rawMessage) first(name string) string {
	for _, h := range m.headers {
		if h.name == name {
			return h.value
		}
	}
	return ""
}

// splitComma splits a header value on commas outside quotes and <>.
func splitComma(v string) []string {
	var out []string
	for start := 0; start <= len(v); {
		end := start + firstValueEnd(v[start:])
		if s := strings.TrimSpace(v[start:end]); s != "" {
			out = append(out, s)
		}
		start = end + 1
	}
	return out
}

// viaUsable reports whether a Via value has a sent-protocol with three
// parts and a sent-by host: enough to address a response to (RFC 3261
// §18.2.2). The protocol version is not checked so that a SIP/7.0 request
// can still be answered 505.
func viaUsable(v string) bool {
	rest := v
	for i := 0; i < 2; i++ {
		slash := strings.IndexByte(rest, '/')
		if slash < 0 || strings.TrimSpace(rest[:slash]) == "" {
			return false
		}
		rest = rest[slash+1:]
	}
	rest = strings.TrimLeft(rest, " \t")
	sp := strings.IndexAny(rest, " \t")
	if sp <= 0 {
		return false
	}
	transport := rest[:sp]
	if !isToken(transport) {
		return false
	}
	sentBy := strings.TrimSpace(rest[sp:])
	if i := strings.IndexByte(sentBy, ';'); i >= 0 {
		sentBy = sentBy[:i]
	}
	sentBy = strings.TrimSpace(sentBy)
	if sentBy == "" || strings.ContainsAny(sentBy, " \t\",<>") {
		return false
	}
	return true
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("-.!%*_+`'~", rune(c)) {
			return false
		}
	}
	return true
}

// hasTag reports whether a From/To value carries a tag parameter outside
// its URI (after '>' in name-addr form).
func hasTag(v string) bool {
	params := v
	if i := strings.LastIndexByte(v, '>'); i >= 0 {
		params = v[i+1:]
	}
	for _, p := range strings.Split(params, ";")[1:] {
		name, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(name), "tag") {
			return true
		}
	}
	return false
}

// rejectStatus decides the status for a request sipgo could not parse:
// 505 for another SIP version, 416 for a Request-URI scheme we do not
// know, 400 otherwise. ok is false when no response can be sent: a
// response message, or a request without a usable top Via.
func rejectStatus(m *rawMessage) (code int, reason string, ok bool) {
	if m.response {
		return 0, "", false
	}
	vias := m.values("via")
	if len(vias) == 0 || !viaUsable(vias[0]) {
		return 0, "", false
	}
	if m.version != "" && !strings.EqualFold(m.version, "SIP/2.0") && strings.HasPrefix(strings.ToUpper(m.version), "SIP/") {
		return 505, "Version Not Supported", true
	}
	if m.lineOK {
		scheme, _, found := strings.Cut(m.uri, ":")
		if found && isToken(scheme) && !strings.ContainsAny(scheme, "<>") && !knownScheme(scheme) {
			return 416, "Unsupported URI Scheme", true
		}
	}
	return 400, "Bad Request", true
}

// knownScheme lists the Request-URI schemes this server handles.
func knownScheme(s string) bool {
	switch strings.ToLower(s) {
	case "sip", "sips", "im", "pres", "tel":
		return true
	}
	return false
}

// rawResponse builds a stateless response to m from its own header
// values (RFC 3261 §8.2.6.2): Via, From, To (with a tag added), Call-ID
// and CSeq copied. received is the packet's source IP for the top Via.
func rawResponse(m *rawMessage, code int, reason, toTag, received, server string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for i, v := range m.values("via") {
		if i == 0 && received != "" {
			v += ";received=" + received
		}
		b.WriteString("Via: " + v + "\r\n")
	}
	if v := m.first("from"); v != "" {
		b.WriteString("From: " + v + "\r\n")
	}
	if v := m.first("to"); v != "" {
		if !hasTag(v) && toTag != "" {
			v += ";tag=" + toTag
		}
		b.WriteString("To: " + v + "\r\n")
	}
	if v := m.first("call-id"); v != "" {
		b.WriteString("Call-ID: " + v + "\r\n")
	}
	if v := m.first("cseq"); v != "" {
		b.WriteString("CSeq: " + v + "\r\n")
	}
	if server != "" {
		b.WriteString("Server: " + server + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// normalizeDatagram prepares one UDP datagram for sipgo: header folding
// is undone (RFC 3261 §7.3.1 says folded LWS is equivalent to one SP),
// whitespace around ';' and '=' in header parameters is removed (SEMI and
// EQUAL allow it, sipgo does not), ";rport" is added to the top Via so the
// response goes back to the packet's source port (RFC 3581 as a server
// policy, like Kamailio's force_rport), and octets past Content-Length are
// dropped (RFC 3261 §18.3, RFC 4475 §3.1.1.8). It returns b unchanged when
// it finds no header section.
func normalizeDatagram(b []byte) []byte {
	head, body := headerSection(b)
	if body == nil || len(head) == 0 {
		return b // no header section, or no start line: nothing to do
	}
	lines := splitLines(head)
	var out []string
	for i, l := range lines {
		l = strings.ReplaceAll(l, "\r", " ") // a lone CR ends no line
		if i > 0 && l == "" {
			// Only CRs stood there (headerSection trimmed the last one):
			// white space, not the blank line that ends the headers.
			continue
		}
		if i > 0 && (l[0] == ' ' || l[0] == '\t') && len(out) > 1 {
			out[len(out)-1] = strings.TrimRight(out[len(out)-1], " \t") + " " + strings.TrimSpace(l)
			continue
		}
		out = append(out, l)
	}
	clen := -1
	topVia := false
	viaLine, fromValue := -1, ""
	for i := 1; i < len(out); i++ {
		name, value, ok := strings.Cut(out[i], ":")
		if !ok {
			continue
		}
		lname := strings.ToLower(strings.TrimSpace(name))
		if long, ok := compactNames[lname]; ok {
			lname = long
		}
		switch lname {
		case "via", "from", "to", "contact", "route", "record-route":
			value = tightenParams(value)
		}
		if lname == "via" {
			value = tightenSlashes(value)
		}
		if lname == "via" && !topVia {
			topVia = true
			value = addRport(value)
			viaLine = i
		}
		if lname == "from" && fromValue == "" {
			fromValue = value
		}
		if lname == "content-length" {
			if n, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && n >= 0 {
				clen = n
			}
		}
		out[i] = strings.TrimRight(name, " \t") + ": " + strings.TrimSpace(value)
	}
	if viaLine > 0 && !hasTag(fromValue) {
		out[viaLine] = add2543Branch(out[viaLine], out)
	}
	var nb bytes.Buffer
	nb.Grow(len(b) + 16)
	nb.WriteString(strings.Join(out, "\r\n"))
	nb.WriteString("\r\n\r\n")
	if clen >= 0 && clen < len(body) {
		body = body[:clen]
	}
	nb.Write(body)
	return nb.Bytes()
}

// tightenParams removes LWS around ';' and '=' outside quoted strings
// and outside <>.
func tightenParams(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	var sc valueScanner
	for i := 0; i < len(v); i++ {
		c := v[i]
		if sc.outside(c) && (c == ';' || c == '=') {
			s := strings.TrimRight(b.String(), " \t")
			b.Reset()
			b.WriteString(s)
			b.WriteByte(c)
			for i+1 < len(v) && (v[i+1] == ' ' || v[i+1] == '\t') {
				i++
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// addRport adds an empty rport parameter to the first Via value of a
// header line unless it has one.
func addRport(v string) string {
	end := firstValueEnd(v)
	for _, p := range strings.Split(v[:end], ";")[1:] {
		name, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(name), "rport") {
			return v
		}
	}
	head := strings.TrimRight(v[:end], " \t")
	return head + ";rport" + v[len(head):]
}

// firstValueEnd returns the index of the first comma outside quotes and
// <> in v, or len(v).
func firstValueEnd(v string) int {
	var sc valueScanner
	for i := 0; i < len(v); i++ {
		if sc.outside(v[i]) && v[i] == ',' {
			return i
		}
	}
	return len(v)
}

// valueScanner follows a header value byte by byte, knowing whether it
// is inside a quoted string (with backslash escapes) or inside <>.
type valueScanner struct{ inQuote, inAngle, esc bool }

// outside consumes c and reports whether it stands outside quotes and <>
// and is not itself a quote, bracket or escaped byte: where a separator
// (',', ';', '=') counts.
func (s *valueScanner) outside(c byte) bool {
	switch {
	case s.esc:
		s.esc = false
	case s.inQuote && c == '\\':
		s.esc = true
	case c == '"':
		s.inQuote = !s.inQuote
	case !s.inQuote && c == '<':
		s.inAngle = true
	case !s.inQuote && c == '>':
		s.inAngle = false
	default:
		return !s.inQuote && !s.inAngle
	}
	return false
}

// tightenSlashes removes LWS around '/' (SLASH = SWS "/" SWS), used on Via
// values whose sent-protocol may be spread out (RFC 4475 §3.1.1.1).
func tightenSlashes(v string) string {
	if !strings.Contains(v, "/") {
		return v
	}
	parts := strings.Split(v, "/")
	for i := range parts {
		if i > 0 {
			parts[i] = strings.TrimLeft(parts[i], " \t")
		}
		if i < len(parts)-1 {
			parts[i] = strings.TrimRight(parts[i], " \t")
		}
	}
	return strings.Join(parts, "/")
}

// add2543Branch gives an RFC 2543 request (no branch in the top Via, no
// From tag, RFC 4475 §3.4.1) a branch derived from the request line and
// header fields, so that sipgo, which keys such transactions on the From
// tag, can key it and retransmissions still match. Requests with a
// branch are left alone.
func add2543Branch(viaLine string, lines []string) string {
	name, value, _ := strings.Cut(viaLine, ":")
	end := firstValueEnd(value)
	for _, p := range strings.Split(value[:end], ";")[1:] {
		pn, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(pn), "branch") {
			return viaLine
		}
	}
	h := fnv.New64a()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{0})
	}
	head := strings.TrimRight(value[:end], " \t")
	return name + ":" + head + fmt.Sprintf(";branch=z9hG4bK-2543-%016x", h.Sum64()) + value[len(head):]
}
