package sdp

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"

	pion "github.com/pion/sdp/v3"
)

// Errors. Every error Parse, XMPPSession and Answer return wraps one of
// them.
var (
	// ErrNotSDP: the body is not a session description at all (415).
	ErrNotSDP = errors.New("sdp: not a session description")
	// ErrMalformed: it is SDP, but broken (400 or 488).
	ErrMalformed = errors.New("sdp: malformed session description")
	// ErrNoXMPPMedia: there is no usable xmpp/tcp message stream (488).
	ErrNoXMPPMedia = errors.New("sdp: no xmpp/tcp message stream")
)

// Limits on what Parse reads: a UMPP offer is a few hundred bytes.
const (
	MaxBytes = 16 << 10
	MaxMedia = 32
	maxLines = 512
)

// Description is a parsed session description.
type Description struct {
	Origin      Origin
	SessionName string
	// Connection is the session-level c= line; nil when absent.
	Connection *Connection
	// Timing is the t= line ("0 0" when empty).
	Timing string
	// Attributes are the session-level a= lines, in order.
	Attributes []Attribute
	Media      []Media
}

// Origin is the o= line (RFC 8866 §5.2).
type Origin struct {
	Username       string
	SessionID      uint64
	SessionVersion uint64
	NetType        string // "IN"
	AddrType       string // "IP4" or "IP6"
	Address        string // a host name or an address literal
}

// Connection is a c= line (RFC 8866 §5.7).
type Connection struct {
	NetType  string // "IN"
	AddrType string // "IP4" or "IP6"
	Address  string // host, address, or multicast address with /ttl
}

// Media is one media section.
type Media struct {
	Type    string // "message", "audio", ...
	Port    int    // 0: rejected or disabled
	Proto   string // "xmpp/tcp", "RTP/AVP", "TCP/MSRP", ...
	Formats []string
	// Connection is the media-level c= line; nil means the session's.
	Connection *Connection
	Attributes []Attribute
}

// Attribute is an a= line: "a=Key" when Value is empty, else
// "a=Key:Value".
type Attribute struct {
	Key, Value string
}

// Attr returns the value of the first attribute named key.
func (m *Media) Attr(key string) (string, bool) {
	return attr(m.Attributes, key)
}

func attr(as []Attribute, key string) (string, bool) {
	for _, a := range as {
		if strings.EqualFold(a.Key, key) {
			return a.Value, true
		}
	}
	return "", false
}

// Conn returns the connection data that applies to media i: its own c=
// line, else the session's, else nil.
func (d *Description) Conn(i int) *Connection {
	if i >= 0 && i < len(d.Media) && d.Media[i].Connection != nil {
		return d.Media[i].Connection
	}
	return d.Connection
}

// Parse reads a session description. It accepts RFC 8866 SDP and the
// draft's examples as printed (see the package documentation), with LF
// or CRLF line ends.
func Parse(b []byte) (*Description, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrMalformed, len(b), MaxBytes)
	}
	text, protos, err := normalize(b)
	if err != nil {
		return nil, err
	}
	var sd pion.SessionDescription
	if err := sd.UnmarshalString(text); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(sd.MediaDescriptions) != len(protos) {
		return nil, fmt.Errorf("%w: %d media sections read, %d expected", ErrMalformed, len(sd.MediaDescriptions), len(protos))
	}
	d := &Description{
		Origin: Origin{
			Username:       sd.Origin.Username,
			SessionID:      sd.Origin.SessionID,
			SessionVersion: sd.Origin.SessionVersion,
			NetType:        sd.Origin.NetworkType,
			AddrType:       sd.Origin.AddressType,
			Address:        sd.Origin.UnicastAddress,
		},
		SessionName: cmp.Or(string(sd.SessionName), "-"), // "s= " (RFC 8866 §5.3) once trimmed
		Connection:  connFromPion(sd.ConnectionInformation),
		Timing:      "0 0",
	}
	if len(sd.TimeDescriptions) > 0 {
		t := sd.TimeDescriptions[0].Timing
		d.Timing = strconv.FormatUint(t.StartTime, 10) + " " + strconv.FormatUint(t.StopTime, 10)
	}
	for _, a := range sd.Attributes {
		d.Attributes = append(d.Attributes, Attribute{Key: a.Key, Value: strings.TrimLeft(a.Value, " \t")})
	}
	for i, md := range sd.MediaDescriptions {
		m := Media{
			Type:       protos[i].media,
			Port:       md.MediaName.Port.Value,
			Proto:      protos[i].proto,
			Formats:    append([]string(nil), md.MediaName.Formats...),
			Connection: connFromPion(md.ConnectionInformation),
		}
		for _, a := range md.Attributes {
			m.Attributes = append(m.Attributes, Attribute{Key: a.Key, Value: strings.TrimLeft(a.Value, " \t")})
		}
		d.Media = append(d.Media, m)
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}

func connFromPion(c *pion.ConnectionInformation) *Connection {
	if c == nil {
		return nil
	}
	out := &Connection{NetType: c.NetworkType, AddrType: c.AddressType}
	if c.Address != nil {
		out.Address = c.Address.String()
	}
	return out
}

