package sipside

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/pidf"
)

// Tests of the seams the gateway uses for presence: SetPresence,
// Options.PresenceChanged, Options.RemotePresence, and the NOTIFYs sent
// at shutdown.

// xmppDoc is a presence document as the gateway builds it from XMPP.
func xmppDoc(entity, id, basic string) *pidf.Document {
	return &pidf.Document{Entity: "pres:" + entity, Tuples: []pidf.Tuple{{ID: id, Basic: basic}}}
}

// notifyTuples reads a NOTIFY's document: its tuple ids, in order, with
// their basic status ("t1=open").
func notifyTuples(t *testing.T, n *sip.Request) []string {
	t.Helper()
	d, err := pidf.Parse(n.Body(), pidf.Limits{})
	if err != nil {
		t.Fatalf("NOTIFY body: %v\n%s", err, n.Body())
	}
	var out []string
	for _, tp := range d.Tuples {
		out = append(out, tp.ID+"="+tp.Basic)
	}
	return out
}

func TestSetPresenceNotifies(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) { o.PresencePolicy = allowAll{} })
	alice := newPeer(t, "alice", 200)
	bob := newPeer(t, "bob", 200)
	if res := authed(t, bob, subscribeReq(ts, "bob", "alice", bob.contact, 600), "bob", "builder"); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	if got := notifyTuples(t, nextNotify(t, bob)); !slices.Equal(got, []string{"none=closed"}) {
		t.Fatalf("first NOTIFY %v", got)
	}
	steps := []struct {
		name string
		do   func()
		want []string // nil: no NOTIFY
	}{
		{"xmpp presence", func() { ts.SetPresence("alice@example.com", xmppDoc("alice@example.com", "xmpp-laptop", "open")) },
			[]string{"xmpp-laptop=open"}},
		{"sip publication joins it", func() {
			if res := authed(t, alice, publishReq(ts, "alice", "presence", "", openPIDF, 600), "alice", "wonderland"); res.StatusCode != 200 {
				t.Fatalf("PUBLISH: %d", res.StatusCode)
			}
		}, []string{"t1=open", "xmpp-laptop=open"}},
		{"same document again", func() { ts.SetPresence("alice@example.com", xmppDoc("alice@example.com", "xmpp-laptop", "open")) }, nil},
		{"xmpp change", func() { ts.SetPresence("alice@example.com", xmppDoc("alice@example.com", "xmpp-laptop", "closed")) },
			[]string{"t1=open", "xmpp-laptop=closed"}},
		{"removed", func() { ts.SetPresence("alice@example.com", nil) }, []string{"t1=open"}},
		{"invalid document refused", func() {
			ts.SetPresence("alice@example.com", &pidf.Document{Entity: "pres:alice@example.com", Tuples: []pidf.Tuple{{ID: "x", Basic: "maybe"}}})
		}, nil},
	}
	for _, st := range steps {
		st.do()
		if st.want == nil {
			noNotify(t, bob, 300*time.Millisecond)
			continue
		}
		n := nextNotify(t, bob)
		if s := n.GetHeader("Subscription-State").Value(); !strings.HasPrefix(s, "active") {
			t.Fatalf("%s: Subscription-State %s", st.name, s)
		}
		if got := notifyTuples(t, n); !slices.Equal(got, st.want) {
			t.Fatalf("%s: NOTIFY tuples %v, want %v", st.name, got, st.want)
		}
	}
}

// changeLog records PresenceChanged calls.
type changeLog chan string

func (c changeLog) record(presentity string, doc *pidf.Document) {
	if doc == nil {
		c <- presentity + " <nil>"
		return
	}
	var ts []string
	for _, tp := range doc.Tuples {
		ts = append(ts, tp.ID+"="+tp.Basic)
	}
	c <- presentity + " " + strings.Join(ts, ",")
}

func (c changeLog) next(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(within):
		t.Fatal("PresenceChanged not called")
		return ""
	}
}

