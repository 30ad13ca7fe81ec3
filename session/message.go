package session

// Chat messages as they cross the bridge (issue 5, item 4): the XMPP
// <message/> stanza (RFC 6121 §5) with XEP-0085 chat states, XEP-0184
// receipts and XEP-0203 delay stamps; message_sip.go maps it to and from
// SIP MESSAGE (RFC 3428, RFC 7572), cpim.go reads and writes message/cpim
// (RFC 3862), composing.go RFC 3994 isComposing.
//
// Deliberately not done: XEP-0201 thread parents (the attribute is
// dropped), attributes of <message/> other than from, to, type, id and
// xml:lang (dropped), messages from or to a JID without a localpart
// (refused, as addressing.Address names a user), character sets other than
// UTF-8, RFC 5438 IMDN, XHTML-IM to text/html (kept in Extra, not mapped).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/umpp/umpp/addressing"
)

// Namespaces of the message stanza and the extensions Message models.
const (
	NSJabberClient = "jabber:client"
	NSJabberServer = "jabber:server"
	NSChatStates   = "http://jabber.org/protocol/chatstates" // XEP-0085
	NSReceipts     = "urn:xmpp:receipts"                     // XEP-0184
	NSDelay        = "urn:xmpp:delay"                        // XEP-0203
)

// Message types (RFC 6121 §5.2.2).
const (
	MessageChat      = "chat"
	MessageNormal    = "normal"
	MessageGroupchat = "groupchat"
	MessageHeadline  = "headline"
	MessageError     = "error"
)

// Chat states (XEP-0085 §2).
const (
	ChatActive    = "active"
	ChatComposing = "composing"
	ChatPaused    = "paused"
	ChatInactive  = "inactive"
	ChatGone      = "gone"
)

// Limits applied to every message read from the network. 256 KiB is the
// c2s stanza limit common XMPP servers default to; a SIP MESSAGE is far
// smaller in practice.
const (
	MaxMessageBytes = 256 << 10
	MaxMessageDepth = 32
)

// Errors of the message parsers. ErrUnsupportedContentType is SIP's 415,
// ErrMessageTooLarge 413, ErrIdentityMismatch 403 and the others 400; see
// SIPStatusForMessageError. On XMPP a parse failure is bad-request
// (jid-malformed when it wraps addressing.ErrMalformed).
var (
	ErrMalformedMessage       = errors.New("malformed message")
	ErrMessageTooLarge        = errors.New("message too large")
	ErrMessageTooDeep         = fmt.Errorf("message nested too deeply: %w", ErrMalformedMessage)
	ErrNotMessage             = fmt.Errorf("not a message stanza: %w", ErrMalformedMessage)
	ErrMessageDTD             = fmt.Errorf("DTD or other declaration not allowed: %w", ErrMalformedMessage)
	ErrUnsupportedContentType = errors.New("unsupported content type")
	ErrIdentityMismatch       = errors.New("message/cpim identity does not match the SIP request")
)

// Message is a chat message as it crosses between SIP and XMPP: the fields
// both protocols can carry, and the XMPP elements we do not model kept raw
// for XMPP-to-XMPP relaying.
type Message struct {
	From, To addressing.Address // bare or full JIDs; zero when absent
	// Type is one of the Message* constants; ParseXMPPMessage gives
	// "normal" for a missing or unknown type (RFC 6121 §5.2.2).
	Type string
	ID   string
	// Thread is the <thread/> (RFC 6121 §5.2.5) and the SIP Call-ID
	// (RFC 7572 §5).
	Thread string
	// Lang is the stanza's xml:lang and the SIP Content-Language.
	Lang string
	// Subject and Body are in the language Lang. A <body/> or <subject/>
	// in another language stays in Extra (XMPP only).
	Subject, Body string
	// ChatState is one of the Chat* constants or "" (XEP-0085).
	ChatState string
	// ReceiptRequest is XEP-0184 <request/>; ReceiptFor is the id of
	// <received/>.
	ReceiptRequest bool
	ReceiptFor     string
	// Stamp is when the message was sent if the source said so: a CPIM
	// DateTime (RFC 3862 §5.4) or an XEP-0203 <delay stamp/> with no from
	// and no text. It is in UTC.
	Stamp time.Time
	// Extra holds every other child element of <message>, each as raw XML
	// in a canonical self-contained form (no prefixes, namespaces declared
	// where they change; an element in the stanza namespace carries no
	// declaration, so it follows the namespace XMPP writes). Written back
	// verbatim by XMPP, dropped toward SIP. Callers building an Extra by
	// hand must put well-formed XML there.
	Extra []string
}

