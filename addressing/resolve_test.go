package addressing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/umpp/umpp/internal/testenv"
)

// zone returns the DNS data of the resolver tests, as dnsmasq options.
func zone() []string {
	return []string{
		"local=/example.com/",
		"local-ttl=60",
		// capulets: a UMPP domain with RFC 3263 and RFC 6120 records.
		"srv-host=_sips._tcp.capulets.example.com,sips2.capulets.example.com,5061,20,0",
		"srv-host=_sips._tcp.capulets.example.com,sips1.capulets.example.com,5061,10,0",
		"srv-host=_sip._udp.capulets.example.com,udp.capulets.example.com,5060,10,0",
		"srv-host=_xmpp-server._tcp.capulets.example.com,x3.capulets.example.com,5270,20,0",
		"srv-host=_xmpp-server._tcp.capulets.example.com,x2.capulets.example.com,5269,10,40",
		"srv-host=_xmpp-server._tcp.capulets.example.com,x1.capulets.example.com,5269,10,60",
		// montagues: RFC 3861 records in front of RFC 3263 ones.
		"srv-host=_im._sip.montagues.example.com,sip.montagues.example.com,5061,10,0",
		"srv-host=_pres._sip.montagues.example.com,pres.montagues.example.com,5070,10,0",
		"srv-host=_sips._tcp.montagues.example.com,sip.montagues.example.com,5061,10,0",
		"srv-host=_sips._tcp.montagues.example.com,backup.montagues.example.com,5061,20,0",
		// verona: no SRV at all, only addresses.
		"host-record=verona.example.com,127.0.0.10",
		"host-record=v6.example.com,::1",
		// mantua: XMPP only.
		"srv-host=_xmpp-server._tcp.mantua.example.com,xmpp.mantua.example.com,5269,0,0",
		// friar: XMPP only by SRV, with an address of its own as most
		// domains have (the address fallback must not make it SIP too).
		"srv-host=_xmpp-server._tcp.friar.example.com,xmpp.friar.example.com,5269,0,0",
		"host-record=friar.example.com,127.0.0.40",
		// padua: direct TLS and STARTTLS at the same priority.
		"srv-host=_xmpp-server._tcp.padua.example.com,starttls.padua.example.com,5269,5,0",
		"srv-host=_xmpps-server._tcp.padua.example.com,tls.padua.example.com,5223,5,0",
		// nosip: SIP decidedly unavailable (target "."), yet an address.
		"srv-host=_sips._tcp.nosip.example.com",
		"host-record=nosip.example.com,127.0.0.11",
		// noxmpp: XMPP decidedly unavailable, yet an address.
		"srv-host=_xmpp-server._tcp.noxmpp.example.com",
		"host-record=noxmpp.example.com,127.0.0.12",
	}
}

// halfRand picks the middle of the range, which makes the weighted
// selection independent of the order of the records in the DNS answer.
func halfRand(n int) int { return n / 2 }

func newTestResolver(t testing.TB, ns *testenv.DNS, mod func(*ResolverConfig)) *Resolver {
	t.Helper()
	cfg := ResolverConfig{Server: ns.Addr, Timeout: time.Second, Rand: halfRand}
	if mod != nil {
		mod(&cfg)
	}
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	return r
}

