package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/umpp/umpp/internal/testenv"
)

// The federation tests' world: UMPP domains, each a umppd on its own
// 127.0.0.x address, found through SRV records of a dnsmasq the test
// starts; XMPP clients (mellium) and SIP clients (sipgo) as users; and a
// tcpdump on the loopback interface that records the SIP between the
// servers as it crossed the wire.

// domainServer is one umppd serving one domain.
type domainServer struct {
	domain, ip                string
	dir, cfg                  string
	sipPort, c2sPort, s2sPort int
	d                         *daemonProcess
	extra                     string
	logLevel                  string // "" is debug
	metrics                   string // [metrics] listen; "" is off
}

// freePortOn asks the kernel for a port free on ip for both UDP and TCP.
func freePortOn(t testing.TB, ip string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for UDP and TCP")
	return 0
}

// newDomainServer picks ports and writes the configuration; start runs it.
func newDomainServer(t testing.TB, domain, ip, extra string) *domainServer {
	s := &domainServer{domain: domain, ip: ip, dir: t.TempDir(), extra: extra}
	s.sipPort, s.c2sPort, s.s2sPort = freePortOn(t, ip), freePortOn(t, ip), freePortOn(t, ip)
	return s
}

// srvRecords are the DNS records an operator publishes for the domain
// (docs/federation.md): RFC 3861 and RFC 3263 SRV for SIP, RFC 6120 SRV
// for XMPP, and the hosts.
func (s *domainServer) srvRecords() []string {
	sipHost, xmppHost := "sip."+s.domain, "xmpp."+s.domain
	return []string{
		fmt.Sprintf("srv-host=_im._sip.%s,%s,%d,10,0", s.domain, sipHost, s.sipPort),
		fmt.Sprintf("srv-host=_pres._sip.%s,%s,%d,10,0", s.domain, sipHost, s.sipPort),
		fmt.Sprintf("srv-host=_sip._udp.%s,%s,%d,10,0", s.domain, sipHost, s.sipPort),
		fmt.Sprintf("srv-host=_sip._tcp.%s,%s,%d,20,0", s.domain, sipHost, s.sipPort),
		fmt.Sprintf("srv-host=_xmpp-server._tcp.%s,%s,%d,10,0", s.domain, xmppHost, s.s2sPort),
		fmt.Sprintf("host-record=%s,%s", sipHost, s.ip),
		fmt.Sprintf("host-record=%s,%s", xmppHost, s.ip),
		fmt.Sprintf("host-record=%s,%s", s.domain, s.ip),
	}
}

func (s *domainServer) writeConfig(t testing.TB, dns string) {
	t.Helper()
	toml := fmt.Sprintf(`domains = [%q]
data_dir = %q
[sip]
listen = ["udp://%s:%d", "tcp://%s:%d"]
[xmpp]
c2s_listen = ["%s:%d"]
c2s_direct_tls_listen = []
s2s_listen = ["%s:%d"]
[dns]
server = %q
[metrics]
listen = %q
[log]
level = %q
`, s.domain, filepath.Join(s.dir, "data"), s.ip, s.sipPort, s.ip, s.sipPort, s.ip, s.c2sPort, s.ip, s.s2sPort, dns, s.metrics, cmp.Or(s.logLevel, "debug")) + s.extra
	s.cfg = filepath.Join(s.dir, "umppd.toml")
	if err := os.WriteFile(s.cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *domainServer) addUser(t testing.TB, local, password string) {
	t.Helper()
	if code, _, errOut := umppd(t, password+"\n", "user", "add", "-config", s.cfg, local+"@"+s.domain); code != 0 {
		t.Fatalf("user add %s@%s: %s", local, s.domain, errOut)
	}
}

func (s *domainServer) start(t testing.TB) {
	t.Helper()
	s.d = startDaemon(t, s.dir, "serve", "-config", s.cfg)
}

func (s *domainServer) sipAddr() string      { return net.JoinHostPort(s.ip, strconv.Itoa(s.sipPort)) }
func (s *domainServer) c2sAddr() string      { return net.JoinHostPort(s.ip, strconv.Itoa(s.c2sPort)) }
func (s *domainServer) logs() string         { return s.d.Logs() }
func (s *domainServer) String() string       { return s.domain }
func (s *domainServer) stopNow(t testing.TB) { _ = s.d.stop(t, os.Interrupt) }

// startDomains starts a dnsmasq with the domains' records and then the
// servers, with users (local -> password) added before each starts.
func startDomains(t testing.TB, users map[*domainServer]map[string]string, servers ...*domainServer) *testenv.DNS {
	t.Helper()
	return startDomainsConfigured(t, users, func(*domainServer) {}, servers...)
}

// startDomainsConfigured is startDomains with a hook that may rewrite a
// server's configuration file between writeConfig and the users being
// added (the extra string of newDomainServer is appended after the
// [log] table, so it cannot add a key to [sip]).
func startDomainsConfigured(t testing.TB, users map[*domainServer]map[string]string, configure func(*domainServer), servers ...*domainServer) *testenv.DNS {
	t.Helper()
	opts := []string{"local=/example.net/", "local=/example.com/", "local=/example.org/", "local-ttl=1"}
	for _, s := range servers {
		opts = append(opts, s.srvRecords()...)
	}
	dns := testenv.DNSMasq(t, "127.0.0.1", opts...)
	for _, s := range servers {
		s.writeConfig(t, dns.Addr)
		configure(s)
		for u, pw := range users[s] {
			s.addUser(t, u, pw)
		}
	}
	for _, s := range servers {
		s.start(t)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range servers {
				t.Logf("%s logs:\n%s", s.domain, s.logs())
			}
		}
	})
	return dns
}

