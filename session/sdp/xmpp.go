package sdp

import (
	"fmt"
	"net/netip"
	"strings"
)

// Values of the draft's message stream.
const (
	MediaMessage = "message"
	ProtoXMPP    = "xmpp/tcp"

	KindChat      = "chat"
	KindGroupchat = "groupchat"

	DirectionBoth    = "both"
	DirectionActive  = "active"
	DirectionPassive = "passive"
)

// XMPPSession is the draft's XMPP message stream, as read from an offer or
// answer, or as given to NewOffer and Answer.
type XMPPSession struct {
	// Origin is the o= line of the description.
	Origin Origin
	// Index is the stream's position among the media lines.
	Index int
	// ConnAddr is the host of the XMPP server that carries the messages:
	// the stream's c= line, or the session's.
	ConnAddr string
	// Port is the XMPP port on ConnAddr.
	Port int
	// Kind is "chat" or "groupchat" (the m= line's format).
	Kind string
	// JID is the full JID of the stream's end (a=jid).
	JID string
	// Thread is the XMPP thread of the session (a=thread); may be empty.
	Thread string
	// Direction is "both", "active" or "passive" (a=direction; "both"
	// when absent).
	Direction string
	// OtherMedia are the other media lines of the description, which an
	// answer rejects.
	OtherMedia []Media
}

// isXMPP reports whether m is an offered (port > 0) draft message stream.
func isXMPP(m *Media) bool {
	return strings.EqualFold(m.Type, MediaMessage) && strings.EqualFold(m.Proto, ProtoXMPP) && m.Port > 0
}

// XMPPSession returns the first xmpp/tcp message stream with a non-zero
// port. It fails with ErrNoXMPPMedia when there is none, and with
// ErrMalformed when that stream lacks an a=jid, has an unknown kind or
// direction, or names no host.
func (d *Description) XMPPSession() (XMPPSession, error) {
	idx := -1
	for i := range d.Media {
		if isXMPP(&d.Media[i]) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return XMPPSession{}, ErrNoXMPPMedia
	}
	m := &d.Media[idx]
	s := XMPPSession{Origin: d.Origin, Index: idx, Port: m.Port, Direction: DirectionBoth}
	if c := d.Conn(idx); c != nil {
		s.ConnAddr = c.Address
	}
	if s.ConnAddr == "" {
		return XMPPSession{}, fmt.Errorf("%w: message stream without connection data", ErrMalformed)
	}
	s.Kind = strings.ToLower(m.Formats[0])
	if s.Kind != KindChat && s.Kind != KindGroupchat {
		return XMPPSession{}, fmt.Errorf("%w: message stream format %q (want chat or groupchat)", ErrNoXMPPMedia, m.Formats[0])
	}
	jid, ok := m.Attr("jid")
	if !ok || jid == "" {
		return XMPPSession{}, fmt.Errorf("%w: message stream without a=jid", ErrMalformed)
	}
	s.JID = jid
	s.Thread, _ = m.Attr("thread")
	if v, ok := m.Attr("direction"); ok {
		s.Direction = strings.ToLower(v)
		switch s.Direction {
		case DirectionBoth, DirectionActive, DirectionPassive:
		default:
			return XMPPSession{}, fmt.Errorf("%w: a=direction:%s", ErrMalformed, v)
		}
	}
	for i, o := range d.Media {
		if i != idx {
			s.OtherMedia = append(s.OtherMedia, o)
		}
	}
	return s, nil
}

// addrType returns "IP6" for an IPv6 literal and "IP4" otherwise (the
// draft writes host names with IP4).
func addrType(host string) string {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && a.Is6() && !a.Is4In6() {
		return "IP6"
	}
	return "IP4"
}

func connFor(host string) *Connection {
	h := strings.Trim(host, "[]")
	return &Connection{NetType: "IN", AddrType: addrType(h), Address: h}
}