// brief formats targets as the lines a user would read.
func brief(ts []Target) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s %s %s:%d %d/%d %s", t.Protocol, t.Transport, t.Host, t.Port, t.Priority, t.Weight, t.Source))
	}
	return out
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestResolveDNS(t *testing.T) {
	t.Parallel()
	ns := testenv.DNSMasq(t, "127.0.0.1", zone()...)
	r := newTestResolver(t, ns, nil)
	tests := []struct {
		domain string
		mode   string
		sip    []string
		xmpp   []string
	}{
		{
			domain: "capulets.example.com",
			mode:   ModeUMPP,
			sip: []string{
				"sip tls sips1.capulets.example.com:5061 10/0 SRV _sips._tcp.capulets.example.com.",
				"sip tls sips2.capulets.example.com:5061 20/0 SRV _sips._tcp.capulets.example.com.",
				"sip udp udp.capulets.example.com:5060 10/0 SRV _sip._udp.capulets.example.com.",
			},
			xmpp: []string{
				"xmpp tcp x1.capulets.example.com:5269 10/60 SRV _xmpp-server._tcp.capulets.example.com.",
				"xmpp tcp x2.capulets.example.com:5269 10/40 SRV _xmpp-server._tcp.capulets.example.com.",
				"xmpp tcp x3.capulets.example.com:5270 20/0 SRV _xmpp-server._tcp.capulets.example.com.",
			},
		},
		{
			domain: "Montagues.Example.COM.",
			mode:   ModeSIP,
			sip: []string{
				"sip tls sip.montagues.example.com:5061 10/0 SRV _im._sip.montagues.example.com.",
				"sip tcp pres.montagues.example.com:5070 10/0 SRV _pres._sip.montagues.example.com.",
				"sip tls backup.montagues.example.com:5061 20/0 SRV _sips._tcp.montagues.example.com.",
			},
		},
		{
			domain: "verona.example.com",
			mode:   ModeUMPP,
			sip: []string{
				"sip tls verona.example.com:5061 0/0 A verona.example.com. (default port)",
				"sip tcp verona.example.com:5060 0/0 A verona.example.com. (default port)",
				"sip udp verona.example.com:5060 0/0 A verona.example.com. (default port)",
			},
			xmpp: []string{"xmpp tcp verona.example.com:5269 0/0 A verona.example.com. (default port)"},
		},
		{
			domain: "v6.example.com",
			mode:   ModeUMPP,
			sip: []string{
				"sip tls v6.example.com:5061 0/0 AAAA v6.example.com. (default port)",
				"sip tcp v6.example.com:5060 0/0 AAAA v6.example.com. (default port)",
				"sip udp v6.example.com:5060 0/0 AAAA v6.example.com. (default port)",
			},
			xmpp: []string{"xmpp tcp v6.example.com:5269 0/0 AAAA v6.example.com. (default port)"},
		},
		{
			domain: "mantua.example.com",
			mode:   ModeXMPP,
			xmpp:   []string{"xmpp tcp xmpp.mantua.example.com:5269 0/0 SRV _xmpp-server._tcp.mantua.example.com."},
		},
		{
			domain: "friar.example.com",
			mode:   ModeXMPP,
			xmpp:   []string{"xmpp tcp xmpp.friar.example.com:5269 0/0 SRV _xmpp-server._tcp.friar.example.com."},
		},
		{
			domain: "padua.example.com",
			mode:   ModeXMPP,
			xmpp: []string{
				"xmpp tls tls.padua.example.com:5223 5/0 SRV _xmpps-server._tcp.padua.example.com.",
				"xmpp tcp starttls.padua.example.com:5269 5/0 SRV _xmpp-server._tcp.padua.example.com.",
			},
		},
		{
			domain: "nosip.example.com",
			mode:   ModeXMPP,
			xmpp:   []string{"xmpp tcp nosip.example.com:5269 0/0 A nosip.example.com. (default port)"},
		},
		{
			domain: "noxmpp.example.com",
			mode:   ModeSIP,
			sip: []string{
				"sip tls noxmpp.example.com:5061 0/0 A noxmpp.example.com. (default port)",
				"sip tcp noxmpp.example.com:5060 0/0 A noxmpp.example.com. (default port)",
				"sip udp noxmpp.example.com:5060 0/0 A noxmpp.example.com. (default port)",
			},
		},
		{domain: "nowhere.example.com", mode: ModeNone},
		{
			domain: "[127.0.0.5]",
			mode:   ModeUMPP,
			sip: []string{
				"sip tls 127.0.0.5:5061 0/0 IP literal (default port)",
				"sip tcp 127.0.0.5:5060 0/0 IP literal (default port)",
				"sip udp 127.0.0.5:5060 0/0 IP literal (default port)",
			},
			xmpp: []string{"xmpp tcp 127.0.0.5:5269 0/0 IP literal (default port)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			res, err := r.Resolve(t.Context(), tt.domain)
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.domain, err)
			}
			if res.Mode != tt.mode || res.ModeSource != "DNS" {
				t.Errorf("mode = %q from %q, want %q from DNS", res.Mode, res.ModeSource, tt.mode)
			}
			sameLines(t, "SIP targets", brief(res.SIP), tt.sip)
			sameLines(t, "XMPP targets", brief(res.XMPP), tt.xmpp)
			for _, tg := range slices.Concat(res.SIP, res.XMPP) {
				if tg.Source == "IP literal (default port)" {
					continue
				}
				if tg.TTL <= 0 || tg.TTL > 60*time.Second {
					t.Errorf("%s: TTL %v, want in (0, 60s]", tg, tg.TTL)
				}
			}
			// The single-protocol calls agree with Resolve.
			sip, err := r.ResolveSIP(t.Context(), tt.domain)
			if err != nil {
				t.Fatalf("ResolveSIP: %v", err)
			}
			sameLines(t, "ResolveSIP", brief(sip), tt.sip)
			xmpp, err := r.ResolveXMPP(t.Context(), tt.domain)
			if err != nil {
				t.Fatalf("ResolveXMPP: %v", err)
			}
			sameLines(t, "ResolveXMPP", brief(xmpp), tt.xmpp)
		})
	}
}

