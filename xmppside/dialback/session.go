package dialback

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
)

// SessionStream is a Stream over a mellium session. It holds the session's
// input and output locks until Close, so use it while negotiating (inside a
// StreamFeature) or before Session.Serve starts, not alongside Serve.
type SessionStream struct {
	session *xmpp.Session
	r       xmlstream.TokenReadCloser
	w       xmlstream.TokenWriteFlushCloser
	depth   int
}

// NewSessionStream locks the session's input and output for the drivers.
func NewSessionStream(s *xmpp.Session) *SessionStream {
	return &SessionStream{session: s, r: s.TokenReader(), w: s.TokenWriter()}
}

// Token implements xml.TokenReader.
//
// While a stream feature negotiates, mellium v0.23.0 hands it the element
// that selected the feature pushed back in front of a reader that did not
// count it, so that reader reports the text inside the element as
// "unexpected stream-level chardata". SessionStream counts depth itself and
// drops that error for text inside an element.
func (s *SessionStream) Token() (xml.Token, error) {
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

// EncodeToken implements xmlstream.TokenWriter.
func (s *SessionStream) EncodeToken(t xml.Token) error { return s.w.EncodeToken(t) }

// Flush implements xmlstream.Flusher.
func (s *SessionStream) Flush() error { return s.w.Flush() }

// SetReadDeadline lets a context interrupt a blocked read.
func (s *SessionStream) SetReadDeadline(t time.Time) error {
	return s.session.Conn().SetReadDeadline(t)
}

// Close releases the session's locks; it does not close the session.
func (s *SessionStream) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// OriginatingFeature is the initiating side of dialback as a mellium stream
// feature: when the receiving server advertises urn:xmpp:features:dialback,
// it sends db:result for our domain (the session's origin) with the key for
// the stream ID the receiving server sent, and marks the session
// authenticated and ready when the answer is valid (dialback has no stream
// restart). When the feature is listed again on an authenticated stream
// (Prosody does), it just ends negotiation. Mellium picks at random among required features, so do not list
// it together with saslext's client feature in one session: try EXTERNAL
// first and fall back to a new connection with this feature, as Prosody
// does.
func OriginatingFeature(secret []byte) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:      xml.Name{Space: NSFeatures, Local: "dialback"},
		Necessary: xmpp.Secure,
		List: func(ctx context.Context, w xmlstream.TokenWriter, _ xml.StartElement) (bool, error) {
			_, err := xmlstream.Copy(w, Feature())
			return false, err
		},
		Parse: func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			info, err := DecodeFeature(d, *start)
			return true, info, err
		},
		Negotiate: func(ctx context.Context, session *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			if session.State()&xmpp.Authn != 0 {
				// Listed again after authentication (Prosody does).
				return xmpp.Ready, nil, nil
			}
			from := session.LocalAddr().Domain().String()
			to := session.RemoteAddr().Domain().String()
			id := session.In().ID
			if id == "" {
				return 0, nil, fmt.Errorf("dialback: %s gave no stream id", to)
			}
			s := NewSessionStream(session)
			defer s.Close()
			err := Originate(ctx, s, Element{From: from, To: to, Key: Key(secret, to, from, id)})
			if err != nil {
				return 0, nil, err
			}
			return xmpp.Authn | xmpp.Ready, nil, nil
		},
	}
}

// ReadyFeature recognizes the dialback feature that a receiving server
// lists again after the stream was authenticated (Prosody 0.12 does, after
// SASL EXTERNAL) and ends negotiation. Mellium v0.23.0's initiating side
// fails with "features advertised out of order" when a feature list holds
// only features it has no StreamFeature for, so list ReadyFeature with
// saslext.ClientFeature (OriginatingFeature does the same by itself).
func ReadyFeature() xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:      xml.Name{Space: NSFeatures, Local: "dialback"},
		Necessary: xmpp.Secure | xmpp.Authn,
		List: func(ctx context.Context, w xmlstream.TokenWriter, _ xml.StartElement) (bool, error) {
			return false, nil
		},
		Parse: func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, session *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			return xmpp.Ready, nil, nil
		},
	}
}

// ReceivingFeature is the receiving side of dialback as a mellium stream
// feature for inbound s2s sessions: it advertises urn:xmpp:features:dialback
// with <errors/> and then handles the dialback elements the peer sends. A
// db:verify is answered by auth (when not nil) and the next element is read;
// a db:result is checked by rc, and the session becomes authenticated when
// it is valid. An invalid result ends negotiation with an error; the caller
// should close the stream (<not-authorized/>). Dialback elements arriving
// after negotiation (more domain pairs, or verifies on an established
// stream) are for the session's handler: Decode, then Receiver.HandleResult
// or Authority.HandleVerify.
func ReceivingFeature(rc *Receiver, auth *Authority) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		// Mellium dispatches an incoming element to the feature whose name
		// has its namespace, so the feature is named after db:result.
		Name:       xml.Name{Space: NS, Local: "result"},
		Necessary:  xmpp.Secure,
		Prohibited: xmpp.Authn,
		// Listed as required (without <required/> on the wire) so that
		// mellium stops negotiating once dialback succeeds: dialback has no
		// stream restart and the peer sends stanzas next.
		List: func(ctx context.Context, w xmlstream.TokenWriter, _ xml.StartElement) (bool, error) {
			_, err := xmlstream.Copy(w, Feature())
			return true, err
		},
		Parse: func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			return false, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, session *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			s := NewSessionStream(session)
			defer s.Close()
			for {
				start, err := NextElement(s)
				if err != nil {
					return 0, nil, fmt.Errorf("dialback: read from %s: %w", session.RemoteAddr(), err)
				}
				el, err := Decode(s, start)
				if err != nil {
					return 0, nil, err
				}
				switch {
				case el.Kind == Verify && el.Type == TypeRequest && auth != nil:
					if err := auth.HandleVerify(s, el); err != nil {
						return 0, nil, err
					}
				case el.Kind == Result && el.Type == TypeRequest:
					ok, err := rc.HandleResult(ctx, s, el, session.Out().ID, session.RemoteAddr().Domain().String())
					if err != nil {
						return 0, nil, err
					}
					if !ok {
						return 0, nil, fmt.Errorf("dialback: %s not verified: %w", el.From, ErrInvalid)
					}
					return xmpp.Authn | xmpp.Ready, nil, nil
				default:
					return 0, nil, fmt.Errorf("%w: unexpected db:%s type=%q", ErrMalformed, el.Kind, el.Type)
				}
			}
		},
	}
}
