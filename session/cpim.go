package session

// A reader and writer for message/cpim (RFC 3862), the part of it pager-mode
// bridging needs: the message headers (From, To, DateTime, Subject, and the
// rest kept in order), the encapsulated MIME headers and the content.

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/umpp/umpp/addressing"
)

// ContentTypeCPIM is the media type of RFC 3862 messages.
const ContentTypeCPIM = "message/cpim"

// maxCPIMHeaders bounds the header lines read from one block.
const maxCPIMHeaders = 64

// CPIMHeader is one header line; Name keeps any namespace prefix
// ("MyFeatures.VitalMessageOption").
type CPIMHeader struct{ Name, Value string }

// CPIM is a message/cpim body: the message headers (RFC 3862 §3.2), the
// encapsulated object's MIME headers (Content-Type among them) and its
// content.
type CPIM struct {
	Headers     []CPIMHeader
	MIMEHeaders []CPIMHeader
	Content     []byte
}

// ParseCPIM reads a message/cpim body. Lines may end in CRLF or LF. Header
// names must be tokens (dotted for namespaced headers); folding is not
// allowed (RFC 3862 §3.1). Errors wrap ErrMalformedMessage or
// ErrMessageTooLarge.
func ParseCPIM(b []byte) (CPIM, error) {
	if len(b) > MaxMessageBytes {
		return CPIM{}, fmt.Errorf("session: cpim: %d bytes exceeds %d: %w", len(b), MaxMessageBytes, ErrMessageTooLarge)
	}
	head, rest, ok := cpimCut(b)
	if !ok {
		return CPIM{}, fmt.Errorf("session: cpim: no blank line after the message headers: %w", ErrMalformedMessage)
	}
	mime, content, ok := cpimCut(rest)
	if !ok {
		return CPIM{}, fmt.Errorf("session: cpim: no blank line after the MIME headers: %w", ErrMalformedMessage)
	}
	var c CPIM
	var err error
	if c.Headers, err = cpimHeaderBlock(head); err != nil {
		return CPIM{}, fmt.Errorf("session: cpim: message headers: %w", err)
	}
	if c.MIMEHeaders, err = cpimHeaderBlock(mime); err != nil {
		return CPIM{}, fmt.Errorf("session: cpim: MIME headers: %w", err)
	}
	if c.ContentType() == "" {
		return CPIM{}, fmt.Errorf("session: cpim: encapsulated object has no Content-Type: %w", ErrMalformedMessage)
	}
	c.Content = content
	return c, nil
}

// cpimCut splits b at its first empty line.
func cpimCut(b []byte) (head, rest []byte, ok bool) {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return nil, nil, false
		}
		line := b[i : i+j]
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return b[:i], b[i+j+1:], true
		}
		i += j + 1
	}
	return nil, nil, false
}

func cpimHeaderBlock(b []byte) ([]CPIMHeader, error) {
	var hs []CPIMHeader
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("line %q has no colon: %w", cpimClip(line), ErrMalformedMessage)
		}
		if !cpimHeaderName(name) {
			return nil, fmt.Errorf("header name %q: %w", cpimClip(name), ErrMalformedMessage)
		}
		if bytes.ContainsAny(value, "\r\x00") {
			return nil, fmt.Errorf("header %s: control character in value: %w", name, ErrMalformedMessage)
		}
		if len(hs) == maxCPIMHeaders {
			return nil, fmt.Errorf("more than %d headers: %w", maxCPIMHeaders, ErrMalformedMessage)
		}
		hs = append(hs, CPIMHeader{Name: string(name), Value: string(bytes.TrimSpace(value))})
	}
	return hs, nil
}

// cpimHeaderName: token *("." token), RFC 3862 §3.1 and §5.
func cpimHeaderName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, part := range bytes.Split(b, []byte(".")) {
		if len(part) == 0 {
			return false
		}
		for _, c := range part {
			if !cpimTokenChar(c) {
				return false
			}
		}
	}
	return true
}

func cpimTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-!%*_+`'~", c) >= 0
}

func cpimClip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// Get returns the first message header called name (ASCII case-insensitive).
func (c CPIM) Get(name string) (string, bool) {
	return cpimGet(c.Headers, name)
}

// ContentType returns the encapsulated object's Content-Type.
func (c CPIM) ContentType() string {
	v, _ := cpimGet(c.MIMEHeaders, "Content-Type")
	return v
}

func cpimGet(hs []CPIMHeader, name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// From returns the address in the From header (RFC 3862 §5.1), the zero
// Address when there is none, or an error when it is not an address.
func (c CPIM) From() (addressing.Address, error) {
	v, ok := c.Get("From")
	if !ok {
		return addressing.Address{}, nil
	}
	return cpimParseAddress(v)
}

// To returns the address in the first To header (RFC 3862 §5.2).
func (c CPIM) To() (addressing.Address, error) {
	v, ok := c.Get("To")
	if !ok {
		return addressing.Address{}, nil
	}
	return cpimParseAddress(v)
}

// DateTime returns the DateTime header (RFC 3862 §5.4), zero when absent.
func (c CPIM) DateTime() (time.Time, error) {
	v, ok := c.Get("DateTime")
	if !ok {
		return time.Time{}, nil
	}
	t, ok := parseStamp(v)
	if !ok {
		return time.Time{}, fmt.Errorf("session: cpim: DateTime %q: %w", cpimClip([]byte(v)), ErrMalformedMessage)
	}
	return t, nil
}

// Subject returns the Subject header in language lang: one with a matching
// ";lang=" parameter, else one without (RFC 3862 §5.5).
func (c CPIM) Subject(lang string) (string, bool) {
	var plain string
	var found bool
	for _, h := range c.Headers {
		if !strings.EqualFold(h.Name, "Subject") {
			continue
		}
		v := h.Value
		if rest, ok := strings.CutPrefix(v, ";"); ok {
			p, text, _ := strings.Cut(rest, " ")
			l, ok := strings.CutPrefix(strings.ToLower(p), "lang=")
			if ok && lang != "" && strings.EqualFold(l, lang) {
				return strings.TrimSpace(text), true
			}
			continue
		}
		if !found {
			plain, found = v, true
		}
	}
	return plain, found
}

// cpimParseAddress reads `Display Name <uri>` or a bare URI (RFC 3862 §3.3).
func cpimParseAddress(v string) (addressing.Address, error) {
	uri := v
	if lt := strings.LastIndexByte(v, '<'); lt >= 0 {
		gt := strings.IndexByte(v[lt:], '>')
		if gt < 0 || strings.TrimSpace(v[lt+gt+1:]) != "" {
			return addressing.Address{}, fmt.Errorf("session: cpim: address %q: %w", cpimClip([]byte(v)), ErrMalformedMessage)
		}
		uri = v[lt+1 : lt+gt]
	}
	a, _, err := addressing.Parse(strings.TrimSpace(uri))
	if err != nil {
		return addressing.Address{}, fmt.Errorf("session: cpim: address %q: %w", cpimClip([]byte(v)), err)
	}
	return a, nil
}

// cpimAddress writes an address as a CPIM header value: the im: URI for a
// bare address, the sip: URI with its ;gr= GRUU for a full one.
func cpimAddress(a addressing.Address) string {
	if a.IsBare() {
		return "<" + a.IM() + ">"
	}
	return "<" + a.SIP() + ">"
}

// Marshal writes the body with CRLF line ends. CR and LF inside names or
// values are replaced by spaces so no header can be injected.
func (c CPIM) Marshal() []byte {
	var w bytes.Buffer
	w.Grow(128 + len(c.Content))
	for _, h := range c.Headers {
		cpimWriteHeader(&w, h)
	}
	w.WriteString("\r\n")
	for _, h := range c.MIMEHeaders {
		cpimWriteHeader(&w, h)
	}
	w.WriteString("\r\n")
	w.Write(c.Content)
	return w.Bytes()
}

func cpimWriteHeader(w *bytes.Buffer, h CPIMHeader) {
	w.WriteString(cpimOneLine(h.Name))
	w.WriteString(": ")
	w.WriteString(cpimOneLine(h.Value))
	w.WriteString("\r\n")
}

// cpimOneLine replaces line breaks and NUL, which would end or corrupt a
// header line, with spaces.
func cpimOneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}