func TestResolveDomainNormalized(t *testing.T) {
	t.Parallel()
	ns := testenv.DNSMasq(t, "127.0.0.1", zone()...)
	r := newTestResolver(t, ns, nil)
	res, err := r.Resolve(t.Context(), "CAPULETS.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if res.Domain != "capulets.example.com" {
		t.Errorf("Domain = %q, want capulets.example.com", res.Domain)
	}
	for _, bad := range []string{"", "a b.example.com", "juliet@capulets.example.com", "a..example.com", strings.Repeat("x", 64) + ".example.com"} {
		if _, err := r.Resolve(t.Context(), bad); err == nil {
			t.Errorf("Resolve(%q) succeeded, want an error", bad)
		}
	}
}

func TestStaticPeers(t *testing.T) {
	t.Parallel()
	ns := testenv.DNSMasq(t, "127.0.0.1", zone()...)
	tests := []struct {
		name string
		peer StaticPeer
		mode string
		sip  []string
		xmpp []string
		// DNS names that must not be asked.
		silent []string
	}{
		{
			name: "auto with SIP only overrides DNS entirely",
			peer: StaticPeer{Domain: "capulets.example.com", SIP: "tls://127.0.0.20:5071"},
			mode: ModeSIP,
			sip:  []string{"sip tls 127.0.0.20:5071 0/0 static peer"},
			silent: []string{"SRV _sips._tcp.capulets.example.com", "SRV _im._sip.capulets.example.com",
				"SRV _xmpp-server._tcp.capulets.example.com"},
		},
		{
			name:   "auto with both",
			peer:   StaticPeer{Domain: "mantua.example.com", SIP: "udp://127.0.0.21", XMPP: "127.0.0.21:5299", Mode: "AUTO"},
			mode:   ModeUMPP,
			sip:    []string{"sip udp 127.0.0.21:5060 0/0 static peer"},
			xmpp:   []string{"xmpp tcp 127.0.0.21:5299 0/0 static peer"},
			silent: []string{"SRV _xmpp-server._tcp.mantua.example.com", "SRV _sip._udp.mantua.example.com"},
		},
		{
			name: "umpp fills the missing protocol from DNS",
			peer: StaticPeer{Domain: "montagues.example.com", XMPP: "tls://[::1]", Mode: ModeUMPP},
			mode: ModeUMPP,
			sip: []string{
				"sip tls sip.montagues.example.com:5061 10/0 SRV _im._sip.montagues.example.com.",
				"sip tcp pres.montagues.example.com:5070 10/0 SRV _pres._sip.montagues.example.com.",
				"sip tls backup.montagues.example.com:5061 20/0 SRV _sips._tcp.montagues.example.com.",
			},
			xmpp:   []string{"xmpp tls ::1:5269 0/0 static peer"},
			silent: []string{"SRV _xmpp-server._tcp.montagues.example.com"},
		},
		{
			name:   "xmpp mode without address resolves XMPP only",
			peer:   StaticPeer{Domain: "verona.example.com", Mode: ModeXMPP},
			mode:   ModeXMPP,
			xmpp:   []string{"xmpp tcp verona.example.com:5269 0/0 A verona.example.com. (default port)"},
			silent: []string{"SRV _sips._tcp.verona.example.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case has its own resolver, so nothing comes from a cache.
			r := newTestResolver(t, ns, func(c *ResolverConfig) { c.Peers = []StaticPeer{tt.peer} })
			res, err := r.Resolve(t.Context(), tt.peer.Domain)
			if err != nil {
				t.Fatal(err)
			}
			if res.Mode != tt.mode || res.ModeSource != SourceStaticPeer {
				t.Errorf("mode = %q from %q, want %q from static peer", res.Mode, res.ModeSource, tt.mode)
			}
			sameLines(t, "SIP targets", brief(res.SIP), tt.sip)
			sameLines(t, "XMPP targets", brief(res.XMPP), tt.xmpp)
			for _, q := range ns.Queries(t) {
				if slices.Contains(tt.silent, q) {
					t.Errorf("DNS was asked %q despite the static peer", q)
				}
			}
		})
	}
}

