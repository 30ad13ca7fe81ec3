package testenv

import (
	"context"
	"encoding/xml"
	"net"
	"strings"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// Mellium v0.23.0 bounds a call by its context with a goroutine that
// watches both the context and the call's end. When the call has
// returned and the caller then cancels the context, that goroutine may
// still be waiting, see both, pick the context, and set the connection's
// deadline into the past — while the next write or the Serve loop's read
// is under way. The write then fails with "i/o timeout" halfway through a
// TLS record and the server sees "bad record MAC". So test clients never
// give mellium a context that will be cancelled: they bound the call with
// the connection's own deadline and pass context.Background(), whose
// Done channel is nil.

// XMPPClientSession negotiates a client session on nc (mellium's
// xmpp.NewClientSession) within timeout.
func XMPPClientSession(nc net.Conn, origin jid.JID, timeout time.Duration, features ...xmpp.StreamFeature) (*xmpp.Session, error) {
	_ = nc.SetDeadline(time.Now().Add(timeout))
	s, err := xmpp.NewClientSession(context.Background(), origin, nc, features...)
	if err != nil {
		return nil, err
	}
	_ = s.Conn().SetDeadline(time.Time{})
	return s, nil
}

// XMPPSend writes the stanza raw on s, giving up after timeout.
func XMPPSend(s *xmpp.Session, raw string, timeout time.Duration) error {
	conn := s.Conn()
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	defer func() { _ = conn.SetWriteDeadline(time.Time{}) }()
	return s.Send(context.Background(), xml.NewDecoder(strings.NewReader(raw)))
}
