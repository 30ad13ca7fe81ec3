package main

import (
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/umpp/umpp/internal/testenv"
)

// metricsConfig writes a configuration (writeConfig's) whose metrics
// endpoint is on a kernel-chosen loopback port, and returns it with the
// endpoint's base URL.
func metricsConfig(t *testing.T, dir string) (cfg, base string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	return configWithMetrics(t, dir, addr), "http://" + addr
}

// configWithMetrics writes writeConfig's configuration with [metrics]
// listen set to addr ("" for off).
func configWithMetrics(t *testing.T, dir, addr string) string {
	t.Helper()
	cfg := writeConfig(t, dir, "")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\[metrics\]\nlisten = .*$`)
	if !re.Match(data) {
		t.Fatalf("writeConfig wrote no [metrics] table:\n%s", data)
	}
	data = re.ReplaceAll(data, []byte(fmt.Sprintf("[metrics]\nlisten = %q", addr)))
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// xmppClient is a mellium client logged in to a daemon; received
// message bodies arrive on bodies.
type xmppClient struct {
	s      *xmpp.Session
	bodies chan string
	done   chan struct{}
}

// xmppLogin logs user in over STARTTLS at addr (a self-signed
// certificate: not verified) and serves its stream until cleanup.
func xmppLogin(t *testing.T, addr, user, password string) *xmppClient {
	t.Helper()
	c, err := dialXMPP(t, addr, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialXMPP is xmppLogin for goroutines other than the test's: it returns
// its error.
func dialXMPP(t *testing.T, addr, user, password string) (*xmppClient, error) {
	origin, err := jid.New(user, "montague.example.net", "")
	if err != nil {
		return nil, err
	}
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	tlsCfg := &tls.Config{ServerName: "montague.example.net", InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	s, err := testenv.XMPPClientSession(nc, origin, 30*time.Second,
		xmpp.StartTLS(tlsCfg), xmpp.SASL("", password, sasl.ScramSha256), xmpp.BindResource())
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	c := &xmppClient{s: s, bodies: make(chan string, 10), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		_ = s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			var m struct {
				Body string `xml:"body"`
			}
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&m); err != nil {
				return err
			}
			select {
			case c.bodies <- m.Body:
			default:
			}
			return nil
		}))
	}()
	t.Cleanup(c.close)
	return c, nil
}

func (c *xmppClient) close() {
	_ = c.s.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
	_ = c.s.Conn().Close()
}

func (c *xmppClient) send(t *testing.T, to, body string) {
	t.Helper()
	c.sendRaw(t, fmt.Sprintf("<message xmlns='jabber:client' type='chat' to='%s'><body>%s</body></message>", to, body))
}

func (c *xmppClient) sendRaw(t *testing.T, stanza string) {
	t.Helper()
	if err := c.trySend(stanza); err != nil {
		t.Fatal(err)
	}
}

func (c *xmppClient) trySend(stanza string) error {
	if err := testenv.XMPPSend(c.s, stanza, 10*time.Second); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// scrape fetches base+path and returns the status and body.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// sample returns the value of one series in an exposition, or 0 when it
// is absent (a counter not yet incremented).
func sample(t *testing.T, exposition, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(exposition)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

// A scripted exchange (two XMPP logins and a message) moves the gauges
// and the store latency histogram by the expected amounts; /healthz and
// /readyz answer; the endpoint stops with the daemon.
func TestMetricsAfterExchange(t *testing.T) {
	dir := t.TempDir()
	cfg, base := metricsConfig(t, dir)
	for _, u := range []string{"romeo", "juliet"} {
		if code, _, errOut := umppd(t, "pw-"+u+"\n", "user", "add", "-config", cfg, u+"@montague.example.net"); code != 0 {
			t.Fatalf("user add %s: %s", u, errOut)
		}
	}
	d := startDaemon(t, dir, "serve", "-config", cfg)
	c2s := configValue(t, cfg, "c2s_listen")

	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := scrape(t, base+p); code != 200 {
			t.Errorf("GET %s = %d %q; want 200", p, code, body)
		}
	}
	const (
		streams  = `umpp_c2s_streams{domain="montague.example.net"}`
		userRead = `umpp_store_duration_seconds_count{op="User"}`
	)
	_, before := scrape(t, base+"/metrics")
	for _, want := range []string{"go_goroutines", "process_open_fds", `umpp_build_info{version=`,
		`umpp_messages_routed_total{path="sip->xmpp"} 0`, `umpp_im_sessions_ended_total{reason="bye"} 0`,
		"umpp_im_sessions_active", "umpp_presence_subscriptions{direction=\"in\"}", "umpp_sip_registrations"} {
		if !strings.Contains(before, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if got := sample(t, before, streams); got != 0 {
		t.Errorf("before any login %s = %v; want 0", streams, got)
	}

	romeo := xmppLogin(t, c2s, "romeo", "pw-romeo")
	juliet := xmppLogin(t, c2s, "juliet", "pw-juliet")
	// To her full JID: delivered to that resource now, whatever her
	// presence (RFC 6121 §8.5.3.1).
	romeo.send(t, juliet.s.LocalAddr().String(), "wherefore")
	select {
	case b := <-juliet.bodies:
		if b != "wherefore" {
			t.Errorf("juliet got %q", b)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("juliet did not get romeo's message")
	}

	_, during := scrape(t, base+"/metrics")
	if got := sample(t, during, streams); got != 2 {
		t.Errorf("with two clients bound %s = %v; want 2", streams, got)
	}
	if got := sample(t, during, "umpp_c2s_connections"); got != 2 {
		t.Errorf("umpp_c2s_connections = %v; want 2", got)
	}
	routed := `umpp_messages_routed_total{path="xmpp->xmpp"}`
	if got, was := sample(t, during, routed), sample(t, before, routed); got-was != 1 {
		t.Errorf("%s went from %v to %v; want +1 for romeo's message", routed, was, got)
	}
	// Each SASL login reads the account once at least.
	if got, was := sample(t, during, userRead), sample(t, before, userRead); got-was < 2 {
		t.Errorf("%s went from %v to %v; want +2 or more for two logins", userRead, was, got)
	}

	romeo.close()
	juliet.close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, after := scrape(t, base+"/metrics")
		if sample(t, after, streams) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %v after both clients left", streams, sample(t, after, streams))
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, d.Logs())
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/healthz"); err == nil {
		t.Error("the metrics endpoint still answers after the daemon stopped")
	}
}

// With [metrics] listen = "" there is no endpoint, and the daemon runs.
func TestMetricsDisabled(t *testing.T) {
	dir := t.TempDir()
	cfg := configWithMetrics(t, dir, "")
	d := startDaemon(t, dir, "serve", "-config", cfg)
	if strings.Contains(d.Logs(), "proto=metrics") {
		t.Errorf("a metrics listener was logged with metrics off:\n%s", d.Logs())
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, d.Logs())
	}
}
