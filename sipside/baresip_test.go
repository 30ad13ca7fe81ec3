package sipside

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	baresipBinary  = "/usr/bin/baresip"
	baresipModules = "/usr/lib/baresip/modules"
	sipsakBinary   = "/usr/bin/sipsak"
)

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

// freeTCPPort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a process's output for the test to read while it
// runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p) //nolint:wrapcheck // bytes.Buffer never fails
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// baresip is one headless baresip process with one account, driven over
// its ctrl_tcp module (netstring-framed JSON commands and events).
type baresip struct {
	t      *testing.T
	out    *lockedBuffer
	ctrl   net.Conn
	r      *bufio.Reader
	events chan map[string]any
	token  int
}

// startBaresip writes a config directory for account (a line of
// baresip's accounts file) and contacts, and starts baresip on it.
func startBaresip(t *testing.T, account string, contacts []string) *baresip {
	t.Helper()
	dir := t.TempDir()
	ctrlPort := freeTCPPort(t)
	config := strings.Join([]string{
		"poll_method epoll",
		// Port 0: the kernel picks; never a fixed port in tests.
		"sip_listen 127.0.0.1:0",
		"module_path " + baresipModules,
		// No audio or video drivers: this peer only registers,
		// publishes presence and exchanges MESSAGEs.
		"module_tmp account.so",
		// stdio is the user interface: incoming MESSAGEs are printed
		// there, as a user would see them.
		"module stdio.so",
		"module_app contact.so",
		"module_app menu.so",
		"module_app presence.so",
		"module_app ctrl_tcp.so",
		"ctrl_tcp_listen 127.0.0.1:" + strconv.Itoa(ctrlPort),
		"",
	}, "\n")
	files := map[string]string{
		"config":   config,
		"accounts": account + "\n",
		"contacts": strings.Join(contacts, "\n") + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, baresipBinary, "-f", dir, "-v", "-n", "127.0.0.1")
	b := &baresip{t: t, out: &lockedBuffer{}, events: make(chan map[string]any, 64)}
	cmd.Stdout, cmd.Stderr = b.out, b.out
	// stdio reads keys from stdin: a pipe nobody writes to keeps it
	// waiting (at end of input it would quit).
	stdin, keys, err := os.Pipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stdin = stdin
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start baresip: %v", err)
	}
	stdin.Close()
	t.Cleanup(func() {
		cancel() // kills the process
		_ = cmd.Wait()
		keys.Close()
		if t.Failed() {
			t.Logf("baresip output (%s):\n%s", account, b.out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ctrlPort))
		if err == nil {
			b.ctrl, b.r = c, bufio.NewReader(c)
			t.Cleanup(func() { c.Close() })
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip ctrl_tcp did not come up: %v\n%s", err, b.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	go b.readEvents()
	return b
}

// readEvents reads netstrings ("len:json,") from ctrl_tcp.
func (b *baresip) readEvents() {
	defer close(b.events)
	for {
		lenStr, err := b.r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(lenStr, ":")))
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		buf := make([]byte, n+1)
		if _, err := io.ReadFull(b.r, buf); err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(buf[:n], &m) == nil {
			b.events <- m
		}
	}
}

// command sends a ctrl_tcp command and waits for its response.
func (b *baresip) command(cmd, params string) map[string]any {
	b.t.Helper()
	b.token++
	tok := strconv.Itoa(b.token)
	js, _ := json.Marshal(map[string]string{"command": cmd, "params": params, "token": tok})
	if _, err := fmt.Fprintf(b.ctrl, "%d:%s,", len(js), js); err != nil {
		b.t.Fatalf("ctrl_tcp %s: %v", cmd, err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-b.events:
			if !ok {
				b.t.Fatalf("ctrl_tcp closed waiting for %s\n%s", cmd, b.out.String())
			}
			if m["response"] == true && m["token"] == tok {
				return m
			}
		case <-timeout:
			b.t.Fatalf("no ctrl_tcp response to %s\n%s", cmd, b.out.String())
		}
	}
}

// waitPeer polls cond until it holds.
func waitPeer(t *testing.T, what string, cond func() bool, out fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, out)
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

// waitOutput waits until baresip has printed s.
func (b *baresip) waitOutput(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("baresip never printed %q:\n%s", s, b.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBaresipInterop runs baresip (Debian baresip-core) as alice's SIP
// client over TCP: it registers with digest authentication, publishes
// presence (its presence module), and exchanges MESSAGEs with bob, a
// sipgo client, through the server. A sipgo watcher then sees alice's
// published state.
func TestBaresipInterop(t *testing.T) {
	needPeer(t, baresipBinary, "baresip-core")
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

	alice := startBaresip(t,
		`<sip:alice@example.com;transport=tcp>;auth_pass=wonderland;outbound="sip:`+ts.tcp+`;transport=tcp";regint=600;pubint=600`,
		[]string{`"Bob" <sip:bob@example.com>`})
	// ctrl_tcp sends events only to a client connected in time, so the
	// registration is watched where it lands: in the registrar.
	waitPeer(t, "baresip's REGISTER", func() bool { return registered(ts, "alice@example.com") }, alice.out)

	bob := newPeer(t, "bob", 200)
	if res := register(t, ts, bob, "udp", "bob", "builder", bob.contact, 600, "MD5"); res.StatusCode != 200 {
		t.Fatalf("bob register: %d", res.StatusCode)
	}

	t.Run("baresip to sipgo", func(t *testing.T) {
		alice.command("contact_next", "")
		const text = "Hello Bob, this is baresip"
		alice.command("message", text)
		select {
		case got := <-bob.got:
			if string(got.Body()) != text {
				t.Errorf("bob got %q, want %q", got.Body(), text)
			}
			if got.From().Address.User != "alice" {
				t.Errorf("bob got From %v, want alice", got.From())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("bob received nothing\n%s", alice.out.String())
		}
	})

	t.Run("sipgo to baresip", func(t *testing.T) {
		const text = "Hello alice, bob here"
		req := messageReq(ts, "udp", "bob", "sip:alice@example.com", "text/plain", text)
		res := authed(t, bob, req, "bob", "builder")
		if res.StatusCode != 200 {
			t.Fatalf("MESSAGE to baresip: got %d, want 200", res.StatusCode)
		}
		alice.waitOutput(t, `sip:bob@example.com: "`+text+`"`)
	})

	t.Run("published presence", func(t *testing.T) {
		waitPeer(t, "baresip's PUBLISH", func() bool { return ts.Stats().Publications > 0 }, alice.out)
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
