package session

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/pidf"
	"github.com/umpp/umpp/session/sdp"
	"github.com/umpp/umpp/store"
)

// benchXMPP and benchSIP stand in for the servers so that the benchmark
// measures the gateway's own work per message; the end-to-end figures come
// from cmd/umppd's BenchmarkFederationChat with real daemons.
type benchXMPP struct{ sent atomic.Int64 }

func (*benchXMPP) Receive(context.Context, []byte) error        { return nil }
func (*benchXMPP) Submit(context.Context, string, []byte) error { return nil }
func (x *benchXMPP) SendRemote(context.Context, Stanza) error   { x.sent.Add(1); return nil }
func (*benchXMPP) Resources(string) []Resource                  { return nil }
func (*benchXMPP) AddEndpoint(Endpoint)                         {}
func (*benchXMPP) RemoveEndpoint(Endpoint)                      {}

type benchSIP struct{}

func (benchSIP) Invite(_ context.Context, _, to addressing.Address, _ sdp.XMPPSession) (Dialog, sdp.XMPPSession, error) {
	return Dialog{ID: "d|1|2", CallID: "d"}, sdp.XMPPSession{JID: to.Bare().String() + "/balcony"}, nil
}
func (benchSIP) Hangup(context.Context, string) error { return nil }
func (benchSIP) SendMessage(context.Context, addressing.Address, addressing.Address, string, []byte) error {
	return nil
}
func (benchSIP) Subscribe(context.Context, addressing.Address, addressing.Address, bool, func(Notification)) (Unsubscriber, error) {
	return nil, nil
}
func (benchSIP) Authorize(context.Context, string, string, bool) {}
func (benchSIP) SetPresence(string, *pidf.Document)              {}
func (benchSIP) Registered(context.Context, string) bool         { return false }

type benchStore struct {
	store.Users
	store.Rosters
}

// BenchmarkGatewayDeliver: one message of an established session, from
// the XMPP host's Remote to s2s (parse, rewrite to the session's JIDs and
// thread, serialize).
func BenchmarkGatewayDeliver(b *testing.B) {
	x := &benchXMPP{}
	g, err := NewGateway(GatewayOptions{
		Domains: []string{"montague.example.net"}, SIP: benchSIP{}, XMPP: x,
		Mode:  func(context.Context, string) (string, error) { return ModeUMPP, nil },
		Users: benchStore{}, Rosters: benchStore{}, Port: 5269,
	})
	if err != nil {
		b.Fatal(err)
	}
	g.Start(context.Background())
	defer g.Close(context.Background())
	raw := []byte(`<message xmlns="jabber:client" from="romeo@montague.example.net/orchard" to="juliet@capulets.example.com" type="chat" id="m1"><body>But soft! What light through yonder window breaks?</body></message>`)
	st := Stanza{Name: "message", From: "romeo@montague.example.net/orchard", To: "juliet@capulets.example.com", Type: "chat", ID: "m1", Raw: raw}
	ctx := context.Background()
	if err := g.Deliver(ctx, st); err != nil { // sets the session up
		b.Fatal(err)
	}
	for x.sent.Load() == 0 {
		// the setup runs in the background
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := g.Deliver(ctx, st); err != nil {
				b.Fatal(err)
			}
		}
	})
}
