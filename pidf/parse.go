package pidf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// Default limits applied by Parse when a Limits field is zero or negative.
const (
	DefaultMaxBytes = 64 << 10
	DefaultMaxDepth = 32
)

// Limits bounds the work Parse does on untrusted input. The zero value means
// the defaults.
type Limits struct {
	// MaxBytes is the largest accepted document (default DefaultMaxBytes).
	MaxBytes int
	// MaxDepth is the deepest accepted element nesting, the root element
	// being depth 1 (default DefaultMaxDepth).
	MaxDepth int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Parse reads a PIDF or CPIM-PIDF document. The input is first checked in a
// streaming pass (size, depth, no DTD, no undeclared entity, a single root)
// before any tree is built. Errors wrap ErrTooLarge, ErrTooDeep, ErrDTD,
// ErrNotPIDF or ErrMalformed. Parse never panics.
func Parse(b []byte, lim Limits) (*Document, error) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxBytes {
		return nil, fmt.Errorf("pidf: parse: %d bytes exceeds limit of %d: %w", len(b), lim.MaxBytes, ErrTooLarge)
	}
	b = bytes.TrimPrefix(b, utf8BOM)
	if err := precheck(b, lim.MaxDepth); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.ReadSettings.MaxDepth = lim.MaxDepth + 1 // etree counts the document node
	if err := doc.ReadFromBytes(b); err != nil {
		if errors.Is(err, etree.ErrMaxDepth) {
			return nil, fmt.Errorf("pidf: parse: %w: %w", ErrTooDeep, err)
		}
		return nil, fmt.Errorf("pidf: parse: %w: %w", ErrMalformed, err)
	}
	return fromTree(doc.Root())
}

// precheck walks the raw token stream once, refusing DTDs (and with them any
// entity declaration, so an entity bomb never expands), undeclared entity
// references, non-UTF-8 encodings, excessive depth and content outside a
// single root element.
func precheck(b []byte, maxDepth int) error {
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	dec.CharsetReader = func(charset string, _ io.Reader) (io.Reader, error) {
		return nil, fmt.Errorf("encoding %q not supported, only UTF-8", charset)
	}
	depth, roots := 0, 0
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("pidf: parse: %w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return fmt.Errorf("pidf: parse: <!%.20s...>: %w", t, ErrDTD)
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 {
					return fmt.Errorf("pidf: parse: second root element <%s>: %w", t.Name.Local, ErrMalformed)
				}
			}
			depth++
			if depth > maxDepth {
				return fmt.Errorf("pidf: parse: depth exceeds %d: %w", maxDepth, ErrTooDeep)
			}
		case xml.EndElement:
			depth--
			if depth < 0 {
				return fmt.Errorf("pidf: parse: unexpected </%s>: %w", t.Name.Local, ErrMalformed)
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("pidf: parse: text outside the root element: %w", ErrMalformed)
			}
		}
	}
	if roots == 0 {
		return fmt.Errorf("pidf: parse: no root element: %w", ErrMalformed)
	}
	if depth != 0 {
		return fmt.Errorf("pidf: parse: unclosed element: %w", ErrMalformed)
	}
	return nil
}

func fromTree(root *etree.Element) (*Document, error) {
	if root == nil {
		return nil, fmt.Errorf("pidf: parse: no root element: %w", ErrMalformed)
	}
	ns := root.NamespaceURI()
	if root.Tag != "presence" || (ns != NamespacePIDF && ns != NamespaceCPIM) {
		return nil, fmt.Errorf("pidf: parse: root is {%s}%s, want presence in %s or %s: %w",
			ns, root.Tag, NamespacePIDF, NamespaceCPIM, ErrNotPIDF)
	}
	d := &Document{Namespace: ns}
	d.Entity = strings.TrimSpace(attr(root, "entity"))
	if d.Entity == "" {
		return nil, fmt.Errorf("pidf: parse: <presence> without entity: %w", ErrMalformed)
	}
	for _, c := range root.ChildElements() {
		switch cns := c.NamespaceURI(); {
		case cns == ns && c.Tag == "tuple":
			d.Tuples = append(d.Tuples, parseTuple(c, ns))
		case cns == ns && c.Tag == "note":
			d.Notes = appendNote(d.Notes, c)
		case cns == NamespaceDataModel && c.Tag == "person" && d.Person == nil:
			d.Person = parsePerson(c)
		}
	}
	return d, nil
}

