package xmppside

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// XML namespaces used on client streams.
const (
	nsClient  = "jabber:client"
	nsStream  = "http://etherx.jabber.org/streams"
	nsStreams = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession = "urn:ietf:params:xml:ns:xmpp-session"
)

// maxDepth bounds element nesting inside one stanza.
const maxDepth = 64

// maxHeaderBytes bounds a stream header (with its XML declaration).
const maxHeaderBytes = 8 << 10

// streamError is a stream-level error condition (RFC 6120 §4.9.3). Returned
// by the reader, it tells the connection which error to send before closing.
type streamError struct {
	cond string
	err  error
}

func (e *streamError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("stream error %s: %v", e.cond, e.err)
	}
	return "stream error " + e.cond
}

func (e *streamError) Unwrap() error { return e.err }

func streamErr(cond string, err error) error { return &streamError{cond: cond, err: err} }

func notWellFormed(format string, args ...any) error {
	return streamErr("not-well-formed", fmt.Errorf(format, args...))
}

var errTooBig = errors.New("stanza exceeds the size limit")

// errStreamEnd is returned by next when the peer closed its stream.
var errStreamEnd = errors.New("stream closed by peer")

// byteReader hands out input one byte at a time, recording the bytes so
// that a whole top-level element can be taken as raw bytes, and refusing
// to go beyond a limit so no single element can exhaust memory.
type byteReader struct {
	r       *bufio.Reader
	off     int64 // bytes handed out so far
	limit   int64 // absolute offset that may not be reached; <0: none
	rec     []byte
	recBase int64 // offset of rec[0]
}

func (b *byteReader) ReadByte() (byte, error) {
	if b.limit >= 0 && b.off >= b.limit {
		return 0, errTooBig
	}
	c, err := b.r.ReadByte()
	if err != nil {
		return 0, err
	}
	b.off++
	b.rec = append(b.rec, c)
	return c, nil
}

// drop forgets recorded bytes before absolute offset off.
func (b *byteReader) drop(off int64) {
	n := int(off - b.recBase)
	if n <= 0 {
		return
	}
	if n > len(b.rec) {
		n = len(b.rec)
	}
	k := copy(b.rec, b.rec[n:])
	b.rec = b.rec[:k]
	b.recBase += int64(n)
	// Do not keep a huge buffer around after one large stanza.
	if cap(b.rec) > 64<<10 && len(b.rec) < 4<<10 {
		b.rec = append(make([]byte, 0, 4<<10), b.rec...)
	}
}

// rawAttr is an attribute as it appears in the input: name parts and the
// value still escaped, without its quotes.
type rawAttr struct {
	prefix, local, value []byte
	quote                byte
}

// element is one top-level element read from a stream: a stanza or a
// stream-level element such as <starttls/> or <auth/>. Its slices are
// valid until the reader's next call to next or release.
type element struct {
	name        xml.Name // Space is the prefix, not a namespace
	attrs       []rawAttr
	raw         []byte // the element exactly as received
	startLen    int    // length of the start tag within raw
	selfClosing bool
}

// attr returns the unescaped value of an unprefixed attribute.
func (e *element) attr(local string) string {
	if v, ok := e.attrRaw(local); ok {
		return internValue(v)
	}
	return ""
}

// attrRaw returns the raw value of an unprefixed attribute.
func (e *element) attrRaw(local string) ([]byte, bool) {
	for i := range e.attrs {
		a := &e.attrs[i]
		if len(a.prefix) == 0 && string(a.local) == local {
			return a.value, true
		}
	}
	return nil, false
}

// internValue unescapes an attribute value without allocating for the
// common stanza types.
func internValue(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "chat":
		return "chat"
	case "normal":
		return "normal"
	case "headline":
		return "headline"
	case "groupchat":
		return "groupchat"
	case "error":
		return "error"
	case "get":
		return "get"
	case "set":
		return "set"
	case "result":
		return "result"
	case "unavailable":
		return "unavailable"
	}
	return unescape(b)
}

