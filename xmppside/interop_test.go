package xmppside

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Interop with clients nobody here wrote, from Debian packages.

func TestGoSendxmppClient(t *testing.T) {
	const bin = "/usr/bin/go-sendxmpp"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("go-sendxmpp not installed (%s: %v); install the Debian package go-sendxmpp", bin, err)
	}
	for _, direct := range []bool{false, true} {
		name := "starttls"
		if direct {
			name = "direct-tls"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.addUser("alice", "alice-pw")
			e.addUser("bob", "bob-pw")
			bob := e.mustLogin("bob", "bob-pw", "b")
			bob.send(`<presence/>`)
			bob.sync()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			t.Cleanup(cancel)
			server := e.c2s
			args := []string{"-f", filepath.Join(t.TempDir(), "none"), "-u", "alice@" + testDomain, "-p", "alice-pw", "-j", server, "-n"}
			if direct {
				args = append(args, "-t")
				args[7] = e.direct
			}
			args = append(args, "bob@"+testDomain)
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Stdin = strings.NewReader("hello from go-sendxmpp")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			if err := cmd.Run(); err != nil {
				t.Fatalf("go-sendxmpp: %v\n%s", err, out.String())
			}
			m := bob.nextWhere("message from go-sendxmpp", func(n node) bool { return n.XMLName.Local == "message" })
			body, _ := m.child("body")
			if !strings.HasPrefix(m.attr("from"), "alice@"+testDomain+"/") || strings.TrimSpace(body.Text) != "hello from go-sendxmpp" {
				t.Fatalf("bob got from %q body %q", m.attr("from"), body.Text)
			}
		})
	}
}

const slixScript = `
import asyncio, logging, ssl, sys
import slixmpp

host, port, jid, password, peer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", lambda _: (print("AUTH-FAILED", flush=True), self.disconnect()))

    async def start(self, event):
        self.send_presence()
        await self.get_roster()
        print("READY", self.boundjid.full, flush=True)
        self.send_message(mto=peer, mbody="hello from slixmpp", mtype="chat")

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            print("GOT", msg["from"], msg["thread"], msg["body"], flush=True)
            self.disconnect()

c = Client()
c.connect((host, port))
c.loop.run_until_complete(c.disconnected)
`

func TestSlixmppClient(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("%s missing: %v", py, err)
	}
	if err := exec.Command(py, "-c", "import slixmpp").Run(); err != nil {
		t.Skipf("python3-slixmpp not installed for %s: %v", py, err)
	}
	e := newEnv(t, nil)
	e.addUser("alice", "alice-pw")
	e.addUser("bob", "bob-pw")
	bob := e.mustLogin("bob", "bob-pw", "b")
	bob.send(`<presence/>`)
	bob.sync()

	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(slixScript), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(e.c2s, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, py, script, host, port, "alice@"+testDomain+"/slix", "alice-pw", "bob@"+testDomain+"/b")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	m := bob.nextWhere("message from slixmpp", func(n node) bool { return n.XMLName.Local == "message" })
	if body, _ := m.child("body"); m.attr("from") != "alice@"+testDomain+"/slix" || body.Text != "hello from slixmpp" {
		t.Fatalf("bob got %+v", m)
	}
	bob.send(`<message to='alice@example.test/slix' type='chat'><body>hello slixmpp</body><thread>th-9</thread></message>`)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "GOT bob@example.test/b th-9 hello slixmpp") {
		t.Fatalf("slixmpp output:\n%s", out.String())
	}
}
