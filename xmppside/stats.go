package xmppside

import (
	"crypto/tls"
	"sort"
	"time"
)

// Stats is a snapshot of the client side of the XMPP host, for the
// operator: metrics gauges and `umppd status`.
type Stats struct {
	// Connections counts client TCP connections, negotiating or bound.
	Connections int
	// Sessions lists the bound client streams, sorted by JID.
	Sessions []SessionStats
	// S2S lists the server-to-server streams, one per stream. It stays
	// empty until the s2s side fills it from its own table.
	S2S []S2SStats
}

// S2SStats is one server-to-server stream.
type S2SStats struct {
	Domain     string    // the peer domain
	Local      string    // the hosted domain the stream serves
	Direction  string    // "in" (the peer connected) or "out"
	Auth       string    // "sasl-external", "dialback", or "" while negotiating
	TLSVersion string    // "TLS 1.3", "TLS 1.2"; "" without TLS
	Remote     string    // the peer's "ip:port"
	Since      time.Time // when the stream was established
}

// SessionStats is one bound client stream.
type SessionStats struct {
	JID        string // full JID
	Domain     string // the hosted domain of the stream
	Remote     string // the client's "ip:port"
	TLSVersion string // "TLS 1.3", "TLS 1.2"; "" without TLS
	Available  bool   // sent available presence
}

// Stats returns a snapshot of the connections. It takes the server's
// connection lock briefly and reads each bound stream's fields, which do
// not change after binding (binding publishes them through the
// writing flag).
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Connections: len(s.conns)}
	bound := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if c.writing.Load() {
			bound = append(bound, c)
		}
	}
	s.mu.Unlock()
	st.Sessions = make([]SessionStats, 0, len(bound))
	for _, c := range bound {
		ss := SessionStats{
			JID:       c.user.full,
			Domain:    c.domain,
			Remote:    c.raw.RemoteAddr().String(),
			Available: c.avail.Load(),
		}
		if tc, ok := c.nc.(*tls.Conn); ok {
			ss.TLSVersion = tls.VersionName(tc.ConnectionState().Version)
		}
		st.Sessions = append(st.Sessions, ss)
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].JID < st.Sessions[j].JID })
	return st
}