func TestSetPeers(t *testing.T) {
	t.Parallel()
	ns := testenv.DNSMasq(t, "127.0.0.1", zone()...)
	r := newTestResolver(t, ns, nil)
	ctx := t.Context()

	bad := []StaticPeer{
		{Domain: "a.example.com", SIP: "sctp://h:1"},
		{Domain: "b.example.com", XMPP: "h:99999"},
		{Domain: "c.example.com", Mode: "smtp", SIP: "tcp://h"},
		{Domain: "d.example.com"},
		{Domain: "e.example.com", Mode: ModeSIP, XMPP: "h"},
		{Domain: "f.example.com", SIP: "tcp://user@h:5060"},
		{Domain: "g.example.com", SIP: "tcp://h"},
		{Domain: "G.example.com.", XMPP: "h"},
		{Domain: "", SIP: "tcp://h"},
	}
	err := r.SetPeers(bad)
	if err == nil {
		t.Fatal("SetPeers accepted invalid peers")
	}
	for _, want := range []string{`"a.example.com"`, `"b.example.com"`, `"c.example.com"`, `"d.example.com"`,
		`"e.example.com"`, `"f.example.com"`, "configured twice", "peer 9"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), `peer 7 `) {
		t.Errorf("valid peer 7 reported:\n%v", err)
	}
	if _, err := NewResolver(ResolverConfig{Server: ns.Addr, Peers: bad}); err == nil {
		t.Error("NewResolver accepted invalid peers")
	}

	// The failed reload kept the (empty) previous set: DNS answers.
	res, err := r.Resolve(ctx, "mantua.example.com")
	if err != nil || res.ModeSource != "DNS" {
		t.Fatalf("after failed reload: %+v, %v", res, err)
	}

	// Reloads race with lookups without harm, and take effect.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := r.Resolve(ctx, "mantua.example.com"); err != nil {
					t.Errorf("Resolve during reload: %v", err)
					return
				}
			}
		})
	}
	peers := []StaticPeer{{Domain: "mantua.example.com", SIP: "tcp://127.0.0.30:5060"}}
	for i := range 50 {
		var p []StaticPeer
		if i%2 == 0 {
			p = peers
		}
		if err := r.SetPeers(p); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := r.SetPeers(peers); err != nil {
		t.Fatal(err)
	}
	res, err = r.Resolve(ctx, "mantua.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != ModeSIP || res.ModeSource != SourceStaticPeer {
		t.Errorf("after reload: mode %q from %q, want sip from static peer", res.Mode, res.ModeSource)
	}
}

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time                { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration)       { c.ns.Add(int64(d)) }
func withClock(c *clock) func(*ResolverConfig) { return func(cfg *ResolverConfig) { cfg.Now = c.Now } }

