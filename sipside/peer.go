package sipside

import (
	"context"
	"crypto/x509"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/sync/singleflight"

	"github.com/umpp/umpp/addressing"
)

// Inbound federation: requests from the SIP servers of peer UMPP domains
// (the draft's §4.1 INVITE, §4.2 SUBSCRIBE, and pager-mode MESSAGE) carry
// a From in the peer's domain and a Request-URI naming one of our users.
// Options.PeerPolicy says which domains are peers; their requests are
// taken without digest authentication (a peer server has no account
// here), but only with proof that they come from that domain's server
// (RFC 5922, the draft's §5). Either of these is proof, checked in this
// order:
//
//  1. TLS: the request came on a TLS connection whose client presented
//     a certificate that verifies against Options.RootCAs (else the
//     system roots; any extended key usage) and names the From domain
//     as an identity (RFC 5922 §7.1): a subjectAltName URI sip:domain
//     (no user part) or a subjectAltName DNS name equal to the domain.
//     Wildcard names are not matched, and the subject CN is not read.
//  2. Source address: the request's source IP is an address of one of
//     the domain's SIP servers, as Options.Resolver finds them
//     (ResolveSIP, then the targets' host names resolved to addresses
//     with the resolver's LookupIP when it has one; IP literals are
//     taken as they are). The addresses are kept per domain for the
//     smallest TTL of the targets, or 60 s when they carry none; a
//     failed resolution is kept 10 s.
//
// A request from a peer domain with neither proof is answered
// 403 "Forbidden - Peer not authenticated" and logged at warn level with
// the domain and the source. Requests inside a dialog (BYE, NOTIFY,
// a refreshing SUBSCRIBE) are matched by their dialog, as before.

// Bounds of the peer-proof tables.
const (
	maxTLSPeers          = 65536
	maxVerifiedDomains   = 16
	maxPeerAddrDomains   = 4096
	peerAddrTTL          = 60 * time.Second
	peerAddrNegativeTTL  = 10 * time.Second
	peerAddrMinTTL       = 5 * time.Second
	peerAddrMaxTTL       = time.Hour
	peerResolveTimeout   = 5 * time.Second
	maxPeerTargetLookups = 16
)

// ipLookup is the optional method of a Resolver that resolves a host
// name with the resolver's own DNS servers (*addressing.Resolver has it).
type ipLookup interface {
	LookupIP(ctx context.Context, host string) ([]net.IP, error)
}

// peerAuth holds what proves a peer request: the certificates of
// accepted TLS connections, by remote address, and the addresses of peer
// domains' SIP servers.
type peerAuth struct {
	mu    sync.Mutex
	conns map[string]*tlsPeer  // remote "ip:port" -> client certificate chain
	addrs map[string]peerAddrs // domain -> addresses of its SIP servers
	group singleflight.Group
}

// tlsPeer is the client certificate chain of one TLS connection and
// the domains it was checked for.
type tlsPeer struct {
	certs []*x509.Certificate
	owner net.Conn // the connection it came on

	mu       sync.Mutex
	verified map[string]bool
}

type peerAddrs struct {
	ips     map[netip.Addr]bool
	expires time.Time
}

// addConn records the certificates a TLS client presented; it returns
// false when the table is full (the connection then has only its source
// address to prove anything).
func (p *peerAuth) addConn(remote string, tp *tlsPeer) bool { //nolint:unparam // the result documents the bound
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = make(map[string]*tlsPeer)
	}
	if len(p.conns) >= maxTLSPeers {
		return false
	}
	p.conns[remote] = tp
	return true
}

// removeConn forgets the entry of a closed connection, if it is its own.
func (p *peerAuth) removeConn(remote string, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tp := p.conns[remote]; tp != nil && tp.owner == c {
		delete(p.conns, remote)
	}
}

func (p *peerAuth) conn(remote string) *tlsPeer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[remote]
}

// proves reports whether the chain verifies against roots and names
// domain; answers are kept per domain.
func (tp *tlsPeer) proves(domain string, roots *x509.CertPool, now time.Time) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if v, ok := tp.verified[domain]; ok {
		return v
	}
	ok := len(tp.certs) > 0 && certNamesDomain(tp.certs[0], domain)
	if ok {
		inter := x509.NewCertPool()
		for _, c := range tp.certs[1:] {
			inter.AddCert(c)
		}
		_, err := tp.certs[0].Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		ok = err == nil
	}
	if tp.verified == nil {
		tp.verified = make(map[string]bool)
	}
	if len(tp.verified) < maxVerifiedDomains {
		tp.verified[domain] = ok
	}
	return ok
}

// certNamesDomain reports whether a certificate carries domain as a SIP
// domain identity (RFC 5922 §7.1): a subjectAltName URI "sip:domain"
// without a user part, or a subjectAltName DNS name. Comparison ignores
// case; wildcards are not matched.
func certNamesDomain(c *x509.Certificate, domain string) bool {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if domain == "" {
		return false
	}
	for _, u := range c.URIs {
		if u == nil || !strings.EqualFold(u.Scheme, "sip") {
			continue
		}
		host := u.Opaque
		if host == "" {
			host = u.Host // "sip://domain" is not a SIP URI, but harmless to read
		}
		host, _, _ = strings.Cut(host, ";")
		if host == "" || strings.ContainsAny(host, "@*") {
			continue
		}
		if strings.EqualFold(strings.TrimSuffix(host, "."), domain) {
			return true
		}
	}
	for _, d := range c.DNSNames {
		if strings.Contains(d, "*") {
			continue
		}
		if strings.EqualFold(strings.TrimSuffix(d, "."), domain) {
			return true
		}
	}
	return false
}

