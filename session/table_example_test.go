package session_test

import (
	"context"
	"fmt"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/session"
)

// An outbound session as the session layer drives it: the first message
// creates the session, the INVITE is answered, the queue is flushed in
// order, the peer hangs up.
func ExampleMemTable() {
	ctx := context.Background()
	tab := session.NewMemTable(session.MemTableOptions{MaxSessionsPerPeer: 100})
	romeo, _ := addressing.ParseJID("romeo@montague.example.net/orchard")
	juliet, _ := addressing.ParseJID("juliet@capulets.example.com")
	balcony, _ := addressing.ParseJID("juliet@capulets.example.com/balcony")

	b, _ := tab.Begin(ctx, romeo, juliet, []byte("<message>1</message>"))
	fmt.Println("created:", b.Created, "queued:", b.Queued, b.Session.State)
	// A second message while the INVITE is out queues behind the first.
	b2, _ := tab.Begin(ctx, romeo, juliet, []byte("<message>2</message>"))
	fmt.Println("same session:", b2.Session.Thread == b.Session.Thread, "queued:", b2.Queued)

	// 200 OK with a=jid:juliet@capulets.example.com/balcony, ACK sent.
	msgs, _ := tab.Established(ctx, b.Session.Thread, balcony, "2349098234|29923923|939231235", "2349098234")
	for len(msgs) > 0 {
		for _, m := range msgs {
			fmt.Println("send", string(m))
		}
		msgs, _ = tab.Drain(ctx, b.Session.Thread)
	}
	s, _ := tab.Outgoing(ctx, romeo, juliet)
	fmt.Println("ready:", s.Ready(), "remote:", s.Remote)

	// BYE from the peer.
	ended, left, _ := tab.EndDialog(ctx, "2349098234|29923923|939231235", session.EndBye)
	fmt.Println(ended.State, ended.EndReason, len(left), tab.Len())
	// Output:
	// created: true queued: true setting-up
	// same session: true queued: true
	// send <message>1</message>
	// send <message>2</message>
	// ready: true remote: juliet@capulets.example.com/balcony
	// ended bye 0 0
}
