package sipside

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// policyFunc adapts a function to PresencePolicy.
type policyFunc func(ctx context.Context, watcher, presentity string) (PolicyDecision, error)

func (f policyFunc) MaySubscribe(ctx context.Context, watcher, presentity string) (PolicyDecision, error) {
	return f(ctx, watcher, presentity)
}

// subscribeReq builds an initial SUBSCRIBE from watcher to target.
func subscribeReq(ts *testServer, watcher, target, contact string, expires int) *sip.Request {
	sub := ts.request(sip.SUBSCRIBE, "sip:"+target+"@example.com", "udp")
	sub.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: target, Host: "example.com"}, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: watcher, Host: "example.com"}, Params: sip.NewParams()}
	from.Params.Add("tag", newTag())
	sub.AppendHeader(from)
	sub.AppendHeader(sip.NewHeader("Event", "presence"))
	sub.AppendHeader(sip.NewHeader("Expires", fmt.Sprint(expires)))
	sub.AppendHeader(sip.NewHeader("Accept", "application/pidf+xml"))
	sub.AppendHeader(sip.NewHeader("Contact", "<"+contact+">"))
	return sub
}

// noBodyState checks a NOTIFY that must show nothing of the presentity
// and returns its Subscription-State.
func noBodyState(t *testing.T, n *sip.Request) string {
	t.Helper()
	if len(n.Body()) != 0 || n.GetHeader("Content-Type") != nil {
		t.Errorf("NOTIFY carries presence state before authorization: %s", n.Body())
	}
	return n.GetHeader("Subscription-State").Value()
}

func noNotify(t *testing.T, p *peer, within time.Duration) {
	t.Helper()
	select {
	case n := <-p.notify:
		t.Fatalf("unexpected NOTIFY (%s): %s", n.GetHeader("Subscription-State").Value(), n.Body())
	case <-time.After(within):
	}
}

func TestPresencePendingAuthorization(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	addUser(t, users, "carol", "example.com", "secret")
	policy := policyFunc(func(_ context.Context, watcher, presentity string) (PolicyDecision, error) {
		if presentity == "alice@example.com" && (watcher == "bob@example.com" || watcher == "carol@example.com") {
			return PolicyPending, nil
		}
		return PolicyDeny, nil
	})
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) { o.PresencePolicy = policy })
	ctx := context.Background()
	alice := newPeer(t, "alice", 200)
	bob := newPeer(t, "bob", 200)
	carol := newPeer(t, "carol", 200)

	// alice is online.
	if res := authed(t, alice, publishReq(ts, "alice", "presence", "", openPIDF, 600), "alice", "wonderland"); res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %d", res.StatusCode)
	}

	// bob and carol subscribe: 200, then NOTIFY pending with no body.
	for _, w := range []struct {
		p          *peer
		user, pass string
	}{{bob, "bob", "builder"}, {carol, "carol", "secret"}} {
		res := authed(t, w.p, subscribeReq(ts, w.user, "alice", w.p.contact, 600), w.user, w.pass)
		if res.StatusCode != 200 {
			t.Fatalf("%s SUBSCRIBE: got %d, want 200", w.user, res.StatusCode)
		}
		if state := noBodyState(t, nextNotify(t, w.p)); !strings.HasPrefix(state, "pending") {
			t.Fatalf("%s first NOTIFY: state %q, want pending", w.user, state)
		}
	}

	// alice changes state: pending watchers hear nothing.
	if res := authed(t, alice, publishReq(ts, "alice", "presence", "", openPIDF, 600), "alice", "wonderland"); res.StatusCode != 200 {
		t.Fatalf("second PUBLISH: %d", res.StatusCode)
	}
	noNotify(t, bob, 200*time.Millisecond)

	// alice approves bob: NOTIFY active with her open state.
	if n := ts.Authorize(ctx, "alice@example.com", "bob@example.com", true); n != 1 {
		t.Fatalf("Authorize bob changed %d subscriptions, want 1", n)
	}
	if state, open := notifyState(t, nextNotify(t, bob)); !strings.HasPrefix(state, "active") || !open {
		t.Fatalf("after approval: state %q open %v, want active and open", state, open)
	}
	// alice refuses carol: NOTIFY terminated;reason=rejected, no body.
	if n := ts.Authorize(ctx, "alice@example.com", "carol@example.com", false); n != 1 {
		t.Fatalf("Authorize carol changed %d subscriptions, want 1", n)
	}
	if state := noBodyState(t, nextNotify(t, carol)); state != "terminated;reason=rejected" {
		t.Fatalf("after refusal: state %q, want terminated;reason=rejected", state)
	}
	noNotify(t, carol, 100*time.Millisecond)

	// Now an active watcher, bob gets alice's changes.
	if res := authed(t, alice, publishReq(ts, "alice", "presence", "", openPIDF, 600), "alice", "wonderland"); res.StatusCode != 200 {
		t.Fatalf("third PUBLISH: %d", res.StatusCode)
	}
	if state, _ := notifyState(t, nextNotify(t, bob)); !strings.HasPrefix(state, "active") {
		t.Fatalf("after approval, PUBLISH: state %q, want active", state)
	}
	// Withdrawing an approval ends an active subscription too (RFC 8048:
	// "unsubscribed" -> NOTIFY terminated;reason=rejected).
	if n := ts.Authorize(ctx, "alice@example.com", "bob@example.com", false); n != 1 {
		t.Fatalf("revoking bob changed %d subscriptions, want 1", n)
	}
	if state := noBodyState(t, nextNotify(t, bob)); state != "terminated;reason=rejected" {
		t.Fatalf("after revocation: state %q", state)
	}
	// Nothing left to authorize.
	if n := ts.Authorize(ctx, "alice@example.com", "bob@example.com", true); n != 0 {
		t.Fatalf("Authorize with no subscription changed %d", n)
	}
}

