package saslext

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"unicode/utf8"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// NS is the SASL namespace of RFC 6120 §6.4.
const NS = "urn:ietf:params:xml:ns:xmpp-sasl"

// MechanismName is the SASL mechanism of RFC 4422 Appendix A.
const MechanismName = "EXTERNAL"

// maxPayload bounds the base64 text of an <auth/> or <response/>.
const maxPayload = 4096

// Errors of DecodeAuthzid and CheckAuthzid.
var (
	// ErrIncorrectEncoding: the payload is not base64 (SASL failure
	// incorrect-encoding).
	ErrIncorrectEncoding = errors.New("saslext: payload is not base64")
	// ErrInvalidAuthzid: the authorization identity is not usable or not
	// the stream's domain (SASL failure invalid-authzid).
	ErrInvalidAuthzid = errors.New("saslext: invalid authorization identity")
)

// DecodeAuthzid returns the authorization identity in the base64 payload of
// an <auth mechanism='EXTERNAL'/> or <response/> (RFC 6120 §6.4.2): "=" and
// an empty payload mean none.
func DecodeAuthzid(payload []byte) (string, error) {
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 || string(payload) == "=" {
		return "", nil
	}
	if len(payload) > maxPayload {
		return "", fmt.Errorf("%w: %d bytes", ErrIncorrectEncoding, len(payload))
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(payload)))
	n, err := base64.StdEncoding.Strict().Decode(b, payload)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrIncorrectEncoding, err)
	}
	b = b[:n]
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return "", fmt.Errorf("%w: not UTF-8 text", ErrInvalidAuthzid)
	}
	return string(b), nil
}

// EncodeAuthzid returns the payload carrying authzid: its base64, or "="
// when it is empty.
func EncodeAuthzid(authzid string) []byte {
	if authzid == "" {
		return []byte("=")
	}
	return []byte(base64.StdEncoding.EncodeToString([]byte(authzid)))
}

// CheckAuthzid applies RFC 6120 §6.4.6 and XEP-0178 §3 to server-to-server
// EXTERNAL: the authorization identity must be empty or the domain of the
// stream's from attribute; streamFrom must be a domain.
func CheckAuthzid(authzid, streamFrom string) error {
	from, err := jid.Parse(streamFrom)
	if err != nil || streamFrom == "" || from.Localpart() != "" || from.Resourcepart() != "" {
		return fmt.Errorf("%w: stream from %q is not a domain", ErrInvalidAuthzid, streamFrom)
	}
	if authzid == "" {
		return nil
	}
	a, err := jid.Parse(authzid)
	if err != nil || !a.Equal(from) {
		return fmt.Errorf("%w: %q on a stream from %s", ErrInvalidAuthzid, authzid, streamFrom)
	}
	return nil
}

// External returns the EXTERNAL mechanism for mellium.im/sasl.
//
// As a client it sends the identity of the negotiator's credentials as
// authorization identity (xmpp.SASL(ourDomain, "", External()) sends our
// domain, as XEP-0178 §3 example 4 does).
//
// As a server it calls the negotiator's permissions func with the received
// authorization identity as the credentials' identity; that func must check
// the TLS state (Negotiator.TLSState, e.g. with VerifyPeerCertificate) and
// the identity (CheckAuthzid). Mellium's xmpp.SASLServer cannot give that
// func the stream's from domain, which is why ServerFeature exists.
func External() sasl.Mechanism {
	return sasl.Mechanism{
		Name: MechanismName,
		Start: func(n *sasl.Negotiator) (bool, []byte, any, error) {
			_, _, identity := n.Credentials()
			return false, identity, nil, nil
		},
		Next: func(n *sasl.Negotiator, challenge []byte, _ any) (bool, []byte, any, error) {
			if n.State()&sasl.Receiving != sasl.Receiving || n.State()&sasl.StepMask != sasl.AuthTextSent {
				return false, nil, nil, sasl.ErrTooManySteps
			}
			ok := n.Permissions(sasl.Credentials(func() ([]byte, []byte, []byte) {
				return nil, nil, challenge
			}))
			if !ok {
				return false, nil, nil, sasl.ErrAuthn
			}
			return false, nil, nil, nil
		},
	}
}

