package dialback

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
)

// Namespaces of XEP-0220.
const (
	// NS qualifies <db:result/> and <db:verify/>.
	NS = "jabber:server:dialback"
	// NSFeatures qualifies the <dialback/> stream feature (XEP-0220 §2.4.1).
	NSFeatures = "urn:xmpp:features:dialback"
	// NSStanzas qualifies the error conditions inside a dialback <error/>.
	NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// Limits applied while decoding an element from the network.
const (
	// MaxKeyLen bounds the key text. XEP-0185 keys are 64 hexadecimal
	// characters; other generators stay well below this.
	MaxKeyLen = 1024
	// MaxTextLen bounds the human-readable text of an error.
	MaxTextLen = 1024
	// maxDepth bounds element nesting inside a dialback element.
	maxDepth = 4
	// maxTokens bounds the number of tokens inside a dialback element.
	maxTokens = 64
	// maxIDLen bounds the stream ID of a db:verify.
	maxIDLen = 1024
)

// Kind says which of the two dialback elements an Element is.
type Kind uint8

// The dialback elements.
const (
	// Result is <db:result/>: a request to authorize a domain pair on the
	// stream it arrives on, or the answer to one.
	Result Kind = iota + 1
	// Verify is <db:verify/>: a question to the authoritative server about a
	// key, or its answer.
	Verify
)

func (k Kind) String() string {
	switch k {
	case Result:
		return "result"
	case Verify:
		return "verify"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Type is the type attribute of a dialback element. The empty type marks a
// request; the others mark an answer.
type Type string

// The values of the type attribute.
const (
	TypeRequest Type = ""
	TypeValid   Type = "valid"
	TypeInvalid Type = "invalid"
	TypeError   Type = "error"
)

// Element is a <db:result/> or a <db:verify/>.
type Element struct {
	Kind Kind
	// From and To are the domains of the element's attributes.
	From, To string
	// ID is the stream ID a db:verify is about; empty for db:result.
	ID string
	// Type is empty for a request.
	Type Type
	// Key is the dialback key carried by a request.
	Key string
	// Err is set when Type is TypeError.
	Err *Error
}

// Reply returns the answer to the request e with the given type: the same
// kind and ID with from and to swapped, and no key.
func (e Element) Reply(t Type) Element {
	return Element{Kind: e.Kind, From: e.To, To: e.From, ID: e.ID, Type: t}
}

// ReplyError returns the error answer to the request e.
func (e Element) ReplyError(err *Error) Element {
	r := e.Reply(TypeError)
	r.Err = err
	return r
}

// Answers reports whether e is an answer to the request req: same kind,
// from and to swapped, and for db:verify the same ID. The ID of a db:result
// answer is ignored: Prosody 0.12 puts the stream ID (and the key) in its
// answers.
func (e Element) Answers(req Element) bool {
	return e.Type != TypeRequest && e.Kind == req.Kind && (e.Kind == Result || e.ID == req.ID) &&
		domainEqual(e.From, req.To) && domainEqual(e.To, req.From)
}

// Errors returned by Decode. They say which stream error the caller should
// close the stream with (RFC 6120 §4.9.3).
var (
	// ErrImproperAddressing: from or to is missing (stream error
	// improper-addressing).
	ErrImproperAddressing = errors.New("dialback: missing from or to")
	// ErrInvalidFrom: from is not a domain (stream error invalid-from).
	ErrInvalidFrom = errors.New("dialback: from is not a valid domain")
	// ErrMalformed: anything else wrong with the element (stream error
	// invalid-xml or bad-format).
	ErrMalformed = errors.New("dialback: malformed element")
	// ErrNotDialback: the element is not in the dialback namespace.
	ErrNotDialback = errors.New("dialback: not a dialback element")
)

// IsDialback reports whether start opens a db:result or a db:verify.
func IsDialback(start xml.StartElement) bool {
	return start.Name.Space == NS && (start.Name.Local == "result" || start.Name.Local == "verify")
}

// Decode reads the dialback element that start opens from r, up to and
// including its end element. r must not return start again. The element is
// checked: from and to must be domains, a db:verify needs an ID, a request
// needs a key of at most MaxKeyLen bytes, and an error answer is parsed into
// Err.
func Decode(r xml.TokenReader, start xml.StartElement) (Element, error) {
	var e Element
	if start.Name.Space != NS {
		return e, fmt.Errorf("%w: %s in namespace %q", ErrNotDialback, start.Name.Local, start.Name.Space)
	}
	switch start.Name.Local {
	case "result":
		e.Kind = Result
	case "verify":
		e.Kind = Verify
	default:
		return e, fmt.Errorf("%w: <%s/>", ErrNotDialback, start.Name.Local)
	}
	typ, hasType := "", false
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "from":
			e.From = a.Value
		case "to":
			e.To = a.Value
		case "id":
			e.ID = a.Value
		case "type":
			typ, hasType = a.Value, true
		}
	}
	key, errEl, err := decodeContent(r)
	if err != nil {
		return e, fmt.Errorf("dialback: decode db:%s: %w", e.Kind, err)
	}
	switch {
	case !hasType:
		e.Type = TypeRequest
	case typ == string(TypeValid), typ == string(TypeInvalid), typ == string(TypeError):
		e.Type = Type(typ)
	default:
		return e, fmt.Errorf("%w: db:%s type %q", ErrMalformed, e.Kind, typ)
	}
	if e.From == "" || e.To == "" {
		return e, fmt.Errorf("%w: db:%s from=%q to=%q", ErrImproperAddressing, e.Kind, e.From, e.To)
	}
	if !validDomain(e.From) {
		return e, fmt.Errorf("%w: db:%s from=%q", ErrInvalidFrom, e.Kind, e.From)
	}
	if !validDomain(e.To) {
		return e, fmt.Errorf("%w: db:%s to=%q is not a domain", ErrMalformed, e.Kind, e.To)
	}
	if e.Kind == Verify && e.ID == "" {
		return e, fmt.Errorf("%w: db:verify without id", ErrMalformed)
	}
	if len(e.ID) > maxIDLen {
		return e, fmt.Errorf("%w: db:verify id of %d bytes", ErrMalformed, len(e.ID))
	}
	switch e.Type {
	case TypeRequest:
		e.Key = strings.TrimSpace(key)
		if e.Key == "" {
			return e, fmt.Errorf("%w: db:%s request without key", ErrMalformed, e.Kind)
		}
	case TypeError:
		if errEl == nil {
			// XEP-0220 §2.4: an error without a condition is still an error.
			errEl = &Error{Type: "cancel", Condition: ConditionUndefined}
		}
		e.Err = errEl
	}
	return e, nil
}

// decodeContent reads the content of a dialback element up to its end
// element: character data (the key) and at most one <error/> child. Other
// children are skipped (bounded) as XML extensibility allows.
func decodeContent(r xml.TokenReader) (key string, errEl *Error, err error) {
	var text strings.Builder
	depth, tokens := 0, 0
	for {
		tok, err := r.Token()
		if err == io.EOF {
			return "", nil, fmt.Errorf("%w: %w", ErrMalformed, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return "", nil, err
		}
		tokens++
		if tokens > maxTokens {
			return "", nil, fmt.Errorf("%w: more than %d tokens", ErrMalformed, maxTokens)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if depth == 0 {
				if text.Len()+len(t) > MaxKeyLen {
					return "", nil, fmt.Errorf("%w: key longer than %d bytes", ErrMalformed, MaxKeyLen)
				}
				text.Write(t)
			}
		case xml.StartElement:
			if depth == 0 && t.Name.Local == "error" && errEl == nil {
				errEl, err = decodeError(r, t, &tokens)
				if err != nil {
					return "", nil, err
				}
				continue
			}
			depth++
			if depth > maxDepth {
				return "", nil, fmt.Errorf("%w: nested deeper than %d", ErrMalformed, maxDepth)
			}
		case xml.EndElement:
			if depth == 0 {
				return text.String(), errEl, nil
			}
			depth--
		}
	}
}

// decodeError reads an <error/> child (in whatever namespace: XEP-0220's
// examples leave it in the stream's default namespace, Prosody puts it in the
// dialback one).
func decodeError(r xml.TokenReader, start xml.StartElement, tokens *int) (*Error, error) {
	e := &Error{}
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == "type" {
			e.Type = a.Value
		}
	}
	depth := 0
	inText := false
	var text strings.Builder
	for {
		tok, err := r.Token()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return nil, err
		}
		*tokens++
		if *tokens > maxTokens {
			return nil, fmt.Errorf("%w: more than %d tokens", ErrMalformed, maxTokens)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				return nil, fmt.Errorf("%w: nested deeper than %d", ErrMalformed, maxDepth)
			}
			if depth == 1 && t.Name.Space == NSStanzas {
				if t.Name.Local == "text" {
					inText = true
				} else if e.Condition == "" {
					e.Condition = Condition(t.Name.Local)
				}
			}
		case xml.CharData:
			if inText && depth == 1 {
				if text.Len()+len(t) > MaxTextLen {
					return nil, fmt.Errorf("%w: error text longer than %d bytes", ErrMalformed, MaxTextLen)
				}
				text.Write(t)
			}
		case xml.EndElement:
			if depth == 0 {
				if e.Condition == "" {
					e.Condition = ConditionUndefined
				}
				if e.Type == "" {
					e.Type = "cancel"
				}
				e.Text = text.String()
				return e, nil
			}
			depth--
			inText = false
		}
	}
}

