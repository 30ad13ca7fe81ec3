package session

// A small hardened XML reader and writer shared by the message and
// isComposing code. The reader works over encoding/xml's raw tokens and
// resolves namespaces itself, so that it can refuse what a bridge should
// never process (DTDs and with them entity declarations, unbound prefixes,
// mismatched tags, encodings other than UTF-8, excessive depth) and so that
// elements it does not model can be written back in one canonical,
// self-contained form.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"unicode/utf8"
)

const (
	msgNSXML   = "http://www.w3.org/XML/1998/namespace"
	msgNSXMLNS = "http://www.w3.org/2000/xmlns/"
)

// msgElem is one start tag with its namespaces resolved.
type msgElem struct {
	Space, Local string
	Attr         []xml.Attr // resolved; namespace declarations removed
	// Inherit says the namespace is the root element's, inherited without
	// being declared again: for a stanza, "the stanza namespace", which
	// follows whatever namespace the stanza is written in.
	Inherit bool
}

// attr returns the value of the un-namespaced attribute name.
func (e *msgElem) attr(name string) (string, bool) {
	for _, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// lang returns the xml:lang attribute.
func (e *msgElem) lang() (string, bool) {
	for _, a := range e.Attr {
		if a.Name.Space == msgNSXML && a.Name.Local == "lang" {
			return a.Value, true
		}
	}
	return "", false
}

type msgScope struct {
	raw     xml.Name          // the start tag as written, to match the end tag
	ns      string            // default namespace in scope
	inherit bool              // ns is the root's, never redeclared
	pfx     map[string]string // prefixes declared on this element, or nil
}

// msgReader yields resolved tokens: *msgElem for a start tag, msgEnd for an
// end tag and xml.CharData for text. Comments and processing instructions
// are skipped; a DTD is an error.
type msgReader struct {
	dec      *xml.Decoder
	stack    []msgScope
	maxDepth int
	roots    int
}

type msgEnd struct{}

func newMsgReader(b []byte, maxDepth int) *msgReader {
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	dec.CharsetReader = func(charset string, _ io.Reader) (io.Reader, error) {
		return nil, fmt.Errorf("encoding %q not supported, only UTF-8", charset)
	}
	return &msgReader{dec: dec, maxDepth: maxDepth}
}

// lookup resolves a prefix against the scopes in force.
func (r *msgReader) lookup(prefix string) (string, bool) {
	switch prefix {
	case "xml":
		return msgNSXML, true
	case "xmlns":
		return msgNSXMLNS, true
	}
	for i := len(r.stack) - 1; i >= 0; i-- {
		if ns, ok := r.stack[i].pfx[prefix]; ok {
			return ns, true
		}
	}
	return "", false
}

// next returns the next token, or io.EOF at the end of the input. Errors
// other than io.EOF wrap ErrMalformedMessage, ErrMessageTooDeep or
// ErrMessageDTD.
func (r *msgReader) next() (any, error) {
	for {
		tok, err := r.dec.RawToken()
		if err == io.EOF {
			if len(r.stack) != 0 {
				return nil, fmt.Errorf("unclosed <%s>: %w", r.stack[len(r.stack)-1].raw.Local, ErrMalformedMessage)
			}
			if r.roots == 0 {
				return nil, fmt.Errorf("no root element: %w", ErrMalformedMessage)
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedMessage, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, fmt.Errorf("<!%.20s...>: %w", t, ErrMessageDTD)
		case xml.Comment, xml.ProcInst:
			continue
		case xml.CharData:
			if len(r.stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, fmt.Errorf("text outside the root element: %w", ErrMalformedMessage)
				}
				continue
			}
			return t, nil
		case xml.EndElement:
			if len(r.stack) == 0 {
				return nil, fmt.Errorf("unexpected </%s>: %w", t.Name.Local, ErrMalformedMessage)
			}
			top := r.stack[len(r.stack)-1]
			if top.raw != t.Name {
				return nil, fmt.Errorf("<%s> closed by </%s>: %w", top.raw.Local, t.Name.Local, ErrMalformedMessage)
			}
			r.stack = r.stack[:len(r.stack)-1]
			return msgEnd{}, nil
		case xml.StartElement:
			return r.start(t)
		}
	}
}

func (r *msgReader) start(t xml.StartElement) (*msgElem, error) {
	if len(r.stack) == 0 {
		r.roots++
		if r.roots > 1 {
			return nil, fmt.Errorf("second root element <%s>: %w", t.Name.Local, ErrMalformedMessage)
		}
	}
	if len(r.stack) >= r.maxDepth {
		return nil, fmt.Errorf("depth exceeds %d: %w", r.maxDepth, ErrMessageTooDeep)
	}
	sc := msgScope{raw: t.Name}
	if len(r.stack) > 0 {
		sc.ns = r.stack[len(r.stack)-1].ns
		sc.inherit = r.stack[len(r.stack)-1].inherit
	}
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			sc.ns = a.Value
			sc.inherit = false
		case a.Name.Space == "xmlns":
			if a.Value == "" || a.Name.Local == "xml" || a.Name.Local == "xmlns" {
				return nil, fmt.Errorf("bad declaration of prefix %q: %w", a.Name.Local, ErrMalformedMessage)
			}
			if sc.pfx == nil {
				sc.pfx = make(map[string]string, 2)
			}
			sc.pfx[a.Name.Local] = a.Value
		}
	}
	r.stack = append(r.stack, sc)
	e := &msgElem{Local: t.Name.Local, Space: sc.ns, Inherit: sc.inherit}
	if t.Name.Space != "" {
		ns, ok := r.lookup(t.Name.Space)
		if !ok || ns == msgNSXML || ns == msgNSXMLNS {
			return nil, fmt.Errorf("element prefix %q not bound: %w", t.Name.Space, ErrMalformedMessage)
		}
		e.Space, e.Inherit = ns, false
	}
	if len(r.stack) == 1 {
		// The root defines the inherited namespace: its default one if
		// that is the root's own, else none.
		e.Inherit = true
		r.stack[0].inherit = sc.ns == e.Space
	}
	for _, a := range t.Attr {
		if (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Space == "xmlns" {
			continue
		}
		if a.Name.Space != "" {
			ns, ok := r.lookup(a.Name.Space)
			if !ok {
				return nil, fmt.Errorf("attribute prefix %q not bound: %w", a.Name.Space, ErrMalformedMessage)
			}
			a.Name.Space = ns
		}
		for _, b := range e.Attr {
			if b.Name == a.Name {
				return nil, fmt.Errorf("attribute %q repeated: %w", a.Name.Local, ErrMalformedMessage)
			}
		}
		e.Attr = append(e.Attr, a)
	}
	return e, nil
}