// ClientFeature is the initiating server's side: SASL EXTERNAL with our
// domain as authorization identity, over mellium's SASL feature. The TLS
// connection must present our certificate (tls.Config.Certificates or
// GetClientCertificate).
func ClientFeature(ourDomain string) xmpp.StreamFeature {
	return xmpp.SASL(ourDomain, "", External())
}

// ServerConfig configures ServerFeature.
type ServerConfig struct {
	// Roots verifies peer certificates; nil means the system roots.
	Roots *x509.CertPool
	// Logger receives a line per failure; slog.Default() when nil.
	Logger *slog.Logger
}

// ServerFeature is the receiving server's side of SASL EXTERNAL for
// inbound s2s sessions (RFC 6120 §6.4 and §13.7.2.2, XEP-0178): it offers
// the EXTERNAL mechanism once the stream is secure, and accepts it when the
// peer's TLS certificate is valid for the stream's from domain and the
// authorization identity is empty or that domain. Success restarts the
// stream with the session authenticated as that domain; a failure is
// answered with <failure/> and ends negotiation with an error wrapping
// ErrRefused.
//
// List it only when Offerable says the peer's certificate verifies (build
// the features per stream in xmpp.NewNegotiator's func, which gets the
// session), like Prosody, which offers EXTERNAL only then. A peer whose
// certificate does not verify then sees only dialback and uses it, instead
// of failing EXTERNAL: mellium v0.23.0 cannot go on negotiating another
// feature on the same stream after a failed one.
func ServerFeature(cfg ServerConfig) xmpp.StreamFeature {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: NS, Local: "mechanisms"},
		Necessary:  xmpp.Secure,
		Prohibited: xmpp.Authn,
		List: func(ctx context.Context, w xmlstream.TokenWriter, start xml.StartElement) (bool, error) {
			mech := xml.StartElement{Name: xml.Name{Local: "mechanism"}}
			_, err := xmlstream.Copy(w, xmlstream.Wrap(
				xmlstream.Wrap(xmlstream.Token(xml.CharData(MechanismName)), mech),
				xml.StartElement{Name: xml.Name{Space: NS, Local: "mechanisms"}},
			))
			// Required: mellium then restarts the stream after success
			// instead of marking the session ready.
			return true, err
		},
		Parse: func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, session *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			s := newSessionIO(session)
			defer s.Close()
			from := session.RemoteAddr().String()
			if err := Negotiate(s, session.ConnectionState(), from, cfg.Roots); err != nil {
				log.Info("saslext: EXTERNAL refused", "peer", from, "err", err)
				return 0, nil, err
			}
			return xmpp.Authn, session.Conn(), nil
		},
	}
}

// Stream is the part of an XML stream the raw drivers use: a token reader
// positioned between top-level elements, and a token writer.
type Stream interface {
	xml.TokenReader
	xmlstream.TokenWriteFlusher
}

// Mechanisms returns the SASL stream feature listing EXTERNAL only.
func Mechanisms() xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(MechanismName)), xml.StartElement{Name: xml.Name{Local: "mechanism"}}),
		xml.StartElement{Name: xml.Name{Space: NS, Local: "mechanisms"}},
	)
}

// Negotiate is the receiving server's side of EXTERNAL on a raw stream whose
// next element is the peer's <auth/>, after Mechanisms was listed. state is
// the TLS state of the connection and streamFrom the from attribute of the
// peer's stream header. It writes <success/> and returns nil (restart the
// stream now: the peer is authenticated as streamFrom), or writes <failure/>
// and returns an error wrapping ErrRefused, or returns another error when
// reading or writing fails (close the connection).
func Negotiate(s Stream, state tls.ConnectionState, streamFrom string, roots *x509.CertPool) error {
	var why error
	cond, err := negotiate(s, func(authzid string) (string, error) {
		if err := CheckAuthzid(authzid, streamFrom); err != nil {
			why = err
			return ConditionInvalidAuthzid, err
		}
		if err := VerifyPeerCertificate(state, streamFrom, roots); err != nil {
			why = err
			return ConditionNotAuthorized, err
		}
		return "", nil
	})
	if err != nil {
		return err
	}
	if cond != "" {
		if why != nil {
			return fmt.Errorf("%w: %s from %s: %w", ErrRefused, cond, streamFrom, why)
		}
		return fmt.Errorf("%w: %s from %s", ErrRefused, cond, streamFrom)
	}
	return nil
}