// lang returns xml:lang of the element.
func (e *element) lang() string {
	for i := range e.attrs {
		a := &e.attrs[i]
		if string(a.prefix) == "xml" && string(a.local) == "lang" {
			return unescape(a.value)
		}
	}
	return ""
}

// ns returns the namespace the element declares for its own prefix (""
// when it declares none).
func (e *element) ns() string {
	for i := range e.attrs {
		a := &e.attrs[i]
		if e.name.Space == "" && len(a.prefix) == 0 && string(a.local) == "xmlns" {
			return unescape(a.value)
		}
		if e.name.Space != "" && string(a.prefix) == "xmlns" && string(a.local) == e.name.Space {
			return unescape(a.value)
		}
	}
	return ""
}

// attrSpan is an attribute while its element is being read: offsets
// relative to the element's first byte.
type attrSpan struct {
	name0, colon, name1, val0, val1 int
	quote                           byte
}

// streamReader reads an XML stream: the stream header, then whole
// top-level elements as raw bytes. It is a small XML scanner of its own:
// it checks well-formedness (names, attribute syntax, matching end tags,
// character and entity references, UTF-8), enforces RFC 6120 §11 (no
// DTDs, comments or processing instructions) and a size limit per
// top-level element, and allocates nothing per stanza once warm. It does
// not resolve namespaces. It is not safe for concurrent use.
type streamReader struct {
	br     *byteReader
	max    int64
	header bool // stream header read
	// streamPrefix is the prefix of the stream element ("stream").
	streamPrefix string
	start        int64      // offset of the element being read
	stack        [][2]int64 // open elements: name offsets
	attrNames    [][2]int64 // names of the attributes of the tag being read
	spans        []attrSpan
}

func newStreamReader(r io.Reader, max int) *streamReader {
	br := &byteReader{r: bufio.NewReaderSize(r, 4096), limit: -1}
	sr := &streamReader{br: br, max: int64(max)}
	sr.restart()
	return sr
}

// restart begins a new stream on the same byte source (RFC 6120 §4.3.3).
func (sr *streamReader) restart() {
	sr.br.drop(sr.br.off)
	sr.header = false
	sr.stack = sr.stack[:0]
	sr.br.limit = sr.br.off + maxHeaderBytes
}

// arm sets the size limit for the next top-level element.
func (sr *streamReader) arm() {
	if sr.max > 0 {
		sr.br.limit = sr.br.off + sr.max
	}
}

// release forgets the bytes of the element last returned by next and arms
// the size limit for the following one.
func (sr *streamReader) release() {
	sr.br.drop(sr.br.off)
	sr.arm()
}

