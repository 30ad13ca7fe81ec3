package addressing

// This file holds the public face of the peer resolver: which servers a
// remote domain runs for SIP and for XMPP, and therefore which of the two
// protocols (or both, making it a UMPP domain) it speaks.
//
// Implemented: static peers from configuration; SRV per RFC 2782 (priority
// order, weighted selection, "." meaning "no service") for RFC 3861 §6
// (_im._sip, _pres._sip), RFC 3263 §4.1 (_sips._tcp, _sip._tcp, _sip._udp)
// and RFC 6120 §3.2.1 with XEP-0368 (_xmpp-server._tcp, _xmpps-server._tcp);
// the A/AAAA fallback with default ports (RFC 3263 §4.2, RFC 6120 §3.2.2);
// caching per RFC 2308 for negative answers.
//
// Not implemented: NAPTR (RFC 3263 §4.1 step 1; SRV is asked directly, as
// the RFC allows), DNSSEC validation, and resolving SRV targets to
// addresses (the dialer does that, so Target.Host stays a name for TLS).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
	"golang.org/x/sync/singleflight"
)

// Protocols, transports and modes used by [Target], [Resolution] and
// [StaticPeer].
const (
	ProtocolSIP  = "sip"
	ProtocolXMPP = "xmpp"

	TransportUDP = "udp"
	TransportTCP = "tcp" // for XMPP: plain TCP followed by STARTTLS
	TransportTLS = "tls" // for XMPP: XEP-0368 direct TLS

	ModeAuto = "auto" // StaticPeer only: derived from the addresses given
	ModeUMPP = "umpp" // SIP and XMPP
	ModeXMPP = "xmpp" // XMPP only
	ModeSIP  = "sip"  // SIP only
	ModeNone = "none" // Resolution only: neither
)

// Default ports used when a domain publishes no SRV records (RFC 3261
// §19.1.2, RFC 6120 §3.2.2).
const (
	DefaultSIPPort        = 5060
	DefaultSIPSPort       = 5061
	DefaultXMPPServerPort = 5269
)

// SourceStaticPeer is the Target.Source and Resolution.ModeSource of answers
// that come from configuration rather than DNS.
const SourceStaticPeer = "static peer"

// StaticPeer configures a remote domain by hand. For the protocols it names,
// it replaces DNS entirely.
type StaticPeer struct {
	// Domain is the peer's domain, e.g. "montagues.example.com".
	Domain string
	// SIP is the peer's SIP server as "udp://host:port", "tcp://host:port"
	// or "tls://host:port" (the port defaults to 5060, or 5061 for tls).
	// Empty means not configured.
	SIP string
	// XMPP is the peer's XMPP server-to-server endpoint as "host:port"
	// (STARTTLS), "tcp://host:port" (the same) or "tls://host:port" (XEP-0368
	// direct TLS); the port defaults to 5269. Empty means not configured.
	XMPP string
	// Mode is "auto" (or empty), "umpp", "xmpp" or "sip".
	//
	//   - auto: the peer speaks exactly the protocols configured here; DNS is
	//     not consulted.
	//   - umpp: the peer speaks both; a protocol not configured here is
	//     resolved through DNS.
	//   - sip / xmpp: the peer speaks only that protocol, which is resolved
	//     through DNS when not configured here. Configuring the other
	//     protocol is an error.
	Mode string
}

// Target is one server to try for a protocol, in the order returned.
type Target struct {
	Protocol  string // "sip" or "xmpp"
	Transport string // sip: "udp", "tcp", "tls"; xmpp: "tcp" (STARTTLS) or "tls" (direct TLS)
	// Host is the SRV target (without the trailing dot), the domain itself
	// for the A/AAAA fallback, or the configured host; the dialer resolves
	// it to addresses.
	Host     string
	Port     int
	Priority uint16
	Weight   uint16
	// Source says where the target came from, for people: "static peer",
	// "SRV _sips._tcp.example.com.", "A example.com. (default port)", ...
	Source string
	// TTL is how long the answer stays valid (0 for static peers).
	TTL time.Duration
}

// String formats the target for logs and the command line.
func (t Target) String() string {
	return fmt.Sprintf("%s %s %s prio=%d weight=%d (%s)", t.Protocol, t.Transport,
		net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), t.Priority, t.Weight, t.Source)
}

// Resolution is what a remote domain offers.
type Resolution struct {
	Domain string // normalized: lower case A-labels, no trailing dot
	// Mode is "umpp" (SIP and XMPP), "xmpp", "sip" or "none".
	Mode string
	// ModeSource is "static peer" or "DNS".
	ModeSource string
	SIP        []Target
	XMPP       []Target
}