// checkLocal validates the fields of s a new offer or answer writes.
func checkLocal(s XMPPSession, what string) error {
	switch {
	case !isToken(s.Origin.Address):
		return fmt.Errorf("sdp: %s: origin address %q", what, s.Origin.Address)
	case !isToken(strings.Trim(s.ConnAddr, "[]")):
		return fmt.Errorf("sdp: %s: connection address %q", what, s.ConnAddr)
	case s.Port <= 0 || s.Port > 65535:
		return fmt.Errorf("sdp: %s: port %d", what, s.Port)
	case !isToken(s.JID):
		return fmt.Errorf("sdp: %s: jid %q", what, s.JID)
	case s.Thread != "" && !isToken(s.Thread):
		return fmt.Errorf("sdp: %s: thread %q", what, s.Thread)
	}
	return nil
}

func origin(o Origin) Origin {
	if o.Username == "" {
		o.Username = "-"
	}
	if o.NetType == "" {
		o.NetType = "IN"
	}
	if o.AddrType == "" {
		o.AddrType = addrType(o.Address)
	}
	o.Address = strings.Trim(o.Address, "[]")
	return o
}

// messageMedia builds the draft's message stream for s: a c= line when
// the XMPP host is not the session's, then a=direction, a=jid, a=thread
// in the draft's order.
func messageMedia(s XMPPSession, sessionHost string) Media {
	m := Media{Type: MediaMessage, Port: s.Port, Proto: ProtoXMPP, Formats: []string{s.Kind}}
	if h := strings.Trim(s.ConnAddr, "[]"); h != sessionHost {
		m.Connection = connFor(h)
	}
	m.Attributes = append(m.Attributes, Attribute{Key: "direction", Value: s.Direction}, Attribute{Key: "jid", Value: s.JID})
	if s.Thread != "" {
		m.Attributes = append(m.Attributes, Attribute{Key: "thread", Value: s.Thread})
	}
	return m
}

// NewOffer builds an offer with one message stream: o= from s.Origin (its
// Address is also the session's c=), the stream's c= when s.ConnAddr
// differs, kind "chat" and direction "both" unless given. s.OtherMedia
// and s.Index are ignored.
func NewOffer(s XMPPSession) (*Description, error) {
	if s.Kind == "" {
		s.Kind = KindChat
	}
	if s.Direction == "" {
		s.Direction = DirectionBoth
	}
	if s.Kind != KindChat && s.Kind != KindGroupchat {
		return nil, fmt.Errorf("sdp: offer: kind %q", s.Kind)
	}
	if err := checkLocal(s, "offer"); err != nil {
		return nil, err
	}
	o := origin(s.Origin)
	d := &Description{Origin: o, SessionName: "-", Connection: connFor(o.Address), Timing: "0 0"}
	d.Media = []Media{messageMedia(s, o.Address)}
	return d, nil
}

// Answer builds the RFC 3264 answer to offer. local gives our side:
// Origin, ConnAddr and Port of our XMPP server, JID, and optionally
// Direction (default: passive when the offer says both or active, active
// when it says passive) and Thread (default: none, as in the draft's
// answer). The kind is the offer's. Every other media line is rejected
// with port 0, keeping its format list and rtpmap/fmtp lines.
//
// It fails with ErrNoXMPPMedia when the offer has no xmpp/tcp message
// stream.
func Answer(offer *Description, local XMPPSession) (*Description, error) {
	theirs, err := offer.XMPPSession()
	if err != nil {
		return nil, err
	}
	local.Kind = theirs.Kind
	if local.Direction == "" {
		local.Direction = DirectionPassive
		if theirs.Direction == DirectionPassive {
			local.Direction = DirectionActive
		}
	}
	if err := checkLocal(local, "answer"); err != nil {
		return nil, err
	}
	o := origin(local.Origin)
	d := &Description{Origin: o, SessionName: "-", Connection: connFor(o.Address), Timing: "0 0"}
	for i, m := range offer.Media {
		if i == theirs.Index {
			d.Media = append(d.Media, messageMedia(local, o.Address))
			continue
		}
		r := Media{Type: m.Type, Port: 0, Proto: m.Proto, Formats: append([]string(nil), m.Formats...)}
		for _, a := range m.Attributes {
			if strings.EqualFold(a.Key, "rtpmap") || strings.EqualFold(a.Key, "fmtp") {
				r.Attributes = append(r.Attributes, a)
			}
		}
		d.Media = append(d.Media, r)
	}
	return d, nil
}