// Parse decodes a single dialback element from b, as a peer would send it on
// a stream whose header declares xmlns:db='jabber:server:dialback'.
func Parse(b []byte) (Element, error) {
	// The wrapper declares the db prefix the way a stream header would.
	wrapped := make([]byte, 0, len(b)+80)
	wrapped = append(wrapped, `<w xmlns="jabber:server" xmlns:db="jabber:server:dialback">`...)
	wrapped = append(wrapped, b...)
	wrapped = append(wrapped, `</w>`...)
	d := xml.NewDecoder(bytes.NewReader(wrapped))
	if _, err := d.Token(); err != nil {
		return Element{}, fmt.Errorf("dialback: parse: %w", err)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return Element{}, fmt.Errorf("dialback: parse: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) == 0 {
				continue
			}
		case xml.StartElement:
			return Decode(d, t)
		case xml.Comment, xml.ProcInst:
			continue
		}
		return Element{}, fmt.Errorf("%w: unexpected %T before the element", ErrMalformed, tok)
	}
}

// TokenReader returns the element's XML. The element carries its namespace
// itself (prefix-free, <result xmlns='jabber:server:dialback'/>), so it can be
// written on any stream, whatever its header declares.
func (e Element) TokenReader() xml.TokenReader {
	attrs := []xml.Attr{
		{Name: xml.Name{Local: "from"}, Value: e.From},
		{Name: xml.Name{Local: "to"}, Value: e.To},
	}
	if e.ID != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "id"}, Value: e.ID})
	}
	if e.Type != TypeRequest {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "type"}, Value: string(e.Type)})
	}
	var inner xml.TokenReader
	switch {
	case e.Type == TypeRequest && e.Key != "":
		inner = xmlstream.Token(xml.CharData(e.Key))
	case e.Type == TypeError && e.Err != nil:
		inner = e.Err.TokenReader()
	}
	local := "result"
	if e.Kind == Verify {
		local = "verify"
	}
	return xmlstream.Wrap(inner, xml.StartElement{Name: xml.Name{Space: NS, Local: local}, Attr: attrs})
}

