package sipside

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

const sippBinary = "/usr/bin/sipp"

func needSIPp(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(sippBinary); err != nil {
		t.Skipf("SIPp not installed (%s: %v); install Debian package sip-tester", sippBinary, err)
	}
}

// freeUDPPort returns a UDP port of 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// sipp runs one SIPp scenario against server and returns its combined
// output; it fails the test when SIPp reports a failed call.
func runSIPp(ctx context.Context, t *testing.T, server, scenario string, port int, args ...string) ([]byte, error) {
	t.Helper()
	dir := t.TempDir()
	all := append([]string{server, "-sf", filepath.Join("testdata", "sipp", scenario),
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-nostdin", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "err.log")}, args...)
	if !slices.Contains(args, "-timeout") {
		all = append(all, "-timeout", "20s") // the whole run
	}
	cmd := exec.CommandContext(ctx, sippBinary, all...)
	cmd.Dir = "."
	out, err := cmd.CombinedOutput()
	if err != nil {
		errLog, _ := os.ReadFile(filepath.Join(dir, "err.log"))
		return out, fmt.Errorf("sipp %s: %w\n%s", scenario, err, errLog)
	}
	return out, nil
}

func TestSIPpInterop(t *testing.T) {
	needSIPp(t)
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) {
		o.DigestAlgorithms = []string{"MD5"}
		o.PresencePolicy = allowAll{}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	common := []string{"-key", "domain", "example.com", "-m", "1"}

	t.Run("options", func(t *testing.T) {
		if out, err := runSIPp(ctx, t, ts.udp, "options.xml", freeUDPPort(t), append(common, "-s", "anyone")...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("options over tcp", func(t *testing.T) {
		if out, err := runSIPp(ctx, t, ts.tcp, "options.xml", freeUDPPort(t), append(common, "-s", "anyone", "-t", "t1")...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("register over tcp", func(t *testing.T) {
		if out, err := runSIPp(ctx, t, ts.tcp, "register.xml", freeUDPPort(t), append(common, "-s", "alice", "-t", "t1",
			"-au", "alice", "-ap", "wonderland", "-key", "expires", "600", "-key", "contact_port", "5999")...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})

	t.Run("publish", func(t *testing.T) {
		if out, err := runSIPp(ctx, t, ts.udp, "publish.xml", freeUDPPort(t), append(common, "-s", "alice",
			"-au", "alice", "-ap", "wonderland")...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		// What a watcher would be told: alice is open, with SIPp's note.
		d := ts.presence.document("alice@example.com", time.Now())
		if !d.Available() || len(d.Tuples) != 1 || len(d.Tuples[0].Notes) != 1 || d.Tuples[0].Notes[0].Text != "from SIPp" {
			t.Fatalf("alice's presence after SIPp's PUBLISH: %+v", d)
		}
	})
	t.Run("subscribe", func(t *testing.T) {
		if out, err := runSIPp(ctx, t, ts.udp, "subscribe.xml", freeUDPPort(t), "-key", "domain", "example.com", "-m", "3",
			"-s", "bob", "-au", "bob", "-ap", "builder", "-key", "to", "alice", "-key", "expires", "600"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})

	// bob's receiver: a UAS SIPp on its own port, registered by a second
	// SIPp (a client-mode SIPp ignores incoming dialogs).
	uasPort := freeUDPPort(t)
	uasCtx, uasCancel := context.WithCancel(ctx)
	uasDone := make(chan error, 1)
	go func() {
		out, err := runSIPp(uasCtx, t, ts.udp, "uas_message.xml", uasPort, "-m", "1")
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		uasDone <- err
	}()
	t.Cleanup(func() { uasCancel() })

	t.Run("register", func(t *testing.T) {
		if out, err := runSIPp(ctx, t, ts.udp, "register.xml", freeUDPPort(t), append(common, "-s", "bob",
			"-au", "bob", "-ap", "builder", "-key", "expires", "600", "-key", "contact_port", strconv.Itoa(uasPort))...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("message", func(t *testing.T) {
		if out, err := runSIPp(ctx, t, ts.udp, "message.xml", freeUDPPort(t), append(common, "-s", "alice",
			"-au", "alice", "-ap", "wonderland", "-key", "to", "bob")...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		select {
		case err := <-uasDone:
			if err != nil {
				t.Fatalf("receiver: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("receiver SIPp did not finish")
		}
	})
}

// TestSIPpLoad is a load run to execute by hand, not a pass/fail timing
// test: UMPP_SIPP_LOAD=20000 UMPP_SIPP_RATE=2000 go test -run TestSIPpLoad -v.
// It registers bob (a SIPp UAS) and sends that many MESSAGEs from alice,
// each with its 407 challenge, and logs SIPp's statistics. It fails only
// if SIPp cannot run at all.
func TestSIPpLoad(t *testing.T) {
	count := os.Getenv("UMPP_SIPP_LOAD")
	if count == "" {
		t.Skip("load run: set UMPP_SIPP_LOAD=<messages> (and UMPP_SIPP_RATE=<per second>)")
	}
	needSIPp(t)
	rate := os.Getenv("UMPP_SIPP_RATE")
	if rate == "" {
		rate = "1000"
	}
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) {
		o.DigestAlgorithms = []string{"MD5"}
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	uasPort := freeUDPPort(t)
	uasCtx, uasCancel := context.WithCancel(ctx)
	defer uasCancel()
	go func() {
		_, _ = runSIPp(uasCtx, t, ts.udp, "uas_message.xml", uasPort, "-m", count, "-timeout", "600s")
	}()
	if out, err := runSIPp(ctx, t, ts.udp, "register.xml", freeUDPPort(t), "-key", "domain", "example.com", "-m", "1",
		"-s", "bob", "-au", "bob", "-ap", "builder", "-key", "expires", "3600", "-key", "contact_port", strconv.Itoa(uasPort)); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	start := time.Now()
	out, err := runSIPp(ctx, t, ts.udp, "message.xml", freeUDPPort(t), "-key", "domain", "example.com",
		"-m", count, "-r", rate, "-timeout", "600s", "-s", "alice", "-au", "alice", "-ap", "wonderland", "-key", "to", "bob")
	elapsed := time.Since(start)
	t.Logf("SIPp MESSAGE load: %s messages at requested %s/s took %v (err=%v)\n%s", count, rate, elapsed, err, out)
}

// TestSIPpSubscribeLoad is a load run to execute by hand, like
// TestSIPpLoad: UMPP_SIPP_SUBSCRIBE_LOAD=20000 UMPP_SIPP_RATE=3000 go test
// -run TestSIPpSubscribeLoad -v. Each SIPp call is a new presence
// subscription of bob to alice with its digest challenge, 200 and first
// NOTIFY (answered). The per-source rate limit and subscription bounds
// are lifted: SIPp is one source and one watcher. It logs SIPp's
// statistics and the rate achieved, and fails only if SIPp cannot run.
func TestSIPpSubscribeLoad(t *testing.T) {
	count := os.Getenv("UMPP_SIPP_SUBSCRIBE_LOAD")
	if count == "" {
		t.Skip("load run: set UMPP_SIPP_SUBSCRIBE_LOAD=<subscriptions> (and UMPP_SIPP_RATE=<per second>)")
	}
	needSIPp(t)
	rate := os.Getenv("UMPP_SIPP_RATE")
	if rate == "" {
		rate = "1000"
	}
	expires := os.Getenv("UMPP_SIPP_EXPIRES")
	if expires == "" {
		expires = "600"
	}
	n, err := strconv.Atoi(count)
	if err != nil {
		t.Fatalf("UMPP_SIPP_SUBSCRIBE_LOAD=%q: %v", count, err)
	}
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) {
		o.DigestAlgorithms = []string{"MD5"}
		o.PresencePolicy = allowAll{}
		o.SubscribeRate, o.SubscribeBurst = 1e9, 1e9
		o.MaxSubscriptionsPerWatcher, o.MaxWatchersPerPresentity = n+1, n+1
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := runSIPp(ctx, t, ts.udp, "subscribe.xml", freeUDPPort(t), "-key", "domain", "example.com",
		"-m", count, "-r", rate, "-timeout", "600s", "-s", "bob", "-au", "bob", "-ap", "builder",
		"-key", "to", "alice", "-key", "expires", expires,
		// A call that waits 10 s for a message fails instead of holding
		// the run; SIPp's socket buffer is enlarged for the bursts.
		"-recv_timeout", "10000", "-buff_size", "4194304")
	elapsed := time.Since(start)
	t.Logf("SIPp SUBSCRIBE load: %s subscriptions at requested %s/s took %v (%.0f/s; err=%v), %d live\n%s",
		count, rate, elapsed, float64(n)/elapsed.Seconds(), err, ts.Stats().Subscriptions, out)
}