// Failure is the <failure/> a receiving server answered with.
type Failure struct {
	Condition string
}

func (f *Failure) Error() string { return "saslext: EXTERNAL failed: " + f.Condition }

// Authenticate is the initiating server's side of EXTERNAL on a raw stream
// whose features listed EXTERNAL: it sends <auth/> with authzid (our
// domain, or empty), answers an empty challenge, and returns nil on
// <success/> (restart the stream now) or a *Failure.
func Authenticate(s Stream, authzid string) error {
	start := xml.StartElement{
		Name: xml.Name{Space: NS, Local: "auth"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "mechanism"}, Value: MechanismName}},
	}
	if _, err := xmlstream.Copy(s, xmlstream.Wrap(xmlstream.Token(xml.CharData(EncodeAuthzid(authzid))), start)); err != nil {
		return fmt.Errorf("saslext: send <auth/>: %w", err)
	}
	if err := s.Flush(); err != nil {
		return fmt.Errorf("saslext: send <auth/>: %w", err)
	}
	for range 2 {
		el, _, child, err := readSASL(s)
		if err != nil {
			return err
		}
		switch el.Name.Local {
		case "success":
			return nil
		case "failure":
			if child == "" {
				child = "undefined-condition"
			}
			return &Failure{Condition: child}
		case "challenge":
			// EXTERNAL has nothing more to say than the authzid already
			// sent; answer an empty response.
			if err := sendSASL(s, "response", "="); err != nil {
				return err
			}
		default:
			return fmt.Errorf("saslext: unexpected <%s/> during EXTERNAL", el.Name.Local)
		}
	}
	return errors.New("saslext: EXTERNAL: too many challenges")
}

// ErrRefused is returned by ServerFeature's negotiation when it answered
// <failure/>.
var ErrRefused = errors.New("saslext: EXTERNAL refused")

// Offerable reports whether the certificate the peer of session presented
// is valid for the domain in its stream header, so that ServerFeature may
// be listed.
func Offerable(session *xmpp.Session, roots *x509.CertPool) bool {
	from := session.RemoteAddr()
	if from.Localpart() != "" || from.Resourcepart() != "" || from.Domainpart() == "" {
		return false
	}
	return VerifyPeerCertificate(session.ConnectionState(), from.Domainpart(), roots) == nil
}

// SASL failure conditions (RFC 6120 §6.5) this package sends.
const (
	ConditionAborted           = "aborted"
	ConditionIncorrectEncoding = "incorrect-encoding"
	ConditionInvalidAuthzid    = "invalid-authzid"
	ConditionInvalidMechanism  = "invalid-mechanism"
	ConditionMalformedRequest  = "malformed-request"
	ConditionNotAuthorized     = "not-authorized"
)

// tokenIO is what negotiate needs from a stream.
type tokenIO interface {
	xml.TokenReader
	xmlstream.TokenWriteFlusher
}

// negotiate runs the server side of one EXTERNAL exchange on s, whose next
// element is the peer's <auth/>. check decides about the authorization
// identity and returns a failure condition, or "" for success. negotiate
// writes <success/> or <failure/> and returns the failure condition sent
// ("" on success); err is for I/O and protocol errors that end the stream.
func negotiate(s tokenIO, check func(authzid string) (string, error)) (cond string, err error) {
	start, payload, _, err := readSASL(s)
	if err != nil {
		return "", err
	}
	switch start.Name.Local {
	case "auth":
	case "abort":
		return ConditionAborted, sendFailure(s, ConditionAborted)
	default:
		return ConditionMalformedRequest, sendFailure(s, ConditionMalformedRequest)
	}
	mech := ""
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == "mechanism" {
			mech = a.Value
		}
	}
	if mech != MechanismName {
		return ConditionInvalidMechanism, sendFailure(s, ConditionInvalidMechanism)
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		// No initial response: send an empty challenge and read the
		// response (RFC 6120 §6.4.2, §6.4.3).
		if err := sendSASL(s, "challenge", "="); err != nil {
			return "", err
		}
		start, payload, _, err = readSASL(s)
		if err != nil {
			return "", err
		}
		switch start.Name.Local {
		case "response":
		case "abort":
			return ConditionAborted, sendFailure(s, ConditionAborted)
		default:
			return ConditionMalformedRequest, sendFailure(s, ConditionMalformedRequest)
		}
	}
	authzid, err := DecodeAuthzid(payload)
	if err != nil {
		c := ConditionIncorrectEncoding
		if errors.Is(err, ErrInvalidAuthzid) {
			c = ConditionInvalidAuthzid
		}
		return c, sendFailure(s, c)
	}
	if c, _ := check(authzid); c != "" {
		return c, sendFailure(s, c)
	}
	return "", sendSASL(s, "success", "")
}

