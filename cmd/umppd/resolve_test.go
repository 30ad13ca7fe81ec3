package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/umpp/umpp/internal/testenv"
)

// umppd resolve against a real dnsmasq: SRV targets in priority order, a
// static peer overriding DNS, and the A-record fallback with default ports.
func TestResolveWithDNSMasq(t *testing.T) {
	dns := testenv.DNSMasq(t, "127.0.0.1",
		"local=/example.com/",
		"local-ttl=60",
		// Listed out of order: the output must sort by priority.
		"srv-host=_sips._tcp.capulets.example.com,sip2.capulets.example.com,5061,20,0",
		"srv-host=_sips._tcp.capulets.example.com,sip1.capulets.example.com,5061,10,0",
		"srv-host=_sip._udp.capulets.example.com,sip1.capulets.example.com,5060,30,0",
		"srv-host=_xmpp-server._tcp.capulets.example.com,xmpp2.capulets.example.com,5270,5,0",
		"srv-host=_xmpp-server._tcp.capulets.example.com,xmpp1.capulets.example.com,5269,1,0",
		"host-record=verona.example.com,127.0.0.9",
		// Overridden by the static peer below: must not be used.
		"srv-host=_xmpp-server._tcp.friar.example.com,dns.friar.example.com,5269,1,0",
	)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`[dns]
server = %q
[[peer]]
domain = "friar.example.com"
xmpp = "127.0.0.7:5269"
`, dns.Addr))

	t.Run("SRV priority order", func(t *testing.T) {
		code, out, errOut := umppd(t, "", "resolve", "-config", cfg, "im:Juliet@Capulets.Example.COM")
		if code != 0 {
			t.Fatalf("resolve = %d; stderr %s", code, errOut)
		}
		for _, want := range []string{
			"address juliet@capulets.example.com (from im)",
			"pres:juliet@capulets.example.com",
			"domain capulets.example.com: mode umpp",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		got := targetRows(out)
		want := []string{
			"tls sip1.capulets.example.com 5061 10 0 SRV _sips._tcp.capulets.example.com.",
			"tls sip2.capulets.example.com 5061 20 0 SRV _sips._tcp.capulets.example.com.",
			"udp sip1.capulets.example.com 5060 30 0 SRV _sip._udp.capulets.example.com.",
			"tcp xmpp1.capulets.example.com 5269 1 0 SRV _xmpp-server._tcp.capulets.example.com.",
			"tcp xmpp2.capulets.example.com 5270 5 0 SRV _xmpp-server._tcp.capulets.example.com.",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("targets:\n%s\nwant:\n%s\nfull output:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out)
		}
	})

	t.Run("static peer overrides DNS", func(t *testing.T) {
		code, out, errOut := umppd(t, "", "resolve", "-config", cfg, "friar@friar.example.com/cell")
		if code != 0 {
			t.Fatalf("resolve = %d; stderr %s", code, errOut)
		}
		got := targetRows(out)
		if len(got) != 1 || !strings.HasPrefix(got[0], "tcp 127.0.0.7 5269") || !strings.HasSuffix(got[0], "static peer") {
			t.Errorf("targets %q, want one from the static peer:\n%s", got, out)
		}
		if !strings.Contains(out, "SIP targets: none") || !strings.Contains(out, "mode xmpp") {
			t.Errorf("want no SIP targets and mode xmpp:\n%s", out)
		}
		if n := dns.QueryCount(t, "SRV", "_xmpp-server._tcp.friar.example.com"); n != 0 {
			t.Errorf("DNS was asked %d times for a statically configured peer", n)
		}
	})

	t.Run("A record fallback", func(t *testing.T) {
		code, out, errOut := umppd(t, "", "resolve", "-config", cfg, "sip:mercutio@verona.example.com")
		if code != 0 {
			t.Fatalf("resolve = %d; stderr %s", code, errOut)
		}
		rows := targetRows(out)
		joined := strings.Join(rows, "\n")
		for _, want := range []string{"tls verona.example.com 5061", "tcp verona.example.com 5060", "udp verona.example.com 5060", "tcp verona.example.com 5269"} {
			if !strings.Contains(joined, want) {
				t.Errorf("targets lack %q:\n%s", want, out)
			}
		}
	})

	t.Run("hosted domain", func(t *testing.T) {
		_, out, _ := umppd(t, "", "resolve", "-config", cfg, "romeo@montague.example.net")
		if !strings.Contains(out, "hosted here") {
			t.Errorf("a hosted domain is not reported as local:\n%s", out)
		}
	})

	t.Run("bad URI", func(t *testing.T) {
		code, _, errOut := umppd(t, "", "resolve", "-config", cfg, "soap.beep://x")
		if code != 1 || errOut == "" {
			t.Errorf("resolve of an unsupported scheme = %d, %q; want 1 and a message", code, errOut)
		}
	})
	_ = filepath.Join
}

var rowRE = regexp.MustCompile(`^\s+\d+\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.+?)\s*$`)

// targetRows returns the target table rows of resolve's output as
// "transport host port priority weight source".
func targetRows(out string) []string {
	var rows []string
	for _, line := range strings.Split(out, "\n") {
		if m := rowRE.FindStringSubmatch(line); m != nil {
			rows = append(rows, strings.Join(m[1:], " "))
		}
	}
	return rows
}
