package admin

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve starts a Server on a socket in a fresh directory and stops it at
// cleanup (or when the returned stop is called).
func serve(t *testing.T, path string, st Status) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Listen(ctx, path, func(context.Context) Status { return st }, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestQuery(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	want := Status{Version: "v1", PID: 42, Domains: []string{"montague.example.net"}, Ready: true,
		Peers:  []Peer{{Domain: "capulets.example.com", Protocol: "xmpp-s2s", Direction: "out", Auth: "dialback", TLSVersion: "TLS 1.3"}},
		Counts: Counts{XMPPSessions: 2, Peers: 1}}
	stop := serve(t, path, want)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v; want a socket with 0600", fi.Mode())
	}

	got, err := Query(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != want.Version || got.PID != 42 || len(got.Peers) != 1 || got.Peers[0].Auth != "dialback" || got.Counts.XMPPSessions != 2 {
		t.Errorf("Query = %+v; want %+v", got, want)
	}

	stop()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file still there after shutdown: %v", err)
	}
	if _, err := Query(context.Background(), path); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Query after shutdown = %v; want ErrNotRunning", err)
	}
}

func TestListen(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string // "" for success
	}{
		{"fresh", func(*testing.T, string) {}, ""},
		{"stale socket from a crash", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close() // the file stays, nobody listens: a crashed daemon's
		}, ""},
		{"another daemon answers", func(t *testing.T, path string) {
			serve(t, path, Status{})
		}, "another umppd is running"},
		{"a regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), SocketName)
			tt.prepare(t, path)
			s, err := Listen(context.Background(), path, func(context.Context) Status { return Status{} }, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Listen = %v", err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("socket file still there after Close: %v", err)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("Listen succeeded; want an error with %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Listen = %v; want %q", err, tt.wantErr)
			}
		})
	}
}

func TestQueryNotRunning(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	for _, path := range []string{filepath.Join(dir, "absent.sock"), stale} {
		if _, err := Query(context.Background(), path); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Query(%s) = %v; want ErrNotRunning", filepath.Base(path), err)
		}
	}
}

// A client speaking nonsense gets an error line, and the server goes on.
func TestBadRequests(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	serve(t, path, Status{Version: "v1"})
	tests := []struct{ send, want string }{
		{"hello\n", `"error":"request: not JSON"`},
		{`{"cmd":"reboot"}` + "\n", `unknown command \"reboot\"`},
		{`{"cmd":"ping"}` + "\n", `{}`},
	}
	for _, tt := range tests {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(tt.send)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		c.Close()
		if !strings.Contains(string(buf[:n]), tt.want) {
			t.Errorf("sent %q, got %q; want %q", tt.send, buf[:n], tt.want)
		}
	}
	if st, err := Query(context.Background(), path); err != nil || st.Version != "v1" {
		t.Errorf("Query after bad requests = %+v, %v", st, err)
	}
}