// readSASL reads the next element, which must be in the SASL namespace,
// and returns it with its text and the name of its first child (a failure
// condition).
func readSASL(r xml.TokenReader) (xml.StartElement, []byte, string, error) {
	var start xml.StartElement
	for {
		tok, err := r.Token()
		if err != nil {
			return start, nil, "", fmt.Errorf("saslext: read: %w", err)
		}
		if t, ok := tok.(xml.StartElement); ok {
			start = t
			break
		}
		if t, ok := tok.(xml.CharData); !ok || len(bytes.TrimSpace(t)) != 0 {
			return start, nil, "", fmt.Errorf("saslext: unexpected %T before SASL element", tok)
		}
	}
	if start.Name.Space != NS {
		return start, nil, "", fmt.Errorf("saslext: unexpected <%s xmlns=%q>", start.Name.Local, start.Name.Space)
	}
	var text []byte
	child := ""
	depth := 0
	for tokens := 0; ; tokens++ {
		if tokens > 64 {
			return start, nil, "", fmt.Errorf("saslext: <%s/> too complex", start.Name.Local)
		}
		tok, err := r.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return start, nil, "", fmt.Errorf("saslext: read <%s/>: %w", start.Name.Local, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if depth == 0 {
				if len(text)+len(t) > maxPayload {
					return start, nil, "", fmt.Errorf("saslext: <%s/> payload over %d bytes", start.Name.Local, maxPayload)
				}
				text = append(text, t...)
			}
		case xml.StartElement:
			depth++
			if depth == 1 && child == "" {
				child = t.Name.Local
			}
			if depth > 4 {
				return start, nil, "", fmt.Errorf("saslext: <%s/> nested too deep", start.Name.Local)
			}
		case xml.EndElement:
			if depth == 0 {
				return start, text, child, nil
			}
			depth--
		}
	}
}

func sendSASL(w xmlstream.TokenWriteFlusher, local, text string) error {
	var inner xml.TokenReader
	if text != "" {
		inner = xmlstream.Token(xml.CharData(text))
	}
	if _, err := xmlstream.Copy(w, xmlstream.Wrap(inner, xml.StartElement{Name: xml.Name{Space: NS, Local: local}})); err != nil {
		return fmt.Errorf("saslext: send <%s/>: %w", local, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("saslext: send <%s/>: %w", local, err)
	}
	return nil
}

func sendFailure(w xmlstream.TokenWriteFlusher, cond string) error {
	_, err := xmlstream.Copy(w, xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NS, Local: cond}}),
		xml.StartElement{Name: xml.Name{Space: NS, Local: "failure"}},
	))
	if err != nil {
		return fmt.Errorf("saslext: send failure %s: %w", cond, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("saslext: send failure %s: %w", cond, err)
	}
	return nil
}

// sessionIO reads and writes a mellium session during negotiation; see
// dialback.SessionStream for why it tracks depth.
type sessionIO struct {
	r     xmlstream.TokenReadCloser
	w     xmlstream.TokenWriteFlushCloser
	depth int
}

func newSessionIO(s *xmpp.Session) *sessionIO {
	return &sessionIO{r: s.TokenReader(), w: s.TokenWriter()}
}

func (s *sessionIO) Token() (xml.Token, error) {
	tok, err := s.r.Token()
	switch t := tok.(type) {
	case xml.StartElement:
		s.depth++
	case xml.EndElement:
		s.depth--
	case xml.CharData:
		if err != nil && s.depth > 0 {
			return t, nil
		}
	}
	return tok, err
}

func (s *sessionIO) EncodeToken(t xml.Token) error { return s.w.EncodeToken(t) }
func (s *sessionIO) Flush() error                  { return s.w.Flush() }
func (s *sessionIO) Close() error                  { return errors.Join(s.r.Close(), s.w.Close()) }