// text reads the character data of the element just started, up to and
// including its end tag; child elements are skipped (their text ignored).
func (r *msgReader) text() (string, error) {
	var buf []byte
	d := 0
	for {
		tok, err := r.next()
		if err != nil {
			if err == io.EOF {
				return "", fmt.Errorf("unexpected end: %w", ErrMalformedMessage)
			}
			return "", err
		}
		switch t := tok.(type) {
		case *msgElem:
			d++
		case msgEnd:
			if d == 0 {
				return string(buf), nil
			}
			d--
		case xml.CharData:
			if d == 0 {
				buf = append(buf, t...)
			}
		}
	}
}

// skip consumes the rest of the element just started.
func (r *msgReader) skip() error {
	_, err := r.text()
	return err
}

// canon writes the element just started (e), a child of the root, and its
// whole subtree, to w in canonical form: no prefixes on elements; no
// namespace declaration on an element in the inherited root namespace, and
// one on every other element whose namespace differs from its parent's or
// whose parent is in the inherited namespace; namespaced attributes other
// than xml:* under generated prefixes; comments dropped. The form does not
// depend on the root's namespace, so it can be written under another one.
func (r *msgReader) canon(w *bytes.Buffer, e *msgElem) error {
	type frame struct {
		ns, local string
		inherit   bool
	}
	stack := []frame{}
	cur := e
	parent := frame{inherit: true}
	for {
		if cur != nil {
			msgWriteStart(w, cur, parent.ns, parent.inherit)
			stack = append(stack, frame{cur.Space, cur.Local, cur.Inherit})
			cur = nil
		}
		tok, err := r.next()
		if err != nil {
			if err == io.EOF {
				return fmt.Errorf("unexpected end: %w", ErrMalformedMessage)
			}
			return err
		}
		switch t := tok.(type) {
		case *msgElem:
			cur = t
			parent = stack[len(stack)-1]
		case xml.CharData:
			msgEscape(w, string(t), false)
		case msgEnd:
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			w.WriteString("</")
			w.WriteString(top.local)
			w.WriteByte('>')
			if len(stack) == 0 {
				return nil
			}
		}
	}
}

func msgWriteStart(w *bytes.Buffer, e *msgElem, parentNS string, parentInherit bool) {
	w.WriteByte('<')
	w.WriteString(e.Local)
	if !e.Inherit && (parentInherit || e.Space != parentNS) {
		w.WriteString(` xmlns="`)
		msgEscape(w, e.Space, true)
		w.WriteByte('"')
	}
	n := 0
	for _, a := range e.Attr {
		w.WriteByte(' ')
		switch a.Name.Space {
		case "":
		case msgNSXML:
			w.WriteString("xml:")
		default:
			p := fmt.Sprintf("ns%d", n)
			n++
			w.WriteString("xmlns:" + p + `="`)
			msgEscape(w, a.Name.Space, true)
			w.WriteString(`" ` + p + ":")
		}
		w.WriteString(a.Name.Local)
		w.WriteString(`="`)
		msgEscape(w, a.Value, true)
		w.WriteByte('"')
	}
	w.WriteByte('>')
}

// msgEscape writes s as XML text or an attribute value (attr). Invalid
// UTF-8 and characters XML 1.0 cannot carry become U+FFFD; CR, and in
// attributes tab and LF, are written as character references so that a
// parser gives them back unchanged.
func msgEscape(w *bytes.Buffer, s string, attr bool) {
	last := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		var rep string
		switch {
		case r == utf8.RuneError && n == 1:
			rep = "\uFFFD"
		case r == '&':
			rep = "&amp;"
		case r == '<':
			rep = "&lt;"
		case r == '>':
			rep = "&gt;"
		case r == '"' && attr:
			rep = "&quot;"
		case r == '\r':
			rep = "&#xD;"
		case r == '\n' && attr:
			rep = "&#xA;"
		case r == '\t' && attr:
			rep = "&#x9;"
		case !msgXMLChar(r):
			rep = "\uFFFD"
		default:
			i += n
			continue
		}
		w.WriteString(s[last:i])
		w.WriteString(rep)
		i += n
		last = i
	}
	w.WriteString(s[last:])
}

// msgXMLChar reports whether XML 1.0 allows r (production Char).
func msgXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}
