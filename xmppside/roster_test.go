package xmppside

import (
	"context"
	"testing"

	"github.com/umpp/umpp/store"
)

// subscribeBoth makes alice and bob subscribed to each other.
func subscribeBoth(t *testing.T, alice, bob *client) {
	t.Helper()
	alice.send(`<presence to='bob@example.test' type='subscribe'/>`)
	bob.nextWhere("subscribe", func(n node) bool { return n.attr("type") == "subscribe" })
	bob.send(`<presence to='alice@example.test' type='subscribed'/>`)
	alice.nextWhere("subscribed", func(n node) bool { return n.attr("type") == "subscribed" })
	bob.send(`<presence to='alice@example.test' type='subscribe'/>`)
	alice.nextWhere("subscribe", func(n node) bool { return n.attr("type") == "subscribe" })
	alice.send(`<presence to='bob@example.test' type='subscribed'/>`)
	bob.nextWhere("subscribed", func(n node) bool { return n.attr("type") == "subscribed" })
}

func TestRosterSetGetRemove(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	bob := e.mustLogin("bob", "pw", "b")
	alice.send(`<presence/>`)
	bob.send(`<presence/>`)

	alice.send(`<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='bob@example.test' name='Bob &amp; co'><group>Friends</group></item></query></iq>`)
	alice.nextWhere("set result", func(n node) bool { return n.attr("id") == "s1" && n.attr("type") == "result" })
	alice.send(`<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>`)
	res := alice.nextWhere("roster", func(n node) bool { return n.attr("id") == "g1" })
	q, _ := res.child("query")
	if len(q.Children) != 1 {
		t.Fatalf("roster %+v", q)
	}
	it := q.Children[0]
	g, _ := it.child("group")
	if it.attr("jid") != "bob@example.test" || it.attr("name") != "Bob & co" || it.attr("subscription") != "none" || g.Text != "Friends" {
		t.Fatalf("item %+v", it)
	}
	// alice/a asked for the roster, so it gets pushes for changes made by
	// another resource.
	other := e.mustLogin("alice", "pw", "other")
	other.send(`<iq type='set' id='s2'><query xmlns='jabber:iq:roster'><item jid='carol@example.test'/></query></iq>`)
	push := alice.nextWhere("roster push", func(n node) bool { return n.attr("type") == "set" })
	pq, _ := push.child("query")
	if len(pq.Children) != 1 || pq.Children[0].attr("jid") != "carol@example.test" || pq.XMLName.Space != nsRoster {
		t.Fatalf("push %+v", push)
	}
	// Another user's roster is not ours to read.
	alice.send(`<iq type='get' id='g2' to='bob@example.test'><query xmlns='jabber:iq:roster'/></iq>`)
	if got := alice.nextWhere("error", func(n node) bool { return n.attr("id") == "g2" }); got.errorCondition() != "forbidden" {
		t.Fatalf("got %+v, want forbidden", got)
	}

	subscribeBoth(t, alice, bob)
	// Removing the contact cancels both subscriptions (RFC 6121 §2.5.2).
	alice.send(`<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@example.test' subscription='remove'/></query></iq>`)
	alice.nextWhere("remove result", func(n node) bool { return n.attr("id") == "r1" && n.attr("type") == "result" })
	bob.nextWhere("unsubscribe", func(n node) bool { return n.attr("type") == "unsubscribe" && n.attr("from") == "alice@example.test" })
	bob.nextWhere("unsubscribed", func(n node) bool { return n.attr("type") == "unsubscribed" && n.attr("from") == "alice@example.test" })
	bob.nextWhere("alice unavailable", func(n node) bool { return n.attr("type") == "unavailable" && n.attr("from") == "alice@example.test/a" })

	if _, err := e.db.RosterItem(context.Background(), "alice@example.test", "bob@example.test"); err == nil {
		t.Fatal("alice's item for bob still stored")
	}
	it2, err := e.db.RosterItem(context.Background(), "bob@example.test", "alice@example.test")
	if err != nil || it2.Subscription != store.SubNone {
		t.Fatalf("bob's item for alice: %+v %v, want none", it2, err)
	}
}

func TestDirectedPresence(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	bob := e.mustLogin("bob", "pw", "b")
	bob.send(`<presence/>`)
	alice.send(`<presence/>`)
	alice.send(`<presence to='bob@example.test/b'><status>just for you</status></presence>`)
	p := bob.nextWhere("directed presence", func(n node) bool { return n.attr("from") == "alice@example.test/a" })
	if s, _ := p.child("status"); p.attr("type") != "" || s.Text != "just for you" {
		t.Fatalf("got %+v", p)
	}
	alice.close()
	bob.nextWhere("unavailable after directed presence", func(n node) bool {
		return n.attr("from") == "alice@example.test/a" && n.attr("type") == "unavailable"
	})
}

func TestSubscriptionDeniedAndPreapproved(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	bob := e.mustLogin("bob", "pw", "b")
	alice.send(`<presence/>`)
	bob.send(`<presence/>`)

	// Denied: alice's pending-out is cleared.
	alice.send(`<presence to='bob@example.test' type='subscribe'/>`)
	bob.nextWhere("subscribe", func(n node) bool { return n.attr("type") == "subscribe" })
	bob.send(`<presence to='alice@example.test' type='unsubscribed'/>`)
	alice.nextWhere("unsubscribed", func(n node) bool { return n.attr("type") == "unsubscribed" && n.attr("from") == "bob@example.test" })
	it, err := e.db.RosterItem(context.Background(), "alice@example.test", "bob@example.test")
	if err != nil || it.PendingOut || it.Subscription != store.SubNone {
		t.Fatalf("after denial: %+v %v", it, err)
	}

	// Pre-approved (RFC 6121 §3.4): bob approves before alice asks, so her
	// request is answered at once without bothering bob.
	bob.send(`<presence to='alice@example.test' type='subscribed'/>`)
	bob.sync()
	alice.send(`<presence to='bob@example.test' type='subscribe'/>`)
	alice.nextWhere("automatic subscribed", func(n node) bool { return n.attr("type") == "subscribed" && n.attr("from") == "bob@example.test" })
	alice.nextWhere("bob's presence", func(n node) bool { return n.attr("type") == "" && n.attr("from") == "bob@example.test/b" })
	it, err = e.db.RosterItem(context.Background(), "bob@example.test", "alice@example.test")
	if err != nil || it.Subscription != store.SubFrom || it.Approved {
		t.Fatalf("bob's item after pre-approval: %+v %v, want from", it, err)
	}
}
