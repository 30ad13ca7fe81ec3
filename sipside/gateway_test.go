package sipside

import (
	"context"
	"strings"
	"testing"
)

// recordingGateway accepts every message and remembers it.
type recordingGateway struct{ got chan Message }

func (g *recordingGateway) DeliverMessage(_ context.Context, m Message) (int, string, error) {
	g.got <- m
	return 202, "Accepted", nil
}

func TestMessageToGateway(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	gw := &recordingGateway{got: make(chan Message, 1)}
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) { o.Gateway = gw })
	alice := newPeer(t, "alice", 200)
	body := "From: <im:alice@example.com>\r\nTo: <im:juliet@capulet.example>\r\n\r\nContent-Type: text/plain\r\n\r\nwherefore"
	res := sendMessage(t, ts, alice, "tcp", "alice", "wonderland", "im:juliet@capulet.example", "message/cpim", body)
	if res.StatusCode != 202 {
		t.Fatalf("got %d, want the gateway's 202", res.StatusCode)
	}
	m := <-gw.got
	if m.Sender != "alice@example.com" || !strings.HasPrefix(m.To, "im:juliet@capulet.example") ||
		m.CPIM == nil || string(m.CPIM.Content) != "wherefore" {
		t.Fatalf("gateway got %+v", m)
	}
}

func TestMessageTooLarge(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) { o.MaxMessageBytes = 100 })
	alice := newPeer(t, "alice", 200)
	for _, transport := range []string{"udp", "tcp"} {
		res := sendMessage(t, ts, alice, transport, "alice", "wonderland", "sip:bob@example.com", "text/plain", strings.Repeat("x", 101))
		if res.StatusCode != 413 {
			t.Fatalf("%s: got %d, want 413", transport, res.StatusCode)
		}
	}
}
