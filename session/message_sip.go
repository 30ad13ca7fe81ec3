package session

// Pager-mode messages: SIP MESSAGE (RFC 3428) <-> XMPP <message/>, as
// RFC 7572 maps them, with message/cpim (RFC 3862) bodies and RFC 3994
// isComposing documents.
//
// SIP -> XMPP (FromSIPMessage):
//
//	From, To          -> from, to (message/cpim From/To may add the GRUU,
//	                     never name someone else: ErrIdentityMismatch)
//	Call-ID           -> <thread/> (RFC 7572 §5)
//	Content-Language  -> xml:lang (the first tag when several are listed;
//	                     a CPIM inner Content-Language wins)
//	Subject           -> <subject/> (a CPIM Subject wins)
//	text/plain        -> <body/>, CRLF and CR line ends made LF, type "chat"
//	message/cpim      -> its From, To, DateTime (-> Stamp, XEP-0203
//	                     <delay/>), Subject and its inner text/plain or
//	                     isComposing
//	im-iscomposing    -> chat state (see composing.go)
//	anything else     -> ErrUnsupportedContentType (415)
//
// XMPP -> SIP (Message.SIP): the reverse, with these losses, by design:
// XEP-0184 receipts have no pager-mode equivalent (RFC 5438 IMDN would be
// one; not implemented) and are dropped, so a receipt-only message gives
// nothing to send; a chat state travels only in a message without a body
// (a body implies the composer is done); error-type messages are not sent
// as MESSAGE at all (the caller answers the SIP request with
// SIPStatusForCondition); Extra is dropped; a thread that is not a valid
// Call-ID gives CallID "" and the caller makes one up.

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/umpp/umpp/addressing"
)

// ContentTypeText is what Message.SIP writes for a body.
const ContentTypeText = "text/plain;charset=UTF-8"

// SIPMessage is the part of a SIP MESSAGE request (RFC 3428) the bridge
// maps, free of any SIP library's types. The SIP adapter fills it from a
// request and builds a request from it.
type SIPMessage struct {
	From, To        addressing.Address // From and To URIs, parsed
	CallID          string
	ContentType     string // the whole header value, parameters included
	ContentLanguage string
	Subject         string
	Body            []byte
}

// SIPOptions changes how Message.SIPWith writes a request.
type SIPOptions struct {
	// CPIM wraps the content in message/cpim (RFC 3862) carrying From, To,
	// DateTime and Subject end to end.
	CPIM bool
}

// FromSIPMessage maps a SIP MESSAGE to a Message of type chat. Errors wrap
// ErrUnsupportedContentType, ErrMessageTooLarge, ErrIdentityMismatch,
// ErrMalformedMessage or addressing.ErrMalformed; SIPStatusForMessageError
// gives the response code.
func FromSIPMessage(req SIPMessage) (Message, error) {
	m, err := fromSIPMessage(req)
	if err != nil {
		return Message{}, fmt.Errorf("session: sip message %s: %w", cpimClip([]byte(req.CallID)), err)
	}
	return m, nil
}

func fromSIPMessage(req SIPMessage) (Message, error) {
	if len(req.Body) > MaxMessageBytes {
		return Message{}, fmt.Errorf("%d bytes exceeds %d: %w", len(req.Body), MaxMessageBytes, ErrMessageTooLarge)
	}
	m := Message{
		From:    req.From,
		To:      req.To,
		Type:    MessageChat,
		Thread:  strings.TrimSpace(req.CallID),
		Lang:    sipLanguage(req.ContentLanguage),
		Subject: strings.TrimSpace(req.Subject),
	}
	mt, params, err := sipMediaType(req.ContentType)
	if err != nil {
		return Message{}, err
	}
	if mt == ContentTypeCPIM {
		c, err := ParseCPIM(req.Body)
		if err != nil {
			return Message{}, err
		}
		if err := m.fromCPIM(c); err != nil {
			return Message{}, err
		}
		if mt, params, err = sipMediaType(c.ContentType()); err != nil {
			return Message{}, fmt.Errorf("cpim content: %w", err)
		}
		if mt == ContentTypeCPIM {
			return Message{}, fmt.Errorf("message/cpim inside message/cpim: %w", ErrUnsupportedContentType)
		}
		req.Body = c.Content
	}
	switch mt {
	case "text/plain":
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
			return Message{}, fmt.Errorf("charset %q: %w", cpimClip([]byte(cs)), ErrUnsupportedContentType)
		}
		if !utf8.Valid(req.Body) {
			return Message{}, fmt.Errorf("text/plain body is not UTF-8: %w", ErrMalformedMessage)
		}
		m.Body = sipLineEnds(req.Body)
	case ContentTypeIsComposing:
		c, err := ParseIsComposing(req.Body)
		if err != nil {
			return Message{}, err
		}
		m.ChatState = c.ChatState()
	default:
		return Message{}, fmt.Errorf("content type %q: %w", cpimClip([]byte(mt)), ErrUnsupportedContentType)
	}
	return m, nil
}