// TestNotifyInOrder: a subscriber slow to answer gets one NOTIFY at a
// time, in CSeq order, and the last one shows the presentity's latest
// state. Approval and two changes of state come while the first NOTIFY
// (pending) is still unanswered.
func TestNotifyInOrder(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	policy := policyFunc(func(_ context.Context, watcher, presentity string) (PolicyDecision, error) {
		return PolicyPending, nil
	})
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) { o.PresencePolicy = policy })
	alice := newPeer(t, "alice", 200)
	bob := newPeer(t, "bob", 200)
	bob.holdNotify.Store(int64(300 * time.Millisecond))

	res := authed(t, alice, publishReq(ts, "alice", "presence", "", openPIDF, 600), "alice", "wonderland")
	if res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %d", res.StatusCode)
	}
	etag := res.GetHeader("SIP-ETag").Value()
	if res := authed(t, bob, subscribeReq(ts, "bob", "alice", bob.contact, 600), "bob", "builder"); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	first := nextNotify(t, bob) // pending, and bob holds its answer
	if state := noBodyState(t, first); !strings.HasPrefix(state, "pending") {
		t.Fatalf("first NOTIFY: %q, want pending", state)
	}
	if n := ts.Authorize(context.Background(), "alice@example.com", "bob@example.com", true); n != 1 {
		t.Fatalf("Authorize changed %d subscriptions, want 1", n)
	}
	closedPIDF := strings.Replace(openPIDF, "open", "closed", 1)
	for _, body := range []string{closedPIDF, closedPIDF} {
		res := authed(t, alice, publishReq(ts, "alice", "presence", etag, body, 600), "alice", "wonderland")
		if res.StatusCode != 200 {
			t.Fatalf("PUBLISH modify: %d", res.StatusCode)
		}
		etag = res.GetHeader("SIP-ETag").Value()
	}

	// Read NOTIFYs until bob has had none for a second.
	last, open := first.CSeq().SeqNo, true
	for {
		var n *sip.Request
		select {
		case n = <-bob.notify:
		case <-time.After(time.Second):
		}
		if n == nil {
			break
		}
		if bob.overlapped.Load() {
			t.Fatal("a NOTIFY arrived before the previous one was answered")
		}
		if seq := n.CSeq().SeqNo; seq <= last {
			t.Fatalf("NOTIFY CSeq %d after %d", seq, last)
		}
		last = n.CSeq().SeqNo
		var state string
		if state, open = notifyState(t, n); !strings.HasPrefix(state, "active") {
			t.Fatalf("NOTIFY after approval: state %q", state)
		}
	}
	if open || last == first.CSeq().SeqNo {
		t.Fatalf("bob's last NOTIFY (CSeq %d) does not show alice's latest state, closed", last)
	}
}

