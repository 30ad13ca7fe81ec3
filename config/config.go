package config

import "time"

// Config is a loaded, validated umppd configuration. Every field has its
// default filled in by Load; consumers never see zero values that mean
// "unset" except where documented.
type Config struct {
	// File is the path the configuration was read from ("" for the
	// embedded default).
	File string

	Domains    []string   // hosted domains, lower-case DNS names
	DataDir    string     // absolute after Load
	SIP        SIP        // [sip]
	XMPP       XMPP       // [xmpp]
	TLS        TLS        // [tls]
	DNS        DNS        // [dns]
	Peers      []Peer     // [[peer]]
	Federation Federation // [federation]
	Limits     Limits     // [limits]
	Log        Log        // [log]
}

// SIP is the [sip] table.
type SIP struct {
	Listen []Listen // "udp://host:port", "tcp://...", "tls://..."
	// UserAgent is the Server/User-Agent header value.
	UserAgent string
}

// Listen is one SIP listen URL.
type Listen struct {
	Transport string // "udp", "tcp" or "tls"
	Host      string
	Port      int
}

// XMPP is the [xmpp] table.
type XMPP struct {
	C2SListen       []string // host:port, STARTTLS (RFC 6120)
	C2SDirectListen []string // host:port, direct TLS (XEP-0368)
	S2SListen       []string // host:port
	S2SIdleTimeout  time.Duration
	// S2SRequireTLS refuses s2s streams without TLS (default true).
	S2SRequireTLS bool
}

// TLS is the [tls] table. Cert and Key are empty when umppd generates a
// self-signed certificate into DataDir.
type TLS struct {
	Cert string
	Key  string
	CA   string // extra roots trusted for peers
}

// DNS is the [dns] table.
type DNS struct {
	Server string // "host:port"; "" means the system resolver
}

// Peer is one [[peer]]: a statically configured peer domain that overrides
// DNS.
type Peer struct {
	Domain string
	SIP    string // SIP target URL, "tls://host:port", "" for none
	XMPP   string // XMPP s2s target "host:port", "" for none
	// Mode says how the peer is reached: "auto" (from what is configured
	// or published), "umpp", "xmpp" (plain XMPP federation) or "sip"
	// (SIMPLE only).
	Mode string
}

// Federation is the [federation] table.
type Federation struct {
	Policy string   // "open" or "allowlist"
	Allow  []string // peer domains allowed when Policy is "allowlist"
}

// Limits is the [limits] table.
type Limits struct {
	MaxStanzaBytes          int
	MaxSIPMessageBytes      int
	MaxSessionsPerPeer      int
	MaxSubscriptionsPerPeer int
	MaxOfflinePerUser       int
}

// Log is the [log] table.
type Log struct {
	Level  string // "debug", "info", "warn", "error"
	Format string // "text" or "json"
}