// ResolverConfig configures [NewResolver].
type ResolverConfig struct {
	// Server is the DNS server as "host:port" (port 53 when omitted). Empty
	// means the servers of ResolvConf.
	Server string
	// ResolvConf is the resolver file read when Server is empty; empty
	// means /etc/resolv.conf. When it cannot be read or names no server,
	// 127.0.0.1:53 is used.
	ResolvConf string
	// Peers are the statically configured peers.
	Peers []StaticPeer
	// Timeout bounds each DNS query to each server; 0 means 2 seconds.
	Timeout time.Duration
	// Logger receives debug logs of DNS traffic; nil discards them.
	Logger *slog.Logger
	// Rand returns a number in [0, n) for the weighted SRV selection of
	// RFC 2782; nil means math/rand/v2. It must be safe for concurrent use.
	Rand func(n int) int
	// Now is the clock of the cache; nil means time.Now.
	Now func() time.Time
}

// Resolver finds the SIP and XMPP servers of remote domains: static peers
// first, then DNS (SRV per RFC 3861, RFC 3263 and RFC 6120/XEP-0368, then
// A/AAAA with default ports). DNS answers are cached for their TTL and
// concurrent identical queries are collapsed into one. A Resolver is safe for
// concurrent use.
type Resolver struct {
	servers []string
	timeout time.Duration
	log     *slog.Logger
	rand    func(int) int
	now     func() time.Time

	peers atomic.Pointer[peerTable]
	cache dnsCache
	group singleflight.Group
	udp   *dns.Client
	tcp   *dns.Client
}

const defaultTimeout = 2 * time.Second

// NewResolver returns a Resolver for cfg. It reports every invalid static
// peer at once.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	r := &Resolver{
		timeout: cfg.Timeout,
		log:     cfg.Logger,
		rand:    cfg.Rand,
		now:     cfg.Now,
	}
	if r.timeout <= 0 {
		r.timeout = defaultTimeout
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.rand == nil {
		r.rand = rand.IntN
	}
	if r.now == nil {
		r.now = time.Now
	}
	if cfg.Server != "" {
		server, err := normalizeServer(cfg.Server)
		if err != nil {
			return nil, err
		}
		r.servers = []string{server}
	} else {
		r.servers = systemServers(cfg.ResolvConf, r.log)
	}
	r.udp = &dns.Client{Net: "udp", Timeout: r.timeout, UDPSize: ednsSize}
	r.tcp = &dns.Client{Net: "tcp", Timeout: r.timeout}
	r.cache.init()
	if err := r.SetPeers(cfg.Peers); err != nil {
		return nil, err
	}
	return r, nil
}

// Servers returns the DNS servers the resolver asks, in order.
func (r *Resolver) Servers() []string {
	return append([]string(nil), r.servers...)
}

// SetPeers replaces the static peers, e.g. on a configuration reload. When a
// peer is invalid it returns all problems and keeps the previous peers. It is
// safe to call while lookups are running.
func (r *Resolver) SetPeers(peers []StaticPeer) error {
	table, err := parsePeers(peers)
	if err != nil {
		return err
	}
	r.peers.Store(table)
	return nil
}

// Resolve finds the SIP and XMPP servers of domain and the mode it derives
// from them. On error (a DNS failure, not a missing record) the Resolution
// still holds the protocol that did resolve, and Mode is left as derived
// from what is known.
func (r *Resolver) Resolve(ctx context.Context, domain string) (Resolution, error) {
	name, err := lookupDomain(domain)
	if err != nil {
		return Resolution{Domain: domain, Mode: ModeNone}, err
	}
	res := Resolution{Domain: name, ModeSource: "DNS"}
	var sipErr, xmppErr error
	if p, ok := r.peers.Load().m[name]; ok {
		res.ModeSource = SourceStaticPeer
		res.Mode = p.mode
		res.SIP, sipErr = r.resolveSIP(ctx, name, p)
		res.XMPP, xmppErr = r.resolveXMPP(ctx, name, p)
		return res, errors.Join(sipErr, xmppErr)
	}
	var wg sync.WaitGroup
	wg.Go(func() { res.SIP, sipErr = r.lookupSIP(ctx, name) })
	res.XMPP, xmppErr = r.lookupXMPP(ctx, name)
	wg.Wait()
	// A domain that publishes SRV records for one protocol only serves
	// that one: the address fallback (RFC 3263 §4.2, RFC 6120 §3.2.2)
	// decides only for a domain with no SRV record at all.
	sipSRV, xmppSRV := hasSRV(res.SIP), hasSRV(res.XMPP)
	if sipSRV || xmppSRV {
		res.Mode = deriveMode(sipSRV, xmppSRV)
		if !sipSRV {
			res.SIP = nil
		}
		if !xmppSRV {
			res.XMPP = nil
		}
	} else {
		res.Mode = deriveMode(len(res.SIP) > 0, len(res.XMPP) > 0)
	}
	return res, errors.Join(sipErr, xmppErr)
}

