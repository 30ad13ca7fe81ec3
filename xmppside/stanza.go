package xmppside

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
)

// Stanza is a stanza handed to a Remote: its top-level attributes and its
// serialized form with the from address already stamped by this server.
// Raw is only valid during the call; copy it to keep it.
type Stanza struct {
	Name string // "message", "presence" or "iq"
	From string // full JID of the authenticated sender
	To   string
	Type string
	ID   string
	Raw  []byte
}

// addr is a parsed, normalized JID kept as strings (cheaper than jid.JID on
// the routing path).
type addr struct {
	local, domain, resource string
	bare                    string // local@domain or domain
	full                    string // bare/resource or bare
}

func (a addr) isZero() bool { return a.domain == "" }

// parseAddr normalizes a JID. ASCII addresses that are already in
// canonical form take a fast path without allocation beyond the strings
// themselves; anything else goes through mellium's PRECIS profiles.
func parseAddr(s string) (addr, error) {
	if a, ok := fastAddr(s); ok {
		return a, nil
	}
	j, err := jid.Parse(s)
	if err != nil {
		return addr{}, fmt.Errorf("parse jid %q: %w", s, err)
	}
	return addrFromJID(j), nil
}

func addrFromJID(j jid.JID) addr {
	a := addr{local: j.Localpart(), domain: j.Domainpart(), resource: j.Resourcepart()}
	a.bare = a.domain
	if a.local != "" {
		a.bare = a.local + "@" + a.domain
	}
	a.full = a.bare
	if a.resource != "" {
		a.full = a.bare + "/" + a.resource
	}
	return a
}

// fastAddr accepts lower-case ASCII localparts and domains and printable
// ASCII resources, which PRECIS leaves unchanged.
func fastAddr(s string) (addr, bool) {
	at, slash := -1, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if slash >= 0 {
			if c < 0x21 || c > 0x7e {
				return addr{}, false
			}
			continue
		}
		switch {
		case c == '@':
			if at >= 0 {
				return addr{}, false
			}
			at = i
		case c == '/':
			slash = i
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return addr{}, false
		}
	}
	var a addr
	end := len(s)
	if slash >= 0 {
		end = slash
		a.resource = s[slash+1:]
		if a.resource == "" {
			return addr{}, false
		}
	}
	a.bare = s[:end]
	if at >= 0 {
		a.local = s[:at]
		a.domain = s[at+1 : end]
		if a.local == "" {
			return addr{}, false
		}
	} else {
		a.domain = s[:end]
	}
	if a.domain == "" || a.domain[0] == '.' || a.domain[len(a.domain)-1] == '.' || strings.Contains(a.domain, "..") {
		return addr{}, false
	}
	a.full = s
	return a, true
}

// bufPool holds output buffers shared between readers and writers: the
// reader of the sender fills one, the writer of the recipient returns it.
type bufPool struct{ p sync.Pool }

func (bp *bufPool) get() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 1024)
	return &b
}

func (bp *bufPool) put(b *[]byte) {
	if cap(*b) > 64<<10 {
		return
	}
	bp.p.Put(b)
}

