package sipside

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/umpp/umpp/internal/testenv"
)

const sipsakBinary = "/usr/bin/sipsak"

// needPeer skips a test when a peer program is not installed, unless
// UMPP_REQUIRE_PEERS is set (CI installs them): then it fails.
func needPeer(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("UMPP_REQUIRE_PEERS") != "" {
			t.Fatalf("%s not installed (%v) and UMPP_REQUIRE_PEERS is set; install Debian package %s", path, err, pkg)
		}
		t.Skipf("%s not installed (%v); install Debian package %s", path, err, pkg)
	}
}

// waitPeer polls cond until it holds; out is the peer's output, for the
// failure message.
func waitPeer(t *testing.T, what string, cond func() bool, out func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, out())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// registered reports whether aor has a binding on ts.
func registered(ts *testServer, aor string) bool {
	for _, b := range ts.Stats().Registrations {
		if b.AOR == aor {
			return true
		}
	}
	return false
}

// TestBaresipInterop runs baresip (Debian baresip-core) as alice's SIP
// client over TCP: it registers with digest authentication, publishes
// presence (its presence module), and exchanges MESSAGEs with bob, a
// sipgo client, through the server. A sipgo watcher then sees alice's
// published state.
func TestBaresipInterop(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	addUser(t, users, "carol", "example.com", "secret")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) {
		o.PresencePolicy = allowAll{}
		// baresip 1.0.0 (libre's digest code) gives up with ENOSYS at
		// the first challenge whose algorithm it does not know instead
		// of answering the MD5 one after it (RFC 8760 §2.4 wants the
		// first it supports), so it can only meet an MD5-only server.
		o.DigestAlgorithms = []string{"MD5"}
	})

	alice := testenv.StartBaresip(t, testenv.BaresipOptions{
		Account:  `<sip:alice@example.com;transport=tcp>;auth_pass=wonderland;outbound="sip:` + ts.tcp + `;transport=tcp";regint=600;pubint=600`,
		Contacts: []string{`"Bob" <sip:bob@example.com>`},
	})
	// ctrl_tcp sends events only to a client connected in time, so the
	// registration is watched where it lands: in the registrar.
	waitPeer(t, "baresip's REGISTER", func() bool { return registered(ts, "alice@example.com") }, alice.Output)

	bob := newPeer(t, "bob", 200)
	if res := register(t, ts, bob, "udp", "bob", "builder", bob.contact, 600, "MD5"); res.StatusCode != 200 {
		t.Fatalf("bob register: %d", res.StatusCode)
	}

	t.Run("baresip to sipgo", func(t *testing.T) {
		alice.Command(t, "contact_next", "")
		const text = "Hello Bob, this is baresip"
		alice.Command(t, "message", text)
		select {
		case got := <-bob.got:
			if string(got.Body()) != text {
				t.Errorf("bob got %q, want %q", got.Body(), text)
			}
			if got.From().Address.User != "alice" {
				t.Errorf("bob got From %v, want alice", got.From())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("bob received nothing\n%s", alice.Output())
		}
	})

	t.Run("sipgo to baresip", func(t *testing.T) {
		const text = "Hello alice, bob here"
		req := messageReq(ts, "udp", "bob", "sip:alice@example.com", "text/plain", text)
		res := authed(t, bob, req, "bob", "builder")
		if res.StatusCode != 200 {
			t.Fatalf("MESSAGE to baresip: got %d, want 200", res.StatusCode)
		}
		alice.WaitOutput(t, "bob's message", regexp.QuoteMeta(`sip:bob@example.com: "`+text+`"`))
	})

	t.Run("published presence", func(t *testing.T) {
		waitPeer(t, "baresip's PUBLISH", func() bool { return ts.Stats().Publications > 0 }, alice.Output)
		carol := newPeer(t, "carol", 200)
		res := authed(t, carol, subscribeReq(ts, "carol", "alice", carol.contact, 600), "carol", "secret")
		if res.StatusCode != 200 {
			t.Fatalf("SUBSCRIBE to alice: got %d", res.StatusCode)
		}
		if state, open := notifyState(t, nextNotify(t, carol)); !strings.HasPrefix(state, "active") || !open {
			t.Fatalf("NOTIFY: state %q open %v, want active and open (baresip's PUBLISH)", state, open)
		}
	})
}

// TestSipsakOptions pings the server with sipsak (Debian sipsak), over
// UDP and TCP: exit status 0 means it got a 200 to its OPTIONS.
func TestSipsakOptions(t *testing.T) {
	needPeer(t, sipsakBinary, "sipsak")
	ts := startServer(t, newUsers(t), []string{"example.com"}, nil)
	for _, tc := range []struct {
		transport, addr string
	}{{"udp", ts.udp}, {"tcp", ts.tcp}} {
		t.Run(tc.transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// sipsak resolves the URI's host itself, so the URI names
			// the listener; the server answers for its own addresses.
			args := []string{"-v", "-s", "sip:ping@" + tc.addr}
			if tc.transport == "tcp" {
				args = append(args, "-E", "tcp")
			}
			out, err := exec.CommandContext(ctx, sipsakBinary, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("sipsak %v: %v\n%s", args, err, out)
			}
			if !strings.Contains(string(out), "200 OK") {
				t.Fatalf("sipsak saw no 200 OK:\n%s", out)
			}
		})
	}
}
