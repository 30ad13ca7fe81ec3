package dialback

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"os"

	"mellium.im/xmlstream"
)

// Condition is a dialback error condition (XEP-0220 §2.4): a stanza error
// condition of RFC 6120 §8.3.3 carried in the <error/> of a type='error'
// answer. The XEP says the list below is not exhaustive.
type Condition string

// Conditions XEP-0220 §2.4 gives meaning to.
const (
	// ConditionItemNotFound: the receiving (or authoritative) server does
	// not host the 'to' domain.
	ConditionItemNotFound Condition = "item-not-found"
	// ConditionRemoteConnectionFailed: the receiving server could not
	// connect to the authoritative server.
	ConditionRemoteConnectionFailed Condition = "remote-connection-failed"
	// ConditionRemoteServerNotFound: the authoritative server's domain could
	// not be resolved.
	ConditionRemoteServerNotFound Condition = "remote-server-not-found"
	// ConditionRemoteServerTimeout: the authoritative server did not answer
	// in time.
	ConditionRemoteServerTimeout Condition = "remote-server-timeout"
	// ConditionForbidden: the receiving server will not accept the domain
	// pair (policy, e.g. it requires SASL EXTERNAL).
	ConditionForbidden Condition = "forbidden"
	// ConditionPolicyViolation: a local policy forbids dialback here.
	ConditionPolicyViolation Condition = "policy-violation"
	// ConditionResourceConstraint: too busy, try later.
	ConditionResourceConstraint Condition = "resource-constraint"
	// ConditionInternalServerError: the server failed for another reason.
	ConditionInternalServerError Condition = "internal-server-error"
	// ConditionUndefined: the peer gave no condition.
	ConditionUndefined Condition = "undefined-condition"
)

// Error is the <error/> of a type='error' dialback answer.
type Error struct {
	// Type is the stanza error type: "cancel", "wait", "modify", "auth".
	Type      string
	Condition Condition
	// Text is the optional human-readable text.
	Text string
}

// NewError returns an error of the type that RFC 6120 §8.3.3 gives the
// condition.
func NewError(c Condition, text string) *Error {
	typ := "cancel"
	switch c {
	case ConditionRemoteServerTimeout, ConditionResourceConstraint, ConditionInternalServerError:
		typ = "wait"
	case ConditionForbidden:
		typ = "auth"
	case ConditionPolicyViolation:
		typ = "modify"
	}
	return &Error{Type: typ, Condition: c, Text: text}
}

func (e *Error) Error() string {
	s := "dialback: " + string(e.Condition)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Is lets errors.Is match any *Error with the same condition.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Condition == e.Condition
}

// TokenReader returns the <error/> element. It is written without a
// namespace so that it inherits the dialback element's, which is how
// XEP-0220's examples and Prosody read it.
func (e *Error) TokenReader() xml.TokenReader {
	typ := e.Type
	if typ == "" {
		typ = "cancel"
	}
	cond := e.Condition
	if cond == "" {
		cond = ConditionUndefined
	}
	inner := []xml.TokenReader{
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSStanzas, Local: string(cond)}}),
	}
	if e.Text != "" {
		inner = append(inner, xmlstream.Wrap(
			xmlstream.Token(xml.CharData(e.Text)),
			xml.StartElement{Name: xml.Name{Space: NSStanzas, Local: "text"}},
		))
	}
	return xmlstream.Wrap(
		xmlstream.MultiReader(inner...),
		xml.StartElement{
			Name: xml.Name{Local: "error"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: typ}},
		},
	)
}

// ErrInvalid is returned by the originating side when the receiving server
// answers type='invalid'.
var ErrInvalid = errors.New("dialback: key rejected (type='invalid')")

// conditionFor maps a failure to reach the authoritative server to the
// dialback condition the receiving server answers with.
func conditionFor(err error) Condition {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return ConditionRemoteServerNotFound
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ConditionRemoteServerTimeout
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Condition
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return ConditionRemoteServerTimeout
	}
	return ConditionRemoteConnectionFailed
}
