package addressing

// Which SRV names are asked for each protocol, and in which order their
// targets are tried.

import (
	"cmp"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// srvQuery is one SRV name to ask and the transport its targets use ("" when
// the transport is decided later).
type srvQuery struct {
	prefix    string
	transport string
}

// sipQueries are the SIP names: first RFC 3861 §6 (_im._sip and _pres._sip,
// whose targets are SIP servers), then RFC 3263 §4.1 without NAPTR, most
// secure transport first.
func sipQueries() []srvQuery {
	return []srvQuery{
		{"_im._sip.", ""},
		{"_pres._sip.", ""},
		{"_sips._tcp.", TransportTLS},
		{"_sip._tcp.", TransportTCP},
		{"_sip._udp.", TransportUDP},
	}
}

// rfc3861Count is how many of sipQueries are RFC 3861 names.
const rfc3861Count = 2

// xmppQueries are the XMPP names of XEP-0368 and RFC 6120 §3.2.1.
func xmppQueries() []srvQuery {
	return []srvQuery{
		{"_xmpps-server._tcp.", TransportTLS},
		{"_xmpp-server._tcp.", TransportTCP},
	}
}

// srvResult is the answer to one srvQuery.
type srvResult struct {
	q    srvQuery
	name string // fully qualified name asked
	ans  *answer
	err  error
}

// lookupSRVs asks all questions at once.
func (r *Resolver) lookupSRVs(ctx context.Context, fqdn string, qs []srvQuery) []srvResult {
	res := make([]srvResult, len(qs))
	now := r.now()
	var wg sync.WaitGroup
	for i, q := range qs {
		res[i].q, res[i].name = q, q.prefix+fqdn
		if a, ok := r.cache.get(cacheKey{res[i].name, dns.TypeSRV}, now); ok {
			res[i].ans = a // no goroutine for the common, cached case
			continue
		}
		wg.Go(func() { res[i].ans, res[i].err = r.lookup(ctx, res[i].name, dns.TypeSRV) })
	}
	wg.Wait()
	return res
}

// lookupSIP resolves the SIP servers of a domain from DNS.
//
// The order is: the targets of _im._sip, then those of _pres._sip (RFC 3861),
// then the RFC 3263 targets of _sips._tcp (tls), _sip._tcp (tcp) and
// _sip._udp (udp), each set ordered by priority and weight, duplicates
// dropped. RFC 3861 targets carry no transport of their own: they take the
// transport of an RFC 3263 record of the same domain with the same host and
// port; failing that tls when the port is 5061, else tcp (a message may be
// larger than UDP allows, RFC 3428 §9).
//
// Only when none of these names has any SRV record does the domain's own
// address stand in, on ports 5061 (tls), 5060 (tcp) and 5060 (udp). A "."
// target (RFC 2782) takes its set out without triggering that fallback.
func (r *Resolver) lookupSIP(ctx context.Context, domain string) ([]Target, error) {
	if ip := net.ParseIP(domain); ip != nil {
		return sipDefaults(domain, "IP literal (default port)", 0), nil
	}
	fqdn := domain + "."
	results := r.lookupSRVs(ctx, fqdn, sipQueries())
	if err := resultErrors(results); err != nil {
		return nil, err
	}
	now := r.now()
	var rfc3263 []Target
	for _, res := range results[rfc3861Count:] {
		rfc3263 = append(rfc3263, r.orderSRV(srvTargets(ProtocolSIP, res, now))...)
	}
	var out []Target
	for _, res := range results[:rfc3861Count] {
		ts := srvTargets(ProtocolSIP, res, now)
		for i := range ts {
			ts[i].Transport = rfc3861Transport(ts[i], rfc3263)
		}
		out = append(out, r.orderSRV(ts)...)
	}
	out = dedupTargets(append(out, rfc3263...))
	if anyRecords(results) {
		return out, nil
	}
	source, ttl, err := r.addressFallback(ctx, domain)
	if err != nil || source == "" {
		return nil, err
	}
	return sipDefaults(domain, source, ttl), nil
}

// lookupXMPP resolves the XMPP server-to-server endpoints of a domain from
// DNS: the records of _xmpps-server._tcp (direct TLS, XEP-0368) and
// _xmpp-server._tcp (STARTTLS, RFC 6120 §3.2.1) merged and ordered by
// priority, direct TLS first within a priority, then by weight. Only when
// neither name has a record does the domain's own address stand in on port
// 5269 (RFC 6120 §3.2.2); a "." target means no XMPP service.
func (r *Resolver) lookupXMPP(ctx context.Context, domain string) ([]Target, error) {
	if ip := net.ParseIP(domain); ip != nil {
		return []Target{xmppDefault(domain, "IP literal (default port)", 0)}, nil
	}
	results := r.lookupSRVs(ctx, domain+".", xmppQueries())
	if err := resultErrors(results); err != nil {
		return nil, err
	}
	now := r.now()
	var all []Target
	for _, res := range results {
		all = append(all, srvTargets(ProtocolXMPP, res, now)...)
	}
	if anyRecords(results) {
		return r.orderSRV(all), nil
	}
	source, ttl, err := r.addressFallback(ctx, domain)
	if err != nil || source == "" {
		return nil, err
	}
	return []Target{xmppDefault(domain, source, ttl)}, nil
}

func resultErrors(results []srvResult) error {
	var errs []error
	for _, res := range results {
		if res.err != nil {
			errs = append(errs, res.err)
		}
	}
	return errors.Join(errs...)
}

// anyRecords reports whether any of the names has SRV records, including
// "not available" ones.
func anyRecords(results []srvResult) bool {
	for _, res := range results {
		if len(res.ans.srv) > 0 {
			return true
		}
	}
	return false
}

// srvTargets turns an answer into targets, leaving out "." records.
func srvTargets(protocol string, res srvResult, now time.Time) []Target {
	ts := make([]Target, 0, len(res.ans.srv))
	for _, s := range res.ans.srv {
		if s.Target == "." {
			continue
		}
		ts = append(ts, Target{
			Protocol:  protocol,
			Transport: res.q.transport,
			Host:      strings.TrimSuffix(s.Target, "."),
			Port:      int(s.Port),
			Priority:  s.Priority,
			Weight:    s.Weight,
			Source:    "SRV " + res.name,
			TTL:       res.ans.ttl(now),
		})
	}
	return ts
}

func rfc3861Transport(t Target, rfc3263 []Target) string {
	for _, o := range rfc3263 {
		if o.Host == t.Host && o.Port == t.Port {
			return o.Transport
		}
	}
	if t.Port == DefaultSIPSPort {
		return TransportTLS
	}
	return TransportTCP
}

func dedupTargets(ts []Target) []Target {
	type key struct {
		transport, host string
		port            int
	}
	seen := make(map[key]bool, len(ts))
	out := ts[:0]
	for _, t := range ts {
		k := key{t.Transport, t.Host, t.Port}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, t)
	}
	return out
}

