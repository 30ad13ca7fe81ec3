package xmppside

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"mellium.im/sasl"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/internal/testenv"
)

const (
	prosodyDomain = "prosody.example.org"
	prosodyIP     = "127.0.0.4"
	umppDomain    = "umpp.example.net"
	umppIP        = "127.0.0.5"
	dnsIP         = "127.0.0.7"
)

// prosodyBin returns the path of prosody, or skips (fails when
// UMPP_REQUIRE_PEERS is set).
func prosodyBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prosody")
	if err != nil {
		if os.Getenv(testenv.RequirePeersEnv) != "" {
			t.Fatalf("prosody not installed but %s is set: %v", testenv.RequirePeersEnv, err)
		}
		t.Skipf("prosody not installed (%v); install the Debian package prosody", err)
	}
	return p
}

type prosodyConfig struct {
	Dir, IP, Domain, DNS string
	C2SPort, S2SPort     int
	SecureAuth           bool
}

// startProsody writes a configuration from testdata/prosody, registers
// juliet and runs Prosody in the foreground until the test ends.
func startProsody(t *testing.T, cfg prosodyConfig, id tlsIdentity, ca []byte) {
	t.Helper()
	bin := prosodyBin(t)
	ctl, err := exec.LookPath("prosodyctl")
	if err != nil {
		t.Fatalf("prosodyctl: %v", err)
	}
	tmpl, err := template.ParseFiles("testdata/prosody/prosody.cfg.lua.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, cfg); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cfg.Dir, "prosody.cfg.lua")
	for name, data := range map[string][]byte{"prosody.cfg.lua": b.Bytes(), "server.crt": id.pem, "server.key": id.key, "ca.pem": ca} {
		if err := os.WriteFile(filepath.Join(cfg.Dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ctl, "--config", file, "register", "juliet", cfg.Domain, "j-pw").CombinedOutput(); err != nil {
		t.Fatalf("prosodyctl register: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--config", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prosody: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(cfg.Dir, "prosody.log"))
			t.Logf("prosody output:\n%s\nprosody log (tail):\n%s", out.String(), tail(string(log), 400))
		}
	})
	addr := net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.C2SPort))
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prosody did not listen on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestProsodyS2S federates umppd's XMPP host with a real Prosody: both
// find each other through DNS SRV records served by dnsmasq; a Prosody
// user and an umppd user exchange threaded messages and presence
// subscriptions both ways, over dialback (self-signed certificates nobody
// trusts) and over SASL EXTERNAL (each trusts the other's certificate;
// Prosody with s2s_secure_auth, so it refuses anything else).
func TestProsodyS2S(t *testing.T) {
	prosodyBin(t)
	for _, tc := range []struct {
		name    string
		trusted bool
		auth    string
	}{
		{"dialback", false, "dialback"},
		{"certificates", true, "external"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pC2S := testenv.FreePort(t, "tcp", prosodyIP)
			pS2S := testenv.FreePort(t, "tcp", prosodyIP)
			uS2S := testenv.FreePort(t, "tcp", umppIP)
			dns := testenv.DNSMasq(t, dnsIP,
				"srv-host=_xmpp-server._tcp."+prosodyDomain+","+prosodyDomain+","+strconv.Itoa(pS2S)+",0,0",
				"host-record="+prosodyDomain+","+prosodyIP,
				"srv-host=_xmpp-server._tcp."+umppDomain+","+umppDomain+","+strconv.Itoa(uS2S)+",0,0",
				"host-record="+umppDomain+","+umppIP,
				"local=/example.org/", "local=/example.net/",
			)
			res, err := addressing.NewResolver(addressing.ResolverConfig{Server: dns.Addr})
			if err != nil {
				t.Fatal(err)
			}
			pid := newIdentity(t, prosodyDomain, net.ParseIP(prosodyIP))
			uid := newIdentity(t, umppDomain, net.ParseIP(umppIP))
			var trust []tlsIdentity
			prosodyCA := pid.pem // trusts only itself: our certificate fails
			if tc.trusted {
				trust = []tlsIdentity{pid}
				prosodyCA = uid.pem
			}
			u := startHostWithID(t, hostConfig{domain: umppDomain, ip: umppIP, s2sPort: uS2S, resolver: res, trust: trust}, uid)
			u.addUser("romeo", "r-pw")
			host, port, _ := net.SplitHostPort(dns.Addr)
			startProsody(t, prosodyConfig{Dir: t.TempDir(), IP: prosodyIP, Domain: prosodyDomain, DNS: host + "@" + port,
				C2SPort: pC2S, S2SPort: pS2S, SecureAuth: tc.trusted}, pid, prosodyCA)

			romeo := u.login("romeo", "r-pw", "orchard")
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pid.pem)
			juliet := loginAt(t, net.JoinHostPort(prosodyIP, strconv.Itoa(pC2S)), "juliet@"+prosodyDomain, "j-pw", sasl.Plain,
				&tls.Config{RootCAs: pool, ServerName: prosodyDomain})
			converse(t, romeo, juliet)
			if auth := u.linkAuth(prosodyDomain); auth != tc.auth {
				t.Errorf("umppd -> prosody authenticated with %q, want %q", auth, tc.auth)
			}
			u.srv.mu.Lock()
			var inAuth []string
			for c := range u.srv.s2sConns {
				if p := c.how.Load(); p != nil {
					inAuth = append(inAuth, *p)
				}
			}
			u.srv.mu.Unlock()
			if len(inAuth) == 0 || inAuth[0] != tc.auth {
				t.Errorf("inbound streams from prosody authenticated with %q, want %q", inAuth, tc.auth)
			}
		})
	}
}
