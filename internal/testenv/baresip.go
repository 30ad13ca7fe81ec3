package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
)

// Notes on Debian's baresip as a test peer (bookworm: baresip-core 1.0.0,
// libre 1.1):
//
//   - Headless, it needs no audio or video module: account, stdio,
//     contact, menu, presence and ctrl_tcp are enough to register,
//     publish and subscribe to presence and exchange MESSAGEs.
//   - stdio reads keys from standard input and makes baresip quit at end
//     of input, so it gets a pipe nobody writes to.
//   - It listens for SIP over TLS on the port after its SIP port
//     (sip_listen): the ctrl_tcp port must be neither.
//   - ctrl_tcp speaks netstrings ("len:json,"): commands carry a token
//     their response repeats, with "ok" and the command's output in
//     "data". UA events go only to clients connected when they happen,
//     so those of its start (the REGISTER) are best watched elsewhere.
//   - A received MESSAGE is printed by the menu module on standard output
//     (`sip:from@domain: "text"`); ctrl_tcp does not report it.
//   - -s traces every SIP message it sends and receives on standard
//     output (in terminal colours), which is what one wants to read when a
//     test fails. -n binds it to a network interface or, as here, to an
//     IP address.

// BaresipOptions says what [StartBaresip] runs.
type BaresipOptions struct {
	// IP is the loopback address for SIP and ctrl_tcp; "" means
	// 127.0.0.1.
	IP string
	// SIPPort is the port it listens on for SIP over UDP and TCP (and
	// SIPPort+1 for TLS); 0 lets the kernel pick.
	SIPPort int
	// DNS is "ip:port" of the DNS server it uses (dns_server); "" leaves
	// it to the system's resolver configuration.
	DNS string
	// Account is its one account, a line of baresip's accounts file, e.g.
	// `<sip:alice@example.com;transport=tcp>;auth_pass=secret;regint=600`.
	Account string
	// Contacts are lines of its contacts file, e.g.
	// `"Bob" <sip:bob@example.com>;presence=p2p`.
	Contacts []string
}

// Baresip is a running baresip started by [StartBaresip], with a
// ctrl_tcp connection to it.
type Baresip struct {
	account string
	cmd     *exec.Cmd
	keys    *os.File // stdin's write end, never written
	exited  chan struct{}

	mu  sync.Mutex
	out bytes.Buffer // stdout and stderr

	ctrl    net.Conn
	ctrlMu  sync.Mutex // one command written at a time
	ctrlEnd chan struct{}
	token   int
	waiting map[string]chan map[string]any // by token; under mu
}

// StartBaresip runs baresip (Debian's baresip-core) headless on loopback
// with one account and its contacts, connects to its ctrl_tcp module, and
// kills it when the test ends, logging what it printed if the test
// failed. It skips the test when baresip is not installed (see the
// package documentation).
//
// baresip registers, publishes presence and subscribes to its
// ;presence=p2p contacts as it starts, as the account line says.
func StartBaresip(t testing.TB, o BaresipOptions) *Baresip {
	t.Helper()
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	checkLoopback(t, o.IP)
	if err := checkBaresipOptions(o); err != nil {
		t.Fatalf("testenv: StartBaresip: %v", err)
	}
	prog := lookProgram(t, "baresip", "baresip-core")
	// /usr/bin/baresip has its modules in /usr/lib/baresip/modules.
	modules := filepath.Join(filepath.Dir(filepath.Dir(prog)), "lib", "baresip", "modules")
	if _, err := os.Stat(filepath.Join(modules, "ctrl_tcp.so")); err != nil {
		t.Fatalf("testenv: %s is installed but its modules are not where expected: %v", prog, err)
	}
	dir := t.TempDir()
	var lastErr error
	for range 5 {
		ctrlPort := FreePort(t, "tcp", o.IP)
		for o.SIPPort != 0 && (ctrlPort == o.SIPPort || ctrlPort == o.SIPPort+1) {
			ctrlPort = FreePort(t, "tcp", o.IP)
		}
		run, err := os.MkdirTemp(dir, "run-")
		if err != nil {
			t.Fatal(err)
		}
		b, err := startBaresip(prog, modules, run, o, ctrlPort)
		if err == nil {
			t.Cleanup(func() {
				b.kill()
				if t.Failed() {
					t.Logf("baresip output (%s):\n%s", b.account, b.Output())
				}
			})
			return b
		}
		lastErr = err
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	t.Fatalf("testenv: %v", lastErr)
	return nil
}

func checkBaresipOptions(o BaresipOptions) error {
	if o.SIPPort < 0 || o.SIPPort > 65534 {
		return fmt.Errorf("SIP port %d out of range", o.SIPPort)
	}
	if o.DNS != "" {
		host, _, err := net.SplitHostPort(o.DNS)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("DNS %q is not a loopback ip:port", o.DNS)
		}
	}
	if o.Account == "" || strings.ContainsAny(o.Account, "\r\n") {
		return fmt.Errorf("account %q: want one line", o.Account)
	}
	for _, c := range o.Contacts {
		if strings.ContainsAny(c, "\r\n") {
			return fmt.Errorf("contact %q: want one line", c)
		}
	}
	return nil
}

