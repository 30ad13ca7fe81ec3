package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// [sip] digest_algorithms decides the challenges a REGISTER gets: by
// default SHA-256 then MD5 (RFC 8760), and only MD5 when an operator's
// clients (baresip 1.0.0, SIPp) need it.
func TestDigestAlgorithmsConfig(t *testing.T) {
	for _, tc := range []struct {
		name, setting string
		want          []string
	}{
		{"default", "", []string{"SHA-256", "MD5"}},
		{"MD5 only", `digest_algorithms = ["MD5"]` + "\n", []string{"MD5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeConfig(t, dir, "")
			data, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			data = []byte(strings.Replace(string(data), "[sip]\n", "[sip]\n"+tc.setting, 1))
			if err := os.WriteFile(cfg, data, 0o600); err != nil {
				t.Fatal(err)
			}
			startDaemon(t, dir, "serve", "-config", cfg)
			if got := registerChallenges(t, cfg); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("REGISTER challenged with %v, want %v", got, tc.want)
			}
		})
	}
}

// registerChallenges sends a REGISTER without credentials over TCP and
// returns the algorithms of the WWW-Authenticate challenges, in order.
func registerChallenges(t *testing.T, cfg string) []string {
	t.Helper()
	client, req := registerRequest(t, cfg, "romeo", "sip:romeo@127.0.0.1:5999")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := client.Do(ctx, req)
	if err != nil {
		t.Fatalf("REGISTER: %v", err)
	}
	if res.StatusCode != 401 {
		t.Fatalf("REGISTER without credentials: %d, want 401", res.StatusCode)
	}
	var algs []string
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		v := h.Value()
		i := strings.Index(strings.ToLower(v), "algorithm=")
		if i < 0 {
			algs = append(algs, "MD5") // RFC 3261: absent means MD5
			continue
		}
		a := v[i+len("algorithm="):]
		if j := strings.IndexAny(a, ", "); j >= 0 {
			a = a[:j]
		}
		algs = append(algs, strings.Trim(a, `"`))
	}
	return algs
}