// rawSubscribe is an unauthenticated SUBSCRIBE as a flooder sends it.
func rawSubscribe(local, id string) []byte {
	return []byte("SUBSCRIBE sip:alice@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + id + ";rport\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:mallory@example.com>;tag=" + id + "\r\nTo: <sip:alice@example.com>\r\n" +
		"Call-ID: " + id + "\r\nCSeq: 1 SUBSCRIBE\r\nEvent: presence\r\nExpires: 600\r\n" +
		"Contact: <sip:mallory@" + local + ">\r\nContent-Length: 0\r\n\r\n")
}

// TestSubscribeFlood sends a burst of SUBSCRIBEs from 127.0.0.2 and checks
// that the source is limited (503 with Retry-After) while a client on
// 127.0.0.1 still subscribes and is notified.
func TestSubscribeFlood(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) {
		o.PresencePolicy = allowAll{}
		o.SubscribeRate = 5
		o.SubscribeBurst = 10
	})
	conn, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	dst, err := net.ResolveUDPAddr("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	const burst = 300
	for i := range burst {
		if _, err := conn.WriteTo(rawSubscribe(conn.LocalAddr().String(), fmt.Sprintf("flood%d", i)), dst); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[int]int{}
	retryAfter := true
	buf := make([]byte, 65536)
	if err := conn.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for counts[401]+counts[503] < burst {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			break // some datagrams may be lost on a busy loopback
		}
		code := statusOf(buf[:n])
		counts[code]++
		if code == 503 && !strings.Contains(string(buf[:n]), "\r\nRetry-After: ") {
			retryAfter = false
		}
	}
	if counts[503] == 0 || counts[401] > 10+5 {
		t.Fatalf("burst of %d: got %v, want at most ~%d challenged and the rest 503", burst, counts, 10)
	}
	if !retryAfter {
		t.Error("503 without Retry-After")
	}

	// Another client is still served.
	bob := newPeer(t, "bob", 200)
	res := authed(t, bob, subscribeReq(ts, "bob", "alice", bob.contact, 600), "bob", "builder")
	if res.StatusCode != 200 {
		t.Fatalf("bob during the flood: got %d, want 200", res.StatusCode)
	}
	if state, _ := notifyState(t, nextNotify(t, bob)); !strings.HasPrefix(state, "active") {
		t.Fatalf("bob NOTIFY state %q", state)
	}
}

func TestSubscriptionBounds(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	addUser(t, users, "carol", "example.com", "secret")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) {
		o.PresencePolicy = allowAll{}
		o.MaxSubscriptionsPerWatcher = 2
		o.MaxWatchersPerPresentity = 2
	})
	bob := newPeer(t, "bob", 200)
	carol := newPeer(t, "carol", 200)
	alice := newPeer(t, "alice", 200)
	tests := []struct {
		name       string
		p          *peer
		user, pass string
		target     string
		want       int
	}{
		{"bob 1", bob, "bob", "builder", "alice", 200},
		{"bob 2", bob, "bob", "builder", "carol", 200},
		{"bob over his limit", bob, "bob", "builder", "alice", 403},
		{"carol 1", carol, "carol", "secret", "alice", 200},
		{"alice over her watcher limit", alice, "alice", "wonderland", "alice", 403},
		{"fetch is not counted", bob, "bob", "builder", "alice", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := 600
			if strings.HasPrefix(tc.name, "fetch") {
				exp = 0
			}
			res := authed(t, tc.p, subscribeReq(ts, tc.user, tc.target, tc.p.contact, exp), tc.user, tc.pass)
			if res.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", res.StatusCode, tc.want)
			}
		})
	}
}
