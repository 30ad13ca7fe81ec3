package sipside

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// countingMetrics is a Metrics that remembers its counts.
type countingMetrics struct {
	mu     sync.Mutex
	counts map[string]int
}

func (m *countingMetrics) add(k string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[k]++
}

func (m *countingMetrics) SIPTransaction(method string, status int) {
	m.add(fmt.Sprintf("tx %s %d", method, status))
}
func (m *countingMetrics) MessageRouted(path string)    { m.add("routed " + path) }
func (m *countingMetrics) DeliveryFailed(cond string)   { m.add("failed " + cond) }
func (m *countingMetrics) SubscriptionStarted(d string) { m.add("subscription " + d) }
func (m *countingMetrics) get(k string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[k]
}

// What an operator's dashboard counts for a delivered MESSAGE, one to an
// unknown user, and a stateless rejection.
func TestMetrics(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	m := &countingMetrics{counts: map[string]int{}}
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) { o.Metrics = m })
	alice := newPeer(t, "alice", 200)
	bob := newPeer(t, "bob", 200)

	if res := register(t, ts, bob, "udp", "bob", "builder", bob.contact, 600, "SHA-256"); res.StatusCode != 200 {
		t.Fatalf("bob register: %d", res.StatusCode)
	}
	if res := sendMessage(t, ts, alice, "udp", "alice", "wonderland", "sip:bob@example.com", "text/plain", "hi"); res.StatusCode != 200 {
		t.Fatalf("MESSAGE to bob: %d", res.StatusCode)
	}
	select {
	case <-bob.got:
	case <-time.After(10 * time.Second):
		t.Fatal("bob received nothing")
	}
	if res := sendMessage(t, ts, alice, "udp", "alice", "wonderland", "sip:nobody@example.com", "text/plain", "hi"); res.StatusCode != 404 {
		t.Fatalf("MESSAGE to nobody: %d", res.StatusCode)
	}
	for k, want := range map[string]int{
		"tx REGISTER 401":              1,
		"tx REGISTER 200":              1,
		"tx MESSAGE 407":               2, // each MESSAGE is challenged once
		"tx MESSAGE 200":               1,
		"tx MESSAGE 404":               1,
		"routed sip->sip":              1,
		"failed item-not-found":        1, // 404, mapped per RFC 7247 §7
		"failed not-authorized":        0, // challenges are not failures
		"failed registration-required": 0,
	} {
		if got := m.get(k); got != want {
			t.Errorf("%s = %d, want %d", k, got, want)
		}
	}
}
