package addressing

// DNS transport and cache of the resolver: one question at a time through
// github.com/miekg/dns, so that TTLs and the response code are visible and
// a test can point the resolver at its own server.

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	ednsSize = 1232 // RFC 9715 / DNS flag day 2020

	minPositiveTTL = 5 * time.Second
	maxPositiveTTL = time.Hour
	minNegativeTTL = 5 * time.Second
	maxNegativeTTL = 5 * time.Minute

	cacheShards   = 16
	shardCapacity = 4096 // entries per shard before old ones are dropped
)

// DNSError reports a DNS query that got no usable answer: a timeout, a
// network error, or a response code other than NOERROR and NXDOMAIN
// (SERVFAIL, REFUSED, ...). Such failures are never cached. A missing record
// is not a DNSError: it yields no targets.
type DNSError struct {
	Name   string // the queried name, fully qualified
	Type   string // "SRV", "A", "AAAA"
	Server string // the server(s) asked, comma separated
	Err    error
}

func (e *DNSError) Error() string {
	return fmt.Sprintf("addressing: DNS %s %s via %s: %v", e.Type, e.Name, e.Server, e.Err)
}

func (e *DNSError) Unwrap() error { return e.Err }

// Timeout reports whether the query timed out.
func (e *DNSError) Timeout() bool {
	var ne net.Error
	return errors.Is(e.Err, context.DeadlineExceeded) || errors.As(e.Err, &ne) && ne.Timeout()
}

// rcodeError is the error of a response with a failure code.
type rcodeError int

func (c rcodeError) Error() string {
	if s, ok := dns.RcodeToString[int(c)]; ok {
		return "server answered " + s
	}
	return "server answered rcode " + strconv.Itoa(int(c))
}

// srvRecord is one SRV resource record; Target is fully qualified, lower
// case, and "." when the service is decidedly not available.
type srvRecord struct {
	Target                 string
	Port, Priority, Weight uint16
}

// answer is an immutable, cacheable result of one question.
type answer struct {
	srv      []srvRecord // SRV questions
	ips      []net.IP    // A/AAAA questions: the addresses
	negative bool        // NXDOMAIN or NODATA
	expires  time.Time
}

func (a *answer) ttl(now time.Time) time.Duration {
	return max(a.expires.Sub(now), 0).Truncate(time.Second)
}

type cacheKey struct {
	name  string
	qtype uint16
}

// dnsCache is sharded so that concurrent reads of different names do not
// contend, and reads of the same name only take a read lock.
type dnsCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]*answer
}

func (c *dnsCache) init() {
	c.seed = maphash.MakeSeed()
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]*answer)
	}
}

func (c *dnsCache) shard(k cacheKey) *cacheShard {
	return &c.shards[maphash.String(c.seed, k.name)%cacheShards]
}

func (c *dnsCache) get(k cacheKey, now time.Time) (*answer, bool) {
	s := c.shard(k)
	s.mu.RLock()
	a, ok := s.m[k]
	s.mu.RUnlock()
	if !ok || !now.Before(a.expires) {
		return nil, false
	}
	return a, true
}

func (c *dnsCache) put(k cacheKey, a *answer, now time.Time) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= shardCapacity {
		for key, old := range s.m {
			if !now.Before(old.expires) {
				delete(s.m, key)
			}
		}
		// Still full of live entries: drop arbitrary ones (map order).
		for key := range s.m {
			if len(s.m) < shardCapacity {
				break
			}
			delete(s.m, key)
		}
	}
	s.m[k] = a
}

// lookup answers one question from the cache or from DNS. Concurrent
// identical questions share a single query.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (*answer, error) {
	k := cacheKey{name: name, qtype: qtype}
	if a, ok := r.cache.get(k, r.now()); ok {
		return a, nil
	}
	ch := r.group.DoChan(dns.TypeToString[qtype]+" "+name, func() (any, error) {
		if a, ok := r.cache.get(k, r.now()); ok {
			return a, nil
		}
		// The shared query must not die with the first caller's context.
		a, err := r.query(context.WithoutCancel(ctx), name, qtype)
		if err != nil {
			return nil, err
		}
		r.cache.put(k, a, r.now())
		return a, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*answer), nil
	case <-ctx.Done():
		return nil, &DNSError{Name: name, Type: dns.TypeToString[qtype],
			Server: strings.Join(r.servers, ","), Err: ctx.Err()}
	}
}

