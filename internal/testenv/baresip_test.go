package testenv

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestBaresip runs baresip with an account that does not register and a
// sipgo user as its contact, and exchanges a MESSAGE each way.
func TestBaresip(t *testing.T) {
	t.Parallel()
	bob := startSIPUser(t, "127.0.0.1")
	sipPort := FreePort(t, "tcp+udp", "127.0.0.1")
	sipAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sipPort))
	b := StartBaresip(t, BaresipOptions{
		SIPPort:  sipPort,
		Account:  `<sip:alice@127.0.0.1>;regint=0`,
		Contacts: []string{`"Bob" <sip:bob@` + bob.addr + `>`},
	})

	if list := b.Command(t, "contacts", ""); !strings.Contains(list, "sip:bob@"+bob.addr) {
		t.Errorf("contacts lack bob:\n%s", list)
	}

	b.Command(t, "contact_next", "")
	b.Command(t, "message", "Hello Bob")
	select {
	case req := <-bob.got[sip.MESSAGE]:
		if string(req.Body()) != "Hello Bob" {
			t.Errorf("bob got %q", req.Body())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bob received no MESSAGE")
	}
	// -s: the SIP trace shows it.
	b.WaitOutput(t, "the trace of the MESSAGE", `MESSAGE sip:bob@`+regexp.QuoteMeta(bob.addr)+` SIP/2\.0`)

	req := bob.request(sip.MESSAGE, "sip:bob@"+bob.addr, "sip:alice@"+sipAddr, sipAddr)
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
	req.SetBody([]byte("Hello Alice"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := bob.client.Do(ctx, req)
	if err != nil {
		t.Fatalf("MESSAGE to baresip on %s: %v", sipAddr, err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE to baresip: %d %s", res.StatusCode, res.Reason)
	}
	got := b.WaitOutput(t, "bob's message", `sip:bob@[^\n]*: "Hello Alice"`)
	if !strings.Contains(got, bob.addr) {
		t.Errorf("printed %q, want bob's address %s in it", got, bob.addr)
	}
}

func TestBaresipOptions(t *testing.T) {
	t.Parallel()
	bad := []BaresipOptions{
		{Account: ""},
		{Account: "<sip:a@example.com>\n<sip:b@example.com>"},
		{Account: "<sip:a@example.com>", SIPPort: 65535},
		{Account: "<sip:a@example.com>", SIPPort: -1},
		{Account: "<sip:a@example.com>", DNS: "192.0.2.1:53"},
		{Account: "<sip:a@example.com>", DNS: "127.0.0.1"},
		{Account: "<sip:a@example.com>", Contacts: []string{"<sip:b@example.com>\nsip_listen 0.0.0.0:5060"}},
	}
	for _, o := range bad {
		if err := checkBaresipOptions(o); err == nil {
			t.Errorf("checkBaresipOptions(%+v) = nil, want an error", o)
		}
	}
	good := BaresipOptions{IP: "127.0.0.5", SIPPort: 5070, DNS: "127.0.0.1:5353", Account: "<sip:a@example.com>"}
	if err := checkBaresipOptions(good); err != nil {
		t.Fatal(err)
	}
	cfg := baresipConfig(good, "/usr/lib/baresip/modules", 5080)
	for _, want := range []string{
		"sip_listen 127.0.0.5:5070\n",
		"dns_server 127.0.0.1:5353\n",
		"ctrl_tcp_listen 127.0.0.5:5080\n",
		"module_app ctrl_tcp.so\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	good.DNS = ""
	if cfg := baresipConfig(good, "/usr/lib/baresip/modules", 5080); strings.Contains(cfg, "dns_server") {
		t.Errorf("dns_server without DNS:\n%s", cfg)
	}
}