func (c changeLog) none(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case s := <-c:
		t.Fatalf("unexpected PresenceChanged(%s)", s)
	case <-time.After(within):
	}
}

// TestPresenceChanged: the SIP-published state of a local presentity is
// reported on PUBLISH (new, modify), removal (Expires: 0) and expiry,
// not on a refresh that changes nothing nor on SetPresence.
func TestPresenceChanged(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	changes := make(changeLog, 16)
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) {
		o.PresenceChanged = changes.record
		o.MinExpires = time.Second
	})
	alice := newPeer(t, "alice", 200)
	publish := func(ifMatch, body string, expires int) string {
		t.Helper()
		res := authed(t, alice, publishReq(ts, "alice", "presence", ifMatch, body, expires), "alice", "wonderland")
		if res.StatusCode != 200 {
			t.Fatalf("PUBLISH: %d", res.StatusCode)
		}
		if h := res.GetHeader("SIP-ETag"); h != nil {
			return h.Value()
		}
		return ""
	}
	closedPIDF := strings.Replace(openPIDF, "open", "closed", 1)

	etag := publish("", openPIDF, 600)
	if got := changes.next(t, 5*time.Second); got != "alice@example.com t1=open" {
		t.Fatalf("after PUBLISH: %s", got)
	}
	ts.SetPresence("alice@example.com", xmppDoc("alice@example.com", "xmpp", "open"))
	etag = publish(etag, "", 600) // refresh
	changes.none(t, 300*time.Millisecond)
	etag = publish(etag, closedPIDF, 600) // modify
	if got := changes.next(t, 5*time.Second); got != "alice@example.com t1=closed" {
		t.Fatalf("after modify: %s", got)
	}
	publish(etag, "", 0) // remove
	if got := changes.next(t, 5*time.Second); got != "alice@example.com <nil>" {
		t.Fatalf("after Expires: 0: %s", got)
	}
	publish("", openPIDF, 1)
	if got := changes.next(t, 5*time.Second); got != "alice@example.com t1=open" {
		t.Fatalf("after a short PUBLISH: %s", got)
	}
	if got := changes.next(t, 10*time.Second); got != "alice@example.com <nil>" {
		t.Fatalf("after expiry: %s", got)
	}
}

// remoteLog is a RemotePresence that answers decision and records calls.
type remoteLog struct {
	decision atomic.Int32 // a PolicyDecision; the test changes it while the server runs
	calls    chan string
}

func newRemoteLog(d PolicyDecision) *remoteLog {
	r := &remoteLog{calls: make(chan string, 16)}
	r.decision.Store(int32(d))
	return r
}

func (r *remoteLog) Watch(_ context.Context, watcher, presentity string) (PolicyDecision, error) {
	d := PolicyDecision(r.decision.Load()) // read before the test hears of the call and may change it
	r.calls <- "watch " + watcher + " " + presentity
	return d, nil
}

func (r *remoteLog) Unwatch(watcher, presentity string) {
	r.calls <- "unwatch " + watcher + " " + presentity
}

func (r *remoteLog) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-r.calls:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("RemotePresence not called")
		return ""
	}
}

func (r *remoteLog) none(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case s := <-r.calls:
		t.Fatalf("unexpected RemotePresence call: %s", s)
	case <-time.After(within):
	}
}

// remoteSubscribeReq is a SUBSCRIBE from a local watcher to a presentity
// of another domain.
func remoteSubscribeReq(ts *testServer, watcher, presentity, contact string, expires int) *sip.Request {
	user, domain, _ := strings.Cut(presentity, "@")
	uri := sip.Uri{Scheme: "sip", User: user, Host: domain}
	sub := ts.request(sip.SUBSCRIBE, uri.String(), "udp")
	sub.AppendHeader(&sip.ToHeader{Address: uri, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: watcher, Host: "example.com"}, Params: sip.NewParams()}
	from.Params.Add("tag", newTag())
	sub.AppendHeader(from)
	sub.AppendHeader(sip.NewHeader("Event", "presence"))
	sub.AppendHeader(sip.NewHeader("Expires", fmt.Sprint(expires)))
	sub.AppendHeader(sip.NewHeader("Contact", "<"+contact+">"))
	return sub
}