// query asks each server in turn until one gives a usable answer.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*answer, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsSize, false)

	var errs []error
	for _, server := range r.servers {
		resp, err := r.exchange(ctx, m, server)
		if err == nil && resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			err = rcodeError(resp.Rcode)
		}
		if err != nil {
			r.log.Debug("dns query failed", slog.String("name", name),
				slog.String("type", dns.TypeToString[qtype]), slog.String("server", server),
				slog.Any("error", err))
			errs = append(errs, fmt.Errorf("%s: %w", server, err))
			continue
		}
		a := r.makeAnswer(resp, qtype)
		r.log.Debug("dns query", slog.String("name", name),
			slog.String("type", dns.TypeToString[qtype]), slog.String("server", server),
			slog.String("rcode", dns.RcodeToString[resp.Rcode]),
			slog.Int("answers", len(a.srv)+len(a.ips)), slog.Duration("ttl", a.ttl(r.now())))
		return a, nil
	}
	var err error
	if len(errs) == 1 {
		err = errors.Unwrap(errs[0]) // the server is already in DNSError
	} else {
		err = errors.Join(errs...)
	}
	return nil, &DNSError{Name: name, Type: dns.TypeToString[qtype],
		Server: strings.Join(r.servers, ","), Err: err}
}

func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	qctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	resp, _, err := r.udp.ExchangeContext(qctx, m, server)
	if err == nil && resp.Truncated {
		resp, _, err = r.tcp.ExchangeContext(qctx, m, server)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// makeAnswer extracts the records of qtype and the cache lifetime (RFC 2308
// for negative answers).
func (r *Resolver) makeAnswer(resp *dns.Msg, qtype uint16) *answer {
	a := &answer{}
	var ttl uint32
	first := true
	for _, rr := range resp.Answer {
		h := rr.Header()
		if h.Rrtype != qtype {
			continue // CNAMEs of the chain and the like
		}
		if first || h.Ttl < ttl {
			ttl, first = h.Ttl, false
		}
		switch rr := rr.(type) {
		case *dns.SRV:
			a.srv = append(a.srv, srvRecord{Target: strings.ToLower(dns.Fqdn(rr.Target)),
				Port: rr.Port, Priority: rr.Priority, Weight: rr.Weight})
		case *dns.A:
			a.ips = append(a.ips, rr.A)
		case *dns.AAAA:
			a.ips = append(a.ips, rr.AAAA)
		}
	}
	now := r.now()
	if !first {
		a.expires = now.Add(clamp(time.Duration(ttl)*time.Second, minPositiveTTL, maxPositiveTTL))
		return a
	}
	a.negative = true
	neg := time.Duration(0)
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			neg = time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			break
		}
	}
	a.expires = now.Add(clamp(neg, minNegativeTTL, maxNegativeTTL))
	return a
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return min(max(d, lo), hi)
}

func normalizeServer(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), "53"
	}
	if host == "" {
		return "", fmt.Errorf("addressing: DNS server %q: missing host", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("addressing: DNS server %q: invalid port", s)
	}
	return net.JoinHostPort(host, port), nil
}

// systemServers reads the name servers of a resolv.conf file.
func systemServers(path string, log *slog.Logger) []string {
	if path == "" {
		path = "/etc/resolv.conf"
	}
	const fallback = "127.0.0.1:53"
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		log.Warn("cannot read resolver configuration; using "+fallback,
			slog.String("file", path), slog.Any("error", err))
		return []string{fallback}
	}
	servers := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		servers = append(servers, net.JoinHostPort(s, cc.Port))
	}
	if len(servers) == 0 {
		log.Warn("no name server in resolver configuration; using "+fallback,
			slog.String("file", path))
		return []string{fallback}
	}
	return servers
}