// baresipConfig returns the config file.
func baresipConfig(o BaresipOptions, modules string, ctrlPort int) string {
	lines := []string{
		"poll_method epoll",
		"sip_listen " + net.JoinHostPort(o.IP, strconv.Itoa(o.SIPPort)),
	}
	if o.DNS != "" {
		lines = append(lines, "dns_server "+o.DNS)
	}
	lines = append(lines,
		"module_path "+modules,
		"module_tmp account.so",
		// stdio is the user interface: received MESSAGEs are printed
		// there, as a user would read them.
		"module stdio.so",
		"module_app contact.so",
		"module_app menu.so",
		"module_app presence.so",
		"module_app ctrl_tcp.so",
		"ctrl_tcp_listen "+net.JoinHostPort(o.IP, strconv.Itoa(ctrlPort)),
		"",
	)
	return strings.Join(lines, "\n")
}

func startBaresip(prog, modules, run string, o BaresipOptions, ctrlPort int) (*Baresip, error) {
	files := map[string]string{
		"config":   baresipConfig(o, modules, ctrlPort),
		"accounts": o.Account + "\n",
		"contacts": strings.Join(o.Contacts, "\n") + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(run, name), []byte(body), 0o600); err != nil {
			return nil, fmt.Errorf("baresip: %w", err)
		}
	}
	args := []string{"-f", run, "-v", "-s", "-n", o.IP}
	b := &Baresip{
		account: o.Account,
		cmd:     exec.Command(prog, args...),
		exited:  make(chan struct{}),
		ctrlEnd: make(chan struct{}),
		waiting: make(map[string]chan map[string]any),
	}
	b.cmd.Dir = run
	b.cmd.Stdout = writerFunc(b.write)
	b.cmd.Stderr = writerFunc(b.write)
	stdin, keys, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("baresip: %w", err)
	}
	b.cmd.Stdin, b.keys = stdin, keys
	if err := b.cmd.Start(); err != nil {
		stdin.Close()
		keys.Close()
		return nil, fmt.Errorf("start baresip: %w", err)
	}
	stdin.Close()
	go func() {
		_ = b.cmd.Wait()
		close(b.exited)
	}()

	ctrlAddr := net.JoinHostPort(o.IP, strconv.Itoa(ctrlPort))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ctrlAddr, time.Second)
		if err == nil {
			b.ctrl = c
			break
		}
		select {
		case <-b.exited:
			b.kill()
			return nil, fmt.Errorf("baresip %s exited early:\n%s\nconfig:\n%s", strings.Join(args, " "), b.Output(), numbered([]byte(files["config"])))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.kill()
			return nil, fmt.Errorf("baresip ctrl_tcp on %s did not come up within 10s: %v\n%s", ctrlAddr, err, b.Output())
		}
	}
	go b.readCtrl(bufio.NewReader(b.ctrl))
	return b, nil
}

// kill kills baresip, waits for it and closes what it held.
func (b *Baresip) kill() {
	_ = b.cmd.Process.Kill()
	<-b.exited
	if b.ctrl != nil {
		b.ctrl.Close()
	}
	b.keys.Close()
}

func (b *Baresip) write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

// Output returns what baresip has printed so far: its log (-v), every SIP
// message it sent or received (-s), and the user interface, where
// received MESSAGEs appear as `sip:from@domain: "text"`.
func (b *Baresip) Output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// readCtrl reads ctrl_tcp's netstrings and hands each response to the
// command waiting for its token; events are dropped.
func (b *Baresip) readCtrl(r *bufio.Reader) {
	defer close(b.ctrlEnd)
	for {
		head, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(head, ":")))
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		msg := make([]byte, n+1)
		if _, err := io.ReadFull(r, msg); err != nil || msg[n] != ',' {
			return
		}
		var m map[string]any
		if json.Unmarshal(msg[:n], &m) != nil || m["response"] != true {
			continue
		}
		tok, _ := m["token"].(string)
		b.mu.Lock()
		ch := b.waiting[tok]
		delete(b.waiting, tok)
		b.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// Command runs a ctrl_tcp command (a long command of baresip's menu:
// "message", "contact_next", "contacts", "presence_offline", ...) and
// returns its output. It fails the test when baresip reports the command
// failed or does not answer within 10s.
func (b *Baresip) Command(t testing.TB, cmd, params string) string {
	t.Helper()
	ch := make(chan map[string]any, 1)
	b.mu.Lock()
	b.token++
	tok := "t" + strconv.Itoa(b.token)
	b.waiting[tok] = ch
	b.mu.Unlock()
	js, err := json.Marshal(map[string]string{"command": cmd, "params": params, "token": tok})
	if err != nil {
		t.Fatalf("ctrl_tcp %s: %v", cmd, err)
	}
	b.ctrlMu.Lock()
	_, err = fmt.Fprintf(b.ctrl, "%d:%s,", len(js), js)
	b.ctrlMu.Unlock()
	if err != nil {
		t.Fatalf("ctrl_tcp %s: %v", cmd, err)
	}
	select {
	case m := <-ch:
		data, _ := m["data"].(string)
		if m["ok"] != true {
			t.Fatalf("ctrl_tcp %s %q failed: %s\n%s", cmd, params, data, b.Output())
		}
		return data
	case <-b.ctrlEnd:
		t.Fatalf("ctrl_tcp closed waiting for %s\n%s", cmd, b.Output())
	case <-time.After(10 * time.Second):
		t.Fatalf("no ctrl_tcp response to %s within 10s\n%s", cmd, b.Output())
	}
	return ""
}

// WaitOutput waits up to 30s until baresip's output (see [Baresip.Output])
// matches the regular expression pattern and returns the match; what says
// what is awaited, for the failure message.
func (b *Baresip) WaitOutput(t testing.TB, what, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := re.FindString(b.Output()); m != "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip never printed %s (%q) within 30s:\n%s", what, pattern, b.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