// isPeerDomain reports whether domain is a peer by PeerPolicy (never one
// of ours).
func (s *Server) isPeerDomain(domain string) bool {
	if s.opts.PeerPolicy == nil || domain == "" || s.domains[domain] {
		return false
	}
	return s.opts.PeerPolicy(domain)
}

// peerSender returns the bare JID of the sender of a request from a peer
// domain, and false when the request is not from one. It does not check
// that the request really comes from the peer: see authenticatePeer.
func (s *Server) peerSender(req *sip.Request) (string, bool) {
	from, ok := addressOf(req.From().Address)
	if !ok || !s.isPeerDomain(from.Domain) {
		return "", false
	}
	return from.BareJID(), true
}

// authenticatePeer checks that req comes from domain's server (TLS
// certificate, else source address). When it does not, it answers 403,
// logs, and returns false.
func (s *Server) authenticatePeer(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, domain string) bool {
	how, ok := s.peerProof(ctx, req, domain)
	if ok {
		s.log.Debug("peer request authenticated", "domain", domain, "peer", req.Source(), "method", string(req.Method),
			"call_id", callID(req), "by", how)
		return true
	}
	s.log.Warn("peer request not authenticated", "domain", domain, "peer", req.Source(), "transport", req.Transport(),
		"method", string(req.Method), "call_id", callID(req))
	s.reply(req, tx, 403, "Forbidden - Peer not authenticated")
	return false
}

// peerProof returns how req is proven to come from domain's server
// ("tls" or "address"), or false.
func (s *Server) peerProof(ctx context.Context, req *sip.Request, domain string) (string, bool) {
	src := req.Source()
	if strings.EqualFold(req.Transport(), "tls") {
		if tp := s.peers.conn(src); tp != nil {
			var roots *x509.CertPool
			if s.opts.RootCAs != nil {
				roots = s.opts.RootCAs()
			}
			if tp.proves(domain, roots, time.Now()) {
				return "tls", true
			}
		}
	}
	host, _, err := net.SplitHostPort(src)
	if err != nil {
		host = src
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return "", false
	}
	if s.peerAddresses(ctx, domain)[ip.Unmap()] {
		return "address", true
	}
	return "", false
}

// peerAddresses returns the addresses of domain's SIP servers, from the
// cache or resolved now.
func (s *Server) peerAddresses(ctx context.Context, domain string) map[netip.Addr]bool {
	p := &s.peers
	now := time.Now()
	p.mu.Lock()
	e, ok := p.addrs[domain]
	p.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.ips
	}
	ch := p.group.DoChan(domain, func() (any, error) {
		// Shared by concurrent requests: not bound to the first one's
		// context, but to its own timeout.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), peerResolveTimeout)
		defer cancel()
		e := s.resolvePeer(rctx, domain)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.addrs == nil {
			p.addrs = make(map[string]peerAddrs)
		}
		if len(p.addrs) >= maxPeerAddrDomains {
			for k, old := range p.addrs {
				if !now.Before(old.expires) {
					delete(p.addrs, k)
				}
			}
			for k := range p.addrs { // still full: drop arbitrary ones
				if len(p.addrs) < maxPeerAddrDomains/2 {
					break
				}
				delete(p.addrs, k)
			}
		}
		p.addrs[domain] = e
		return e.ips, nil
	})
	select {
	case r := <-ch:
		ips, _ := r.Val.(map[netip.Addr]bool)
		return ips
	case <-ctx.Done():
		return nil
	}
}

// resolvePeer finds the addresses of domain's SIP servers.
func (s *Server) resolvePeer(ctx context.Context, domain string) peerAddrs {
	e := peerAddrs{ips: make(map[netip.Addr]bool), expires: time.Now().Add(peerAddrNegativeTTL)}
	if s.opts.Resolver == nil {
		return e
	}
	targets, err := s.opts.Resolver.ResolveSIP(ctx, domain)
	if err != nil {
		s.log.Debug("peer domain not resolved", "domain", domain, "error", err)
		return e
	}
	ttl := time.Duration(0)
	lookups := 0
	for _, t := range targets {
		if t.Protocol != "" && t.Protocol != addressing.ProtocolSIP {
			continue
		}
		if t.TTL > 0 && (ttl == 0 || t.TTL < ttl) {
			ttl = t.TTL
		}
		host := strings.Trim(t.Host, "[]")
		if ip, err := netip.ParseAddr(host); err == nil {
			e.ips[ip.Unmap()] = true
			continue
		}
		lu, ok := s.opts.Resolver.(ipLookup)
		if !ok || lookups >= maxPeerTargetLookups {
			continue
		}
		lookups++
		ips, err := lu.LookupIP(ctx, host)
		if err != nil {
			s.log.Debug("peer server address not resolved", "domain", domain, "host", host, "error", err)
			continue
		}
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip); ok {
				e.ips[a.Unmap()] = true
			}
		}
	}
	if ttl == 0 {
		ttl = peerAddrTTL
	}
	ttl = min(max(ttl, peerAddrMinTTL), peerAddrMaxTTL)
	if len(e.ips) > 0 {
		e.expires = time.Now().Add(ttl)
	}
	return e
}

// peerPresenceTarget is presenceTarget for a SUBSCRIBE from a peer
// domain: the event package was checked, the sender is the peer's user;
// the presentity must be a local user that exists.
func (s *Server) peerPresenceTarget(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, local bool, sender string) (presentity, watcher string, ok bool) {
	if !local || req.Method != sip.SUBSCRIBE {
		s.reply(req, tx, 403, "Forbidden - Peers only subscribe to local users")
		return "", "", false
	}
	if presentity, ok = s.localPresentity(ctx, req, tx); !ok {
		return "", "", false
	}
	return presentity, sender, true
}
