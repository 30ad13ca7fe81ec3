package xmppside

import (
	"bytes"
	"context"

	"github.com/umpp/umpp/store"
)

// PresenceObserver is told of the broadcast presence of local users, the
// presence a user sends without a 'to' (RFC 6121 §4.2, §4.4, §4.5),
// including the unavailable presence sent for it when its stream ends.
type PresenceObserver interface {
	// LocalPresence receives the stanza as broadcast: From is the user's
	// full JID, Type is "" (available) or "unavailable", Raw the stanza
	// with from stamped. It is called on the user's stream goroutine, so
	// it must return quickly; Raw is the observer's to keep.
	LocalPresence(ctx context.Context, p Stanza)
}

// RosterObserver learns every persisted change of a roster item, whatever
// caused it (c2s roster set/remove, subscription stanzas from clients,
// Submit, s2s or Receive). It is called after the write, on the
// goroutine that made it, and must return quickly.
//
// item is the item as stored (for a removal, as it was before); calls for
// the same item from two goroutines that changed it at once may arrive in
// either order. It is called outside the roster's lock, but while a
// Submit call that caused it is running: it must not call Submit itself
// (hand such work to another goroutine).
type RosterObserver interface {
	RosterChanged(ctx context.Context, item store.RosterItem, removed bool)
}

// MessageObserver learns of messages that arrive from other domains
// before they are delivered locally, so that the UMPP session layer can
// keep sessions alive. thread is the <thread/> child's text ("" when
// none); it is only valid during the call.
//
// It sees every message Receive routes to an account (s2s and the
// session layer), except those of type error; from and to are the
// normalized JIDs. It runs on the receiving goroutine and must return
// quickly.
type MessageObserver interface {
	RemoteMessage(from, to string, thread []byte)
}

// rosterChanged tells the RosterObserver of a write.
func (s *Server) rosterChanged(ctx context.Context, it store.RosterItem, removed bool) {
	if s.opts.Roster != nil {
		s.opts.Roster.RosterChanged(ctx, it, removed)
	}
}

// threadOf returns the text of a message's <thread/> child (RFC 6121
// §5.2.5), nil when there is none. The element was checked by the stream
// reader (well-formed, no comments or processing instructions), so this
// only follows the nesting of tags; a message without "<thread" costs
// one bytes.Index. The result points into el.raw unless the text holds
// references or CDATA.
func threadOf(el *element) []byte {
	if el.selfClosing {
		return nil
	}
	b := el.raw[el.startLen:]
	if bytes.Index(b, []byte("<thread")) < 0 {
		return nil
	}
	depth := 0
	for {
		i := bytes.IndexByte(b, '<')
		if i < 0 || i+1 >= len(b) {
			return nil
		}
		b = b[i+1:]
		switch b[0] {
		case '/':
			if depth--; depth < 0 {
				return nil // the message's end tag
			}
			continue
		case '!':
			if j := bytes.Index(b, []byte("]]>")); j >= 0 && bytes.HasPrefix(b, []byte("![CDATA[")) {
				b = b[j+3:]
			}
			continue
		case '?':
			continue
		}
		n := 0
		for n < len(b) && !isSpaceByte(b[n]) && b[n] != '/' && b[n] != '>' {
			n++
		}
		end, self := tagEnd(b)
		if end < 0 {
			return nil
		}
		if depth == 0 && !self && string(b[:n]) == "thread" && clientNS(b[n:end]) {
			return threadText(b[end:])
		}
		if !self {
			depth++
		}
		b = b[end:]
	}
}

// tagEnd returns the length of a start tag (b starts after its '<'), up
// to and including '>', skipping quoted attribute values, and whether it
// is an empty-element tag.
func tagEnd(b []byte) (int, bool) {
	var quote byte
	for i, c := range b {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '>':
			return i + 1, i > 0 && b[i-1] == '/'
		}
	}
	return -1, false
}

// clientNS reports whether the attributes of a child tag leave it in the
// stanza's namespace.
func clientNS(attrs []byte) bool {
	i := bytes.Index(attrs, []byte("xmlns"))
	if i < 0 {
		return true
	}
	rest := bytes.TrimLeft(attrs[i+len("xmlns"):], " \t\r\n")
	if len(rest) == 0 || rest[0] != '=' {
		return true // xmlns:prefix declarations do not move the element
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 {
		return false
	}
	return bytes.HasPrefix(rest[1:], []byte(nsClient+string(rest[0]))) ||
		bytes.HasPrefix(rest[1:], []byte("jabber:server"+string(rest[0])))
}

// threadText returns the character data of the thread element whose
// content starts b.
func threadText(b []byte) []byte {
	i := bytes.IndexByte(b, '<')
	if i < 0 {
		return nil
	}
	if i+1 < len(b) && b[i+1] == '/' && bytes.IndexByte(b[:i], '&') < 0 {
		return b[:i]
	}
	// Rare: references or CDATA sections.
	var out []byte
	for {
		i := bytes.IndexByte(b, '<')
		if i < 0 {
			return out
		}
		out = append(out, unescape(b[:i])...)
		b = b[i:]
		if !bytes.HasPrefix(b, []byte("<![CDATA[")) {
			return out
		}
		j := bytes.Index(b, []byte("]]>"))
		if j < 0 {
			return out
		}
		out = append(out, b[len("<![CDATA["):j]...)
		b = b[j+3:]
	}
}

// Metrics receives counts of routing outcomes. The daemon's
// *metrics.Metrics satisfies it.
type Metrics interface {
	// MessageRouted counts a message delivered to a local resource or
	// stored for an offline user, by path ("xmpp->xmpp"). Messages from
	// Server.Submit are the session layer's to count.
	MessageRouted(path string)
	// DeliveryFailed counts a message answered with an error, by its
	// RFC 6120 condition.
	DeliveryFailed(condition string)
}

// pathXMPPToXMPP is the only path this package routes on its own; the
// session layer counts the paths that cross to SIP.
const pathXMPPToXMPP = "xmpp->xmpp"

// routed counts a delivered message. Messages from Submit are not
// counted: the session layer counts the paths that cross from SIP.
func (s *Server) routed(snd sender) {
	if _, ok := snd.(*submitter); ok {
		return
	}
	if s.opts.Metrics != nil {
		s.opts.Metrics.MessageRouted(pathXMPPToXMPP)
	}
}

// failed counts a message that could not be delivered; other stanzas'
// errors (unknown IQs, presence to nowhere) are not deliveries.
func (s *Server) failed(el *element, cond string) {
	if s.opts.Metrics != nil && el.name.Local == "message" && el.attr("type") != "error" {
		s.opts.Metrics.DeliveryFailed(cond)
	}
}
