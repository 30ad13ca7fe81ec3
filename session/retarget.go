package session

import (
	"bytes"
	"strings"

	"github.com/umpp/umpp/addressing"
)

// The per-message fast path of an established session: the XMPP host
// hands the gateway stanzas it has parsed, checked and serialized itself
// (normalized JIDs, well-formed XML without comments, processing
// instructions or DTDs), so the gateway can rewrite the few things a
// session changes (from, to, <thread/>) without parsing the whole
// message. Anything it does not recognize falls back to ParseXMPPMessage.

// hostJID splits a JID the XMPP host normalized already; ok is false for
// anything that does not look like one, and the caller then parses it.
func hostJID(s string) (addressing.Address, bool) {
	at := strings.IndexByte(s, '@')
	if at <= 0 {
		return addressing.Address{}, false
	}
	a := addressing.Address{Local: s[:at]}
	rest := s[at+1:]
	if slash := strings.IndexByte(rest, '/'); slash >= 0 {
		a.Domain, a.Resource = rest[:slash], rest[slash+1:]
		if a.Resource == "" {
			return addressing.Address{}, false
		}
	} else {
		a.Domain = rest
	}
	if a.Domain == "" || strings.ContainsAny(a.Local, "\"&'/:<>@ ") || strings.ContainsAny(a.Domain, "@/ ") {
		return addressing.Address{}, false
	}
	return a, true
}

// stanzaJID reads a JID of a stanza the XMPP host handed over: split
// directly when it has the normalized form, else parsed.
func stanzaJID(s string) (addressing.Address, error) {
	if a, ok := hostJID(s); ok {
		return a, nil
	}
	return addressing.ParseJID(s)
}

// retarget rewrites a <message/> for a session: from and to set, the
// thread set to thread. ok is false when raw is not in the shape the XMPP
// host writes; the caller then takes the slow path.
func retarget(raw []byte, from, to, thread string) ([]byte, bool) {
	start := bytes.IndexByte(raw, '<')
	if start < 0 || !bytes.HasPrefix(raw[start:], []byte("<message")) {
		return nil, false
	}
	i := start + len("<message")
	if i >= len(raw) || !(raw[i] == ' ' || raw[i] == '>' || raw[i] == '/' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		return nil, false
	}
	out := make([]byte, 0, len(raw)+len(from)+len(to)+len(thread)+48)
	out = append(out, "<message"...)
	// Attributes: keep all but from and to.
	for {
		for i < len(raw) && isSpace(raw[i]) {
			i++
		}
		if i >= len(raw) {
			return nil, false
		}
		if raw[i] == '>' || raw[i] == '/' {
			break
		}
		eq := bytes.IndexByte(raw[i:], '=')
		if eq <= 0 {
			return nil, false
		}
		name := bytes.TrimSpace(raw[i : i+eq])
		j := i + eq + 1
		for j < len(raw) && isSpace(raw[j]) {
			j++
		}
		if j >= len(raw) || (raw[j] != '"' && raw[j] != '\'') {
			return nil, false
		}
		end := bytes.IndexByte(raw[j+1:], raw[j])
		if end < 0 {
			return nil, false
		}
		next := j + 1 + end + 1
		if n := string(name); n != "from" && n != "to" {
			out = append(out, ' ')
			out = append(out, raw[i:next]...)
		}
		i = next
	}
	out = append(out, ` from="`...)
	out = appendAttrValue(out, from)
	out = append(out, `" to="`...)
	out = appendAttrValue(out, to)
	out = append(out, '"')
	if raw[i] == '/' { // <message .../>
		if i+1 >= len(raw) || raw[i+1] != '>' {
			return nil, false
		}
		out = append(out, "><thread>"...)
		out = appendText(out, thread)
		return append(out, "</thread></message>"...), true
	}
	out = append(out, '>')
	body := raw[i+1:]
	// Find </message> and a <thread> child, walking the element depth.
	depth, pos := 0, 0
	threadStart, threadEnd := -1, -1
	for {
		k := bytes.IndexByte(body[pos:], '<')
		if k < 0 {
			return nil, false
		}
		k += pos
		switch {
		case bytes.HasPrefix(body[k:], []byte("<![CDATA[")):
			e := bytes.Index(body[k:], []byte("]]>"))
			if e < 0 {
				return nil, false
			}
			pos = k + e + 3
			continue
		case bytes.HasPrefix(body[k:], []byte("<!")), bytes.HasPrefix(body[k:], []byte("<?")):
			return nil, false
		case bytes.HasPrefix(body[k:], []byte("</")):
			e := bytes.IndexByte(body[k:], '>')
			if e < 0 {
				return nil, false
			}
			if depth == 0 {
				if string(bytes.TrimSpace(body[k+2:k+e])) != "message" {
					return nil, false
				}
				if threadStart < 0 {
					out = append(out, body[:k]...)
					out = append(out, "<thread>"...)
					out = appendText(out, thread)
					out = append(out, "</thread>"...)
				} else {
					out = append(out, body[:threadStart]...)
					out = append(out, "<thread>"...)
					out = appendText(out, thread)
					out = append(out, "</thread>"...)
					out = append(out, body[threadEnd:k]...)
				}
				return append(out, "</message>"...), true
			}
			depth--
			if depth == 0 && threadStart >= 0 && threadEnd < 0 {
				threadEnd = k + e + 1
			}
			pos = k + e + 1
		default:
			e := tagEnd(body, k)
			if e < 0 {
				return nil, false
			}
			selfClosing := body[e-1] == '/'
			if depth == 0 && threadStart < 0 && isThreadTag(body[k:e]) {
				threadStart = k
				if selfClosing {
					threadEnd = e + 1
				}
			}
			if !selfClosing {
				depth++
			}
			pos = e + 1
		}
	}
}

// tagEnd returns the index of the '>' closing the start tag at k, skipping
// quoted attribute values.
func tagEnd(b []byte, k int) int {
	var quote byte
	for i := k + 1; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i
		}
	}
	return -1
}

// isThreadTag reports whether a start tag is <thread> in the stanza's
// namespace (no prefix, no namespace declaration of its own other than
// the client or server one).
func isThreadTag(tag []byte) bool {
	if !bytes.HasPrefix(tag, []byte("<thread")) {
		return false
	}
	rest := tag[len("<thread"):]
	if len(rest) > 0 && !isSpace(rest[0]) && rest[0] != '/' && rest[0] != '>' {
		return false
	}
	if i := bytes.Index(rest, []byte("xmlns=")); i >= 0 {
		v := rest[i+len("xmlns="):]
		return bytes.HasPrefix(v[1:], []byte(NSJabberClient)) || bytes.HasPrefix(v[1:], []byte(NSJabberServer))
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func appendAttrValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			b = append(b, "&quot;"...)
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		default:
			b = append(b, s[i])
		}
	}
	return b
}

func appendText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		default:
			b = append(b, s[i])
		}
	}
	return b
}