// ParseXMPPMessage reads one <message/> stanza in the jabber:client or
// jabber:server namespace. It refuses input over MaxMessageBytes, nesting
// over MaxMessageDepth, DTDs (so no entity can be declared or expanded),
// unbound prefixes and encodings other than UTF-8. From and To must be JIDs
// with a localpart (addressing.ParseJID). Errors wrap ErrMessageTooLarge,
// ErrMalformedMessage (ErrMessageTooDeep, ErrMessageDTD, ErrNotMessage) or
// addressing.ErrMalformed.
func ParseXMPPMessage(raw []byte) (Message, error) {
	if len(raw) > MaxMessageBytes {
		return Message{}, fmt.Errorf("session: xmpp message: %d bytes exceeds %d: %w", len(raw), MaxMessageBytes, ErrMessageTooLarge)
	}
	m, err := parseXMPPMessage(raw)
	if err != nil {
		return Message{}, fmt.Errorf("session: xmpp message: %w", err)
	}
	return m, nil
}

func parseXMPPMessage(raw []byte) (Message, error) {
	r := newMsgReader(raw, MaxMessageDepth)
	tok, err := r.next()
	if err != nil {
		return Message{}, err
	}
	root, ok := tok.(*msgElem)
	if !ok {
		return Message{}, fmt.Errorf("no root element: %w", ErrMalformedMessage)
	}
	ns := root.Space
	if root.Local != "message" || (ns != NSJabberClient && ns != NSJabberServer) {
		return Message{}, fmt.Errorf("root is {%s}%s: %w", ns, root.Local, ErrNotMessage)
	}
	var m Message
	if err := m.rootAttrs(root); err != nil {
		return Message{}, err
	}
	var seenSubject, seenBody, seenThread, seenDelay, receivedNoID bool
	var extra bytes.Buffer
	for {
		tok, err := r.next()
		if err != nil {
			return Message{}, err
		}
		var e *msgElem
		switch t := tok.(type) {
		case msgEnd:
			if _, err := r.next(); err != io.EOF {
				if err == nil {
					err = fmt.Errorf("content after </message>: %w", ErrMalformedMessage)
				}
				return Message{}, err
			}
			if m.ReceiptFor == "" && receivedNoID {
				// XEP-0184 before 1.1 acknowledged with a <received/>
				// carrying no id, in a message reusing the original's.
				m.ReceiptFor = m.ID
			}
			return m, nil
		case *msgElem:
			e = t
		default:
			continue // text directly in <message> carries nothing
		}
		take := func(seen *bool, dst *string) (bool, error) {
			if *seen || !m.defaultLang(e) {
				return false, nil
			}
			s, err := r.text()
			if err != nil {
				return true, err
			}
			if s != "" {
				*seen, *dst = true, s
			}
			return true, nil
		}
		done := false
		switch {
		case e.Space == ns && e.Local == "subject":
			done, err = take(&seenSubject, &m.Subject)
		case e.Space == ns && e.Local == "body":
			done, err = take(&seenBody, &m.Body)
		case e.Space == ns && e.Local == "thread":
			if !seenThread {
				var s string
				if s, err = r.text(); err == nil {
					if s = strings.TrimSpace(s); s != "" {
						seenThread, m.Thread = true, s
					}
				}
				done = true
			}
		case e.Space == NSChatStates && isChatState(e.Local):
			if m.ChatState == "" {
				m.ChatState = e.Local
			}
			done, err = true, r.skip()
		case e.Space == NSReceipts && e.Local == "request":
			m.ReceiptRequest = true
			done, err = true, r.skip()
		case e.Space == NSReceipts && e.Local == "received":
			if m.ReceiptFor == "" {
				id, _ := e.attr("id")
				m.ReceiptFor = id
				receivedNoID = id == ""
			}
			done, err = true, r.skip()
		}
		if err != nil {
			return Message{}, err
		}
		if done {
			continue
		}
		extra.Reset()
		if err := r.canon(&extra, e); err != nil {
			return Message{}, err
		}
		x := extra.String()
		if !seenDelay && e.Space == NSDelay && e.Local == "delay" && len(e.Attr) == 1 &&
			strings.Count(x, ">") == 2 && strings.HasSuffix(x, "></delay>") {
			// A bare <delay stamp/>: no from, no reason (XEP-0203 §3).
			if v, ok := e.attr("stamp"); ok {
				if t, ok := parseStamp(v); ok {
					seenDelay, m.Stamp = true, t
					continue
				}
			}
		}
		m.Extra = append(m.Extra, x)
	}
}

