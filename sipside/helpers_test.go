package sipside

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umpp/umpp/config"
	"github.com/umpp/umpp/internal/certs"
	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/store/sqlite"
)

// newUsers opens a real SQLite store in a temporary file.
func newUsers(t testing.TB) store.Users {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "umpp.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return db
}

// addUser creates localpart@domain with password.
func addUser(t testing.TB, users store.Users, localpart, domain, password string) {
	t.Helper()
	c, err := store.DeriveCredentials(localpart, domain, password)
	if err != nil {
		t.Fatal(err)
	}
	if err := users.CreateUser(context.Background(), store.User{JID: localpart + "@" + domain, Credentials: c, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// testServer is a running Server on 127.0.0.1.
type testServer struct {
	*Server
	udp, tcp, tls string
	clientTLS     *tls.Config
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(&tlog{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tlog struct{ t testing.TB }

func (l *tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startServer runs a Server on UDP, TCP and TLS ports of 127.0.0.1 until
// the test ends.
func startServer(t testing.TB, users store.Users, domains []string, mod func(*Options)) *testServer {
	t.Helper()
	certPEM, keyPEM, err := certs.Generate(domains, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Domains: domains,
		Users:   users,
		TLS:     &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Listen: []config.Listen{
			{Transport: "udp", Host: "127.0.0.1"},
			{Transport: "tcp", Host: "127.0.0.1"},
			{Transport: "tls", Host: "127.0.0.1"},
		},
		Logger: testLogger(t),
	}
	if mod != nil {
		mod(&opts)
	}
	ts := serveTest(t, context.Background(), opts)
	ts.clientTLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test peer with a generated certificate
	return ts
}

// statusOf returns the status code of a raw response, or 0.
func statusOf(b []byte) int {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0
	}
	n := 0
	for _, c := range f[1] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// serveTest starts a Server from opts and serves it until ctx ends or
// the test does, whichever comes first; Serve must then return nil.
func serveTest(t testing.TB, ctx context.Context, opts Options) *testServer {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	if err := s.Listen(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ts := &testServer{Server: s}
	for _, a := range s.Addrs() {
		switch a.Transport {
		case "udp":
			ts.udp = a.Addr.String()
		case "tcp":
			ts.tcp = a.Addr.String()
		case "tls":
			ts.tls = a.Addr.String()
		}
	}
	return ts
}
