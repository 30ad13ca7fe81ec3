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
	// S2S lists the authenticated server-to-server streams, inbound and
	// outbound, sorted by peer domain.
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
	for c := range s.s2sConns {
		if p := c.stats.Load(); p != nil {
			st.S2S = append(st.S2S, *p)
		}
	}
	s.mu.Unlock()
	if s.s2s != nil {
		st.S2S = append(st.S2S, s.s2s.stats()...)
	}
	sort.Slice(st.S2S, func(i, j int) bool {
		a, b := st.S2S[i], st.S2S[j]
		if a.Domain != b.Domain {
			return a.Domain < b.Domain
		}
		return a.Direction < b.Direction
	})
	st.Sessions = make([]SessionStats, 0, len(bound))
	for _, c := range bound {
		ss := SessionStats{
			JID:       c.user.full,
			Domain:    c.domain,
			Remote:    c.raw.RemoteAddr().String(),
			Available: c.avail.Load(),
		}
		if tc, ok := c.nc.(*tls.Conn); ok {
			ss.TLSVersion = tlsVersion(true, tc.ConnectionState())
		}
		st.Sessions = append(st.Sessions, ss)
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].JID < st.Sessions[j].JID })
	return st
}

// stats lists the outbound links that have an authenticated stream.
func (m *s2sManager) stats() []S2SStats {
	m.mu.Lock()
	links := make([]*s2sLink, 0, len(m.links))
	for _, l := range m.links {
		links = append(links, l)
	}
	m.mu.Unlock()
	var out []S2SStats
	for _, l := range links {
		l.mu.Lock()
		o := l.out
		l.mu.Unlock()
		if o == nil || o.auth == "" {
			continue
		}
		out = append(out, S2SStats{
			Domain:     l.pair.remote,
			Local:      l.pair.local,
			Direction:  "out",
			Auth:       statsAuth(o.auth),
			TLSVersion: tlsVersion(o.wire.secure, o.wire.tlsState),
			Remote:     o.wire.raw.RemoteAddr().String(),
			Since:      o.since,
		})
	}
	return out
}

// statsAuth names an s2s authentication method for operators.
func statsAuth(how string) string {
	if how == "external" {
		return "sasl-external"
	}
	return how
}

// tlsVersion names the TLS version of a stream; "" without TLS.
func tlsVersion(secure bool, cs tls.ConnectionState) string {
	if !secure {
		return ""
	}
	return tls.VersionName(cs.Version)
}
