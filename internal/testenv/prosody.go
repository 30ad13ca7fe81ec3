package testenv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Notes on Debian's Prosody as a test peer (bookworm: prosody 0.12.3 with
// lua-unbound):
//
//   - As root it needs run_as_root = true; -F (no-daemonize) keeps it in
//     the foreground, and SIGTERM stops it within a few hundred ms.
//   - It resolves names with libunbound (lua-unbound). The unbound table
//     of the configuration with resolvconf = false, hoststxt = false and
//     forward = "IP@PORT" makes it ask that server only; with no forward
//     at all it would recurse from the root servers, off loopback. There
//     is no per-domain static route for s2s in 0.12's core, so peers are
//     found through a dnsmasq serving their _xmpp-server._tcp SRV records.
//   - Over plain TCP it refuses PLAIN unless allow_unencrypted_plain_auth
//     is set; here TLS is required on c2s, so clients use STARTTLS and
//     then PLAIN (or SCRAM-SHA-1).
//   - With self-signed certificates nobody trusts, s2s tries SASL
//     EXTERNAL, logs the certificate failure and falls back to dialback
//     (s2s_secure_auth = false).
//   - prosodyctl register works with the server stopped (internal_plain
//     storage: files under data_path).

// ProsodyOptions says what [StartProsody] runs.
type ProsodyOptions struct {
	// Domain is the XMPP domain (virtual host) Prosody serves, e.g.
	// "verona.example.org".
	Domain string
	// IP is the loopback address it binds; "" means 127.0.0.1.
	IP string
	// Port is its server-to-server port; 0 means a free one.
	Port int
	// C2SPort is its client-to-server port (STARTTLS); 0 means a free
	// one.
	C2SPort int
	// Peers maps other XMPP domains to "ip:port" of their s2s listener.
	// StartProsody runs a dnsmasq of its own serving an
	// _xmpp-server._tcp SRV record and an A record for each, which is
	// where Prosody looks names up. Leave it empty when DNS is set.
	Peers map[string]string
	// DNS is "ip:port" of a DNS server (e.g. a test's [DNSMasq]) Prosody
	// should use instead of one of its own; it must serve the peers'
	// records. DNS and Peers are exclusive.
	DNS string
	// Users maps local parts to passwords; the accounts exist before
	// Prosody starts.
	Users map[string]string
	// S2SPlain lets server-to-server streams go without TLS
	// (s2s_require_encryption = false). By default Prosody insists on
	// STARTTLS, as a real deployment does.
	S2SPlain bool
}

// Prosody is a running Prosody started by [StartProsody].
type Prosody struct {
	// Domain is the XMPP domain it serves.
	Domain string
	// Addr is its server-to-server listener, "127.0.0.x:port".
	Addr string
	// C2SAddr is its client-to-server listener (STARTTLS required).
	C2SAddr string
	// DNS is the DNS server it uses, "ip:port".
	DNS string
	// CertPEM is its self-signed certificate, for clients that want to
	// check it (the certificate names Domain and the IP address).
	CertPEM []byte

	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	stop   sync.Once

	mu  sync.Mutex
	out bytes.Buffer // stdout and stderr
}

//go:embed testdata/prosody.cfg.lua.tmpl
var prosodyCfg string

var prosodyTmpl = template.Must(template.New("prosody.cfg.lua").
	Funcs(template.FuncMap{"lua": strconv.Quote}). // Lua 5.4 reads Go's escapes
	Parse(prosodyCfg))

