package testenv

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Notes on Debian's Kamailio as a test peer (bookworm: kamailio and
// kamailio-presence-modules 5.6.3-2; textopsx, registrar, usrloc, sanity
// and the rest of the modules used here are in the kamailio package):
//
//   - No database is needed. presence with publ_cache=2 keeps publications
//     in memory and then runs fully without db_url (with any other
//     publ_cache and no db_url it silently becomes a mere API library);
//     subs_db_mode=0 keeps subscriptions in memory. presence_xml with
//     force_active=1 opens no database even though its default db_url is
//     a MySQL one.
//   - im: and pres: Request-URIs get "400 Bad Request URI" (sanity and
//     $ru cannot parse them). A SUBSCRIBE whose To is a pres: URI gets
//     "500 Server Internal Error" even after the Request-URI is rewritten
//     ("extract_sdialog_info_ex(): while parsing uri"), hence the To/From
//     rewrite plus msg_apply_changes() behind AcceptIMPres.
//   - presence answers a PUBLISH before it notifies the watchers, so a
//     watcher subscribing right after can get the same state twice (one
//     NOTIFY from its SUBSCRIBE, one from the PUBLISH). Watchers must take
//     repeated NOTIFYs in their stride.
//   - The 200 to a SUBSCRIBE has Contact: <sip:IP:PORT> (server_address,
//     no user part); refreshes and unsubscribes come there, so the
//     routing logic sends SUBSCRIBEs to handle_subscribe before it looks
//     at the user.
//   - Without tcp_source_ipv4 the TCP connections it opens come from
//     127.0.0.1 and it logs "could not find corresponding listening
//     socket". Core parameters take IP addresses unquoted
//     (tcp_source_ipv4=127.0.0.7; quoted is "IPv4 address expected").
//   - In double-quoted configuration strings "\1" is an octal escape;
//     regular expressions with back-references go in single quotes.
//   - -DD -E keeps it and its children in the foreground, logging to
//     stderr; SIGTERM to the main process stops them all in a few ms. At
//     shutdown it logs CRITICAL "receive_fd(): EOF", which is harmless.
//     It answers OPTIONS about 50 ms after it starts.

// KamailioOptions says what [StartKamailio] runs.
type KamailioOptions struct {
	// Domain is the SIP domain Kamailio serves, e.g. "verona.example.org".
	// Requests whose Request-URI host is Domain (or Kamailio's own
	// address) are for its users.
	Domain string
	// IP is the loopback address it binds, UDP and TCP; "" means
	// 127.0.0.1.
	IP string
	// Port is the port it binds; 0 means a free one.
	Port int
	// Peers maps other domains to "ip:port" where their SIP server takes
	// UDP and TCP. Kamailio forwards requests for those domains there,
	// over the transport the request came in on, without DNS.
	Peers map[string]string
	// AcceptIMPres makes Kamailio take im: and pres: URIs (RFC 3860,
	// 3859) in the Request-URI, To and From as the sip: URI with the same
	// user and host, rewriting the request. Kamailio itself answers them
	// 400 Bad Request URI, as a real deployment would.
	AcceptIMPres bool
}

// Kamailio is a running Kamailio started by [StartKamailio].
type Kamailio struct {
	// Addr is where it listens, UDP and TCP: "127.0.0.x:port".
	Addr string
	// Domain is the SIP domain it serves.
	Domain string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process and its children are gone
	stop   sync.Once

	mu  sync.Mutex
	log []string
}

//go:embed testdata/kamailio.cfg.tmpl
var kamailioCfg string

var kamailioTmpl = template.Must(template.New("kamailio.cfg").Parse(kamailioCfg))