// hasSRV reports whether any target came from an SRV record.
func hasSRV(ts []Target) bool {
	for _, t := range ts {
		if strings.HasPrefix(t.Source, "SRV ") {
			return true
		}
	}
	return false
}

// ResolveSIP returns the SIP servers of domain in the order to try them. An
// empty result with a nil error means the domain has no SIP service.
func (r *Resolver) ResolveSIP(ctx context.Context, domain string) ([]Target, error) {
	name, err := lookupDomain(domain)
	if err != nil {
		return nil, err
	}
	p, static := r.peers.Load().m[name]
	ts, err := r.resolveSIP(ctx, name, p)
	if err != nil || static || len(ts) == 0 || hasSRV(ts) {
		return ts, err
	}
	// Only the address fallback: not SIP if the domain has XMPP SRV
	// records (see Resolve).
	if x, xerr := r.lookupXMPP(ctx, name); xerr == nil && hasSRV(x) {
		return nil, nil
	}
	return ts, nil
}

// ResolveXMPP returns the XMPP server-to-server endpoints of domain in the
// order to try them. An empty result with a nil error means the domain has
// no XMPP service.
func (r *Resolver) ResolveXMPP(ctx context.Context, domain string) ([]Target, error) {
	name, err := lookupDomain(domain)
	if err != nil {
		return nil, err
	}
	p, static := r.peers.Load().m[name]
	ts, err := r.resolveXMPP(ctx, name, p)
	if err != nil || static || len(ts) == 0 || hasSRV(ts) {
		return ts, err
	}
	// Only the address fallback: not XMPP if the domain has SIP SRV
	// records (see Resolve).
	if sip, serr := r.lookupSIP(ctx, name); serr == nil && hasSRV(sip) {
		return nil, nil
	}
	return ts, nil
}

// resolveSIP answers from the static peer p when it has one for this
// protocol, else from DNS.
func (r *Resolver) resolveSIP(ctx context.Context, name string, p *peerEntry) ([]Target, error) {
	if p != nil {
		switch {
		case p.sip != nil:
			return []Target{*p.sip}, nil
		case p.mode == ModeXMPP:
			return nil, nil
		}
	}
	return r.lookupSIP(ctx, name)
}

// resolveXMPP answers from the static peer p when it has one for this
// protocol, else from DNS.
func (r *Resolver) resolveXMPP(ctx context.Context, name string, p *peerEntry) ([]Target, error) {
	if p != nil {
		switch {
		case p.xmpp != nil:
			return []Target{*p.xmpp}, nil
		case p.mode == ModeSIP:
			return nil, nil
		}
	}
	return r.lookupXMPP(ctx, name)
}

func deriveMode(sip, xmpp bool) string {
	switch {
	case sip && xmpp:
		return ModeUMPP
	case sip:
		return ModeSIP
	case xmpp:
		return ModeXMPP
	}
	return ModeNone
}

// lookupDomain returns domain in the form the resolver uses: lower case,
// IDNA A-labels, no trailing dot; DNS names may contain "_". IP literals
// (with or without brackets) are returned without brackets.
func lookupDomain(domain string) (string, error) {
	d := strings.TrimSuffix(strings.TrimSpace(domain), ".")
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		d = d[1 : len(d)-1]
	}
	if ip := net.ParseIP(d); ip != nil {
		return ip.String(), nil
	}
	if d == "" {
		return "", fmt.Errorf("addressing: empty domain %q", domain)
	}
	ascii, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("addressing: domain %q: %w", domain, err)
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > 253 {
		return "", fmt.Errorf("addressing: domain %q: longer than 253 octets", domain)
	}
	for label := range strings.SplitSeq(ascii, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("addressing: domain %q: empty or too long label", domain)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("addressing: domain %q: invalid character %q", domain, c)
			}
		}
	}
	return ascii, nil
}

// peerTable is an immutable snapshot of the static peers.
type peerTable struct {
	m map[string]*peerEntry
}

type peerEntry struct {
	mode string  // "umpp", "sip" or "xmpp"; "auto" is resolved at load
	sip  *Target // nil: not configured
	xmpp *Target // nil: not configured
}

