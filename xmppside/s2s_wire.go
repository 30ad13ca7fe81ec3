package xmppside

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/umpp/umpp/xmppside/dialback"
)

// Namespaces of server-to-server streams.
const (
	nsServer         = "jabber:server"
	nsDialback       = dialback.NS
	nsDialbackFeat   = dialback.NSFeatures
	s2sStreamHeadFmt = "<?xml version='1.0'?><stream:stream xmlns='" + nsServer + "' xmlns:stream='" + nsStream + "' xmlns:db='" + nsDialback + "' version='1.0'"
)

// s2sWire is one s2s TCP connection (TLS once negotiated) read with the
// package's stream scanner. Writes are serialized by mu: the reader may
// answer dialback requests while a writer sends stanzas.
type s2sWire struct {
	raw      net.Conn // TCP
	nc       net.Conn // current transport
	sr       *streamReader
	max      int
	secure   bool
	tlsState tls.ConnectionState

	mu           sync.Mutex
	w            *bufio.Writer
	writeTimeout time.Duration

	// From the peer's current stream header.
	peerTo, peerFrom, peerID string
	prefixes                 map[string]string // prefix -> namespace
}

func newS2SWire(nc net.Conn, max int, writeTimeout time.Duration) *s2sWire {
	return &s2sWire{
		raw:          nc,
		nc:           nc,
		sr:           newStreamReader(nc, max),
		max:          max,
		w:            bufio.NewWriterSize(nc, 4096),
		writeTimeout: writeTimeout,
	}
}

// useTLS switches to tc after a handshake.
func (w *s2sWire) useTLS(tc *tls.Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nc = tc
	w.secure = true
	w.tlsState = tc.ConnectionState()
	w.w = bufio.NewWriterSize(tc, 4096)
	w.sr = newStreamReader(tc, w.max)
}

// write sends s and flushes.
func (w *s2sWire) write(parts ...[]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.nc.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	for _, p := range parts {
		if _, err := w.w.Write(p); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (w *s2sWire) writeString(s string) error { return w.write([]byte(s)) }

// readHeader reads the peer's stream header and checks the namespaces
// (RFC 6120 §4.8 and §4.9.3.10).
func (w *s2sWire) readHeader() error {
	hdr, err := w.sr.readHeader()
	if err != nil {
		return err
	}
	w.peerTo, w.peerFrom, w.peerID = "", "", ""
	w.prefixes = map[string]string{}
	var defNS, version string
	for _, a := range hdr.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "to":
			w.peerTo = a.Value
		case a.Name.Space == "" && a.Name.Local == "from":
			w.peerFrom = a.Value
		case a.Name.Space == "" && a.Name.Local == "id":
			w.peerID = a.Value
		case a.Name.Space == "" && a.Name.Local == "version":
			version = a.Value
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			defNS = a.Value
		case a.Name.Space == "xmlns":
			w.prefixes[a.Name.Local] = a.Value
		}
	}
	if hdr.Name.Local != "stream" || hdr.Name.Space == "" || w.prefixes[hdr.Name.Space] != nsStream {
		return streamErr("invalid-namespace", fmt.Errorf("stream element %s:%s", hdr.Name.Space, hdr.Name.Local))
	}
	if defNS != nsServer {
		return streamErr("invalid-namespace", fmt.Errorf("default namespace %q", defNS))
	}
	if !strings.HasPrefix(version, "1.") {
		return streamErr("unsupported-version", fmt.Errorf("version %q", version))
	}
	return nil
}

// ns returns the namespace of a top-level element: its own declaration,
// or the header's for its prefix, or jabber:server.
func (w *s2sWire) ns(el *element) string {
	if ns := el.ns(); ns != "" {
		return ns
	}
	if el.name.Space != "" {
		return w.prefixes[el.name.Space]
	}
	return nsServer
}

// isStream reports whether el is stream:<local>.
func (w *s2sWire) isStream(el *element, local string) bool {
	return el.name.Local == local && w.ns(el) == nsStream
}

// close ends the stream with cond (empty: a plain close) and closes the
// connection after a short linger.
func (w *s2sWire) close(cond string) {
	_ = w.write([]byte(streamErrorXML(cond)))
	if tc, ok := w.nc.(*tls.Conn); ok {
		_ = tc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = tc.CloseWrite()
	}
	_ = w.raw.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var buf [512]byte
	for {
		if _, err := w.nc.Read(buf[:]); err != nil {
			break
		}
	}
	_ = w.nc.Close()
	_ = w.raw.Close()
}

// s2sHeader is a stream header from one domain to another.
func s2sHeader(from, to, id string) string {
	h := s2sStreamHeadFmt
	if from != "" {
		h += " from='" + string(appendAttrValue(nil, from)) + "'"
	}
	if to != "" {
		h += " to='" + string(appendAttrValue(nil, to)) + "'"
	}
	if id != "" {
		h += " id='" + id + "'"
	}
	return h + ">"
}

func newStreamID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// s2sFeatures is what an s2s stream:features element offers.
type s2sFeatures struct {
	StartTLS *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
	Mechs    *struct {
		Mechanism []string `xml:"mechanism"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms"`
	Dialback *struct{} `xml:"urn:xmpp:features:dialback dialback"`
}

func (f s2sFeatures) external() bool {
	if f.Mechs == nil {
		return false
	}
	for _, m := range f.Mechs.Mechanism {
		if strings.TrimSpace(m) == "EXTERNAL" {
			return true
		}
	}
	return false
}

// saslPayload is <auth/>, <response/>, <success/>, <failure/>, <challenge/>.
type saslPayload struct {
	XMLName   xml.Name
	Mechanism string `xml:"mechanism,attr"`
	Payload   string `xml:",chardata"`
	Failure   []struct {
		XMLName xml.Name
	} `xml:",any"`
}

// firstStartTag returns the start tag of raw (up to the first '>').
func firstStartTag(raw []byte) int {
	if i := bytes.IndexByte(raw, '>'); i >= 0 {
		return i + 1
	}
	return len(raw)
}

// toServerNS rewrites a jabber:client default namespace declared on a
// stanza's start tag into jabber:server for an s2s stream.
func toServerNS(raw []byte) []byte {
	n := firstStartTag(raw)
	start := raw[:n]
	for _, q := range []string{`xmlns='jabber:client'`, `xmlns="jabber:client"`} {
		if i := bytes.Index(start, []byte(q)); i >= 0 {
			out := make([]byte, 0, len(raw)+1)
			out = append(out, raw[:i]...)
			out = append(out, "xmlns='jabber:server'"...)
			return append(out, raw[i+len(q):]...)
		}
	}
	return raw
}