// rb reads one byte; inside an element, EOF is unexpected.
func (sr *streamReader) rb() (byte, error) {
	c, err := sr.br.ReadByte()
	if err != nil {
		switch {
		case errors.Is(err, errTooBig):
			return 0, streamErr("policy-violation", err)
		case err == io.EOF:
			return 0, io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return c, nil
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= 0x80
}

func isNameByte(c byte) bool {
	return isNameStart(c) || c >= '0' && c <= '9' || c == '-' || c == '.'
}

// name reads a name whose first byte c was just read. It returns the
// offsets of the name, of its first colon (-1: none), and the byte after.
func (sr *streamReader) name(c byte) (n0, colon, n1 int64, next byte, err error) {
	if !isNameStart(c) {
		return 0, 0, 0, 0, notWellFormed("invalid name start %q", c)
	}
	n0, colon = sr.br.off-1, -1
	for {
		if c == ':' && colon < 0 {
			colon = sr.br.off - 1
		}
		if c, err = sr.rb(); err != nil {
			return 0, 0, 0, 0, err
		}
		if !isNameByte(c) {
			n1 = sr.br.off - 1
			if colon == n0 || colon == n1-1 {
				return 0, 0, 0, 0, notWellFormed("invalid qualified name")
			}
			return n0, colon, n1, c, nil
		}
	}
}

// skipSpace returns the first non-space byte from c on.
func (sr *streamReader) skipSpace(c byte) (byte, bool, error) {
	skipped := false
	for isSpaceByte(c) {
		skipped = true
		var err error
		if c, err = sr.rb(); err != nil {
			return 0, skipped, err
		}
	}
	return c, skipped, nil
}

// ref reads a reference after '&' (entity or character reference).
// Only the five predefined entities exist: there are no DTDs.
func (sr *streamReader) ref() error {
	var buf [12]byte
	n := 0
	for {
		c, err := sr.rb()
		if err != nil {
			return err
		}
		if c == ';' {
			break
		}
		if n == len(buf) {
			return notWellFormed("reference too long")
		}
		buf[n] = c
		n++
	}
	s := buf[:n]
	switch string(s) {
	case "amp", "lt", "gt", "apos", "quot":
		return nil
	}
	if len(s) < 2 || s[0] != '#' {
		return notWellFormed("undefined entity &%s;", s)
	}
	var v uint64
	var err error
	if s[1] == 'x' {
		v, err = strconv.ParseUint(string(s[2:]), 16, 32)
	} else {
		v, err = strconv.ParseUint(string(s[1:]), 10, 32)
	}
	if err != nil || !isXMLChar(rune(v)) {
		return notWellFormed("invalid character reference &%s;", s)
	}
	return nil
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// maxAttrs bounds the attributes of one element; real stanzas carry a
// handful.
const maxAttrs = 64

// attrs reads attributes up to the end of a start tag; c is the byte
// after the element name. It reports whether the tag was self-closing.
// Spans are recorded when record is set.
func (sr *streamReader) attrs(c byte, record bool) (bool, error) {
	if record {
		sr.spans = sr.spans[:0]
	}
	sr.attrNames = sr.attrNames[:0]
	for {
		var space bool
		var err error
		if c, space, err = sr.skipSpace(c); err != nil {
			return false, err
		}
		switch c {
		case '>':
			return false, nil
		case '/':
			if c, err = sr.rb(); err != nil {
				return false, err
			}
			if c != '>' {
				return false, notWellFormed("expected > after /")
			}
			return true, nil
		}
		if !space {
			return false, notWellFormed("attributes must be separated by space")
		}
		n0, colon, n1, next, err := sr.name(c)
		if err != nil {
			return false, err
		}
		// XML 1.0 §3.1 (Unique Att Spec). The cap keeps the check linear
		// enough that a hostile tag cannot make it expensive.
		if len(sr.attrNames) >= maxAttrs {
			return false, streamErr("policy-violation", fmt.Errorf("more than %d attributes in one element", maxAttrs))
		}
		for _, prev := range sr.attrNames {
			if sr.sameName(prev, [2]int64{n0, n1}) {
				return false, notWellFormed("duplicate attribute")
			}
		}
		sr.attrNames = append(sr.attrNames, [2]int64{n0, n1})
		if c, _, err = sr.skipSpace(next); err != nil {
			return false, err
		}
		if c != '=' {
			return false, notWellFormed("expected = in attribute")
		}
		if c, err = sr.rb(); err != nil {
			return false, err
		}
		if c, _, err = sr.skipSpace(c); err != nil {
			return false, err
		}
		if c != '\'' && c != '"' {
			return false, notWellFormed("unquoted attribute value")
		}
		quote := c
		v0 := sr.br.off
		for {
			if c, err = sr.rb(); err != nil {
				return false, err
			}
			if c == quote {
				break
			}
			switch {
			case c == '<':
				return false, notWellFormed("< in attribute value")
			case c == '&':
				if err := sr.ref(); err != nil {
					return false, err
				}
			case c < 0x20 && !isSpaceByte(c):
				return false, notWellFormed("control character %#x", c)
			}
		}
		if record {
			base := sr.start
			cl := -1
			if colon >= 0 {
				cl = int(colon - base)
			}
			sr.spans = append(sr.spans, attrSpan{name0: int(n0 - base), colon: cl, name1: int(n1 - base), val0: int(v0 - base), val1: int(sr.br.off - 1 - base), quote: quote})
		}
		if c, err = sr.rb(); err != nil {
			return false, err
		}
	}
}

// markup handles "<!" and "<?" constructs inside content: CDATA sections
// are allowed, the rest is restricted XML (RFC 6120 §11.1).
func (sr *streamReader) markup(c byte, inContent bool) error {
	if c == '?' {
		return streamErr("restricted-xml", errors.New("processing instruction"))
	}
	c, err := sr.rb()
	if err != nil {
		return err
	}
	switch c {
	case '-':
		return streamErr("restricted-xml", errors.New("comment"))
	case 'D':
		return streamErr("restricted-xml", errors.New("DTD"))
	case '[':
		if !inContent {
			return notWellFormed("CDATA outside an element")
		}
		for _, want := range []byte("CDATA[") {
			if c, err = sr.rb(); err != nil {
				return err
			}
			if c != want {
				return notWellFormed("bad CDATA section")
			}
		}
		// Scan to "]]>".
		brackets := 0
		for {
			if c, err = sr.rb(); err != nil {
				return err
			}
			switch {
			case c == ']':
				brackets++
				continue
			case c == '>' && brackets >= 2:
				return nil
			case c < 0x20 && !isSpaceByte(c):
				return notWellFormed("control character %#x", c)
			}
			brackets = 0
		}
	}
	return streamErr("restricted-xml", fmt.Errorf("markup <!%c", c))
}

// sameName compares two names recorded in the input.
func (sr *streamReader) sameName(a, b [2]int64) bool {
	rec, base := sr.br.rec, sr.br.recBase
	return bytes.Equal(rec[a[0]-base:a[1]-base], rec[b[0]-base:b[1]-base])
}

// content reads the inside of an element up to its matching end tag.
func (sr *streamReader) content(top [2]int64) error {
	sr.stack = append(sr.stack[:0], top)
	brackets := 0 // "]]>" may not appear in character data
	for len(sr.stack) > 0 {
		c, err := sr.rb()
		if err != nil {
			return err
		}
		if c == ']' {
			brackets++
			continue
		}
		if c == '>' && brackets >= 2 {
			return notWellFormed("]]> in character data")
		}
		brackets = 0
		switch {
		case c == '<':
			if c, err = sr.rb(); err != nil {
				return err
			}
			switch c {
			case '/':
				if c, err = sr.rb(); err != nil {
					return err
				}
				n0, _, n1, next, err := sr.name(c)
				if err != nil {
					return err
				}
				if c, _, err = sr.skipSpace(next); err != nil {
					return err
				}
				if c != '>' {
					return notWellFormed("expected > in end tag")
				}
				open := sr.stack[len(sr.stack)-1]
				if !sr.sameName(open, [2]int64{n0, n1}) {
					return notWellFormed("end tag does not match start tag")
				}
				sr.stack = sr.stack[:len(sr.stack)-1]
			case '!', '?':
				if err := sr.markup(c, true); err != nil {
					return err
				}
			default:
				n0, _, n1, next, err := sr.name(c)
				if err != nil {
					return err
				}
				self, err := sr.attrs(next, false)
				if err != nil {
					return err
				}
				if !self {
					if len(sr.stack) >= maxDepth {
						return streamErr("policy-violation", errors.New("elements nested too deep"))
					}
					sr.stack = append(sr.stack, [2]int64{n0, n1})
				}
			}
		case c == '&':
			if err := sr.ref(); err != nil {
				return err
			}
		case c < 0x20 && !isSpaceByte(c):
			return notWellFormed("control character %#x", c)
		}
	}
	return nil
}

// internName avoids allocating for the common element names.
func internName(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "message":
		return "message"
	case "presence":
		return "presence"
	case "iq":
		return "iq"
	case "stream":
		return "stream"
	}
	return string(b)
}

// startTag reads a start tag whose '<' is at sr.start and whose first
// name byte is c, filling el's name, attributes and startLen.
func (sr *streamReader) startTag(c byte, el *element) (nameSpan [2]int64, self bool, err error) {
	n0, colon, n1, next, err := sr.name(c)
	if err != nil {
		return nameSpan, false, err
	}
	if self, err = sr.attrs(next, true); err != nil {
		return nameSpan, false, err
	}
	rec := sr.br.rec[sr.start-sr.br.recBase:]
	if colon >= 0 {
		el.name = xml.Name{Space: internName(rec[n0-sr.start : colon-sr.start]), Local: internName(rec[colon+1-sr.start : n1-sr.start])}
	} else {
		el.name = xml.Name{Local: internName(rec[n0-sr.start : n1-sr.start])}
	}
	el.startLen = int(sr.br.off - sr.start)
	return [2]int64{n0, n1}, self, nil
}

// finish fills el's raw bytes and attribute slices after the element
// ended, and checks its encoding.
func (sr *streamReader) finish(el *element) error {
	el.raw = sr.br.rec[sr.start-sr.br.recBase : sr.br.off-sr.br.recBase]
	if !isASCII(el.raw) {
		// Rare enough to take the standard library's slower, Unicode-aware
		// checks of names and characters as a second opinion.
		if !validUTF8Chars(el.raw) {
			return notWellFormed("invalid UTF-8 or character")
		}
		if err := checkWithStdlib(el.raw); err != nil {
			return notWellFormed("%v", err)
		}
	}
	el.attrs = el.attrs[:0]
	for _, s := range sr.spans {
		a := rawAttr{value: el.raw[s.val0:s.val1], quote: s.quote}
		if s.colon >= 0 {
			a.prefix, a.local = el.raw[s.name0:s.colon], el.raw[s.colon+1:s.name1]
		} else {
			a.local = el.raw[s.name0:s.name1]
		}
		el.attrs = append(el.attrs, a)
	}
	return nil
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func validUTF8Chars(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if r >= 0x80 && !isXMLChar(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

// readHeader reads up to and including the stream's opening tag: an
// optional XML declaration, then the stream element's start tag.
func (sr *streamReader) readHeader() (xml.StartElement, error) {
	var el element
	decl := false
	for {
		c, err := sr.br.ReadByte()
		if err != nil {
			if errors.Is(err, errTooBig) {
				return xml.StartElement{}, streamErr("policy-violation", err)
			}
			return xml.StartElement{}, err
		}
		if isSpaceByte(c) {
			continue
		}
		if c != '<' {
			return xml.StartElement{}, notWellFormed("text before stream header")
		}
		sr.start = sr.br.off - 1
		if c, err = sr.rb(); err != nil {
			return xml.StartElement{}, err
		}
		switch c {
		case '?':
			if decl {
				return xml.StartElement{}, streamErr("restricted-xml", errors.New("processing instruction"))
			}
			if err := sr.xmlDecl(); err != nil {
				return xml.StartElement{}, err
			}
			decl = true
			continue
		case '!':
			return xml.StartElement{}, sr.markup(c, false)
		}
		_, self, err := sr.startTag(c, &el)
		if err != nil {
			return xml.StartElement{}, err
		}
		if self {
			return xml.StartElement{}, notWellFormed("empty stream element")
		}
		if err := sr.finish(&el); err != nil {
			return xml.StartElement{}, err
		}
		start := xml.StartElement{Name: el.name}
		for _, a := range el.attrs {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Space: string(a.prefix), Local: string(a.local)}, Value: unescape(a.value)})
		}
		sr.header = true
		sr.streamPrefix = el.name.Space
		sr.release()
		return start, nil
	}
}

// xmlDecl reads an XML declaration after "<?"; only "xml" with UTF-8 is
// accepted (RFC 6120 §11.6).
func (sr *streamReader) xmlDecl() error {
	c, err := sr.rb()
	if err != nil {
		return err
	}
	n0, _, n1, next, err := sr.name(c)
	if err != nil {
		return err
	}
	rec := sr.br.rec
	if string(rec[n0-sr.br.recBase:n1-sr.br.recBase]) != "xml" || !isSpaceByte(next) {
		return streamErr("restricted-xml", errors.New("processing instruction"))
	}
	v0 := sr.br.off
	prev := byte(0)
	for {
		if c, err = sr.rb(); err != nil {
			return err
		}
		if prev == '?' && c == '>' {
			break
		}
		prev = c
	}
	inst := string(sr.br.rec[v0-sr.br.recBase : sr.br.off-2-sr.br.recBase])
	if enc := procInstParam("encoding", inst); enc != "" && enc != "UTF-8" && enc != "utf-8" {
		return streamErr("unsupported-encoding", fmt.Errorf("encoding %q", enc))
	}
	return nil
}

// next reads the next top-level element of the stream.
func (sr *streamReader) next(el *element) error {
	for {
		c, err := sr.br.ReadByte()
		if err != nil {
			if errors.Is(err, errTooBig) {
				return streamErr("policy-violation", err)
			}
			return err
		}
		if isSpaceByte(c) {
			// Whitespace keepalive between stanzas.
			sr.release()
			continue
		}
		if c != '<' {
			return notWellFormed("text at stream level")
		}
		break
	}
	sr.start = sr.br.off - 1
	c, err := sr.rb()
	if err != nil {
		return err
	}
	switch c {
	case '/':
		if c, err = sr.rb(); err != nil {
			return err
		}
		n0, _, n1, next, err := sr.name(c)
		if err != nil {
			return err
		}
		if c, _, err = sr.skipSpace(next); err != nil {
			return err
		}
		want := sr.streamPrefix + ":stream"
		if sr.streamPrefix == "" {
			want = "stream"
		}
		if c != '>' || string(sr.br.rec[n0-sr.br.recBase:n1-sr.br.recBase]) != want {
			return notWellFormed("unexpected end tag")
		}
		return errStreamEnd
	case '!', '?':
		return sr.markup(c, false)
	}
	nameSpan, self, err := sr.startTag(c, el)
	if err != nil {
		return err
	}
	el.selfClosing = self
	if !self {
		if err := sr.content(nameSpan); err != nil {
			return err
		}
	}
	return sr.finish(el)
}

// unescape resolves the predefined entities and character references of
// an attribute value checked by the scanner.
func unescape(b []byte) string {
	i := bytes.IndexByte(b, '&')
	if i < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i >= 0 {
		out = append(out, b[:i]...)
		b = b[i+1:]
		j := bytes.IndexByte(b, ';')
		if j < 0 {
			break
		}
		ref := string(b[:j])
		b = b[j+1:]
		switch ref {
		case "amp":
			out = append(out, '&')
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "apos":
			out = append(out, '\'')
		case "quot":
			out = append(out, '"')
		default:
			var v uint64
			var err error
			if len(ref) > 1 && ref[1] == 'x' {
				v, err = strconv.ParseUint(ref[2:], 16, 32)
			} else if len(ref) > 0 {
				v, err = strconv.ParseUint(ref[1:], 10, 32)
			}
			if err == nil {
				out = utf8.AppendRune(out, rune(v))
			}
		}
		i = bytes.IndexByte(b, '&')
	}
	return string(append(out, b...))
}

// procInstParam returns a pseudo-attribute of an XML declaration.
func procInstParam(param, s string) string {
	for i := 0; i+len(param) < len(s); i++ {
		if s[i:i+len(param)] != param {
			continue
		}
		rest := s[i+len(param):]
		j := 0
		for j < len(rest) && (rest[j] == ' ' || rest[j] == '=') {
			j++
		}
		if j >= len(rest) || (rest[j] != '\'' && rest[j] != '"') {
			return ""
		}
		q := rest[j]
		rest = rest[j+1:]
		for k := 0; k < len(rest); k++ {
			if rest[k] == q {
				return rest[:k]
			}
		}
		return ""
	}
	return ""
}

// checkWithStdlib runs encoding/xml over one element.
func checkWithStdlib(raw []byte) error {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	for {
		_, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