func connToPion(c *Connection) *pion.ConnectionInformation {
	if c == nil {
		return nil
	}
	return &pion.ConnectionInformation{NetworkType: c.NetType, AddressType: c.AddrType, Address: &pion.Address{Address: c.Address}}
}

// validate checks what Marshal needs to write a description that parses
// back to itself: tokens without spaces or control characters, values
// without line breaks.
func (d *Description) validate() error {
	bad := func(what, v string) error { return fmt.Errorf("%w: %s %q", ErrMalformed, what, v) }
	o := d.Origin
	for _, f := range []struct{ what, v string }{
		{"origin username", o.Username}, {"origin network type", o.NetType},
		{"origin address type", o.AddrType}, {"origin address", o.Address},
	} {
		if !isToken(f.v) {
			return bad(f.what, f.v)
		}
	}
	if !isText(d.SessionName) || d.SessionName == "" {
		return bad("session name", d.SessionName)
	}
	if f := strings.Fields(d.Timing); len(f) != 2 || !isDigits(f[0]) || !isDigits(f[1]) || d.Timing != f[0]+" "+f[1] {
		return bad("timing", d.Timing)
	}
	if err := validConn(d.Connection); err != nil {
		return err
	}
	if err := validAttrs(d.Attributes); err != nil {
		return err
	}
	if len(d.Media) > MaxMedia {
		return fmt.Errorf("%w: %d media sections (limit %d)", ErrMalformed, len(d.Media), MaxMedia)
	}
	for _, m := range d.Media {
		if !isToken(m.Type) {
			return bad("media type", m.Type)
		}
		if m.Port < 0 || m.Port > 65535 {
			return bad("port", strconv.Itoa(m.Port))
		}
		if !isToken(m.Proto) {
			return bad("proto", m.Proto)
		}
		if len(m.Formats) == 0 {
			return bad("format list of", m.Type)
		}
		for _, f := range m.Formats {
			if !isToken(f) {
				return bad("format", f)
			}
		}
		if err := validConn(m.Connection); err != nil {
			return err
		}
		if err := validAttrs(m.Attributes); err != nil {
			return err
		}
	}
	return nil
}

func validConn(c *Connection) error {
	if c == nil {
		return nil
	}
	if !isToken(c.NetType) || !isToken(c.AddrType) || !isToken(c.Address) {
		return fmt.Errorf("%w: connection %q %q %q", ErrMalformed, c.NetType, c.AddrType, c.Address)
	}
	return nil
}

func validAttrs(as []Attribute) error {
	for _, a := range as {
		if !isToken(a.Key) || strings.ContainsRune(a.Key, ':') || !isText(a.Value) {
			return fmt.Errorf("%w: attribute %q", ErrMalformed, a.Key+":"+a.Value)
		}
	}
	return nil
}

// isToken: a non-empty run of visible ASCII characters (no space).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isText: no control characters (RFC 8866 byte-string without CR, LF,
// NUL), no leading or trailing white space.
func isText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' && s[i] != '\t' || s[i] == 0x7f {
			return false
		}
	}
	return s == strings.TrimSpace(s)
}

func isDigits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// Marshal writes the description as RFC 8866 SDP with CRLF line ends:
// v, o, s, c, t and the session attributes, then each media section (m,
// c when it has its own, a). It does not validate; a Description from
// Parse, NewOffer or Answer always marshals to SDP that Parse reads back
// to an equal Description.
func (d *Description) Marshal() []byte {
	sd := pion.SessionDescription{
		Origin: pion.Origin{
			Username: d.Origin.Username, SessionID: d.Origin.SessionID, SessionVersion: d.Origin.SessionVersion,
			NetworkType: d.Origin.NetType, AddressType: d.Origin.AddrType, UnicastAddress: d.Origin.Address,
		},
		SessionName:           pion.SessionName(d.SessionName),
		ConnectionInformation: connToPion(d.Connection),
	}
	if sd.SessionName == "" {
		sd.SessionName = "-"
	}
	start, stop := uint64(0), uint64(0)
	if f := strings.Fields(d.Timing); len(f) == 2 {
		start, _ = strconv.ParseUint(f[0], 10, 64)
		stop, _ = strconv.ParseUint(f[1], 10, 64)
	}
	sd.TimeDescriptions = []pion.TimeDescription{{Timing: pion.Timing{StartTime: start, StopTime: stop}}}
	for _, a := range d.Attributes {
		sd.Attributes = append(sd.Attributes, pion.Attribute{Key: a.Key, Value: a.Value})
	}
	for _, m := range d.Media {
		md := &pion.MediaDescription{
			MediaName: pion.MediaName{
				Media:   m.Type,
				Port:    pion.RangedPort{Value: m.Port},
				Protos:  []string{m.Proto}, // written as is: "xmpp/tcp" stays one token
				Formats: m.Formats,
			},
			ConnectionInformation: connToPion(m.Connection),
		}
		for _, a := range m.Attributes {
			md.Attributes = append(md.Attributes, pion.Attribute{Key: a.Key, Value: a.Value})
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions, md)
	}
	b, err := sd.Marshal()
	if err != nil {
		// pion's Marshal only fails for a nil receiver.
		return nil
	}
	return b
}
