package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is a loaded, validated umppd configuration. Every field has its
// default filled in by Load; consumers never see zero values that mean
// "unset" except where documented.
//
// The toml tags are the operator-facing key names; Keys lists them all.
type Config struct {
	// File is the path the configuration was read from ("" for the
	// embedded default).
	File string `toml:"-"`

	Domains    []string   `toml:"domains"`    // hosted domains, lower-case DNS names
	DataDir    string     `toml:"data_dir"`   // absolute after Load
	SIP        SIP        `toml:"sip"`        // [sip]
	XMPP       XMPP       `toml:"xmpp"`       // [xmpp]
	TLS        TLS        `toml:"tls"`        // [tls]
	DNS        DNS        `toml:"dns"`        // [dns]
	Peers      []Peer     `toml:"peer"`       // [[peer]]
	Federation Federation `toml:"federation"` // [federation]
	Limits     Limits     `toml:"limits"`     // [limits]
	Session    Session    `toml:"session"`    // [session]
	Log        Log        `toml:"log"`        // [log]
	Metrics    Metrics    `toml:"metrics"`    // [metrics]
}

// SIP is the [sip] table.
type SIP struct {
	Listen []Listen `toml:"listen"` // "udp://host:port", "tcp://...", "tls://..."
	// UserAgent is the Server/User-Agent header value.
	UserAgent string `toml:"user_agent"`
	// DigestAlgorithms are the digest challenge algorithms, most preferred
	// first: "SHA-256" and/or "MD5" (RFC 8760).
	DigestAlgorithms []string `toml:"digest_algorithms"`
}

// Listen is one SIP listen URL, or a peer's SIP target URL
// ("scheme://host:port").
type Listen struct {
	Transport string // "udp", "tcp" or "tls"
	Host      string // IP literal (without brackets) or a name
	Port      int
}

// Addr returns host:port, with brackets around an IPv6 host, for net.Listen
// or net.Dial.
func (l Listen) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// String returns the URL form, e.g. "tls://127.0.0.1:5061".
func (l Listen) String() string { return l.Transport + "://" + l.Addr() }

// ParseURL parses "udp://host:port", "tcp://host:port" or "tls://host:port"
// as used by [sip] listen and [[peer]] sip. The host may be any non-empty
// name or IP literal; an IPv6 literal is written in brackets.
func ParseURL(s string) (Listen, error) {
	scheme, rest, ok := cutScheme(s)
	if !ok {
		return Listen{}, fmt.Errorf("%q is not a URL of the form scheme://host:port", s)
	}
	scheme = strings.ToLower(scheme) // schemes are case-insensitive (RFC 3986 §3.1)
	switch scheme {
	case "udp", "tcp", "tls":
	default:
		return Listen{}, fmt.Errorf("%q: scheme %q is not udp, tcp or tls", s, scheme)
	}
	host, port, err := ParseHostPort(rest)
	if err != nil {
		return Listen{}, fmt.Errorf("%q: %w", s, err)
	}
	return Listen{Transport: scheme, Host: host, Port: port}, nil
}

func cutScheme(s string) (scheme, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':' && len(s) > i+2 && s[i+1:i+3] == "//":
			return s[:i], s[i+3:], true
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// ParseHostPort splits "host:port" ("[v6]:port" for IPv6) and checks that
// the host is not empty and the port is a number from 1 to 65535.
func ParseHostPort(s string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q has no host", s)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return host, n, nil
}

// XMPP is the [xmpp] table.
type XMPP struct {
	C2SListen       []string      `toml:"c2s_listen"`            // host:port, STARTTLS (RFC 6120)
	C2SDirectListen []string      `toml:"c2s_direct_tls_listen"` // host:port, direct TLS (XEP-0368)
	S2SListen       []string      `toml:"s2s_listen"`            // host:port
	S2SIdleTimeout  time.Duration `toml:"s2s_idle_timeout"`
	// S2SRequireTLS refuses s2s streams without TLS (default true).
	S2SRequireTLS bool `toml:"s2s_require_tls"`
}

// TLS is the [tls] table. Cert and Key are empty when umppd generates a
// self-signed certificate into DataDir. Non-empty paths are absolute after
// Load.
type TLS struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	CA   string `toml:"ca"` // extra roots trusted for peers
}

// DNS is the [dns] table.
type DNS struct {
	Server string `toml:"server"` // "ip:port"; "" means the system resolver
}

// Peer is one [[peer]]: a statically configured peer domain that overrides
// DNS.
type Peer struct {
	Domain string `toml:"domain"`
	SIP    string `toml:"sip"`  // SIP target URL, "tls://host:port", "" for none
	XMPP   string `toml:"xmpp"` // XMPP s2s target "host:port", "" for none
	// Mode says how the peer is reached: "auto" (from what is configured
	// or published), "umpp", "xmpp" (plain XMPP federation) or "sip"
	// (SIMPLE only).
	Mode string `toml:"mode"`
}

// Federation is the [federation] table.
type Federation struct {
	Policy string   `toml:"policy"` // "open" or "allowlist"
	Allow  []string `toml:"allow"`  // peer domains allowed when Policy is "allowlist"
}

// Limits is the [limits] table.
type Limits struct {
	MaxStanzaBytes          int `toml:"max_stanza_bytes"`
	MaxSIPMessageBytes      int `toml:"max_sip_message_bytes"`
	MaxSessionsPerPeer      int `toml:"max_sessions_per_peer"`
	MaxSubscriptionsPerPeer int `toml:"max_subscriptions_per_peer"`
	MaxOfflinePerUser       int `toml:"max_offline_per_user"`
}

// Session is the [session] table.
type Session struct {
	// IdleTimeout ends a UMPP chat session (its SIP dialog and XMPP
	// thread) after this long without traffic.
	IdleTimeout time.Duration `toml:"idle_timeout"`
}

// Log is the [log] table.
type Log struct {
	Level  string `toml:"level"`  // "debug", "info", "warn", "error"
	Format string `toml:"format"` // "text" or "json"
}

// Metrics is the [metrics] table.
type Metrics struct {
	Listen string `toml:"listen"` // "host:port" of the metrics HTTP endpoint; "" disables it
}
