package sipside

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/umpp/umpp/addressing"
)

// CPIM is a parsed message/cpim body (RFC 3862 §3): the message header
// block and the encapsulated MIME object.
type CPIM struct {
	From     string    // From value, "" when absent (§5.1)
	To       []string  // To values (§5.2)
	DateTime time.Time // zero when absent (§5.4)
	Subject  string
	// Headers are every message header in order, including the above.
	Headers []CPIMHeader
	// ContentType is the encapsulated object's Content-Type.
	ContentType string
	// Content is the encapsulated object's body.
	Content []byte
}

// CPIMHeader is one message header; Name keeps a namespace prefix.
type CPIMHeader struct{ Name, Value string }

// maxCPIMHeaders bounds parsing work.
const maxCPIMHeaders = 128

var errCPIM = errors.New("cpim: malformed message")

// ParseCPIM reads a message/cpim body.
func ParseCPIM(b []byte) (*CPIM, error) {
	msgHead, rest, ok := cutBlankLine(b)
	if !ok {
		return nil, fmt.Errorf("cpim: no end of message headers: %w", errCPIM)
	}
	mimeHead, content, ok := cutBlankLine(rest)
	if !ok {
		return nil, fmt.Errorf("cpim: no end of MIME headers: %w", errCPIM)
	}
	c := &CPIM{Content: content}
	hs, err := cpimHeaders(msgHead)
	if err != nil {
		return nil, fmt.Errorf("cpim: message headers: %w", err)
	}
	c.Headers = hs
	for _, h := range hs {
		switch strings.ToLower(h.Name) {
		case "from":
			if c.From != "" {
				return nil, fmt.Errorf("cpim: two From headers: %w", errCPIM)
			}
			c.From = h.Value
		case "to":
			c.To = append(c.To, h.Value)
		case "subject":
			if c.Subject == "" {
				c.Subject = h.Value
			}
		case "datetime":
			t, err := time.Parse(time.RFC3339Nano, h.Value)
			if err != nil {
				return nil, fmt.Errorf("cpim: DateTime %q: %w", h.Value, err)
			}
			c.DateTime = t
		}
	}
	ms, err := cpimHeaders(mimeHead)
	if err != nil {
		return nil, fmt.Errorf("cpim: MIME headers: %w", err)
	}
	for _, h := range ms {
		if strings.EqualFold(h.Name, "Content-Type") {
			c.ContentType = h.Value
		}
	}
	if c.ContentType == "" {
		return nil, fmt.Errorf("cpim: no Content-Type for the encapsulated object: %w", errCPIM)
	}
	return c, nil
}

// cutBlankLine splits at the first empty line (CRLF CRLF, or LF LF).
func cutBlankLine(b []byte) (head, rest []byte, ok bool) {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return nil, b[2:], true
	}
	if bytes.HasPrefix(b, []byte("\n")) {
		return nil, b[1:], true
	}
	i := bytes.Index(b, []byte("\r\n\r\n"))
	j := bytes.Index(b, []byte("\n\n"))
	switch {
	case i >= 0 && (j < 0 || i < j):
		return b[:i], b[i+4:], true
	case j >= 0:
		return b[:j], b[j+2:], true
	}
	return nil, nil, false
}

// cpimHeaders reads "Name: value" lines (RFC 3862 §3.1: no folding).
func cpimHeaders(b []byte) ([]CPIMHeader, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var out []CPIMHeader
	for _, l := range splitLines(b) {
		if l == "" {
			continue
		}
		name, val, ok := strings.Cut(l, ":")
		if !ok || name == "" || strings.TrimSpace(name) != name {
			return nil, fmt.Errorf("line %q: %w", truncate(l, 40), errCPIM)
		}
		for _, part := range strings.Split(name, ".") {
			if !isToken(part) {
				return nil, fmt.Errorf("header name %q: %w", truncate(name, 40), errCPIM)
			}
		}
		if len(out) >= maxCPIMHeaders {
			return nil, fmt.Errorf("more than %d headers: %w", maxCPIMHeaders, errCPIM)
		}
		out = append(out, CPIMHeader{Name: name, Value: strings.TrimSpace(val)})
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// cpimAddress returns the bare JID of a CPIM address value such as
// `Romeo <im:romeo@example.net>` (RFC 3862 §3.3), or "".
func cpimAddress(v string) string {
	if lt := strings.IndexByte(v, '<'); lt >= 0 {
		gt := strings.IndexByte(v[lt:], '>')
		if gt < 0 {
			return ""
		}
		v = v[lt+1 : lt+gt]
	}
	a, _, err := addressing.Parse(strings.TrimSpace(v))
	if err != nil {
		return ""
	}
	return a.BareJID()
}
