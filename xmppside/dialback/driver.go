package dialback

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stream"
)

// DefaultTimeout bounds a callback to the authoritative server when the
// Receiver sets none.
const DefaultTimeout = 30 * time.Second

// maxSkipped bounds the unrelated dialback answers a driver reads past while
// waiting for its own.
const maxSkipped = 16

// Stream is the part of an XML stream the drivers use: a token reader
// positioned between top-level elements, and a token writer. Streams built on
// a net.Conn should also implement SetReadDeadline so that a canceled
// context interrupts a blocked read; SessionStream and the raw streams of the
// tests do.
type Stream interface {
	xml.TokenReader
	xmlstream.TokenWriteFlusher
}

type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// watch makes a read on s return when ctx ends, if s can be given a read
// deadline. The returned func undoes it.
func watch(ctx context.Context, s any) func() {
	d, ok := s.(readDeadliner)
	if !ok {
		return func() {}
	}
	// Only after ctx is done, so that ctxErr sees ctx.Err() set.
	stop := context.AfterFunc(ctx, func() { _ = d.SetReadDeadline(time.Unix(1, 0)) })
	return func() {
		stop()
		_ = d.SetReadDeadline(time.Time{})
	}
}

// ctxErr prefers the context's error to the I/O error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// NextElement reads tokens from r up to the next top-level start element,
// skipping white space, comments and processing instructions. It returns a
// stream.Error when the peer sent <stream:error/>, and io.EOF when the peer
// closed its stream.
func NextElement(r xml.TokenReader) (xml.StartElement, error) {
	for {
		tok, err := r.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == stream.NS && t.Name.Local == "error" {
				return xml.StartElement{}, decodeStreamError(r)
			}
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, io.EOF
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return xml.StartElement{}, fmt.Errorf("%w: text between elements", ErrMalformed)
			}
		}
	}
}

// nsStreamErrors qualifies stream error conditions (RFC 6120 §4.9.2).
const nsStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams"

// decodeStreamError reads the rest of a <stream:error/> and returns it as a
// stream.Error with its condition (undefined-condition when it has none).
func decodeStreamError(r xml.TokenReader) error {
	cond := ""
	depth := 0
	for tokens := 0; tokens < maxTokens; tokens++ {
		tok, err := r.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("dialback: decode stream error: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && cond == "" && t.Name.Space == nsStreamErrors && t.Name.Local != "text" {
				cond = t.Name.Local
			}
		case xml.EndElement:
			if depth == 0 {
				if cond == "" {
					cond = "undefined-condition"
				}
				return fmt.Errorf("dialback: peer closed the stream: %w", stream.Error{Err: cond})
			}
			depth--
		}
	}
	return fmt.Errorf("%w: stream error with more than %d tokens", ErrMalformed, maxTokens)
}