// WriteXML writes the element to w.
func (e Element) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, e.TokenReader())
}

// Marshal returns the element's XML as bytes.
func (e Element) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	if _, err := e.WriteXML(enc); err != nil {
		return nil, fmt.Errorf("dialback: encode db:%s: %w", e.Kind, err)
	}
	if err := enc.Flush(); err != nil {
		return nil, fmt.Errorf("dialback: encode db:%s: %w", e.Kind, err)
	}
	return b.Bytes(), nil
}

// Feature returns the <dialback xmlns='urn:xmpp:features:dialback'><errors/>
// </dialback> stream feature of XEP-0220 §2.4.1, which says that this server
// supports dialback and its error conditions.
func Feature() xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSFeatures, Local: "errors"}}),
		xml.StartElement{Name: xml.Name{Space: NSFeatures, Local: "dialback"}},
	)
}

// FeatureInfo is what a <dialback/> stream feature says.
type FeatureInfo struct {
	// Errors is true when the peer understands dialback error answers
	// (XEP-0220 §2.4.1); send type='error' only to such peers, otherwise
	// close the stream with a stream error instead.
	Errors bool
}

// DecodeFeature reads the <dialback/> stream feature that start opens.
func DecodeFeature(r xml.TokenReader, start xml.StartElement) (FeatureInfo, error) {
	var info FeatureInfo
	if start.Name.Space != NSFeatures || start.Name.Local != "dialback" {
		return info, fmt.Errorf("%w: feature %s in %q", ErrNotDialback, start.Name.Local, start.Name.Space)
	}
	depth, tokens := 0, 0
	for {
		tok, err := r.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return info, fmt.Errorf("dialback: decode feature: %w", err)
		}
		tokens++
		if tokens > maxTokens {
			return info, fmt.Errorf("%w: feature with more than %d tokens", ErrMalformed, maxTokens)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				return info, fmt.Errorf("%w: feature nested deeper than %d", ErrMalformed, maxDepth)
			}
			if depth == 1 && t.Name.Local == "errors" && t.Name.Space == NSFeatures {
				info.Errors = true
			}
		case xml.EndElement:
			if depth == 0 {
				return info, nil
			}
			depth--
		}
	}
}

func validDomain(s string) bool {
	j, err := jid.Parse(s)
	return err == nil && j.Localpart() == "" && j.Resourcepart() == ""
}

func domainEqual(a, b string) bool {
	if a == b {
		return true
	}
	ja, err := jid.Parse(a)
	if err != nil {
		return false
	}
	jb, err := jid.Parse(b)
	if err != nil {
		return false
	}
	return ja.Equal(jb)
}
