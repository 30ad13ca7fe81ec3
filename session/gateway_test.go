package session

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/session/sdp"
	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/store/sqlite"
)

// onlineXMPP reports some local users online with XMPP resources.
type onlineXMPP struct {
	benchXMPP
	online map[string][]Resource
}

func (o *onlineXMPP) Resources(bare string) []Resource { return o.online[bare] }

type registeredSIP struct {
	benchSIP
	registered map[string]bool
}

func (r registeredSIP) Registered(_ context.Context, aor string) bool { return r.registered[aor] }

// The answers to inbound session offers (draft §4.1) for what peers can
// send: the SIP status of each refusal, and the local full JID of an
// acceptance.
func TestGatewayOffer(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "umppd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, u := range []string{"juliet@capulets.example.com", "nurse@capulets.example.com", "tybalt@capulets.example.com"} {
		if err := db.CreateUser(ctx, store.User{JID: u, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	x := &onlineXMPP{online: map[string][]Resource{
		"juliet@capulets.example.com": {
			{JID: "juliet@capulets.example.com/chamber", Priority: 1, Available: true},
			{JID: "juliet@capulets.example.com/balcony", Priority: 5, Available: true},
			{JID: "juliet@capulets.example.com/hidden", Priority: 9},
		},
	}}
	g, err := NewGateway(GatewayOptions{
		Domains: []string{"capulets.example.com"}, XMPP: x,
		SIP:   registeredSIP{registered: map[string]bool{"nurse@capulets.example.com": true}},
		Mode:  func(context.Context, string) (string, error) { return ModeUMPP, nil },
		Users: db, Rosters: db, Port: 5269, Host: "xmpp.capulets.example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	g.Start(ctx)
	t.Cleanup(func() { g.Close(ctx) })

	romeo := addressing.Address{Local: "romeo", Domain: "montague.example.net"}
	offer := func(target, jid, thread, kind string) Offer {
		tg, _ := addressing.ParseJID(target)
		return Offer{DialogID: "d-" + thread + target, CallID: "c-" + thread, From: romeo, Target: tg,
			Session: sdp.XMPPSession{JID: jid, Thread: thread, Kind: kind}}
	}
	tests := []struct {
		name    string
		o       Offer
		code    int
		wantJID string
	}{
		{"best available resource", offer("juliet@capulets.example.com", "romeo@montague.example.net/orchard", "t1", "chat"), 0, "juliet@capulets.example.com/balcony"},
		{"SIMPLE user's resource", offer("nurse@capulets.example.com", "romeo@montague.example.net/orchard", "t2", "chat"), 0, "nurse@capulets.example.com/" + DefaultSIPResource},
		{"groupchat to a user", offer("juliet@capulets.example.com", "romeo@montague.example.net/orchard", "t3", "groupchat"), 488, ""},
		{"a=jid of someone else", offer("juliet@capulets.example.com", "tybalt@capulets.example.com/x", "t4", "chat"), 403, ""},
		{"a=jid bare", offer("juliet@capulets.example.com", "romeo@montague.example.net", "t5", "chat"), 488, ""},
		{"no thread", offer("juliet@capulets.example.com", "romeo@montague.example.net/orchard", "", "chat"), 488, ""},
		{"no such user", offer("paris@capulets.example.com", "romeo@montague.example.net/orchard", "t6", "chat"), 404, ""},
		{"not our domain", offer("paris@verona.example.org", "romeo@montague.example.net/orchard", "t7", "chat"), 404, ""},
		{"user offline", offer("tybalt@capulets.example.com", "romeo@montague.example.net/orchard", "t8", "chat"), 480, ""},
		{"thread in use", offer("juliet@capulets.example.com", "romeo@montague.example.net/orchard", "t1", "chat"), 488, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := g.Offer(ctx, tt.o)
			if tt.code != 0 {
				var se interface{ SIPStatus() (int, string) }
				if !errors.As(err, &se) {
					t.Fatalf("Offer = %+v, %v; want status %d", a, err, tt.code)
				}
				if c, _ := se.SIPStatus(); c != tt.code {
					t.Fatalf("Offer status %d, want %d", c, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("Offer: %v", err)
			}
			if a.JID != tt.wantJID || a.Host != "xmpp.capulets.example.com" || a.Port != 5269 {
				t.Errorf("answer %+v, want JID %s on xmpp.capulets.example.com:5269", a, tt.wantJID)
			}
			s, err := g.Table().ByThread(ctx, tt.o.Session.Thread)
			if err != nil || !s.Ready() || s.Remote.String() != tt.o.Session.JID {
				t.Errorf("session %+v, %v; want established with %s", s, err, tt.o.Session.JID)
			}
		})
	}
	// BYE from the peer ends the sessions; nothing stays behind.
	for _, th := range []string{"t1", "t2"} {
		s, _ := g.Table().ByThread(ctx, th)
		g.Ended(ctx, s.DialogID, s.CallID, "bye")
	}
	if n := g.Table().Len(); n != 0 {
		t.Errorf("%d sessions left after BYE", n)
	}
}