func send(w xmlstream.TokenWriteFlusher, e Element) error {
	if _, err := e.WriteXML(w); err != nil {
		return fmt.Errorf("dialback: send db:%s from %s to %s: %w", e.Kind, e.From, e.To, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("dialback: send db:%s from %s to %s: %w", e.Kind, e.From, e.To, err)
	}
	return nil
}

// awaitAnswer reads elements from r until the answer to req arrives.
func awaitAnswer(ctx context.Context, r xml.TokenReader, req Element) (Element, error) {
	defer watch(ctx, r)()
	for skipped := 0; ; skipped++ {
		start, err := NextElement(r)
		if err != nil {
			return Element{}, ctxErr(ctx, fmt.Errorf("dialback: wait for db:%s answer from %s: %w", req.Kind, req.To, err))
		}
		if !IsDialback(start) {
			return Element{}, fmt.Errorf("dialback: wait for db:%s answer from %s: unexpected <%s xmlns=%q>", req.Kind, req.To, start.Name.Local, start.Name.Space)
		}
		ans, err := Decode(r, start)
		if err != nil {
			return Element{}, err
		}
		if ans.Answers(req) {
			return ans, nil
		}
		if skipped >= maxSkipped {
			return Element{}, fmt.Errorf("dialback: wait for db:%s answer from %s: too many unrelated dialback elements", req.Kind, req.To)
		}
	}
}

// Originate is the originating server's part (XEP-0220 §2.1.1): on an
// outbound stream from req.From to req.To whose features have been read, it
// sends the db:result request req (Kind Result, From, To, Key; compute the
// key with Key(secret, to, from, the stream ID the receiving server sent))
// and waits for the answer. It returns nil when the receiving server answers
// type='valid', ErrInvalid for type='invalid', and the *Error of a
// type='error' answer. Nothing else may be read from the stream meanwhile.
func Originate(ctx context.Context, s Stream, req Element) error {
	req.Kind, req.Type, req.ID, req.Err = Result, TypeRequest, "", nil
	if req.Key == "" || req.From == "" || req.To == "" {
		return fmt.Errorf("dialback: originate: need from, to and key (from=%q to=%q)", req.From, req.To)
	}
	if err := send(s, req); err != nil {
		return err
	}
	ans, err := awaitAnswer(ctx, s, req)
	if err != nil {
		return err
	}
	switch ans.Type {
	case TypeValid:
		return nil
	case TypeInvalid:
		return fmt.Errorf("dialback: %s as %s: %w", req.To, req.From, ErrInvalid)
	default:
		return fmt.Errorf("dialback: %s as %s: %w", req.To, req.From, ans.Err)
	}
}

// A Verifier asks the authoritative server of a domain about a key: it sends
// the db:verify request req and returns the answer. StreamVerifier is one.
type Verifier interface {
	Verify(ctx context.Context, req Element) (Element, error)
}

// DialFunc gives the receiving server a Verifier for the authoritative
// server of domain: a new outbound stream, or an existing one. It must
// connect to the domain as resolved in DNS (that is the point of dialback),
// never to the address the request came from. The Receiver does not close
// what it gets: the DialFunc's owner (the s2s connection manager) keeps or
// closes those connections.
type DialFunc func(ctx context.Context, domain string) (Verifier, error)

// Receiver is the receiving server's part (XEP-0220 §2.1.2 to §2.3).
type Receiver struct {
	// Hosts reports whether we serve the domain a request is addressed to.
	Hosts func(domain string) bool
	// Dial provides the connection to the authoritative server.
	Dial DialFunc
	// Timeout bounds dialing and verifying; DefaultTimeout when zero.
	Timeout time.Duration
	// NoErrors makes the receiver answer type='invalid' instead of
	// type='error', for peers that did not advertise dialback errors
	// (XEP-0220 §2.4.1).
	NoErrors bool
	// Logger receives one line per decision; slog.Default() when nil.
	Logger *slog.Logger
}

func (rc *Receiver) logger() *slog.Logger {
	if rc.Logger != nil {
		return rc.Logger
	}
	return slog.Default()
}

// Check decides about the db:result request req received on an inbound
// stream whose ID (the one we sent) is streamID: it asks the authoritative
// server of req.From through Dial and returns the answer to send back.
func (rc *Receiver) Check(ctx context.Context, req Element, streamID string) Element {
	if rc.Hosts == nil || !rc.Hosts(req.To) {
		return rc.fail(req, NewError(ConditionItemNotFound, req.To+" is not served here"))
	}
	if rc.Dial == nil {
		return rc.fail(req, NewError(ConditionInternalServerError, "no way to reach authoritative servers"))
	}
	timeout := rc.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := rc.Dial(ctx, req.From)
	if err != nil {
		rc.logger().Info("dialback: authoritative server unreachable", "domain", req.From, "err", err)
		return rc.fail(req, NewError(conditionFor(err), ""))
	}
	verify := Element{Kind: Verify, From: req.To, To: req.From, ID: streamID, Key: req.Key}
	ans, err := v.Verify(ctx, verify)
	if err != nil {
		rc.logger().Info("dialback: verify failed", "domain", req.From, "err", err)
		return rc.fail(req, NewError(conditionFor(err), ""))
	}
	if !ans.Answers(verify) {
		return rc.fail(req, NewError(ConditionRemoteConnectionFailed, "mismatched answer"))
	}
	switch ans.Type {
	case TypeValid:
		return req.Reply(TypeValid)
	case TypeInvalid:
		return req.Reply(TypeInvalid)
	default:
		return rc.fail(req, ans.Err)
	}
}

func (rc *Receiver) fail(req Element, e *Error) Element {
	if rc.NoErrors {
		return req.Reply(TypeInvalid)
	}
	return req.ReplyError(e)
}

// HandleResult checks the db:result request req (see Check), writes the
// answer to w and reports whether req.From may now send stanzas to req.To on
// this stream. streamFrom is the from attribute of the peer's stream header
// (empty if it had none); a request from another domain is refused with an
// error wrapping ErrInvalidFrom and nothing is written: close the stream with
// <invalid-from/>.
func (rc *Receiver) HandleResult(ctx context.Context, w xmlstream.TokenWriteFlusher, req Element, streamID, streamFrom string) (bool, error) {
	if req.Kind != Result || req.Type != TypeRequest {
		return false, fmt.Errorf("%w: db:%s type=%q is not a result request", ErrMalformed, req.Kind, req.Type)
	}
	if streamFrom != "" && !domainEqual(streamFrom, req.From) {
		return false, fmt.Errorf("%w: db:result from %s on a stream from %s", ErrInvalidFrom, req.From, streamFrom)
	}
	ans := rc.Check(ctx, req, streamID)
	rc.logger().Info("dialback: answered", "from", req.From, "to", req.To, "type", string(ans.Type))
	if err := send(w, ans); err != nil {
		return false, err
	}
	return ans.Type == TypeValid, nil
}

// Authority is the authoritative server's part (XEP-0220 §2.1.3 and
// §2.1.4): it answers db:verify requests about keys it generated.
type Authority struct {
	// Secret is the dialback secret (LoadOrCreateSecret).
	Secret []byte
	// Hosts reports whether we serve a domain.
	Hosts func(domain string) bool
}

// Answer returns the answer to the db:verify request req: valid when
// req.Key is Key(Secret, req.From, req.To, req.ID).
func (a *Authority) Answer(req Element) Element {
	if a.Hosts == nil || !a.Hosts(req.To) {
		return req.ReplyError(NewError(ConditionItemNotFound, req.To+" is not served here"))
	}
	if len(a.Secret) == 0 {
		return req.ReplyError(NewError(ConditionInternalServerError, ""))
	}
	if CheckKey(a.Secret, req.From, req.To, req.ID, req.Key) {
		return req.Reply(TypeValid)
	}
	return req.Reply(TypeInvalid)
}

// HandleVerify writes the answer to the db:verify request req to w.
func (a *Authority) HandleVerify(w xmlstream.TokenWriteFlusher, req Element) error {
	if req.Kind != Verify || req.Type != TypeRequest {
		return fmt.Errorf("%w: db:%s type=%q is not a verify request", ErrMalformed, req.Kind, req.Type)
	}
	return send(w, a.Answer(req))
}

// StreamVerifier is a Verifier over one outbound stream to an authoritative
// server. Requests are sent one at a time. It reads the stream, so nothing
// else may read it while Verify runs.
type StreamVerifier struct {
	mu sync.Mutex
	s  Stream
}

// NewStreamVerifier returns a Verifier that uses s.
func NewStreamVerifier(s Stream) *StreamVerifier {
	return &StreamVerifier{s: s}
}

// Verify sends the db:verify request req and waits for its answer.
func (v *StreamVerifier) Verify(ctx context.Context, req Element) (Element, error) {
	req.Kind, req.Type, req.Err = Verify, TypeRequest, nil
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := send(v.s, req); err != nil {
		return Element{}, err
	}
	ans, err := awaitAnswer(ctx, v.s, req)
	if err != nil {
		return Element{}, err
	}
	if ans.Type == TypeError && ans.Err == nil {
		return Element{}, errors.New("dialback: verify: error answer without condition")
	}
	return ans, nil
}