// StartKamailio runs Kamailio as the SIP proxy, registrar and SIMPLE
// presence server (RFC 3856, 3903, PIDF) of o.Domain on loopback, waits
// until it answers an OPTIONS, and stops it when the test ends. It skips
// the test when kamailio is not installed (see the package documentation).
//
// What it does with a request:
//
//   - REGISTER for Domain: stores the binding (in memory).
//   - PUBLISH and SUBSCRIBE for a user of Domain: its presence server
//     (events presence and presence.winfo). Every watcher, from any
//     domain, is authorized at once and gets NOTIFYs at its Contact.
//   - Other requests for a user of Domain (MESSAGE, ...): relayed to the
//     user's registered contacts, 404 Not Found when there is none.
//   - Requests for a domain in o.Peers: relayed to that peer's address.
//   - Anything else: 403 Relaying Forbidden.
//
// There is no authentication of any kind: anyone reaching the address can
// register as, publish for and send as any user. It listens on loopback
// only and lives as long as the test.
func StartKamailio(t testing.TB, o KamailioOptions) *Kamailio {
	t.Helper()
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	checkLoopback(t, o.IP)
	if err := checkKamailioOptions(o); err != nil {
		t.Fatalf("testenv: StartKamailio: %v", err)
	}
	prog := lookProgram(t, "kamailio", "kamailio")
	lookKamailioModule(t, prog, "presence", "kamailio-presence-modules")
	dir := t.TempDir()
	var lastErr error
	for range 5 {
		port := o.Port
		if port == 0 {
			port = FreePort(t, "tcp+udp", o.IP)
		}
		k, err := startKamailio(prog, dir, o, port)
		if err == nil {
			t.Cleanup(k.Stop)
			return k
		}
		lastErr = err
		if o.Port != 0 || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	t.Fatalf("testenv: %v", lastErr)
	return nil
}

// lookKamailioModule skips the test (or fails it, see [RequirePeersEnv])
// when a module from a separate Debian package is missing.
func lookKamailioModule(t testing.TB, prog, module, pkg string) {
	t.Helper()
	// "-L path      Modules search path (default: /usr/lib/.../modules)"
	out, _ := exec.Command(prog, "-h").CombinedOutput()
	m := regexp.MustCompile(`\(default: (/[^)]+)\)`).FindAllSubmatch(out, -1)
	for _, dir := range m {
		if _, err := os.Stat(filepath.Join(string(dir[1]), module+".so")); err == nil {
			return
		}
	}
	msg := fmt.Sprintf("testenv: kamailio module %s is not installed (apt-get install %s)", module, pkg)
	if os.Getenv(RequirePeersEnv) != "" {
		t.Fatalf("%s and %s is set", msg, RequirePeersEnv)
	}
	t.Skip(msg + "; skipping")
}

var kamailioName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

func checkKamailioOptions(o KamailioOptions) error {
	if !kamailioName.MatchString(o.Domain) {
		return fmt.Errorf("domain %q is not a host name", o.Domain)
	}
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("port %d out of range", o.Port)
	}
	for d, addr := range o.Peers {
		if !kamailioName.MatchString(d) {
			return fmt.Errorf("peer domain %q is not a host name", d)
		}
		if strings.EqualFold(d, o.Domain) {
			return fmt.Errorf("peer domain %q is Kamailio's own", d)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("peer %s: address %q: %w", d, addr, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("peer %s: %q is not a loopback address", d, host)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("peer %s: bad port in %q", d, addr)
		}
	}
	return nil
}

type kamailioPeer struct{ Domain, Addr string }

// kamailioConfig renders the configuration file.
func kamailioConfig(o KamailioOptions, port int) ([]byte, error) {
	data := struct {
		Domain, IP, Host string // Host: IP, in brackets if IPv6
		IPv6             bool
		Port, Debug      int
		Peers            []kamailioPeer
		AcceptIMPres     bool
	}{
		Domain:       o.Domain,
		IP:           o.IP,
		Host:         o.IP,
		Port:         port,
		Debug:        2, // info: our xlog lines and Kamailio's warnings and errors
		AcceptIMPres: o.AcceptIMPres,
	}
	if net.ParseIP(o.IP).To4() == nil {
		data.IPv6 = true
		data.Host = "[" + o.IP + "]"
	}
	for d, addr := range o.Peers {
		host, p, _ := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); ip.To4() == nil {
			host = "[" + host + "]"
		}
		data.Peers = append(data.Peers, kamailioPeer{strings.ToLower(d), host + ":" + p})
	}
	slices.SortFunc(data.Peers, func(a, b kamailioPeer) int { return strings.Compare(a.Domain, b.Domain) })
	var b bytes.Buffer
	if err := kamailioTmpl.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func startKamailio(prog, dir string, o KamailioOptions, port int) (*Kamailio, error) {
	run, err := os.MkdirTemp(dir, "run-")
	if err != nil {
		return nil, fmt.Errorf("kamailio: %w", err)
	}
	cfg, err := kamailioConfig(o, port)
	if err != nil {
		return nil, fmt.Errorf("kamailio: config: %w", err)
	}
	cfgFile := filepath.Join(run, "kamailio.cfg")
	if err := os.WriteFile(cfgFile, cfg, 0o644); err != nil {
		return nil, fmt.Errorf("kamailio: %w", err)
	}
	args := []string{
		"-f", cfgFile,
		"-DD", // stay in the foreground, children included
		"-E",  // log to stderr
		"-Y", run,
		"-P", filepath.Join(run, "kamailio.pid"),
		"-w", run,
		"-m", "64", // MB of shared memory
		"-M", "8", // MB of private memory per process
	}
	k := &Kamailio{
		Addr:   net.JoinHostPort(o.IP, strconv.Itoa(port)),
		Domain: o.Domain,
		cmd:    exec.Command(prog, args...),
		exited: make(chan struct{}),
	}
	// Its own process group, so that Stop can reach the children too.
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	k.cmd.Dir = run
	k.cmd.Stdout = io.Discard
	stderr, err := k.cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("kamailio: %w", err)
	}
	if err := k.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start kamailio: %w", err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			k.addLine(sc.Text())
		}
	}()
	go func() {
		<-readDone // every process holding stderr is gone: read everything first
		_ = k.cmd.Wait()
		close(k.exited)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		err := k.ping(ctx)
		if err == nil {
			return k, nil
		}
		select {
		case <-k.exited:
			return nil, fmt.Errorf("kamailio %s exited early:\n%s\n%s", strings.Join(args, " "), k.Log(), numbered(cfg))
		case <-ctx.Done():
			k.Stop()
			return nil, fmt.Errorf("kamailio on %s did not answer OPTIONS within 15s: %v\n%s", k.Addr, err, k.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// numbered returns the configuration with line numbers, as Kamailio's
// error messages refer to them.
func numbered(cfg []byte) string {
	var b strings.Builder
	for i, line := range strings.Split(string(cfg), "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}

// ping sends an OPTIONS over UDP and then opens a TCP connection: both
// sides answer once it is ready.
func (k *Kamailio) ping(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", k.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	branch := fmt.Sprintf("z9hG4bK-testenv-%d", time.Now().UnixNano())
	msg := "OPTIONS sip:" + k.Addr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=" + branch + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:ping@testenv.invalid>;tag=" + branch[8:] + "\r\n" +
		"To: <sip:" + k.Addr + ">\r\n" +
		"Call-ID: " + branch + "@testenv.invalid\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return fmt.Errorf("OPTIONS: %w", err)
	}
	if !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200 ")) {
		line, _, _ := bytes.Cut(buf[:n], []byte("\r\n"))
		return fmt.Errorf("OPTIONS: %s", line)
	}
	tc, err := d.DialContext(ctx, "tcp", k.Addr)
	if err != nil {
		return err
	}
	return tc.Close()
}

// Log returns what Kamailio has logged so far, for failure messages. Each
// request it receives is logged as "request METHOD URI from IP:PORT/PROTO"
// and each reply it relays as "reply CODE REASON to METHOD from ...".
func (k *Kamailio) Log() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return strings.Join(k.log, "\n")
}

func (k *Kamailio) addLine(line string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.log = append(k.log, line)
}

// Stop stops Kamailio and its children (SIGTERM, then SIGKILL to the
// process group after 5s) and waits for them. It runs at cleanup anyway;
// call it to test what happens when the peer is gone.
func (k *Kamailio) Stop() {
	k.stop.Do(func() {
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
			<-k.exited
		}
	})
}
