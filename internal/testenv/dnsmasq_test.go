package testenv

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func query(t *testing.T, server, name string, qtype uint16) (*dns.Msg, error) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, server)
	return r, err
}

func TestDNSMasq(t *testing.T) {
	t.Parallel()
	d := DNSMasq(t, "127.0.0.2",
		"--local=/example.com/",
		"local-ttl=42",
		"srv-host=_xmpp-server._tcp.capulets.example.com,xmpp.capulets.example.com,5269,10,5",
		"host-record=capulets.example.com,127.0.0.10",
	)
	if host, _, _ := net.SplitHostPort(d.Addr); host != "127.0.0.2" {
		t.Errorf("Addr = %q, want 127.0.0.2:port", d.Addr)
	}

	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  string // the answer's first RR, "" for none
	}{
		{"_xmpp-server._tcp.capulets.example.com", dns.TypeSRV, dns.RcodeSuccess,
			"_xmpp-server._tcp.capulets.example.com.\t42\tIN\tSRV\t10 5 5269 xmpp.capulets.example.com."},
		{"capulets.example.com", dns.TypeA, dns.RcodeSuccess, "capulets.example.com.\t42\tIN\tA\t127.0.0.10"},
		{"capulets.example.com", dns.TypeAAAA, dns.RcodeSuccess, ""},
		{"nowhere.example.com", dns.TypeA, dns.RcodeNameError, ""},
		{"elsewhere.test", dns.TypeA, dns.RcodeRefused, ""}, // never forwarded
	}
	for _, tt := range tests {
		r, err := query(t, d.Addr, tt.name, tt.qtype)
		if err != nil {
			t.Fatalf("%s %s: %v", dns.TypeToString[tt.qtype], tt.name, err)
		}
		got := ""
		if len(r.Answer) > 0 {
			got = r.Answer[0].String()
		}
		if r.Rcode != tt.rcode || got != tt.want {
			t.Errorf("%s %s: %s %q, want %s %q", dns.TypeToString[tt.qtype], tt.name,
				dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tt.rcode], tt.want)
		}
	}

	want := []string{
		"SRV _xmpp-server._tcp.capulets.example.com",
		"A capulets.example.com",
		"AAAA capulets.example.com",
		"A nowhere.example.com",
		"A elsewhere.test",
	}
	if got := d.Queries(t); !slices.Equal(got, want) {
		t.Errorf("Queries() = %q, want %q", got, want)
	}
	// Asking again adds no probes of the helper's own.
	if got := d.Queries(t); !slices.Equal(got, want) {
		t.Errorf("second Queries() = %q, want %q", got, want)
	}
	if n := d.QueryCount(t, "A", "capulets.example.com."); n != 1 {
		t.Errorf("QueryCount(A capulets.example.com.) = %d, want 1", n)
	}

	d.Stop()
	d.Stop() // idempotent
	if _, err := query(t, d.Addr, "capulets.example.com", dns.TypeA); err == nil {
		t.Error("dnsmasq still answers after Stop")
	}
}

func TestDNSMasqBadOption(t *testing.T) {
	t.Parallel()
	prog := lookProgram(t, "dnsmasq", "dnsmasq-base")
	port := FreePort(t, "tcp+udp", "127.0.0.1")
	d, err := startDNSMasq(prog, "127.0.0.1", port, []string{"no-such-option"})
	if err == nil {
		d.Stop()
		t.Fatal("dnsmasq started with an unknown option")
	}
	if !strings.Contains(err.Error(), "exited early") || !strings.Contains(err.Error(), "no-such-option") {
		t.Errorf("error does not explain the early exit: %v", err)
	}
}

func TestFreePort(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"tcp", "udp", "tcp+udp"} {
		t.Run(network, func(t *testing.T) {
			port := FreePort(t, network, "127.0.0.3")
			addr := net.JoinHostPort("127.0.0.3", strconv.Itoa(port))
			if network != "udp" {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatalf("tcp port %d not free: %v", port, err)
				}
				l.Close()
			}
			if network != "tcp" {
				c, err := net.ListenPacket("udp", addr)
				if err != nil {
					t.Fatalf("udp port %d not free: %v", port, err)
				}
				c.Close()
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line, qtype, name string
		ok                bool
	}{
		{"dnsmasq[42]: query[SRV] _sip._udp.example.com from 127.0.0.1", "SRV", "_sip._udp.example.com", true},
		{"dnsmasq[42]: query[type=65] example.com from 127.0.0.1", "type=65", "example.com", true},
		{"dnsmasq[42]: config example.com is NXDOMAIN", "", "", false},
		{"dnsmasq[42]: started, version 2.90 cachesize 150", "", "", false},
	}
	for _, tt := range tests {
		qtype, name, ok := parseQuery(tt.line)
		if qtype != tt.qtype || name != tt.name || ok != tt.ok {
			t.Errorf("parseQuery(%q) = %q, %q, %v; want %q, %q, %v", tt.line, qtype, name, ok, tt.qtype, tt.name, tt.ok)
		}
	}
}