// inDialogSubscribe builds the refresh or unsubscribe of a subscription
// made by sub and answered by ok.
func inDialogSubscribe(ts *testServer, sub *sip.Request, ok *sip.Response, expires int) *sip.Request {
	req := sip.NewRequest(sip.SUBSCRIBE, ok.Contact().Address)
	req.SetDestination(ts.udp)
	req.SetTransport("UDP")
	req.AppendHeader(sip.HeaderClone(sub.From()))
	req.AppendHeader(sip.HeaderClone(ok.To()))
	req.AppendHeader(sip.HeaderClone(sub.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: sub.CSeq().SeqNo + 100, MethodName: sip.SUBSCRIBE})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Expires", fmt.Sprint(expires)))
	req.AppendHeader(sip.HeaderClone(sub.Contact()))
	return req
}

// TestRemotePresence: a local SIP watcher subscribes to a user of
// another domain; RemotePresence.Watch is asked (pending), the watcher
// gets NOTIFY pending without state, the gateway's SetPresence shows
// nothing until Authorize, then NOTIFY active carries the SetPresence
// document and follows its changes; Expires: 0 reports Unwatch, and so
// does a rejection. A refusing Watch gives 403 and no Unwatch; without
// RemotePresence the answer stays 404.
func TestRemotePresence(t *testing.T) {
	const juliet = "juliet@capulets.example.com"
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	rp := newRemoteLog(PolicyPending)
	policyAsked := make(chan string, 4)
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) {
		o.RemotePresence = rp
		o.PresencePolicy = policyFunc(func(_ context.Context, w, p string) (PolicyDecision, error) {
			policyAsked <- w + " " + p
			return PolicyDeny, nil
		})
	})
	ctx := context.Background()
	alice := newPeer(t, "alice", 200)

	sub := remoteSubscribeReq(ts, "alice", juliet, alice.contact, 600)
	ok := authed(t, alice, sub, "alice", "wonderland")
	if ok.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE to a remote presentity: %d", ok.StatusCode)
	}
	if got := rp.next(t); got != "watch alice@example.com "+juliet {
		t.Fatalf("RemotePresence got %q", got)
	}
	if state := noBodyState(t, nextNotify(t, alice)); !strings.HasPrefix(state, "pending") {
		t.Fatalf("first NOTIFY %q, want pending", state)
	}
	ts.SetPresence(juliet, xmppDoc(juliet, "balcony", "open"))
	noNotify(t, alice, 300*time.Millisecond)
	if n := ts.Authorize(ctx, juliet, "alice@example.com", true); n != 1 {
		t.Fatalf("Authorize changed %d subscriptions", n)
	}
	n := nextNotify(t, alice)
	if s := n.GetHeader("Subscription-State").Value(); !strings.HasPrefix(s, "active") {
		t.Fatalf("after Authorize: %s", s)
	}
	if got := notifyTuples(t, n); !slices.Equal(got, []string{"balcony=open"}) {
		t.Fatalf("after Authorize: tuples %v", got)
	}
	if got := n.From().Address.String(); got != "sip:"+juliet {
		t.Errorf("NOTIFY From %s", got)
	}
	ts.SetPresence(juliet, xmppDoc(juliet, "balcony", "closed"))
	if got := notifyTuples(t, nextNotify(t, alice)); !slices.Equal(got, []string{"balcony=closed"}) {
		t.Fatalf("after a change: tuples %v", got)
	}
	// A refresh in the dialog is no new Watch.
	if res := authed(t, alice, inDialogSubscribe(ts, sub, ok, 600), "alice", "wonderland"); res.StatusCode != 200 {
		t.Fatalf("refresh: %d", res.StatusCode)
	}
	nextNotify(t, alice)
	rp.none(t, 200*time.Millisecond)
	// Unsubscribe: NOTIFY terminated, then Unwatch.
	if res := authed(t, alice, inDialogSubscribe(ts, sub, ok, 0), "alice", "wonderland"); res.StatusCode != 200 {
		t.Fatalf("unsubscribe: %d", res.StatusCode)
	}
	if s := nextNotify(t, alice).GetHeader("Subscription-State").Value(); !strings.HasPrefix(s, "terminated") {
		t.Fatalf("after Expires: 0: %s", s)
	}
	if got := rp.next(t); got != "unwatch alice@example.com "+juliet {
		t.Fatalf("after Expires: 0, RemotePresence got %q", got)
	}

	// A rejection ends the subscription and the watch.
	if res := authed(t, alice, remoteSubscribeReq(ts, "alice", juliet, alice.contact, 600), "alice", "wonderland"); res.StatusCode != 200 {
		t.Fatalf("second SUBSCRIBE: %d", res.StatusCode)
	}
	rp.next(t)
	nextNotify(t, alice)
	if n := ts.Authorize(ctx, juliet, "alice@example.com", false); n != 1 {
		t.Fatalf("refusal changed %d subscriptions", n)
	}
	if s := noBodyState(t, nextNotify(t, alice)); s != "terminated;reason=rejected" {
		t.Fatalf("after refusal: %s", s)
	}
	if got := rp.next(t); got != "unwatch alice@example.com "+juliet {
		t.Fatalf("after refusal, RemotePresence got %q", got)
	}

	// Watch refuses: 403, no Unwatch.
	rp.decision.Store(int32(PolicyDeny))
	if res := authed(t, alice, remoteSubscribeReq(ts, "alice", "romeo@montague.example.net", alice.contact, 600), "alice", "wonderland"); res.StatusCode != 403 {
		t.Fatalf("refused Watch: %d, want 403", res.StatusCode)
	}
	rp.next(t)
	rp.none(t, 300*time.Millisecond)
	select {
	case s := <-policyAsked:
		t.Fatalf("PresencePolicy asked about a remote presentity: %s", s)
	default:
	}

	// Without RemotePresence: 404 as before.
	plain := startServer(t, users, []string{"example.com"}, nil)
	if res := authed(t, alice, remoteSubscribeReq(plain, "alice", juliet, alice.contact, 600), "alice", "wonderland"); res.StatusCode != 404 {
		t.Fatalf("without RemotePresence: %d, want 404", res.StatusCode)
	}
}