func TestCache(t *testing.T) {
	t.Parallel()
	ns := testenv.DNSMasq(t, "127.0.0.1", zone()...)
	clk := newClock()
	r := newTestResolver(t, ns, withClock(clk))
	ctx := t.Context()

	first, err := r.Resolve(ctx, "capulets.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"nowhere.example.com", "padua.example.com"} {
		if _, err := r.Resolve(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(3 * time.Second)
	again, err := r.Resolve(ctx, "capulets.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if n := ns.QueryCount(t, "SRV", "_sips._tcp.capulets.example.com"); n != 1 {
		t.Errorf("dnsmasq got %d queries for _sips._tcp.capulets.example.com, want 1 (second from cache)", n)
	}
	sameLines(t, "cached SIP targets", brief(again.SIP), brief(first.SIP))
	if got, want := again.SIP[0].TTL, first.SIP[0].TTL-3*time.Second; got != want {
		t.Errorf("cached TTL = %v, want %v (counting down)", got, want)
	}

	// With the server gone, answers still come from the cache for their TTL:
	// positive ones for local-ttl (60s), negative ones (NXDOMAIN, NODATA)
	// for the 5s floor, as dnsmasq sends no SOA.
	ns.Stop()
	res, err := r.Resolve(ctx, "capulets.example.com")
	if err != nil || res.Mode != ModeUMPP {
		t.Errorf("cached answers after server stop: mode %q, %v", res.Mode, err)
	}
	res, err = r.Resolve(ctx, "nowhere.example.com")
	if err != nil || res.Mode != ModeNone {
		t.Errorf("cached negative answer after server stop: mode %q, %v", res.Mode, err)
	}
	clk.Advance(3 * time.Second) // 6s since the answers
	if res, err := r.Resolve(ctx, "nowhere.example.com"); err == nil {
		t.Errorf("negative answer still cached after 6s: %+v", res)
	}
	// padua's two XMPP names both have records, so nothing negative.
	xmpp, err := r.ResolveXMPP(ctx, "padua.example.com")
	if err != nil || len(xmpp) != 2 {
		t.Errorf("positive answer expired before its TTL: %v, %v", xmpp, err)
	}
	clk.Advance(55 * time.Second)
	if xmpp, err := r.ResolveXMPP(ctx, "padua.example.com"); err == nil {
		t.Errorf("positive answer still cached after 61s: %v", xmpp)
	}
}

func TestConcurrentLookupsCollapse(t *testing.T) {
	t.Parallel()
	ns := testenv.DNSMasq(t, "127.0.0.1", zone()...)
	r := newTestResolver(t, ns, nil)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := r.Resolve(t.Context(), "capulets.example.com"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, name := range []string{"_im._sip", "_pres._sip", "_sips._tcp", "_sip._tcp", "_sip._udp", "_xmpps-server._tcp", "_xmpp-server._tcp"} {
		if n := ns.QueryCount(t, "SRV", name+".capulets.example.com"); n != 1 {
			t.Errorf("%s: %d queries for 20 concurrent lookups, want 1", name, n)
		}
	}
}

func TestDNSFailures(t *testing.T) {
	t.Parallel()
	ns := testenv.DNSMasq(t, "127.0.0.1", zone()...)

	// A server that reads queries and never answers.
	black, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { black.Close() })
	// A port where nothing listens.
	closedPort := testenv.FreePort(t, "udp", "127.0.0.1")

	tests := []struct {
		name    string
		server  string
		domain  string
		timeout bool
		want    string
	}{
		{"no answer", black.LocalAddr().String(), "capulets.example.com", true, "capulets.example.com."},
		{"port closed", fmt.Sprintf("127.0.0.1:%d", closedPort), "capulets.example.com", false, "refused"},
		{"refused", ns.Addr, "elsewhere.test", false, "REFUSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewResolver(ResolverConfig{Server: tt.server, Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res, err := r.Resolve(t.Context(), tt.domain)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("Resolve succeeded: %+v", res)
			}
			if took > 2*time.Second {
				t.Errorf("took %v with a 200ms timeout", took)
			}
			var de *DNSError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DNSError", err)
			}
			if de.Timeout() != tt.timeout {
				t.Errorf("Timeout() = %v, want %v (%v)", de.Timeout(), tt.timeout, err)
			}
			for _, want := range []string{tt.server, tt.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}

	// A failure is not cached: the next lookup asks again.
	r := newTestResolver(t, ns, nil)
	for range 2 {
		if _, err := r.ResolveXMPP(t.Context(), "other.test"); err == nil {
			t.Fatal("ResolveXMPP of a refused name succeeded")
		}
	}
	if n := ns.QueryCount(t, "SRV", "_xmpp-server._tcp.other.test"); n != 2 {
		t.Errorf("refused answer: %d queries for two lookups, want 2 (failures are not cached)", n)
	}

	// A caller's deadline ends its wait.
	slow, err := NewResolver(ResolverConfig{Server: black.LocalAddr().String(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := slow.ResolveSIP(ctx, "capulets.example.com"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ResolveSIP with an expired context: %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("ResolveSIP ignored its context for %v", took)
	}
}

func TestSystemServers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"two servers", write("two", "search example.com\nnameserver 127.0.0.9\nnameserver ::1\noptions ndots:1\n"),
			[]string{"127.0.0.9:53", "[::1]:53"}},
		{"no server", write("none", "search example.com\n"), []string{"127.0.0.1:53"}},
		{"missing file", filepath.Join(dir, "absent"), []string{"127.0.0.1:53"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewResolver(ResolverConfig{ResolvConf: tt.path})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Servers(); !slices.Equal(got, tt.want) {
				t.Errorf("Servers() = %q, want %q", got, tt.want)
			}
		})
	}
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.2", "127.0.0.2:53"},
		{"127.0.0.2:5353", "127.0.0.2:5353"},
		{"::1", "[::1]:53"},
		{"[::1]:54", "[::1]:54"},
	} {
		r, err := NewResolver(ResolverConfig{Server: tt.in})
		if err != nil {
			t.Errorf("Server %q: %v", tt.in, err)
			continue
		}
		if got := r.Servers(); !slices.Equal(got, []string{tt.want}) {
			t.Errorf("Server %q: Servers() = %q, want %q", tt.in, got, tt.want)
		}
	}
	if _, err := NewResolver(ResolverConfig{Server: "127.0.0.1:0x35"}); err == nil {
		t.Error("NewResolver accepted port 0x35")
	}
}

func TestWeightedOrder(t *testing.T) {
	t.Parallel()
	// seq returns the given draws in turn and records the ranges asked.
	seq := func(draws ...int) (func(int) int, *[]int) {
		var asked []int
		return func(n int) int {
			asked = append(asked, n)
			d := draws[0]
			draws = draws[1:]
			return d
		}, &asked
	}
	tg := func(host string, prio, weight uint16) Target {
		return Target{Host: host, Priority: prio, Weight: weight, Transport: TransportTCP}
	}
	tests := []struct {
		name  string
		in    []Target
		draws []int
		want  []string
		asked []int // the n of each Rand call
	}{
		{
			name:  "smallest draw takes the first record",
			in:    []Target{tg("a", 0, 10), tg("b", 0, 20), tg("c", 0, 30)},
			draws: []int{0, 0},
			want:  []string{"a", "b", "c"},
			asked: []int{61, 51},
		},
		{
			name:  "largest draw takes the last record",
			in:    []Target{tg("a", 0, 10), tg("b", 0, 20), tg("c", 0, 30)},
			draws: []int{60, 30},
			want:  []string{"c", "b", "a"},
			asked: []int{61, 31},
		},
		{
			name:  "running sum boundaries",
			in:    []Target{tg("a", 0, 10), tg("b", 0, 20), tg("c", 0, 30)},
			draws: []int{11, 10},
			want:  []string{"b", "a", "c"}, // 11 > 10 → b; then 10 ≤ 10 → a
			asked: []int{61, 41},
		},
		{
			name:  "zero weights go first and are taken on draw 0",
			in:    []Target{tg("a", 0, 5), tg("z", 0, 0), tg("b", 0, 5)},
			draws: []int{0, 6},
			want:  []string{"z", "b", "a"},
			asked: []int{11, 11},
		},
		{
			name:  "priority before weight",
			in:    []Target{tg("low", 20, 100), tg("high2", 10, 1), tg("high1", 10, 1)},
			draws: []int{2},
			want:  []string{"high1", "high2", "low"},
			asked: []int{3},
		},
		{
			name:  "direct TLS before STARTTLS at equal priority",
			in:    []Target{tg("tcp", 5, 0), {Host: "tls", Priority: 5, Transport: TransportTLS}, tg("later", 6, 0)},
			want:  []string{"tls", "tcp", "later"},
			asked: nil,
		},
		{
			name:  "out of range draws are clamped",
			in:    []Target{tg("a", 0, 1), tg("b", 0, 1)},
			draws: []int{99},
			want:  []string{"b", "a"},
			asked: []int{3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rnd, asked := seq(tt.draws...)
			got := orderSRV(slices.Clone(tt.in), rnd)
			hosts := make([]string, len(got))
			for i, g := range got {
				hosts[i] = g.Host
			}
			if !slices.Equal(hosts, tt.want) {
				t.Errorf("order = %q, want %q", hosts, tt.want)
			}
			if !slices.Equal(*asked, tt.asked) {
				t.Errorf("Rand asked for %v, want %v", *asked, tt.asked)
			}
		})
	}
}

// TestWeightedDistribution checks that weights matter with the real random
// source: over many orderings the heavier record comes first about as often
// as its share of the weight.
func TestWeightedDistribution(t *testing.T) {
	t.Parallel()
	r, err := NewResolver(ResolverConfig{Server: "127.0.0.1:53"})
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 20000
	heavyFirst := 0
	for range rounds {
		got := r.orderSRV([]Target{{Host: "light", Weight: 10}, {Host: "heavy", Weight: 90}})
		if got[0].Host == "heavy" {
			heavyFirst++
		}
	}
	// Expected share 90/101 ≈ 0.891 (draws are in [0, 100]).
	if share := float64(heavyFirst) / rounds; share < 0.86 || share > 0.92 {
		t.Errorf("heavy record first in %.3f of orderings, want about 0.89", share)
	}
}

func BenchmarkResolveCached(b *testing.B) {
	ns := testenv.DNSMasq(b, "127.0.0.1", zone()...)
	r := newTestResolver(b, ns, nil)
	ctx := b.Context()
	if _, err := r.Resolve(ctx, "capulets.example.com"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(ctx, "capulets.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAnswerLifetime(t *testing.T) {
	t.Parallel()
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("NewRR(%q): %v", s, err)
		}
		return r
	}
	soa := func(ttl, minttl int) dns.RR {
		return rr(fmt.Sprintf("example.com. %d IN SOA ns.example.com. admin.example.com. 1 3600 600 86400 %d", ttl, minttl))
	}
	tests := []struct {
		name     string
		rcode    int
		answer   []dns.RR
		ns       []dns.RR
		negative bool
		srv      int
		ttl      time.Duration
	}{
		{"smallest TTL of the RRset", dns.RcodeSuccess, []dns.RR{
			rr("_sip._udp.example.com. 300 IN SRV 10 0 5060 a.example.com."),
			rr("_sip._udp.example.com. 120 IN SRV 20 0 5060 b.example.com."),
		}, nil, false, 2, 120 * time.Second},
		{"other types ignored", dns.RcodeSuccess, []dns.RR{
			rr("_sip._udp.example.com. 1 IN CNAME _sip._udp.other.example.com."),
			rr("_sip._udp.other.example.com. 90 IN SRV 10 0 5060 a.example.com."),
		}, nil, false, 1, 90 * time.Second},
		{"positive floor 5s", dns.RcodeSuccess, []dns.RR{rr("_sip._udp.example.com. 0 IN SRV 10 0 5060 a.example.com.")}, nil, false, 1, 5 * time.Second},
		{"positive ceiling 1h", dns.RcodeSuccess, []dns.RR{rr("_sip._udp.example.com. 86400 IN SRV 10 0 5060 a.example.com.")}, nil, false, 1, time.Hour},
		{"NXDOMAIN uses SOA minimum", dns.RcodeNameError, nil, []dns.RR{soa(3600, 60)}, true, 0, time.Minute},
		{"NODATA uses SOA TTL when smaller", dns.RcodeSuccess, nil, []dns.RR{soa(30, 600)}, true, 0, 30 * time.Second},
		{"negative ceiling 5m", dns.RcodeNameError, nil, []dns.RR{soa(86400, 86400)}, true, 0, 5 * time.Minute},
		{"negative without SOA: floor", dns.RcodeNameError, nil, nil, true, 0, 5 * time.Second},
	}
	clk := newClock()
	r, err := NewResolver(ResolverConfig{Server: "127.0.0.1:53", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("_sip._udp.example.com.", dns.TypeSRV)
			m.Rcode, m.Answer, m.Ns = tt.rcode, tt.answer, tt.ns
			a := r.makeAnswer(m, dns.TypeSRV)
			if a.negative != tt.negative || len(a.srv) != tt.srv {
				t.Errorf("negative=%v with %d SRV, want %v with %d", a.negative, len(a.srv), tt.negative, tt.srv)
			}
			if got := a.ttl(clk.Now()); got != tt.ttl {
				t.Errorf("cached for %v, want %v", got, tt.ttl)
			}
		})
	}
}

