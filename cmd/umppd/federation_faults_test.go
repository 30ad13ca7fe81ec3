package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Faults between UMPP domains: the sender always hears about a message
// that cannot be delivered, within 30 s, and nothing hangs.

// The peer's servers are in DNS but down.
func TestFederationPeerDown(t *testing.T) {
	montague := newDomainServer(t, "montague.example.net", "127.0.0.2", "")
	capulets := newDomainServer(t, "capulets.example.com", "127.0.0.3", "")
	startDomains(t, map[*domainServer]map[string]string{
		montague: {"romeo": "wherefore", "benvolio": "peace"},
	}, montague, capulets)
	// capulets keeps its DNS records; its server goes away.
	if err := capulets.d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("capulets stopped with %v", err)
	}

	romeo := xmppConnect(t, montague.c2sAddr(), "romeo", "montague.example.net", "", "wherefore")
	start := time.Now()
	romeo.send(t, `<message type="chat" to="juliet@capulets.example.com" id="d1"><body>Are you there?</body></message>`)
	romeo.waitStanza(t, "error for the undeliverable message", `<message[^>]*type="error"`, `id="d1"`,
		`remote-server-not-found|remote-server-timeout|recipient-unavailable|service-unavailable`)
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the error took %v", d)
	}

	benvolio := newSIPUser(t, "benvolio", "montague.example.net", "peace", "127.0.0.4", montague.sipAddr())
	benvolio.register(t, 600)
	start = time.Now()
	code := benvolio.message(t, "juliet@capulets.example.com", "Are you there?")
	if code/100 == 2 || code == 0 {
		t.Errorf("MESSAGE to a domain whose servers are down answered %d, want an error", code)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the SIP error took %v", d)
	}
	t.Logf("SIP sender got %d after %v", code, time.Since(start).Round(time.Millisecond))
}

// The peer restarts mid-session: the session ends cleanly (BYE), the next
// message opens a new one, and the presence subscriptions come back.
func TestFederationPeerRestart(t *testing.T) {
	montague, capulets, tap := romeoAndJuliet(t, "")

	romeo := xmppConnect(t, montague.c2sAddr(), "romeo", "montague.example.net", "", "wherefore")
	juliet := xmppConnect(t, capulets.c2sAddr(), "juliet", "capulets.example.com", "", "balcony")
	romeo.send(t, `<presence/>`)
	juliet.send(t, `<presence><status>first</status></presence>`)
	romeo.send(t, `<presence type="subscribe" to="juliet@capulets.example.com"/>`)
	juliet.waitStanza(t, "request", `type="subscribe"`)
	juliet.send(t, `<presence type="subscribed" to="romeo@montague.example.net"/>`)
	romeo.waitStanza(t, "Juliet available", `<presence[^>]*from="juliet@capulets\.example\.com/`, `first`)
	romeo.send(t, `<message type="chat" to="juliet@capulets.example.com" id="r1"><body>one</body></message>`)
	juliet.waitStanza(t, "first message", `>one<`)

	if err := capulets.d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("capulets stopped with %v", err)
	}
	// Shutdown: BYE for the session and "deactivated" for the watcher.
	bye := tap.waitSIP(t, "BYE from the stopping peer", `^BYE `)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the BYE:\n%s", bye)
			for _, m := range tap.sipMessages() {
				t.Logf("wire: %s", firstLine(m))
			}
		}
	})
	tap.waitSIP(t, "NOTIFY deactivated", `^NOTIFY `, `(?i)Subscription-State: *terminated;\s*reason=deactivated`)
	romeo.waitStanza(t, "Juliet unavailable", `<presence[^>]*type="unavailable"`)

	capulets.start(t)
	juliet = xmppConnect(t, capulets.c2sAddr(), "juliet", "capulets.example.com", "", "balcony")
	juliet.send(t, `<presence><status>again</status></presence>`)
	// montague re-subscribes on its own; Romeo sees Juliet again.
	romeo.waitStanza(t, "Juliet available again", `<presence[^>]*from="juliet@capulets\.example\.com/`, `again`)
	romeo.send(t, `<message type="chat" to="juliet@capulets.example.com" id="r2"><body>two</body></message>`)
	juliet.waitStanza(t, "message in a new session", `>two<`)
	if n := tap.waitCount("INVITE ", 2); n != 2 {
		t.Errorf("%d INVITEs, want 2 (one per session)", n)
	}
}