func (m *Message) rootAttrs(root *msgElem) error {
	m.Type = MessageNormal
	for _, a := range root.Attr {
		switch {
		case a.Name.Space == msgNSXML && a.Name.Local == "lang":
			m.Lang = a.Value
		case a.Name.Space != "":
		case a.Name.Local == "from" || a.Name.Local == "to":
			if a.Value == "" {
				continue
			}
			addr, err := addressing.ParseJID(a.Value)
			if err != nil {
				return fmt.Errorf("%s %q: %w", a.Name.Local, a.Value, err)
			}
			if a.Name.Local == "from" {
				m.From = addr
			} else {
				m.To = addr
			}
		case a.Name.Local == "type":
			switch a.Value {
			case MessageChat, MessageGroupchat, MessageHeadline, MessageError:
				m.Type = a.Value
			}
		case a.Name.Local == "id":
			m.ID = a.Value
		}
	}
	return nil
}

// defaultLang reports whether e is in the message's own language: no
// xml:lang, or the same one.
func (m *Message) defaultLang(e *msgElem) bool {
	l, ok := e.lang()
	return !ok || strings.EqualFold(l, m.Lang)
}

func isChatState(s string) bool {
	switch s {
	case ChatActive, ChatComposing, ChatPaused, ChatInactive, ChatGone:
		return true
	}
	return false
}

// parseStamp reads an XEP-0082 date-time, refusing years that would not
// survive being written back in UTC.
func parseStamp(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// XMPP writes the message as a <message/> stanza in namespace ns
// (NSJabberClient or NSJabberServer; "" writes no xmlns, for a stream whose
// default namespace is already right). Children come in a fixed order:
// subject, body, thread, chat state, receipts, delay, then Extra verbatim.
// Text that XML cannot carry is replaced by U+FFFD.
func (m Message) XMPP(ns string) []byte {
	var w bytes.Buffer
	w.Grow(160 + len(m.Body) + len(m.Subject))
	w.WriteString("<message")
	msgAttr(&w, "xmlns", ns)
	if m.From != (addressing.Address{}) {
		msgAttr(&w, "from", m.From.String())
	}
	if m.To != (addressing.Address{}) {
		msgAttr(&w, "to", m.To.String())
	}
	if m.Type != "" && m.Type != MessageNormal {
		msgAttr(&w, "type", m.Type)
	}
	msgAttr(&w, "id", m.ID)
	msgAttr(&w, "xml:lang", m.Lang)
	w.WriteByte('>')
	msgTextElem(&w, "subject", m.Subject)
	msgTextElem(&w, "body", m.Body)
	msgTextElem(&w, "thread", m.Thread)
	if isChatState(m.ChatState) {
		w.WriteString("<" + m.ChatState + ` xmlns="` + NSChatStates + `"/>`)
	}
	if m.ReceiptRequest {
		w.WriteString(`<request xmlns="` + NSReceipts + `"/>`)
	}
	if m.ReceiptFor != "" {
		w.WriteString(`<received xmlns="` + NSReceipts + `"`)
		msgAttr(&w, "id", m.ReceiptFor)
		w.WriteString("/>")
	}
	if !m.Stamp.IsZero() {
		w.WriteString(`<delay xmlns="` + NSDelay + `"`)
		msgAttr(&w, "stamp", m.Stamp.UTC().Format(time.RFC3339Nano))
		w.WriteString("/>")
	}
	for _, x := range m.Extra {
		w.WriteString(x)
	}
	w.WriteString("</message>")
	return w.Bytes()
}

// msgAttr writes ` name="value"` when value is not empty.
func msgAttr(w *bytes.Buffer, name, value string) {
	if value == "" {
		return
	}
	w.WriteByte(' ')
	w.WriteString(name)
	w.WriteString(`="`)
	msgEscape(w, value, true)
	w.WriteByte('"')
}

// msgTextElem writes <name>text</name> when text is not empty.
func msgTextElem(w *bytes.Buffer, name, text string) {
	if text == "" {
		return
	}
	w.WriteString("<" + name + ">")
	msgEscape(w, text, false)
	w.WriteString("</" + name + ">")
}