func TestTruncatedAnswerRetriedOverTCP(t *testing.T) {
	t.Parallel()
	const records = 60 // well over 1232 bytes
	opts := []string{"local=/example.com/", "local-ttl=60"}
	for i := range records {
		opts = append(opts, fmt.Sprintf("srv-host=_xmpp-server._tcp.big.example.com,xmpp-server-with-a-long-name-%02d.big.example.com,5269,%d,0", i, i))
	}
	ns := testenv.DNSMasq(t, "127.0.0.1", opts...)
	r := newTestResolver(t, ns, nil)
	ts, err := r.ResolveXMPP(t.Context(), "big.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != records {
		t.Fatalf("got %d targets, want %d", len(ts), records)
	}
	for i, tg := range ts {
		if want := fmt.Sprintf("xmpp-server-with-a-long-name-%02d.big.example.com", i); tg.Host != want {
			t.Errorf("target %d = %s, want host %s", i, tg.Host, want)
		}
	}
}

func TestTargetString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		t    Target
		want string
	}{
		{Target{Protocol: ProtocolSIP, Transport: TransportTLS, Host: "sip.example.com", Port: 5061, Priority: 10, Weight: 5, Source: "SRV _sips._tcp.example.com."},
			"sip tls sip.example.com:5061 prio=10 weight=5 (SRV _sips._tcp.example.com.)"},
		{Target{Protocol: ProtocolXMPP, Transport: TransportTCP, Host: "::1", Port: 5269, Source: SourceStaticPeer},
			"xmpp tcp [::1]:5269 prio=0 weight=0 (static peer)"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