// sipLineEnds makes CRLF and lone CR into LF, as XML does (XML 1.0 §2.11),
// so a body reads the same on both sides and maps back unchanged.
func sipLineEnds(b []byte) string {
	if bytes.IndexByte(b, '\r') < 0 {
		return string(b)
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return string(bytes.ReplaceAll(b, []byte("\r"), []byte("\n")))
}

// sipMediaType parses a Content-Type value, lower-casing the media type.
func sipMediaType(v string) (string, map[string]string, error) {
	if strings.TrimSpace(v) == "" {
		return "", nil, fmt.Errorf("no Content-Type: %w", ErrMalformedMessage)
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "", nil, fmt.Errorf("Content-Type %q: %w: %w", cpimClip([]byte(v)), ErrMalformedMessage, err)
	}
	return mt, params, nil
}

// fromCPIM takes the end-to-end headers of a message/cpim body. Its From
// and To must name the same users as the SIP request's (they may add the
// resource, a GRUU): a gateway authenticates the SIP From, and a CPIM From
// naming someone else would be a spoof.
func (m *Message) fromCPIM(c CPIM) error {
	for _, h := range []struct {
		name string
		get  func() (addressing.Address, error)
		dst  *addressing.Address
	}{{"From", c.From, &m.From}, {"To", c.To, &m.To}} {
		a, err := h.get()
		if err != nil {
			return err
		}
		switch {
		case a == (addressing.Address{}):
		case *h.dst == (addressing.Address{}):
			*h.dst = a
		case a.Bare() != h.dst.Bare():
			return fmt.Errorf("cpim %s %s, request %s: %w", h.name, a.BareJID(), h.dst.BareJID(), ErrIdentityMismatch)
		case !a.IsBare():
			*h.dst = a
		}
	}
	t, err := c.DateTime()
	if err != nil {
		return err
	}
	m.Stamp = t
	if l, ok := cpimGet(c.MIMEHeaders, "Content-Language"); ok {
		if l = sipLanguage(l); l != "" {
			m.Lang = l
		}
	}
	if s, ok := c.Subject(m.Lang); ok {
		m.Subject = s
	}
	return nil
}

// sipLanguage returns the first language tag of a Content-Language value,
// or "" when it is not a plausible tag (RFC 5646: alphanumerics and '-').
func sipLanguage(v string) string {
	v, _, _ = strings.Cut(v, ",")
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 64 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return ""
		}
	}
	return v
}

// SIP maps the message to a SIP MESSAGE with a text/plain body; see
// SIPWith.
func (m Message) SIP() SIPMessage { return m.SIPWith(SIPOptions{}) }

// SIPWith maps the message to a SIP MESSAGE. A body becomes text/plain in
// UTF-8; a chat state alone becomes an isComposing document. When there is
// nothing SIP can carry (a receipt, an error, an empty message) the result
// has no ContentType and no Body, and the caller sends nothing.
func (m Message) SIPWith(o SIPOptions) SIPMessage {
	s := SIPMessage{
		From:            m.From,
		To:              m.To,
		ContentLanguage: sipLanguage(m.Lang),
		Subject:         strings.TrimSpace(cpimOneLine(m.Subject)),
	}
	if sipCallID(m.Thread) {
		s.CallID = m.Thread
	}
	if m.Type == MessageError {
		return s
	}
	var ct string
	var body []byte
	if m.Body != "" {
		ct, body = ContentTypeText, []byte(strings.ToValidUTF8(m.Body, "\uFFFD"))
	} else if c, ok := IsComposingFor(m.ChatState); ok {
		ct, body = ContentTypeIsComposing, c.Marshal()
	} else {
		return s
	}
	if o.CPIM {
		c := CPIM{Content: body}
		if m.From != (addressing.Address{}) {
			c.Headers = append(c.Headers, CPIMHeader{"From", cpimAddress(m.From)})
		}
		if m.To != (addressing.Address{}) {
			c.Headers = append(c.Headers, CPIMHeader{"To", cpimAddress(m.To)})
		}
		if !m.Stamp.IsZero() {
			c.Headers = append(c.Headers, CPIMHeader{"DateTime", m.Stamp.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")})
		}
		if s.Subject != "" {
			c.Headers = append(c.Headers, CPIMHeader{"Subject", s.Subject})
		}
		c.MIMEHeaders = append(c.MIMEHeaders, CPIMHeader{"Content-Type", ct})
		if s.ContentLanguage != "" {
			c.MIMEHeaders = append(c.MIMEHeaders, CPIMHeader{"Content-Language", s.ContentLanguage})
		}
		ct, body = ContentTypeCPIM, c.Marshal()
	}
	s.ContentType, s.Body = ct, body
	return s
}

// sipCallID reports whether v is a valid Call-ID: word ["@" word]
// (RFC 3261 §25.1).
func sipCallID(v string) bool {
	if v == "" || len(v) > 256 {
		return false
	}
	l, r, two := strings.Cut(v, "@")
	return sipWord(l) && (!two || sipWord(r))
}

func sipWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') &&
			strings.IndexByte("-.!%*_+`'~()<>:\\\"/[]?{}", c) < 0 {
			return false
		}
	}
	return true
}

// SIPStatusForMessageError returns the SIP response code for an error from
// FromSIPMessage: 415 for an unsupported content type (the adapter adds an
// Accept header listing text/plain, message/cpim and
// application/im-iscomposing+xml), 413 for a message too large, 403 for a
// CPIM identity that does not match, 400 otherwise.
func SIPStatusForMessageError(err error) int {
	switch {
	case err == nil:
		return 200
	case errors.Is(err, ErrUnsupportedContentType):
		return 415
	case errors.Is(err, ErrMessageTooLarge):
		return 413
	case errors.Is(err, ErrIdentityMismatch):
		return 403
	}
	return 400
}