// StartProsody runs Prosody as the XMPP server of o.Domain on loopback,
// with the accounts in o.Users, waits until it accepts connections, and
// stops it when the test ends. It skips the test when prosody is not
// installed (see the package documentation).
//
// Prosody federates with anyone it can find through its DNS server, over
// TLS with dialback authentication: its certificate is self-signed and it
// accepts peers whose certificates it cannot check (s2s_secure_auth =
// false). Clients must use STARTTLS (their certificate check fails unless
// they trust CertPEM) and then PLAIN or SCRAM-SHA-1.
func StartProsody(t testing.TB, o ProsodyOptions) *Prosody {
	t.Helper()
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	checkLoopback(t, o.IP)
	if err := checkProsodyOptions(o); err != nil {
		t.Fatalf("testenv: StartProsody: %v", err)
	}
	prog := lookProgram(t, "prosody", "prosody")
	ctl := lookProgram(t, "prosodyctl", "prosody")
	if o.DNS == "" {
		var opts []string
		for _, d := range slices.Sorted(maps.Keys(o.Peers)) {
			host, port, _ := net.SplitHostPort(o.Peers[d])
			d = strings.ToLower(d)
			opts = append(opts,
				"srv-host=_xmpp-server._tcp."+d+","+d+","+port+",0,0",
				"host-record="+d+","+host,
				"local=/"+d+"/",
			)
		}
		o.DNS = DNSMasq(t, o.IP, opts...).Addr
	}
	cert, key, err := selfSigned(o.Domain, net.ParseIP(o.IP))
	if err != nil {
		t.Fatalf("testenv: StartProsody: %v", err)
	}
	dir := t.TempDir()
	var lastErr error
	for range 5 {
		s2s, c2s := o.Port, o.C2SPort
		if s2s == 0 {
			s2s = FreePort(t, "tcp", o.IP)
		}
		if c2s == 0 {
			c2s = FreePort(t, "tcp", o.IP)
		}
		run, err := os.MkdirTemp(dir, "run-")
		if err != nil {
			t.Fatal(err)
		}
		p, err := startProsody(prog, ctl, run, o, s2s, c2s, cert, key)
		if err == nil {
			t.Cleanup(p.Stop)
			return p
		}
		lastErr = err
		if (o.Port != 0 && o.C2SPort != 0) || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	t.Fatalf("testenv: %v", lastErr)
	return nil
}

var prosodyLocal = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

func checkProsodyOptions(o ProsodyOptions) error {
	if !kamailioName.MatchString(o.Domain) {
		return fmt.Errorf("domain %q is not a host name", o.Domain)
	}
	for _, p := range []int{o.Port, o.C2SPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("port %d out of range", p)
		}
	}
	if o.Port != 0 && o.Port == o.C2SPort {
		return fmt.Errorf("s2s and c2s both on port %d", o.Port)
	}
	if o.DNS != "" && len(o.Peers) > 0 {
		return fmt.Errorf("both DNS and Peers: the DNS server must serve the peers' records itself")
	}
	if o.DNS != "" {
		host, _, err := net.SplitHostPort(o.DNS)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("DNS %q is not a loopback ip:port", o.DNS)
		}
	}
	for d, addr := range o.Peers {
		if !kamailioName.MatchString(d) {
			return fmt.Errorf("peer domain %q is not a host name", d)
		}
		if strings.EqualFold(d, o.Domain) {
			return fmt.Errorf("peer domain %q is Prosody's own", d)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("peer %s: address %q: %w", d, addr, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
			return fmt.Errorf("peer %s: %q is not an IPv4 loopback address", d, host)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("peer %s: bad port in %q", d, addr)
		}
	}
	for u, pw := range o.Users {
		if !prosodyLocal.MatchString(u) {
			return fmt.Errorf("user %q: use lower-case letters, digits and . _ -", u)
		}
		if pw == "" || strings.ContainsAny(pw, "\x00\n") {
			return fmt.Errorf("user %q: empty or multi-line password", u)
		}
	}
	return nil
}