// romeoAndJuliet starts montague.example.net (127.0.0.2, with
// montagueExtra in its configuration) with Romeo's account and
// capulets.example.com (127.0.0.3) with Juliet's, and a wire tap on
// their SIP.
func romeoAndJuliet(t *testing.T, montagueExtra string) (montague, capulets *domainServer, tap *wireTap) {
	t.Helper()
	return romeoAndJulietWith(t, montagueExtra, func(*domainServer) {})
}

// romeoAndJulietWith is romeoAndJuliet with a change to montague before
// it starts.
func romeoAndJulietWith(t *testing.T, montagueExtra string, change func(*domainServer)) (montague, capulets *domainServer, tap *wireTap) {
	t.Helper()
	montague = newDomainServer(t, "montague.example.net", "127.0.0.2", montagueExtra)
	change(montague)
	capulets = newDomainServer(t, "capulets.example.com", "127.0.0.3", "")
	tap = startTap(t, montague, capulets)
	startDomains(t, map[*domainServer]map[string]string{
		montague: {"romeo": "wherefore"},
		capulets: {"juliet": "balcony"},
	}, montague, capulets)
	return montague, capulets, tap
}

// waitMetric waits until series reaches at least want at url.
func waitMetric(t *testing.T, url, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, exp := scrape(t, url)
		got := sample(t, exp, series)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", series, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wireTap records packets on the loopback interface with tcpdump.
type wireTap struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	text strings.Builder
	done chan struct{}
}

// startTap captures the UDP and TCP of the servers' SIP listeners as text.
func startTap(t *testing.T, servers ...*domainServer) *wireTap {
	t.Helper()
	bin, err := exec.LookPath("tcpdump")
	if err != nil {
		if os.Getenv("UMPP_REQUIRE_PEERS") != "" {
			t.Fatal("tcpdump not installed")
		}
		t.Skip("tcpdump not installed")
	}
	var f []string
	for _, s := range servers {
		f = append(f, fmt.Sprintf("(host %s and port %d)", s.ip, s.sipPort))
	}
	filter := "(udp or tcp) and (" + strings.Join(f, " or ") + ")"
	cmd := exec.Command(bin, "-i", "lo", "-n", "-l", "-s", "0", "-A", "-U", filter)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errOut, _ := cmd.StderrPipe()
	w := &wireTap{cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(errOut)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				close(listening)
			}
		}
	}()
	go func() {
		defer close(w.done)
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			w.mu.Lock()
			w.text.WriteString(line)
			w.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start")
	}
	return w
}