// addressFallback reports whether the domain itself has an address, as the
// Source of the default-port targets ("" when it has none).
func (r *Resolver) addressFallback(ctx context.Context, domain string) (source string, ttl time.Duration, err error) {
	fqdn := domain + "."
	for _, qtype := range [...]uint16{dns.TypeA, dns.TypeAAAA} {
		a, err := r.lookup(ctx, fqdn, qtype)
		if err != nil {
			return "", 0, err
		}
		if len(a.ips) > 0 {
			return dns.TypeToString[qtype] + " " + fqdn + " (default port)", a.ttl(r.now()), nil
		}
	}
	return "", 0, nil
}

func sipDefaults(host, source string, ttl time.Duration) []Target {
	mk := func(transport string, port int) Target {
		return Target{Protocol: ProtocolSIP, Transport: transport, Host: host, Port: port, Source: source, TTL: ttl}
	}
	return []Target{
		mk(TransportTLS, DefaultSIPSPort),
		mk(TransportTCP, DefaultSIPPort),
		mk(TransportUDP, DefaultSIPPort),
	}
}

func xmppDefault(host, source string, ttl time.Duration) Target {
	return Target{Protocol: ProtocolXMPP, Transport: TransportTCP, Host: host,
		Port: DefaultXMPPServerPort, Source: source, TTL: ttl}
}

// orderSRV sorts targets by ascending priority (direct TLS before other
// transports at equal priority) and orders each priority group by the
// weighted random selection of RFC 2782, drawing from r.rand.
func (r *Resolver) orderSRV(ts []Target) []Target {
	return orderSRV(ts, r.rand)
}

func orderSRV(ts []Target, rnd func(int) int) []Target {
	slices.SortStableFunc(ts, func(a, b Target) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(tlsRank(a), tlsRank(b)))
	})
	for start := 0; start < len(ts); {
		end := start + 1
		for end < len(ts) && ts[end].Priority == ts[start].Priority && tlsRank(ts[end]) == tlsRank(ts[start]) {
			end++
		}
		weightedOrder(ts[start:end], rnd)
		start = end
	}
	return ts
}

func tlsRank(t Target) int {
	if t.Transport == TransportTLS {
		return 0
	}
	return 1
}

// weightedOrder reorders one priority group in place as RFC 2782 describes:
// zero-weight records first, then repeatedly draw a number in [0, sum of the
// remaining weights] and take the first record whose running sum reaches it.
func weightedOrder(group []Target, rnd func(int) int) {
	if len(group) < 2 {
		return
	}
	slices.SortStableFunc(group, func(a, b Target) int {
		return cmp.Compare(min(a.Weight, 1), min(b.Weight, 1))
	})
	for i := range len(group) - 1 {
		rest := group[i:]
		total := 0
		for _, t := range rest {
			total += int(t.Weight)
		}
		n := rnd(total + 1)
		n = min(max(n, 0), total)
		running := 0
		pick := len(rest) - 1
		for j, t := range rest {
			running += int(t.Weight)
			if running >= n {
				pick = j
				break
			}
		}
		// Keep the order of the records not yet chosen.
		chosen := rest[pick]
		copy(rest[1:pick+1], rest[:pick])
		rest[0] = chosen
	}
}
