package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/store/sqlite"
)

func TestLabelsAreBounded(t *testing.T) {
	tests := []struct {
		name string
		rec  func(m *Metrics)
		want string // a line of the exposition
	}{
		{"known method and status", func(m *Metrics) { m.SIPTransaction("register", 200) },
			`umpp_sip_transactions_total{method="REGISTER",status="200"} 1`},
		{"unknown method", func(m *Metrics) { m.SIPTransaction("FROBNICATE", 405) },
			`umpp_sip_transactions_total{method="other",status="405"} 1`},
		{"status out of range", func(m *Metrics) { m.SIPTransaction("INVITE", 7000) },
			`umpp_sip_transactions_total{method="INVITE",status="other"} 1`},
		{"path", func(m *Metrics) { m.MessageRouted(PathSIPToXMPP) },
			`umpp_messages_routed_total{path="sip->xmpp"} 1`},
		{"unknown path", func(m *Metrics) { m.MessageRouted("smtp->xmpp") },
			`umpp_messages_routed_total{path="other"} 1`},
		{"condition", func(m *Metrics) { m.DeliveryFailed("remote-server-not-found") },
			`umpp_delivery_failures_total{condition="remote-server-not-found"} 1`},
		{"made-up condition", func(m *Metrics) { m.DeliveryFailed("<script>") },
			`umpp_delivery_failures_total{condition="other"} 1`},
		{"subscription", func(m *Metrics) { m.SubscriptionStarted(DirectionOut) },
			`umpp_presence_subscriptions_started_total{direction="out"} 1`},
		{"session started", func(m *Metrics) { m.SessionStarted() }, `umpp_im_sessions_active 1`},
		{"session started and ended", func(m *Metrics) { m.SessionStarted(); m.SessionEnded(EndIdle) },
			`umpp_im_sessions_ended_total{reason="idle"} 1`},
		{"session ended, strange reason", func(m *Metrics) { m.SessionStarted(); m.SessionEnded("cosmic rays") },
			`umpp_im_sessions_ended_total{reason="other"} 1`},
		{"build info", func(m *Metrics) {}, `umpp_build_info{version="test"} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Options{Version: "test"})
			tt.rec(m)
			if got := expose(t, m); !strings.Contains(got, "\n"+tt.want+"\n") {
				t.Errorf("exposition lacks %q:\n%s", tt.want, grep(got, "umpp_"))
			}
		})
	}
}

// A nil *Metrics is a recorder that records nothing.
func TestNilRecorder(t *testing.T) {
	var m *Metrics
	m.SIPTransaction("INVITE", 200)
	m.SessionStarted()
	m.SessionEnded(EndBye)
	m.SubscriptionStarted(DirectionIn)
	m.MessageRouted(PathXMPPToXMPP)
	m.DeliveryFailed("gone")
	m.ObserveStore("User", time.Millisecond)
	var s store.Store = openStore(t)
	if got := m.WrapStore(s); got != s {
		t.Errorf("nil Metrics wrapped the store: %T", got)
	}
}

func TestSnapshotGauges(t *testing.T) {
	snap := Snapshot{
		C2SConnections:   3,
		C2SStreams:       map[string]int{"montague.example.net": 2, "verona.example.net": 0},
		S2S:              []S2SStream{{"capulets.example.com", "in"}, {"capulets.example.com", "out"}, {"capulets.example.com", "out"}},
		SIPRegistrations: 4,
		Subscriptions:    map[string]int{DirectionIn: 5},
	}
	m := New(Options{Snapshot: func() Snapshot { return snap }})
	got := expose(t, m)
	for _, want := range []string{
		`umpp_c2s_connections 3`,
		`umpp_c2s_streams{domain="montague.example.net"} 2`,
		`umpp_c2s_streams{domain="verona.example.net"} 0`,
		`umpp_s2s_streams{direction="in",domain="capulets.example.com"} 1`,
		`umpp_s2s_streams{direction="out",domain="capulets.example.com"} 2`,
		`umpp_sip_registrations 4`,
		`umpp_presence_subscriptions{direction="in"} 5`,
		`umpp_presence_subscriptions{direction="out"} 0`,
	} {
		if !strings.Contains(got, "\n"+want+"\n") {
			t.Errorf("exposition lacks %q:\n%s", want, grep(got, "umpp_"))
		}
	}
	if _, err := m.Registry().Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}

// The store wrapper times every call, by method, and passes results and
// errors through unchanged.
func TestStoreTiming(t *testing.T) {
	m := New(Options{})
	s := m.WrapStore(openStore(t))
	ctx := context.Background()
	creds, err := store.DeriveCredentials("romeo", "montague.example.net", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, store.User{JID: "romeo@montague.example.net", Credentials: creds}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.User(ctx, "romeo@montague.example.net"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.User(ctx, "nobody@montague.example.net"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("User(nobody) = %v, want ErrNotFound through the wrapper", err)
	}
	got := expose(t, m)
	for _, want := range []string{
		`umpp_store_duration_seconds_count{op="CreateUser"} 1`,
		`umpp_store_duration_seconds_count{op="User"} 4`,
	} {
		if !strings.Contains(got, "\n"+want+"\n") {
			t.Errorf("exposition lacks %q:\n%s", want, grep(got, "umpp_store"))
		}
	}
}

// The HTTP endpoint serves /metrics, /healthz, and /readyz following the
// readiness function, and stops when its context ends.
func TestServer(t *testing.T) {
	m := New(Options{Version: "test"})
	var ready atomic.Bool
	srv, err := NewServer("127.0.0.1:0", m, func(context.Context) error {
		if !ready.Load() {
			return errors.New("store closed")
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if !stopped {
			<-done
		}
	})
	base := "http://" + srv.Addr().String()

	tests := []struct {
		path     string
		code     int
		contains string
	}{
		{"/healthz", 200, "ok"},
		{"/readyz", 503, "store closed"},
		{"/metrics", 200, "go_goroutines"},
		{"/metrics", 200, `umpp_build_info{version="test"} 1`},
		{"/nope", 404, ""},
	}
	for _, tt := range tests {
		code, body := get(t, base+tt.path)
		if code != tt.code || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s = %d %q; want %d containing %q", tt.path, code, trim(body), tt.code, tt.contains)
		}
	}
	ready.Store(true)
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("GET /readyz when ready = %d %q", code, body)
	}

	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("Serve returned %v after its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the endpoint still answers after shutdown")
	}
}

func TestNewServerBindError(t *testing.T) {
	m := New(Options{})
	a, err := NewServer("127.0.0.1:0", m, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := NewServer(a.Addr().String(), m, nil, nil); err == nil || !strings.Contains(err.Error(), "metrics: listen") {
		t.Fatalf("second bind on %s = %v; want a metrics: listen error", a.Addr(), err)
	}
}

func expose(t *testing.T, m *Metrics) string {
	t.Helper()
	srvAddr, stop := serveOnce(t, m)
	defer stop()
	_, body := get(t, "http://"+srvAddr+"/metrics")
	return "\n" + body
}

// serveOnce serves m's endpoint on a kernel-chosen loopback port.
func serveOnce(t *testing.T, m *Metrics) (string, func()) {
	t.Helper()
	srv, err := NewServer("127.0.0.1:0", m, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	return srv.Addr().String(), func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "umppd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
