package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umpp/umpp/internal/admin"
)

// umppd status, sessions and peers against a running daemon (a process
// of its own), with a client logged in; a second daemon on the same data
// directory is refused; the socket goes away with the daemon.
func TestStatusRunningDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := metricsConfig(t, dir)
	if code, _, errOut := umppd(t, "pw\n", "user", "add", "-config", cfg, "romeo@montague.example.net"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	d := startDaemon(t, dir, "serve", "-config", cfg)
	c2s := configValue(t, cfg, "c2s_listen")
	sock := filepath.Join(dir, "data", admin.SocketName)

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("no admin socket: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode %v; want 0600", fi.Mode().Perm())
	}

	romeo := xmppConnect(t, c2s, "romeo", "montague.example.net", "", "pw")

	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"status"}, []string{"ready", "domains: montague.example.net", "xmpp-c2s", c2s, "starttls",
			"sip", "metrics", "admin", sock, "peers: 0", "sessions: 1 xmpp (1 connections), 0 sip registrations",
			"subscriptions: 0 in, 0 out"}},
		{[]string{"sessions"}, []string{"PROTOCOL", "xmpp", "romeo@montague.example.net/", "TLS 1.3"}},
		{[]string{"peers"}, []string{"no peer connections"}},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			code, out, errOut := umppd(t, "", append(tt.args, "-config", cfg)...)
			if code != 0 {
				t.Fatalf("umppd %s = %d; stderr %q", tt.args[0], code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("umppd %s output lacks %q:\n%s", tt.args[0], w, out)
				}
			}
		})
	}

	// -json gives the daemon's answer for scripts.
	code, out, errOut := umppd(t, "", "status", "-json", "-config", cfg)
	var st admin.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status -json = %d, %q, %q", code, out, errOut)
	}
	if st.PID != d.cmd.Process.Pid || !st.Ready || st.Counts.XMPPSessions != 1 {
		t.Errorf("status -json = %+v; want pid %d, ready, one XMPP session", st, d.cmd.Process.Pid)
	}

	// A second daemon on the same data directory stops at once.
	second := exec.Command(binary(t), "serve", "-config", cfg)
	second.Dir = dir
	outb, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "another umppd is running") {
		t.Errorf("second daemon: %v; want a refusal naming the running one:\n%s", err, outb)
	}

	romeo.close()
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, d.Logs())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("admin socket still there after shutdown: %v", err)
	}
}

// With no daemon, status, sessions and peers exit 1 with one line saying
// so; a socket left by a crash is reported the same way, and a daemon
// starting later replaces it.
func TestStatusNoDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg := configWithMetrics(t, dir, "")
	sock := filepath.Join(dir, "data", admin.SocketName)
	for _, cmd := range []string{"status", "sessions", "peers"} {
		code, out, errOut := umppd(t, "", cmd, "-config", cfg)
		want := "umppd " + cmd + ": no umppd is running (no socket at " + sock + ")\n"
		if code != 1 || out != "" || errOut != want {
			t.Errorf("umppd %s = %d, %q, %q; want 1 and %q", cmd, code, out, errOut, want)
		}
	}

	// A crashed daemon's socket: the file is there, nobody listens.
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		t.Fatal(err)
	}
	crashed := exec.Command(binary(t), "serve", "-config", cfg)
	crashed.Dir = dir
	if err := crashed.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			crashed.Process.Kill()
			crashed.Wait()
			t.Fatal("the daemon made no admin socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	crashed.Process.Kill() // SIGKILL: no cleanup, the socket file stays
	crashed.Wait()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("the killed daemon's socket is gone (%v); the test needs it", err)
	}
	code, _, errOut := umppd(t, "", "status", "-config", cfg)
	if want := "umppd status: no umppd is running (nothing answers on " + sock + ")\n"; code != 1 || errOut != want {
		t.Errorf("status with a stale socket = %d, %q; want 1 and %q", code, errOut, want)
	}

	d := startDaemon(t, dir, "serve", "-config", cfg)
	if !strings.Contains(d.Logs(), "removing stale admin socket") {
		t.Errorf("no log of the stale socket's removal:\n%s", d.Logs())
	}
	if code, out, errOut := umppd(t, "", "status", "-config", cfg); code != 0 || !strings.Contains(out, "ready") {
		t.Errorf("status after restart = %d, %q, %q", code, out, errOut)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, d.Logs())
	}
}
