package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/config"
)

// sipRegister registers sip:user@montague.example.net with contact at
// the daemon's TCP SIP listener of configuration cfg, answering the
// digest challenge (SHA-256), and returns the final status.
func sipRegister(t *testing.T, cfg, user, password, contact string) int {
	t.Helper()
	client, req := registerRequest(t, cfg, user, contact)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := client.Do(ctx, req)
	if err != nil {
		t.Fatalf("REGISTER: %v", err)
	}
	if res.StatusCode != 401 {
		return res.StatusCode
	}
	// Answer the SHA-256 challenge only.
	var keep sip.Header
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		if strings.Contains(h.Value(), "algorithm=SHA-256") {
			keep = h
		}
	}
	if keep == nil {
		t.Fatalf("no SHA-256 challenge in %v", res)
	}
	res.RemoveHeader("WWW-Authenticate")
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", keep.Value()))
	res2, err := client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
	if err != nil {
		t.Fatalf("REGISTER with credentials: %v", err)
	}
	return res2.StatusCode
}

// A SIP registration shows in umppd sessions, in the status counts and
// in umpp_sip_registrations.
func TestStatusSIPRegistration(t *testing.T) {
	dir := t.TempDir()
	cfg, base := metricsConfig(t, dir)
	if code, _, errOut := umppd(t, "pw\n", "user", "add", "-config", cfg, "mercutio@montague.example.net"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	startDaemon(t, dir, "serve", "-config", cfg)

	contact := "sip:mercutio@" + net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "udp")))
	if code := sipRegister(t, cfg, "mercutio", "pw", contact); code != 200 {
		t.Fatalf("REGISTER = %d, want 200", code)
	}
	code, out, errOut := umppd(t, "", "sessions", "-config", cfg)
	if code != 0 || !strings.Contains(out, "sip ") || !strings.Contains(out, "mercutio@montague.example.net") || !strings.Contains(out, contact) {
		t.Errorf("umppd sessions = %d, %q, %q; want mercutio's registration with %s", code, out, errOut, contact)
	}
	if _, out, _ := umppd(t, "", "status", "-config", cfg); !strings.Contains(out, "0 xmpp (0 connections), 1 sip registrations") {
		t.Errorf("umppd status lacks the registration:\n%s", out)
	}
	_, metrics := scrape(t, base+"/metrics")
	if got := sample(t, metrics, "umpp_sip_registrations"); got != 1 {
		t.Errorf("umpp_sip_registrations = %v, want 1", got)
	}
	if got := sample(t, metrics, `umpp_store_duration_seconds_count{op="User"}`); got < 1 {
		t.Errorf("the digest check read no account through the timed store: User count %v", got)
	}
	// The REGISTER was challenged once, then accepted.
	for _, series := range []string{`umpp_sip_transactions_total{method="REGISTER",status="401"}`, `umpp_sip_transactions_total{method="REGISTER",status="200"}`} {
		if got := sample(t, metrics, series); got != 1 {
			t.Errorf("%s = %v, want 1", series, got)
		}
	}
}

// registerRequest returns a sipgo client and a REGISTER of
// sip:user@montague.example.net with contact, without credentials, bound
// for the daemon's TCP SIP listener of configuration cfg.
func registerRequest(t *testing.T, cfg, user, contact string) (*sipgo.Client, *sip.Request) {
	t.Helper()
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var dest string
	for _, l := range c.SIP.Listen {
		if l.Transport == "tcp" {
			dest = l.Addr()
		}
	}
	if dest == "" {
		t.Fatal("no tcp SIP listener in the configuration")
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("umppd-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "montague.example.net"})
	req.SetDestination(dest)
	req.SetTransport("TCP")
	aor := sip.Uri{Scheme: "sip", User: user, Host: "montague.example.net"}
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", strconv.FormatInt(time.Now().UnixNano(), 36))
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Contact", "<"+contact+">"))
	req.AppendHeader(sip.NewHeader("Expires", "300"))
	return client, req
}
