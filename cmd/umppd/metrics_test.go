package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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

	romeo := xmppConnect(t, c2s, "romeo", "montague.example.net", "", "pw-romeo")
	juliet := xmppConnect(t, c2s, "juliet", "montague.example.net", "", "pw-juliet")
	// To her full JID: delivered to that resource now, whatever her
	// presence (RFC 6121 §8.5.3.1).
	romeo.send(t, "<message type='chat' to='"+juliet.jid+"'><body>wherefore</body></message>")
	juliet.waitStanza(t, "romeo's message", `<message[^>]*from="romeo@montague\.example\.net/`, `<body[^>]*>wherefore</body>`)

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
