package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"

	"github.com/umpp/umpp/internal/admin"
)

// lockedBuffer is a bytes.Buffer safe for a daemon's logger and a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The snapshots behind status and the metrics are read while clients log
// in and out, in the test's own process, so that the race detector sees
// the parts' Stats methods against their hot paths.
func TestSnapshotsUnderLoadInProcess(t *testing.T) {
	dir := t.TempDir()
	cfg, base := metricsConfig(t, dir)
	for _, u := range []string{"romeo", "juliet", "mercutio"} {
		if code, _, errOut := umppd(t, "pw\n", "user", "add", "-config", cfg, u+"@montague.example.net"); code != 0 {
			t.Fatalf("user add %s: %s", u, errOut)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"serve", "-config", cfg}, strings.NewReader(""), &logs, &logs) }()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if !stopped {
			<-exited
		}
	})

	sock := filepath.Join(dir, "data", admin.SocketName)
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := admin.Query(context.Background(), sock)
		if err == nil && st.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not become ready: %v; logs:\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c2s := configValue(t, cfg, "c2s_listen")

	readers, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readers)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := admin.Query(context.Background(), sock); err != nil {
				t.Errorf("status during logins: %v", err)
				return
			}
			scrape(t, base+"/metrics")
		}
	}()
	var wg sync.WaitGroup
	for _, u := range []string{"romeo", "juliet", "mercutio"} {
		wg.Go(func() {
			for range 3 {
				c, err := xmppDial(t, c2s, u, "montague.example.net", "", "pw", selfSignedTLS("montague.example.net"), sasl.ScramSha256)
				if err != nil {
					t.Error(err)
					return
				}
				if err := c.trySend("<presence xmlns='jabber:client'/>"); err != nil {
					t.Error(err)
				}
				c.close()
			}
		})
	}
	wg.Wait()
	close(done)
	<-readers

	cancel()
	select {
	case code := <-exited:
		stopped = true
		if code != 0 {
			t.Fatalf("serve exited %d; logs:\n%s", code, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
}
