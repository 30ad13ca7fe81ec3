package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// umppd runs the command in-process, as a user at a shell would, and
// returns its exit status and output.
func umppd(t testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// binary builds umppd once per test run, for tests that need a process
// of their own (signals, restarts).
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "umppd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "umppd")
		out, err := exec.Command("go", "build", "-o", buildPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

// daemonProcess is a umppd serve running as its own process.
type daemonProcess struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

// startDaemon starts `umppd args...` in dir and returns once the log says
// it is listening. The process is killed at cleanup if still running.
func startDaemon(t testing.TB, dir string, args ...string) *daemonProcess {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemonProcess{cmd: cmd, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.logs.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			if strings.Contains(sc.Text(), "umppd started") {
				once.Do(func() { close(started) })
			}
		}
		d.done <- cmd.Wait()
		once.Do(func() { close(started) })
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-d.done
		}
	})
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatalf("umppd did not start within 60s; logs:\n%s", d.Logs())
	}
	if cmd.ProcessState != nil {
		t.Fatalf("umppd exited at start: %v; logs:\n%s", cmd.ProcessState, d.Logs())
	}
	return d
}

func (d *daemonProcess) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// stop sends sig and waits for the exit; it fails the test if the daemon
// takes longer than the 10 s the operator contract allows (plus slack for
// a loaded machine).
func (d *daemonProcess) stop(t testing.TB, sig os.Signal) error {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("umppd did not stop after %v; logs:\n%s", sig, d.Logs())
		return nil
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := umppd(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "umppd ") {
		t.Fatalf("umppd version = %d, %q; want 0 and a line starting with umppd", code, out)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errOut := umppd(t, "", "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "usage:") {
		t.Fatalf("umppd frobnicate = %d, stderr %q; want 2 with the usage", code, errOut)
	}
}

func TestCheckConfigExample(t *testing.T) {
	code, out, errOut := umppd(t, "", "check-config", "-config", "../../config/umppd.example.toml")
	if code != 0 {
		t.Fatalf("check-config on the example = %d; stderr:\n%s", code, errOut)
	}
	if !strings.Contains(out, "ok") {
		t.Errorf("check-config said %q; want it to say ok", out)
	}
}

func TestCheckConfigEmbeddedDefault(t *testing.T) {
	code, out, errOut := umppd(t, "", "check-config")
	if code != 0 || !strings.Contains(out, "(embedded default): ok") {
		t.Fatalf("check-config with no file = %d, %q, %q", code, out, errOut)
	}
}

// Broken configurations are reported as FILE:LINE: key: problem, all of
// them, with exit status 1.
func TestCheckConfigBroken(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, toml string
		want       []string // lines expected on stderr, after "FILE:"
	}{
		{
			name: "unknown key",
			toml: "domains = [\"montague.example.net\"]\ncolour = \"blue\"\n",
			want: []string{`2: colour:`},
		},
		{
			name: "bad port",
			toml: "domains = [\"montague.example.net\"]\n[sip]\nlisten = [\"udp://127.0.0.1:70000\"]\n",
			want: []string{`3: sip.listen:`},
		},
		{
			name: "missing certificate file",
			toml: "domains = [\"montague.example.net\"]\n[tls]\ncert = \"nope.crt\"\nkey = \"nope.key\"\n",
			want: []string{`3: tls.cert:`},
		},
		{
			name: "invalid domain",
			toml: "domains = [\"-bad.example\"]\n",
			want: []string{`1: domains:`},
		},
		{
			name: "several problems at once",
			toml: "domains = [\"exa mple.com\"]\n[sip]\nlisten = [\"smoke://127.0.0.1:5060\"]\n[xmpp]\nc2s_listen = [\"127.0.0.1:0\"]\nshoe_size = 9\n",
			want: []string{`1: domains:`, `3: sip.listen:`, `6: xmpp.shoe_size:`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".toml")
			if err := os.WriteFile(file, []byte(tt.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := umppd(t, "", "check-config", "-config", file)
			if code != 1 {
				t.Fatalf("check-config = %d, want 1; stderr:\n%s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, file+":"+w) {
					t.Errorf("stderr lacks %q:\n%s", file+":"+w, errOut)
				}
			}
		})
	}
}

// writeConfig writes a configuration for a daemon on 127.0.0.1 with
// kernel-chosen ports into dir and returns its path.
func writeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	toml := fmt.Sprintf(`domains = ["montague.example.net"]
data_dir = %q
[sip]
listen = ["udp://127.0.0.1:%d", "tcp://127.0.0.1:%d"]
[xmpp]
c2s_listen = ["127.0.0.1:%d"]
c2s_direct_tls_listen = []
s2s_listen = ["127.0.0.1:%d"]
[metrics]
listen = "127.0.0.1:%d"
`, filepath.Join(dir, "data"), freePort(t, "udp"), freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")) + extra
	path := filepath.Join(dir, "umppd.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

func TestUserAddListSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")

	if code, out, errOut := umppd(t, "wherefore art thou\n", "user", "add", "-config", cfg, "Romeo@Montague.Example.NET"); code != 0 || !strings.Contains(out, "added romeo@montague.example.net") {
		t.Fatalf("user add = %d, %q, %q", code, out, errOut)
	}
	if code, _, errOut := umppd(t, "again\n", "user", "add", "-config", cfg, "romeo@montague.example.net"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second user add = %d, %q; want 1 and 'already exists'", code, errOut)
	}
	if code, _, errOut := umppd(t, "x\n", "user", "add", "-config", cfg, "tybalt@capulets.example.com"); code != 1 || !strings.Contains(errOut, "not a hosted domain") {
		t.Fatalf("user add in a foreign domain = %d, %q; want 1", code, errOut)
	}
	if code, _, errOut := umppd(t, "", "user", "add", "-config", cfg, "mercutio@montague.example.net"); code != 1 || !strings.Contains(errOut, "empty password") {
		t.Fatalf("user add with no password = %d, %q; want 1", code, errOut)
	}
	umppd(t, "pw\n", "user", "add", "-config", cfg, "benvolio@montague.example.net")

	// A daemon runs on the store and stops; the accounts are still there.
	d := startDaemon(t, dir, "serve", "-config", cfg)
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("umppd exited with %v after SIGTERM; logs:\n%s", err, d.Logs())
	}

	code, out, errOut := umppd(t, "", "user", "list", "-config", cfg)
	if code != 0 || out != "benvolio@montague.example.net\nromeo@montague.example.net\n" {
		t.Fatalf("user list = %d, %q, %q", code, out, errOut)
	}
	if code, out, _ := umppd(t, "new secret\n", "user", "passwd", "-config", cfg, "romeo@montague.example.net"); code != 0 || !strings.Contains(out, "changed") {
		t.Fatalf("user passwd = %d, %q", code, out)
	}
	if code, _, _ := umppd(t, "", "user", "del", "-config", cfg, "benvolio@montague.example.net"); code != 0 {
		t.Fatalf("user del = %d", code)
	}
	if code, _, errOut := umppd(t, "", "user", "del", "-config", cfg, "benvolio@montague.example.net"); code != 1 || !strings.Contains(errOut, "no account") {
		t.Fatalf("second user del = %d, %q", code, errOut)
	}
	if _, out, _ := umppd(t, "", "user", "list", "-config", cfg, "montague.example.net"); out != "romeo@montague.example.net\n" {
		t.Fatalf("user list after del = %q", out)
	}
	// The password is never echoed on any output.
	for _, s := range []string{d.Logs(), out} {
		if strings.Contains(s, "wherefore") {
			t.Fatalf("the password appeared in output:\n%s", s)
		}
	}
}

// umppd serve with no flags starts on the embedded default in the working
// directory, generates its certificate, accepts connections, and stops
// cleanly on SIGTERM.
func TestServeEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	logs := d.Logs()
	for _, want := range []string{"self-signed", "listening"} {
		if !strings.Contains(logs, want) {
			t.Errorf("start-up logs lack %q:\n%s", want, logs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "umppd-data", "umppd.db")); err != nil {
		t.Errorf("no SQLite store under ./umppd-data: %v", err)
	}
	for _, addr := range []string{"127.0.0.1:5222", "127.0.0.1:5223", "127.0.0.1:5269", "127.0.0.1:5060", "127.0.0.1:5061"} {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Errorf("nothing accepts on %s: %v", addr, err)
			continue
		}
		c.Close()
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, d.Logs())
	}
	if !strings.Contains(d.Logs(), "stopped") {
		t.Errorf("no 'stopped' log line:\n%s", d.Logs())
	}
}

// SIGHUP reloads; a broken configuration on reload changes nothing and
// the daemon keeps running.
func TestServeReload(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	d := startDaemon(t, dir, "serve", "-config", cfg)

	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "reloaded")

	// Break the file: the reload is refused, with the problem named.
	if err := os.WriteFile(cfg, []byte("domains = [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, d, "configuration not applied")

	if err := d.stop(t, syscall.SIGINT); err != nil {
		t.Fatalf("exit after SIGINT: %v; logs:\n%s", err, d.Logs())
	}
}

func waitLog(t *testing.T, d *daemonProcess, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(d.Logs(), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %q; logs:\n%s", want, d.Logs())
}

var _ = io.Discard