func parseTuple(e *etree.Element, ns string) Tuple {
	t := Tuple{}
	t.ID = attr(e, "id")
	var seenStatus, seenContact, seenTime bool
	for _, c := range e.ChildElements() {
		if c.NamespaceURI() != ns {
			continue
		}
		switch c.Tag {
		case "status":
			if !seenStatus {
				seenStatus = true
				parseStatus(c, ns, &t)
			}
		case "contact":
			if !seenContact {
				seenContact = true
				t.Contact = strings.TrimSpace(text(c))
				if v, ok := lookupAttr(c, "priority"); ok {
					t.ContactPriority, t.HasContactPriority = parseQValue(v)
				}
			}
		case "note":
			t.Notes = appendNote(t.Notes, c)
		case "timestamp":
			if !seenTime {
				seenTime = true
				t.Timestamp = parseTimestamp(text(c))
			}
		}
	}
	return t
}

func parseStatus(e *etree.Element, ns string, t *Tuple) {
	var seenBasic, seenShow bool
	for _, c := range e.ChildElements() {
		switch cns := c.NamespaceURI(); {
		case cns == ns && c.Tag == "basic" && !seenBasic:
			seenBasic = true
			switch v := strings.TrimSpace(text(c)); v {
			case BasicOpen, BasicClosed:
				t.Basic = v
			}
		case cns == NamespaceJabberClient && c.Tag == "show" && !seenShow:
			seenShow = true
			if v := strings.TrimSpace(text(c)); validShow(v) {
				t.Show = v
			}
		}
	}
}

func parsePerson(e *etree.Element) *Person {
	p := &Person{}
	p.ID = attr(e, "id")
	for _, c := range e.ChildElements() {
		switch cns := c.NamespaceURI(); {
		case cns == NamespaceDataModel && c.Tag == "note":
			p.Notes = appendNote(p.Notes, c)
		case cns == NamespaceRPID && c.Tag == "activities":
			for _, a := range c.ChildElements() {
				if a.Tag == "note" && a.NamespaceURI() == NamespaceRPID {
					p.Notes = appendNote(p.Notes, a)
					continue
				}
				if isNCName(a.Tag) {
					p.Activities = append(p.Activities, a.Tag)
				}
			}
		}
	}
	return p
}

// appendNote appends the note in e unless it is empty after trimming.
func appendNote(notes []Note, e *etree.Element) []Note {
	s := strings.TrimSpace(text(e))
	if s == "" {
		return notes
	}
	n := Note{Text: s}
	for _, a := range e.Attr {
		if a.Space == "xml" && a.Key == "lang" {
			n.Lang = a.Value
		}
	}
	return append(notes, n)
}

// text concatenates the character data directly inside e (comments and
// child elements are skipped).
func text(e *etree.Element) string {
	var s string
	var sb *strings.Builder
	for _, t := range e.Child {
		cd, ok := t.(*etree.CharData)
		if !ok {
			continue
		}
		switch {
		case s == "":
			s = cd.Data
		case sb == nil:
			sb = &strings.Builder{}
			sb.WriteString(s)
			sb.WriteString(cd.Data)
		default:
			sb.WriteString(cd.Data)
		}
	}
	if sb != nil {
		return sb.String()
	}
	return s
}

// parseQValue reads a contact priority: decimal digits with at most one
// dot, in [0, 1]. The value is rounded to three decimals (the RFC 3863
// qvalue precision). ok is false for anything else.
func parseQValue(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "." {
		return 0, false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9':
		default:
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 1 {
		return 0, false
	}
	return roundQ(v), true
}

func roundQ(v float64) float64 { return math.Round(v*1000) / 1000 }

// parseTimestamp reads an RFC 3339 timestamp and returns it in UTC, or the
// zero Time when it is unparsable or its UTC year is outside 0..9999 (such a
// time could not be written back).
func parseTimestamp(s string) time.Time {
	ts, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	ts = ts.UTC()
	if y := ts.Year(); y < 0 || y > 9999 {
		return time.Time{}
	}
	return ts
}

// lookupAttr returns the value of the unprefixed attribute key of e. (etree's
// SelectAttr would also match a prefixed attribute of another namespace.)
func lookupAttr(e *etree.Element, key string) (string, bool) {
	for _, a := range e.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

func attr(e *etree.Element, key string) string {
	v, _ := lookupAttr(e, key)
	return v
}