// appendAttrValue appends v escaped for a single-quoted attribute value.
func appendAttrValue(dst []byte, v string) []byte {
	last := 0
	for i := 0; i < len(v); i++ {
		var esc string
		switch v[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '\'':
			esc = "&apos;"
		case '"':
			esc = "&quot;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		case '\t':
			esc = "&#x9;"
		default:
			continue
		}
		dst = append(dst, v[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, v[last:]...)
}

// appendText appends character data escaped.
func appendText(dst []byte, v string) []byte {
	last := 0
	for i := 0; i < len(v); i++ {
		var esc string
		switch v[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		default:
			continue
		}
		dst = append(dst, v[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, v[last:]...)
}

func appendAttr(dst []byte, name, v string) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, "='"...)
	dst = appendAttrValue(dst, v)
	return append(dst, '\'')
}

// appendStamped appends el with its from attribute replaced by from (the
// client's own from is never trusted, RFC 6120 §8.1.2.1), to replaced by to
// when to is not empty, and xml:lang added from the stream when the stanza
// has none (RFC 6120 §4.7.4). Everything else, children included, is
// copied byte for byte.
func appendStamped(dst []byte, el *element, from, to, lang string) []byte {
	dst = append(dst, '<')
	if el.name.Space != "" {
		dst = append(dst, el.name.Space...)
		dst = append(dst, ':')
	}
	dst = append(dst, el.name.Local...)
	hasLang := false
	for i := range el.attrs {
		a := &el.attrs[i]
		if len(a.prefix) == 0 && (string(a.local) == "from" || (to != "" && string(a.local) == "to")) {
			continue
		}
		if string(a.prefix) == "xml" && string(a.local) == "lang" {
			hasLang = true
		}
		dst = append(dst, ' ')
		if len(a.prefix) > 0 {
			dst = append(dst, a.prefix...)
			dst = append(dst, ':')
		}
		dst = append(dst, a.local...)
		dst = append(dst, '=', a.quote)
		dst = append(dst, a.value...)
		dst = append(dst, a.quote)
	}
	if to != "" {
		dst = appendAttr(dst, "to", to)
	}
	if from != "" {
		dst = appendAttr(dst, "from", from)
	}
	if !hasLang && lang != "" {
		dst = appendAttr(dst, "xml:lang", lang)
	}
	if el.selfClosing {
		dst = append(dst, "></"...)
		if el.name.Space != "" {
			dst = append(dst, el.name.Space...)
			dst = append(dst, ':')
		}
		dst = append(dst, el.name.Local...)
		return append(dst, '>')
	}
	dst = append(dst, '>')
	return append(dst, el.raw[el.startLen:]...)
}

// stanzaErrorType gives the RFC 6120 §8.3.2 error type for a condition.
func stanzaErrorType(cond string) string {
	switch cond {
	case "bad-request", "jid-malformed", "not-acceptable", "policy-violation", "unexpected-request":
		return "modify"
	case "forbidden", "not-authorized", "registration-required", "subscription-required":
		return "auth"
	case "resource-constraint", "remote-server-timeout", "internal-server-error", "recipient-unavailable":
		return "wait"
	default:
		return "cancel"
	}
}

// appendErrorReply appends an error reply to el (RFC 6120 §8.3.1): the
// addresses swapped, the same id, type error, with the condition.
func appendErrorReply(dst []byte, el *element, from, to, cond, text string) []byte {
	dst = append(dst, '<')
	dst = append(dst, el.name.Local...)
	if id := el.attr("id"); id != "" {
		dst = appendAttr(dst, "id", id)
	}
	if to != "" {
		dst = appendAttr(dst, "to", to)
	}
	if from != "" {
		dst = appendAttr(dst, "from", from)
	}
	dst = appendAttr(dst, "type", "error")
	dst = append(dst, "><error"...)
	dst = appendAttr(dst, "type", stanzaErrorType(cond))
	dst = append(dst, "><"...)
	dst = append(dst, cond...)
	dst = append(dst, " xmlns='"+nsStanzas+"'/>"...)
	if text != "" {
		dst = append(dst, "<text xmlns='"+nsStanzas+"'>"...)
		dst = appendText(dst, text)
		dst = append(dst, "</text>"...)
	}
	dst = append(dst, "</error></"...)
	dst = append(dst, el.name.Local...)
	return append(dst, '>')
}

// appendDelay inserts a XEP-0203 delay element before the end tag of a
// stored stanza (which this server serialized itself, so it always has
// an end tag).
func appendDelay(dst, stanza []byte, from string, stamp time.Time) ([]byte, error) {
	i := bytes.LastIndex(stanza, []byte("</"))
	if i < 0 {
		return dst, errors.New("stored stanza has no end tag")
	}
	dst = append(dst, stanza[:i]...)
	dst = append(dst, "<delay xmlns='urn:xmpp:delay'"...)
	dst = appendAttr(dst, "from", from)
	dst = appendAttr(dst, "stamp", stamp.UTC().Format("2006-01-02T15:04:05.000Z"))
	dst = append(dst, ">Offline Storage</delay>"...)
	return append(dst, stanza[i:]...), nil
}

// decodeElement unmarshals a raw element (already checked for
// well-formedness and restricted XML by the stream reader).
func decodeElement(raw []byte, v any) error {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}