// sipMessages returns the SIP messages seen so far, in order, each as
// text from its start line.
func (w *wireTap) sipMessages() []string {
	w.mu.Lock()
	text := w.text.String()
	w.mu.Unlock()
	var msgs []string
	for _, pkt := range splitPackets(text) {
		// A TCP segment may hold several messages.
		idx := sipStart.FindAllStringIndex(pkt, -1)
		for j, i := range idx {
			end := len(pkt)
			if j+1 < len(idx) {
				end = idx[j+1][0]
			}
			msgs = append(msgs, pkt[i[0]:end])
		}
	}
	return msgs
}

var (
	packetHeader = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d+ IP .*$`)
	sipStart     = regexp.MustCompile(`(SIP/2\.0 \d{3} [^\r\n]*\r?\n|(INVITE|ACK|BYE|SUBSCRIBE|NOTIFY|MESSAGE|PUBLISH|REGISTER|OPTIONS|CANCEL|INFO|UPDATE|PRACK|REFER) [^ \r\n]+ SIP/2\.0\r?\n)`)
)

// splitPackets cuts tcpdump -A output into packet payload texts.
func splitPackets(text string) []string {
	idx := packetHeader.FindAllStringIndex(text, -1)
	var out []string
	for i, h := range idx {
		end := len(text)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out = append(out, text[h[1]:end])
	}
	return out
}

// count returns how many captured messages start with prefix.
func (w *wireTap) count(prefix string) int {
	n := 0
	for _, m := range w.sipMessages() {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// waitCount waits up to 10 s for n messages starting with prefix and
// returns how many there are.
func (w *wireTap) waitCount(prefix string, n int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := w.count(prefix)
		if c >= n || time.Now().After(deadline) {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSIP waits until a captured message matches all of the patterns and
// returns it.
func (w *wireTap) waitSIP(t *testing.T, what string, patterns ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range w.sipMessages() {
			if matchesAll(m, patterns) {
				return m
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	var b strings.Builder
	for _, m := range w.sipMessages() {
		b.WriteString(firstLine(m) + "\n")
	}
	t.Fatalf("no %s on the wire matching %q; saw:\n%s", what, patterns, b.String())
	return ""
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// xmppUser is an XMPP client that records every stanza it receives.
type xmppUser struct {
	jid      string // full JID once bound
	s        *xmpp.Session
	stanzas  chan string
	done     chan struct{}
	mu       sync.Mutex
	received []string
}

// xmppConnect logs local@domain in at one of our servers (a self-signed
// certificate, SCRAM-SHA-256) and records its stanzas.
func xmppConnect(t *testing.T, addr, local, domain, resource, password string) *xmppUser {
	t.Helper()
	return xmppLoginWith(t, addr, local, domain, resource, password, selfSignedTLS(domain), sasl.ScramSha256)
}

// selfSignedTLS is the client TLS configuration for one of our servers:
// its certificate is generated and self-signed, so it is not verified.
func selfSignedTLS(domain string) *tls.Config {
	return &tls.Config{ServerName: domain, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // generated test certificate
}

// xmppLoginWith logs local@domain in at addr over STARTTLS with tlsCfg and
// the SASL mechanism mech, and records the stanzas it receives.
func xmppLoginWith(t *testing.T, addr, local, domain, resource, password string, tlsCfg *tls.Config, mech sasl.Mechanism) *xmppUser {
	t.Helper()
	u, err := xmppDial(t, addr, local, domain, resource, password, tlsCfg, mech)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// xmppDial is xmppLoginWith for goroutines other than the test's: it
// returns its error.
func xmppDial(t *testing.T, addr, local, domain, resource, password string, tlsCfg *tls.Config, mech sasl.Mechanism) (*xmppUser, error) {
	origin, err := jid.New(local, domain, resource)
	if err != nil {
		return nil, err
	}
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	s, err := testenv.XMPPClientSession(nc, origin, 30*time.Second,
		xmpp.StartTLS(tlsCfg), xmpp.SASL("", password, mech), xmpp.BindResource())
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("login %s: %w", origin, err)
	}
	u := &xmppUser{jid: s.LocalAddr().String(), s: s, stanzas: make(chan string, 256), done: make(chan struct{})}
	go func() {
		defer close(u.done)
		_ = s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var b strings.Builder
			e := xml.NewEncoder(&b)
			if _, err := xmlstream.Copy(e, xmlstream.MultiReader(xmlstream.Token(*start), r)); err != nil && err != io.EOF {
				return err
			}
			_ = e.Flush()
			u.mu.Lock()
			u.received = append(u.received, b.String())
			u.mu.Unlock()
			select {
			case u.stanzas <- b.String():
			default:
			}
			return nil
		}))
	}()
	t.Cleanup(u.close)
	return u, nil
}

func (u *xmppUser) close() {
	_ = u.s.Close()
	select {
	case <-u.done:
	case <-time.After(5 * time.Second):
	}
	_ = u.s.Conn().Close()
}

func (u *xmppUser) send(t *testing.T, stanza string) {
	t.Helper()
	if err := u.trySend(stanza); err != nil {
		t.Fatal(err)
	}
}

// trySend is send for goroutines other than the test's.
func (u *xmppUser) trySend(stanza string) error {
	if err := testenv.XMPPSend(u.s, stanza, 10*time.Second); err != nil {
		return fmt.Errorf("%s sends: %w", u.jid, err)
	}
	return nil
}

// waitStanza waits for a received stanza matching every pattern.
func (u *xmppUser) waitStanza(t *testing.T, what string, patterns ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		u.mu.Lock()
		got := append([]string(nil), u.received...)
		u.mu.Unlock()
		for _, s := range got {
			if matchesAll(s, patterns) {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	t.Fatalf("%s: no %s matching %q; received:\n%s", u.jid, what, patterns, strings.Join(u.received, "\n"))
	return ""
}

// sipUser is a SIMPLE client: a sipgo UA on its own 127.0.0.x address
// that registers, publishes, subscribes and exchanges MESSAGEs through
// its domain's umppd, and records what it is sent.
type sipUser struct {
	user, domain, password string
	ip                     string
	port                   int
	server                 string // its umppd, ip:port
	ua                     *sipgo.UserAgent
	client                 *sipgo.Client

	etag     string // of the last PUBLISH, to modify it (RFC 3903)
	mu       sync.Mutex
	requests []*sip.Request // MESSAGE and NOTIFY received
}

func newSIPUser(t *testing.T, user, domain, password, ip string, server string) *sipUser {
	t.Helper()
	u := &sipUser{user: user, domain: domain, password: password, ip: ip, server: server}
	u.port = freePortOn(t, ip)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("umpp-test-simple"), sipgo.WithUserAgentHostname(domain),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog.New(slog.DiscardHandler))))
	if err != nil {
		t.Fatal(err)
	}
	u.ua = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	record := func(req *sip.Request, tx sip.ServerTransaction) {
		u.mu.Lock()
		u.requests = append(u.requests, req)
		u.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	srv.OnMessage(record)
	srv.OnNotify(record)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	go func() {
		_ = srv.ListenAndServe(context.WithValue(ctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyCtxValue(ready)), "udp", net.JoinHostPort(ip, strconv.Itoa(u.port)))
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("SIP user agent did not listen")
	}
	// sipgo registers the listening socket for sending from another
	// goroutine; until it has, the client would try to bind it again.
	addr := net.JoinHostPort(ip, strconv.Itoa(u.port))
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := ua.TransportLayer().GetConnection("udp", addr); err == nil && c != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipgo does not serve %s", addr)
		}
		time.Sleep(time.Millisecond)
	}
	u.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(ip), sipgo.WithClientPort(u.port),
		sipgo.WithClientConnectionAddr(net.JoinHostPort(ip, strconv.Itoa(u.port))),
		sipgo.WithClientLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		ua.Close()
	})
	return u
}

func (u *sipUser) aor() sip.Uri { return sip.Uri{Scheme: "sip", User: u.user, Host: u.domain} }

func (u *sipUser) contact() string {
	return fmt.Sprintf("<sip:%s@%s:%d>", u.user, u.ip, u.port)
}

// do sends req to the user's server, answering a digest challenge.
func (u *sipUser) do(t *testing.T, req *sip.Request) *sip.Response {
	t.Helper()
	req.SetDestination(u.server)
	req.SetTransport("UDP")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	res, err := u.client.Do(ctx, req)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		res, err = u.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: u.user, Password: u.password})
	}
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.Recipient.String(), err)
	}
	return res
}

func (u *sipUser) request(method sip.RequestMethod, to sip.Uri) *sip.Request {
	req := sip.NewRequest(method, to)
	from := &sip.FromHeader{Address: u.aor(), Params: sip.NewParams()}
	from.Params.Add("tag", strconv.FormatInt(time.Now().UnixNano(), 36))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Contact", u.contact()))
	return req
}

func (u *sipUser) register(t *testing.T, expires int) {
	t.Helper()
	req := u.request(sip.REGISTER, sip.Uri{Scheme: "sip", Host: u.domain})
	req.ReplaceHeader(&sip.ToHeader{Address: u.aor(), Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if res := u.do(t, req); res.StatusCode != 200 {
		t.Fatalf("REGISTER %s@%s: %d %s", u.user, u.domain, res.StatusCode, res.Reason)
	}
}

// publish sends the user's presence, basic open or closed.
func (u *sipUser) publish(t *testing.T, basic, note string) {
	t.Helper()
	req := u.request(sip.PUBLISH, u.aor())
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Expires", "600"))
	if u.etag != "" {
		req.AppendHeader(sip.NewHeader("SIP-If-Match", u.etag))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/pidf+xml"))
	req.SetBody([]byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:%s@%s">
<tuple id="t1"><status><basic>%s</basic></status><note>%s</note></tuple></presence>`, u.user, u.domain, basic, note)))
	res := u.do(t, req)
	if res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %d %s", res.StatusCode, res.Reason)
	}
	if h := res.GetHeader("SIP-ETag"); h != nil {
		u.etag = h.Value()
	}
}

