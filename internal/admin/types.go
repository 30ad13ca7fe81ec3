package admin

import "time"

// Status is what the daemon reports about itself.
type Status struct {
	Version string    `json:"version"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Domains []string  `json:"domains"`
	// Ready is true once every listener is bound and the daemon serves.
	Ready     bool       `json:"ready"`
	Listeners []Listener `json:"listeners"`
	// Sessions are the local clients: bound XMPP streams and registered
	// SIP contacts.
	Sessions []Session `json:"sessions"`
	// Peers are the server-to-server connections with other domains.
	Peers  []Peer `json:"peers"`
	Counts Counts `json:"counts"`
}

// Listener is one bound socket.
type Listener struct {
	Proto string `json:"proto"` // "sip", "xmpp-c2s", "xmpp-s2s", "metrics", "admin"
	Addr  string `json:"addr"`  // "udp://127.0.0.1:5060", "127.0.0.1:5222", a socket path
	TLS   string `json:"tls"`   // "starttls", "direct", "" (none or per transport)
}

// Session is one local client.
type Session struct {
	Protocol string `json:"protocol"` // "xmpp" or "sip"
	// Address is the full JID of an XMPP session, the address-of-record
	// ("user@domain") of a SIP registration.
	Address string `json:"address"`
	// Contact is a SIP registration's Contact URI; empty for XMPP.
	Contact string `json:"contact,omitempty"`
	// Remote is the client's transport address ("ip:port"), with the
	// transport for SIP ("udp", "tcp", "tls").
	Remote    string `json:"remote"`
	Transport string `json:"transport,omitempty"`
	// TLSVersion is "TLS 1.3", "TLS 1.2" or "" without TLS.
	TLSVersion string `json:"tls_version,omitempty"`
	// Expires is when a SIP registration lapses unless refreshed.
	Expires time.Time `json:"expires,omitzero"`
}

// Peer is one connection with another domain's server.
type Peer struct {
	// Domain is the peer domain; Local the hosted domain the stream is
	// for.
	Domain string `json:"domain"`
	Local  string `json:"local,omitempty"`
	// Protocol is "xmpp-s2s" or "sip".
	Protocol string `json:"protocol"`
	// Direction is "in" (the peer connected to us) or "out".
	Direction string `json:"direction"`
	// Auth is how the peer domain was authenticated: "sasl-external"
	// (RFC 6120 §13.8.3 with its certificate), "dialback" (XEP-0220),
	// "tls" (SIP over TLS with a verified certificate), or "" (none yet).
	Auth string `json:"auth"`
	// TLSVersion is "TLS 1.3", "TLS 1.2" or "" without TLS.
	TLSVersion string    `json:"tls_version,omitempty"`
	Remote     string    `json:"remote,omitempty"` // "ip:port"
	Since      time.Time `json:"since,omitzero"`
}

// Counts are the totals operators watch.
type Counts struct {
	C2SConnections   int `json:"c2s_connections"`   // TCP connections, negotiating or bound
	XMPPSessions     int `json:"xmpp_sessions"`     // bound client streams
	SIPRegistrations int `json:"sip_registrations"` // registered contacts
	IMSessions       int `json:"im_sessions"`       // UMPP IM sessions (INVITE im:)
	SubscriptionsIn  int `json:"subscriptions_in"`  // watchers of local users
	SubscriptionsOut int `json:"subscriptions_out"` // local users watching remote presentities
	Peers            int `json:"peers"`             // server-to-server connections
}