// The s2s stream drops mid-conversation: later messages go over a new
// stream, in order, none lost.
func TestFederationS2SDrop(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("ss (iproute2) not installed")
	}
	montague := newDomainServer(t, "montague.example.net", "127.0.0.2", "")
	capulets := newDomainServer(t, "capulets.example.com", "127.0.0.3", "")
	startDomains(t, map[*domainServer]map[string]string{
		montague: {"romeo": "wherefore"},
		capulets: {"juliet": "balcony"},
	}, montague, capulets)
	romeo := xmppConnect(t, montague.c2sAddr(), "romeo", "montague.example.net", "", "wherefore")
	juliet := xmppConnect(t, capulets.c2sAddr(), "juliet", "capulets.example.com", "", "balcony")
	juliet.send(t, `<presence/>`)

	send := func(from, to int) {
		for i := from; i < to; i++ {
			romeo.send(t, fmt.Sprintf(`<message type="chat" to="juliet@capulets.example.com" id="s%d"><body>line %d</body></message>`, i, i))
		}
	}
	send(0, 10)
	juliet.waitStanza(t, "line 9", `>line 9<`)

	// Kill every TCP connection to and from capulets' s2s port.
	port := strconv.Itoa(capulets.s2sPort)
	killed := 0
	for _, f := range []string{"dport = :" + port, "sport = :" + port} {
		out, err := exec.Command("ss", "-K", "-t", "-H", f).CombinedOutput()
		if err != nil {
			t.Fatalf("ss -K %s: %v: %s", f, err, out)
		}
		killed += strings.Count(strings.TrimSpace(string(out)), "\n") + 1
		if strings.TrimSpace(string(out)) == "" {
			killed--
		}
	}
	if killed == 0 {
		t.Fatal("ss -K closed no s2s connection")
	}
	send(10, 20)
	juliet.waitStanza(t, "line 19", `>line 19<`)
	juliet.mu.Lock()
	defer juliet.mu.Unlock()
	next := 0
	re := regexp.MustCompile(`>line (\d+)<`)
	for _, s := range juliet.received {
		if m := re.FindStringSubmatch(s); m != nil {
			n, _ := strconv.Atoi(m[1])
			if n != next {
				t.Fatalf("got line %d, want line %d (lost or out of order)", n, next)
			}
			next++
		}
	}
	if next != 20 {
		t.Errorf("Juliet got %d lines, want 20", next)
	}
	if n := strings.Count(montague.logs(), "s2s outbound ready"); n < 2 {
		t.Errorf("montague opened %d s2s streams, want a new one after the drop", n)
	}
}

// Our own restart: the subscriptions montague keeps for Romeo are
// persisted and re-established, and Romeo, logging in again, sees Juliet
// at once (his probe is answered from the NOTIFY).
func TestFederationOwnRestart(t *testing.T) {
	montague, capulets, tap := romeoAndJuliet(t, "")
	romeo := xmppConnect(t, montague.c2sAddr(), "romeo", "montague.example.net", "", "wherefore")
	juliet := xmppConnect(t, capulets.c2sAddr(), "juliet", "capulets.example.com", "", "balcony")
	romeo.send(t, `<presence/>`)
	juliet.send(t, `<presence><status>watching the stars</status></presence>`)
	romeo.send(t, `<presence type="subscribe" to="juliet@capulets.example.com"/>`)
	juliet.waitStanza(t, "request", `type="subscribe"`)
	juliet.send(t, `<presence type="subscribed" to="romeo@montague.example.net"/>`)
	romeo.waitStanza(t, "Juliet available", `<presence[^>]*from="juliet@capulets\.example\.com/`, `stars`)
	before := tap.count("SUBSCRIBE pres:juliet@capulets.example.com ")

	romeo.close()
	if err := montague.d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("montague stopped with %v", err)
	}
	montague.start(t)
	// At shutdown the subscription ended in its dialog (Expires: 0); after
	// the start a new one begins.
	tap.waitSIP(t, "un-SUBSCRIBE at shutdown", `^SUBSCRIBE `, `(?i)\nExpires: *0\r?\n`, `(?i)\nFrom:[^\n]*romeo@montague\.example\.net`)
	if n := tap.waitCount("SUBSCRIBE pres:juliet@capulets.example.com ", before+1); n != before+1 {
		t.Errorf("%d initial SUBSCRIBEs for Romeo after the restart, want %d", n, before+1)
	}
	tap.waitSIP(t, "NOTIFY active after the restart", `^NOTIFY `, `(?i)Subscription-State: *active`, `stars`)
	romeo = xmppConnect(t, montague.c2sAddr(), "romeo", "montague.example.net", "", "wherefore")
	romeo.send(t, `<presence/>`)
	romeo.waitStanza(t, "Juliet available after the restart", `<presence[^>]*from="juliet@capulets\.example\.com/`, `stars`)
}