// TestShutdownDeactivatesSubscriptions: when Serve's context ends, every
// inbound subscription (to a local or a remote presentity) gets NOTIFY
// "terminated;reason=deactivated" before the transports close, and no
// Unwatch is reported for them.
func TestShutdownDeactivatesSubscriptions(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	rp := newRemoteLog(PolicyAllow)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ts := startServerCtx(t, ctx, users, []string{"example.com"}, func(o *Options) {
		o.PresencePolicy = allowAll{}
		o.RemotePresence = rp
	})
	bob := newPeer(t, "bob", 200)
	if res := authed(t, bob, subscribeReq(ts, "bob", "alice", bob.contact, 600), "bob", "builder"); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE alice: %d", res.StatusCode)
	}
	nextNotify(t, bob)
	if res := authed(t, bob, remoteSubscribeReq(ts, "bob", "juliet@capulets.example.com", bob.contact, 600), "bob", "builder"); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE juliet: %d", res.StatusCode)
	}
	nextNotify(t, bob)
	rp.next(t)

	start := time.Now()
	stop()
	var states []string
	for range 2 {
		n := nextNotify(t, bob)
		states = append(states, n.GetHeader("Subscription-State").Value()+" from "+n.From().Address.User)
	}
	slices.Sort(states)
	want := []string{"terminated;reason=deactivated from alice", "terminated;reason=deactivated from juliet"}
	if !slices.Equal(states, want) {
		t.Fatalf("NOTIFYs at shutdown %v, want %v", states, want)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("deactivation took %v", d)
	}
	rp.none(t, 300*time.Millisecond)
}