func parsePeers(peers []StaticPeer) (*peerTable, error) {
	t := &peerTable{m: make(map[string]*peerEntry, len(peers))}
	var errs []error
	for i, sp := range peers {
		e, name, err := parsePeer(sp)
		if err != nil {
			errs = append(errs, fmt.Errorf("addressing: static peer %d (%q): %w", i+1, sp.Domain, err))
			continue
		}
		if _, dup := t.m[name]; dup {
			errs = append(errs, fmt.Errorf("addressing: static peer %d (%q): domain configured twice", i+1, sp.Domain))
			continue
		}
		t.m[name] = e
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func parsePeer(sp StaticPeer) (*peerEntry, string, error) {
	name, err := lookupDomain(sp.Domain)
	if err != nil {
		return nil, "", err
	}
	e := &peerEntry{}
	var errs []error
	if sp.SIP != "" {
		t, err := parseStaticSIP(sp.SIP)
		if err != nil {
			errs = append(errs, err)
		}
		e.sip = t
	}
	if sp.XMPP != "" {
		t, err := parseStaticXMPP(sp.XMPP)
		if err != nil {
			errs = append(errs, err)
		}
		e.xmpp = t
	}
	switch strings.ToLower(sp.Mode) {
	case "", ModeAuto:
		if sp.SIP == "" && sp.XMPP == "" {
			errs = append(errs, errors.New("mode auto needs a SIP or XMPP address"))
		}
		// With one protocol configured this is that protocol's mode,
		// which leaves the other one absent rather than looked up.
		e.mode = deriveMode(sp.SIP != "", sp.XMPP != "")
	case ModeUMPP:
		e.mode = ModeUMPP
	case ModeSIP:
		e.mode = ModeSIP
		if sp.XMPP != "" {
			errs = append(errs, errors.New("mode sip with an XMPP address"))
		}
	case ModeXMPP:
		e.mode = ModeXMPP
		if sp.SIP != "" {
			errs = append(errs, errors.New("mode xmpp with a SIP address"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown mode %q (want auto, umpp, xmpp or sip)", sp.Mode))
	}
	if len(errs) > 0 {
		return nil, "", errors.Join(errs...)
	}
	return e, name, nil
}

func parseStaticSIP(s string) (*Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("SIP address %q: %w", s, err)
	}
	t := &Target{Protocol: ProtocolSIP, Transport: strings.ToLower(u.Scheme), Source: SourceStaticPeer}
	switch t.Transport {
	case TransportUDP, TransportTCP:
		t.Port = DefaultSIPPort
	case TransportTLS:
		t.Port = DefaultSIPSPort
	default:
		return nil, fmt.Errorf("SIP address %q: want udp://, tcp:// or tls://host:port", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("SIP address %q: only scheme, host and port are allowed", s)
	}
	if err := setHostPort(t, u.Hostname(), u.Port()); err != nil {
		return nil, fmt.Errorf("SIP address %q: %w", s, err)
	}
	return t, nil
}

func parseStaticXMPP(s string) (*Target, error) {
	t := &Target{Protocol: ProtocolXMPP, Transport: TransportTCP, Port: DefaultXMPPServerPort, Source: SourceStaticPeer}
	hostport := s
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case TransportTCP:
		case TransportTLS:
			t.Transport = TransportTLS
		default:
			return nil, fmt.Errorf("XMPP address %q: want host:port, tcp://host:port or tls://host:port", s)
		}
		hostport = strings.TrimSuffix(rest, "/")
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port: the whole string is the host.
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
	}
	if err := setHostPort(t, host, port); err != nil {
		return nil, fmt.Errorf("XMPP address %q: %w", s, err)
	}
	return t, nil
}

func setHostPort(t *Target, host, port string) error {
	if host == "" {
		return errors.New("missing host")
	}
	h, err := lookupDomain(host)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	t.Host = h
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("invalid port %q", port)
		}
		t.Port = p
	}
	return nil
}

// LookupIP returns the IPv4 and IPv6 addresses of host (a SIP or XMPP
// target's Host), asking the resolver's configured DNS servers for A and
// AAAA records (CNAME chains followed by the server). An IP literal, with
// or without brackets, is returned as it is without a query. Answers
// come from the resolver's cache for their TTL, like every other
// question. It is for checking where a peer's request came from (RFC 5922
// alternatives, draft §5) and for dialers that must use the configured
// servers (the SIP server's targets in umppd).
func (r *Resolver) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
	name, err := lookupDomain(host)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(name); ip != nil {
		return []net.IP{ip}, nil
	}
	var ips []net.IP
	var errs []error
	for _, qtype := range [...]uint16{dns.TypeA, dns.TypeAAAA} {
		a, err := r.lookup(ctx, name+".", qtype)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ips = append(ips, a.ips...) // a copy: the answer stays in the cache
	}
	if len(ips) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ips, nil
}