// prosodyConfig renders the configuration file for a run directory.
func prosodyConfig(o ProsodyOptions, run string, s2s, c2s int) ([]byte, error) {
	dnsHost, dnsPort, err := net.SplitHostPort(o.DNS)
	if err != nil {
		return nil, err
	}
	data := struct {
		Domain, IP, DNS                              string
		PIDFile, DataDir, LogFile, CertFile, KeyFile string
		S2SPort, C2SPort                             int
		S2SRequireTLS                                bool
	}{
		Domain:        strings.ToLower(o.Domain),
		IP:            o.IP,
		DNS:           dnsHost + "@" + dnsPort, // unbound's forward syntax
		PIDFile:       filepath.Join(run, "prosody.pid"),
		DataDir:       filepath.Join(run, "data"),
		LogFile:       filepath.Join(run, "prosody.log"),
		CertFile:      filepath.Join(run, "prosody.crt"),
		KeyFile:       filepath.Join(run, "prosody.key"),
		S2SPort:       s2s,
		C2SPort:       c2s,
		S2SRequireTLS: !o.S2SPlain,
	}
	var b bytes.Buffer
	if err := prosodyTmpl.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func startProsody(prog, ctl, run string, o ProsodyOptions, s2s, c2s int, cert, key []byte) (*Prosody, error) {
	cfg, err := prosodyConfig(o, run, s2s, c2s)
	if err != nil {
		return nil, fmt.Errorf("prosody: config: %w", err)
	}
	cfgFile := filepath.Join(run, "prosody.cfg.lua")
	for name, data := range map[string][]byte{"prosody.cfg.lua": cfg, "prosody.crt": cert, "prosody.key": key} {
		if err := os.WriteFile(filepath.Join(run, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("prosody: %w", err)
		}
	}
	// certs: the directory it indexes at startup (an error if missing).
	for _, d := range []string{"data", "certs"} {
		if err := os.MkdirAll(filepath.Join(run, d), 0o700); err != nil {
			return nil, fmt.Errorf("prosody: %w", err)
		}
	}
	for _, u := range slices.Sorted(maps.Keys(o.Users)) {
		cmd := exec.Command(ctl, "--config", cfgFile, "register", u, strings.ToLower(o.Domain), o.Users[u])
		cmd.Dir = run
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("prosodyctl register %s: %v\n%s", u, err, out)
		}
	}
	p := &Prosody{
		Domain:  strings.ToLower(o.Domain),
		Addr:    net.JoinHostPort(o.IP, strconv.Itoa(s2s)),
		C2SAddr: net.JoinHostPort(o.IP, strconv.Itoa(c2s)),
		DNS:     o.DNS,
		CertPEM: cert,
		dir:     run,
		cmd:     exec.Command(prog, "-F", "--config", cfgFile),
		exited:  make(chan struct{}),
	}
	p.cmd.Dir = run
	p.cmd.Stdout = writerFunc(p.write)
	p.cmd.Stderr = writerFunc(p.write)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start prosody: %w", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := p.dialBoth()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.exited:
			log := p.Log()
			if strings.Contains(log, "in use") || strings.Contains(log, "Address already in use") {
				return nil, fmt.Errorf("prosody exited early: port in use:\n%s", log)
			}
			return nil, fmt.Errorf("prosody --config %s exited early:\n%s\n%s", cfgFile, log, numbered(cfg))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("prosody did not listen on %s and %s within 15s: %v\n%s", p.Addr, p.C2SAddr, err, p.Log())
		}
	}
}

// dialBoth opens and closes a connection to each listener.
func (p *Prosody) dialBoth() error {
	for _, a := range []string{p.C2SAddr, p.Addr} {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return err
		}
		_ = c.Close()
	}
	return nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (p *Prosody) write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Log returns what Prosody has logged so far (debug level: every stanza
// in and out, s2s connections and their authentication), after anything
// it wrote to its standard output and error, for failure messages.
func (p *Prosody) Log() string {
	p.mu.Lock()
	out := p.out.String()
	p.mu.Unlock()
	file, _ := os.ReadFile(filepath.Join(p.dir, "prosody.log"))
	if out == "" {
		return string(file)
	}
	return out + "\n" + string(file)
}

// Stop stops Prosody (SIGTERM, then SIGKILL after 5s) and waits for it. It
// runs at cleanup anyway; call it to test what happens when the peer is
// gone.
func (p *Prosody) Stop() {
	p.stop.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// selfSigned makes a certificate for domain and ip and its key, PEM.
func selfSigned(domain string, ip net.IP) (cert, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domain},
		DNSNames:              []string{domain},
		IPAddresses:           []net.IP{ip},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
}
