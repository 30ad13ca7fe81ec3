package xmppside

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
)

func TestNewValidatesOptions(t *testing.T) {
	e := newEnv(t, nil)
	good := Options{Domains: []string{testDomain}, Users: e.db, Rosters: e.db, Offline: e.db, TLS: &tls.Config{}}
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string // substring of the error; "" means success
	}{
		{"complete", func(*Options) {}, ""},
		{"no domains", func(o *Options) { o.Domains = nil }, "no domains"},
		{"bad domain", func(o *Options) { o.Domains = []string{"user@example.test"} }, `invalid domain "user@example.test"`},
		{"no stores", func(o *Options) { o.Users = nil }, "stores are required"},
		{"no TLS", func(o *Options) { o.TLS = nil }, "no TLS"},
		{"all problems at once", func(o *Options) { o.Domains = nil; o.TLS = nil }, "no domains; no TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.change(&o)
			_, err := New(o)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestListenAndServeErrors(t *testing.T) {
	e := newEnv(t, nil)
	o := Options{Domains: []string{testDomain}, Users: e.db, Rosters: e.db, Offline: e.db, TLS: e.serverTLS}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	// The running server's port is taken: nothing stays bound.
	if err := s.Listen([]string{"127.0.0.1:0"}, []string{e.c2s}); err == nil {
		t.Fatal("Listen on a used port succeeded")
	}
	if c2s, direct := s.Addrs(); len(c2s)+len(direct) != 0 {
		t.Fatalf("listeners left bound: %v %v", c2s, direct)
	}
	if err := s.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "without Listen") {
		t.Fatalf("Serve without Listen: %v", err)
	}
	// Close releases listeners of a server that never served.
	if err := s.Listen([]string{"127.0.0.1:0"}, nil); err != nil {
		t.Fatal(err)
	}
	c2s, _ := s.Addrs()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Listen([]string{c2s[0].String()}, nil); err != nil {
		t.Fatalf("port not released by Close: %v", err)
	}
	_ = s2.Close()
}