// subscribe subscribes to presentity's presence.
func (u *sipUser) subscribe(t *testing.T, presentity string) {
	t.Helper()
	user, host, _ := strings.Cut(presentity, "@")
	req := u.request(sip.SUBSCRIBE, sip.Uri{Scheme: "sip", User: user, Host: host})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Accept", "application/pidf+xml"))
	req.AppendHeader(sip.NewHeader("Expires", "600"))
	if res := u.do(t, req); res.StatusCode != 200 && res.StatusCode != 202 {
		t.Fatalf("SUBSCRIBE %s: %d %s", presentity, res.StatusCode, res.Reason)
	}
}

// message sends a text MESSAGE and returns the status.
func (u *sipUser) message(t *testing.T, to, body string) int {
	t.Helper()
	return u.messageWith(t, to, "text/plain;charset=UTF-8", body)
}

// messageWith sends a MESSAGE with a body of type ct.
func (u *sipUser) messageWith(t *testing.T, to, ct, body string) int {
	t.Helper()
	user, host, _ := strings.Cut(to, "@")
	req := u.request(sip.MESSAGE, sip.Uri{Scheme: "sip", User: user, Host: host})
	req.RemoveHeader("Contact")
	req.AppendHeader(sip.NewHeader("Content-Type", ct))
	req.SetBody([]byte(body))
	return u.do(t, req).StatusCode
}

// waitRequest waits for a received request of method whose text matches
// every pattern.
func (u *sipUser) waitRequest(t *testing.T, method sip.RequestMethod, patterns ...string) *sip.Request {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		u.mu.Lock()
		got := append([]*sip.Request(nil), u.requests...)
		u.mu.Unlock()
		for _, r := range got {
			if r.Method != method {
				continue
			}
			if matchesAll(r.String(), patterns) {
				return r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var b strings.Builder
	for _, r := range u.requests {
		b.WriteString(r.String() + "\n----\n")
	}
	aor := u.aor()
	t.Fatalf("%s: no %s matching %q; received:\n%s", aor.String(), method, patterns, b.String())
	return nil
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// matchesAll reports whether s matches every one of patterns.
func matchesAll(s string, patterns []string) bool {
	for _, p := range patterns {
		if !regexpMatch(p, s) {
			return false
		}
	}
	return true
}
