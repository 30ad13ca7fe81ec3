package sipside

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/pidf"
)

type allowAll struct{}

func (allowAll) MaySubscribe(context.Context, string, string) (PolicyDecision, error) {
	return PolicyAllow, nil
}

const openPIDF = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:alice@example.com">
  <tuple id="t1"><status><basic>open</basic></status></tuple>
</presence>`

func publishReq(ts *testServer, user, event, ifMatch, body string, expires int) *sip.Request {
	req := ts.request(sip.PUBLISH, "sip:"+user+"@example.com", "udp")
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "example.com"}, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "example.com"}, Params: sip.NewParams()}
	from.Params.Add("tag", newTag())
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if ifMatch != "" {
		req.AppendHeader(sip.NewHeader("SIP-If-Match", ifMatch))
	}
	if body != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/pidf+xml"))
		req.SetBody([]byte(body))
	}
	return req
}

// authed sends req and answers a 401/407 with the user's password.
func authed(t *testing.T, p *peer, req *sip.Request, user, pass string) *sip.Response {
	t.Helper()
	res := do(t, p.client, req)
	if res.StatusCode == 401 || res.StatusCode == 407 {
		res = doAuth(t, p.client, req, res, user, pass)
	}
	return res
}

func nextNotify(t *testing.T, p *peer) *sip.Request {
	t.Helper()
	select {
	case n := <-p.notify:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no NOTIFY")
		return nil
	}
}

func notifyState(t *testing.T, n *sip.Request) (state string, open bool) {
	t.Helper()
	if h := n.GetHeader("Event"); h == nil || h.Value() != "presence" {
		t.Errorf("NOTIFY Event %v, want presence", h)
	}
	d, err := pidf.Parse(n.Body(), pidf.Limits{})
	if err != nil {
		t.Fatalf("NOTIFY body: %v\n%s", err, n.Body())
	}
	return n.GetHeader("Subscription-State").Value(), d.Available()
}

func TestPresence(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) { o.PresencePolicy = allowAll{} })
	alice := newPeer(t, "alice", 200)
	bob := newPeer(t, "bob", 200)

	// bob subscribes to alice: 200, then a NOTIFY with her (closed) state.
	sub := ts.request(sip.SUBSCRIBE, "sip:alice@example.com", "udp")
	sub.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "example.com"}, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "example.com"}, Params: sip.NewParams()}
	from.Params.Add("tag", "bobtag")
	sub.AppendHeader(from)
	sub.AppendHeader(sip.NewHeader("Event", "presence"))
	sub.AppendHeader(sip.NewHeader("Expires", "600"))
	sub.AppendHeader(sip.NewHeader("Accept", "application/pidf+xml"))
	sub.AppendHeader(sip.NewHeader("Contact", "<"+bob.contact+">"))
	res := authed(t, bob, sub, "bob", "builder")
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: got %d, want 200", res.StatusCode)
	}
	toTag, _ := res.To().Params.Get("tag")
	if res.Contact() == nil {
		t.Fatal("the 200 to SUBSCRIBE has no Contact: the watcher has no remote target")
	}
	remoteTarget := res.Contact().Address.String()
	if state, open := notifyState(t, nextNotify(t, bob)); !strings.HasPrefix(state, "active") || open {
		t.Fatalf("first NOTIFY: state %q open %v, want active and closed", state, open)
	}

	// alice publishes open: bob is notified.
	res = authed(t, alice, publishReq(ts, "alice", "presence", "", openPIDF, 600), "alice", "wonderland")
	etag := res.GetHeader("SIP-ETag")
	if res.StatusCode != 200 || etag == nil {
		t.Fatalf("PUBLISH: got %d (SIP-ETag %v), want 200 with an ETag", res.StatusCode, etag)
	}
	if state, open := notifyState(t, nextNotify(t, bob)); !strings.HasPrefix(state, "active") || !open {
		t.Fatalf("NOTIFY after PUBLISH: state %q open %v, want active and open", state, open)
	}

	tests := []struct {
		name    string
		req     *sip.Request
		user    string
		pass    string
		want    int
		wantHdr string
	}{
		{"unknown etag", publishReq(ts, "alice", "presence", "nosuchetag", "", 600), "alice", "wonderland", 412, ""},
		{"unknown event", publishReq(ts, "alice", "dialog", "", openPIDF, 600), "alice", "wonderland", 489, "Allow-Events"},
		{"too brief", publishReq(ts, "alice", "presence", "", openPIDF, 5), "alice", "wonderland", 423, "Min-Expires"},
		{"not a pidf", publishReq(ts, "alice", "presence", "", "<x/>", 600), "alice", "wonderland", 415, ""},
		{"someone else's presence", publishReq(ts, "alice", "presence", "", openPIDF, 600), "bob", "builder", 403, ""},
		{"refresh", publishReq(ts, "alice", "presence", etag.Value(), "", 600), "alice", "wonderland", 200, "SIP-ETag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.user == "bob" {
				tc.req.From().Address.User = "bob"
			}
			res := authed(t, alice, tc.req, tc.user, tc.pass)
			if res.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", res.StatusCode, tc.want)
			}
			if tc.wantHdr != "" && res.GetHeader(tc.wantHdr) == nil {
				t.Fatalf("no %s header", tc.wantHdr)
			}
		})
	}
	// The refresh notified bob too (the state did not change).
	if state, open := notifyState(t, nextNotify(t, bob)); !strings.HasPrefix(state, "active") || !open {
		t.Fatalf("NOTIFY after refresh: state %q open %v", state, open)
	}

	// bob refreshes in the dialog, as clients do: addressed to the remote
	// target (our Contact), not to alice (RFC 6665 §4.1.2.1).
	refresh := ts.request(sip.SUBSCRIBE, remoteTarget, "udp")
	rto := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "example.com"}, Params: sip.NewParams()}
	rto.Params.Add("tag", toTag)
	refresh.AppendHeader(rto)
	refresh.AppendHeader(from)
	refresh.AppendHeader(sub.CallID())
	refresh.AppendHeader(&sip.CSeqHeader{SeqNo: 5, MethodName: sip.SUBSCRIBE})
	refresh.AppendHeader(sip.NewHeader("Event", "presence"))
	refresh.AppendHeader(sip.NewHeader("Expires", "600"))
	refresh.AppendHeader(sip.NewHeader("Contact", "<"+bob.contact+">"))
	if res := authed(t, bob, refresh, "bob", "builder"); res.StatusCode != 200 {
		t.Fatalf("in-dialog refresh to %s: got %d, want 200", remoteTarget, res.StatusCode)
	}
	if state, open := notifyState(t, nextNotify(t, bob)); !strings.HasPrefix(state, "active") || !open {
		t.Fatalf("NOTIFY after the SUBSCRIBE refresh: state %q open %v", state, open)
	}

	// bob unsubscribes in the dialog: 200 and a final NOTIFY.
	unsub := ts.request(sip.SUBSCRIBE, remoteTarget, "udp")
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "example.com"}, Params: sip.NewParams()}
	to.Params.Add("tag", toTag)
	unsub.AppendHeader(to)
	unsub.AppendHeader(from)
	unsub.AppendHeader(sub.CallID())
	unsub.AppendHeader(&sip.CSeqHeader{SeqNo: 10, MethodName: sip.SUBSCRIBE})
	unsub.AppendHeader(sip.NewHeader("Event", "presence"))
	unsub.AppendHeader(sip.NewHeader("Expires", "0"))
	unsub.AppendHeader(sip.NewHeader("Contact", "<"+bob.contact+">"))
	if res := authed(t, bob, unsub, "bob", "builder"); res.StatusCode != 200 {
		t.Fatalf("unsubscribe: got %d, want 200", res.StatusCode)
	}
	if state, _ := notifyState(t, nextNotify(t, bob)); !strings.HasPrefix(state, "terminated") {
		t.Fatalf("final NOTIFY state %q, want terminated", state)
	}
	// The dialog is gone.
	unsub2 := unsub.Clone()
	unsub2.CSeq().SeqNo = 20
	unsub2.RemoveHeader("Authorization")
	unsub2.RemoveHeader("Via")
	if res := authed(t, bob, unsub2, "bob", "builder"); res.StatusCode != 481 {
		t.Fatalf("SUBSCRIBE in an ended dialog: got %d, want 481", res.StatusCode)
	}
}

func TestSubscribePolicyAndEvent(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	ts := startServer(t, users, []string{"example.com"}, nil) // no policy: only oneself
	bob := newPeer(t, "bob", 200)
	tests := []struct {
		name, target, event string
		want                int
	}{
		{"other user without policy", "alice", "presence", 403},
		{"own presence", "bob", "presence", 200},
		{"unknown event package", "alice", "dialog", 489},
		{"unknown user", "nobody", "presence", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := ts.request(sip.SUBSCRIBE, "sip:"+tc.target+"@example.com", "udp")
			sub.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: tc.target, Host: "example.com"}, Params: sip.NewParams()})
			from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "example.com"}, Params: sip.NewParams()}
			from.Params.Add("tag", newTag())
			sub.AppendHeader(from)
			sub.AppendHeader(sip.NewHeader("Event", tc.event))
			sub.AppendHeader(sip.NewHeader("Expires", "0"))
			sub.AppendHeader(sip.NewHeader("Contact", "<"+bob.contact+">"))
			if res := authed(t, bob, sub, "bob", "builder"); res.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", res.StatusCode, tc.want)
			}
		})
	}
}
