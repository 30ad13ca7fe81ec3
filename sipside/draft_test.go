package sipside

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/session/sdp"
)

const (
	capulets  = "thecappulets.example.com"
	montagues = "montague.example.net"
	julietJID = "juliet@thecappulets.example.com/balcony"
)

// startCapulets runs a server hosting the draft's Juliet, with montague
// as a peer domain whose SIP server is 127.0.0.1 (where the tests send
// from), so that its requests are authenticated by their source address
// (peer.go). r, when given, must be a *staticResolver or nil.
func startCapulets(t *testing.T, h SessionHandler, r *staticResolver) *testServer {
	t.Helper()
	if r == nil {
		r = &staticResolver{}
	}
	r.set(montagues, "udp", "127.0.0.1:5060")
	users := newUsers(t)
	addUser(t, users, "juliet", capulets, "balcony")
	return startServer(t, users, []string{capulets}, func(o *Options) {
		o.Sessions = h
		o.Resolver = r
		o.PeerPolicy = func(d string) bool { return d == montagues }
		o.PresencePolicy = allowAll{}
	})
}

func (ts *testServer) addrOf(transport string) string {
	switch transport {
	case "tcp":
		return ts.tcp
	case "tls":
		return ts.tls
	}
	return ts.udp
}

// TestDraftInvite replays the draft's §4.1 flow: its INVITE byte for byte
// (im: Request-URI, To and From; only Via, Max-Forwards and
// Content-Length added), the 200 OK with the draft's answer, its ACK, and
// a BYE from either side.
func TestDraftInvite(t *testing.T) {
	for _, tc := range []struct {
		transport string
		byeFromUs bool
	}{
		{"udp", false}, {"tcp", false}, {"tls", false}, {"udp", true}, {"tcp", true}, {"tls", true},
	} {
		name := tc.transport + "/bye from romeo"
		if tc.byeFromUs {
			name = tc.transport + "/bye from juliet"
		}
		t.Run(name, func(t *testing.T) {
			h := newTestSessions(julietJID, "juliet@"+capulets)
			res := &staticResolver{}
			ts := startCapulets(t, h, res)
			w := dialWire(t, tc.transport, ts.addrOf(tc.transport))
			if tc.transport == "udp" {
				// Romeo's Contact host, for our in-dialog requests. Over
				// TCP they reuse the connection instead.
				res.set("orchard.montague.example.net", "udp", w.local())
			}

			w.send(completeDraft(readDraft(t, "4.1-1-invite.sip"), tc.transport, w.local(), "inv1"))
			ok := w.final()
			if ok.StatusCode != 200 {
				t.Fatalf("INVITE answered %d %s", ok.StatusCode, ok.Reason)
			}
			checkDraftAnswer(t, ok)
			toTag, _ := ok.To().Params.Get("tag")

			o := h.lastOffer(t)
			if o.From.BareJID() != "romeo@"+montagues || o.To.BareJID() != "juliet@"+capulets || o.CallID != "2349098234@orchard.montague.example.net" ||
				o.Session.JID != "romeo@montague.example.net/orchard" || o.Session.Thread != "283461923759234" ||
				o.Session.ConnAddr != "xmpp.montague.example.net" || o.Session.Port != 5222 || o.Session.Kind != "chat" || o.Session.Direction != "both" {
				t.Fatalf("offer seen by the handler: %+v", o)
			}

			// The draft's ACK, with the To tag our server chose.
			ack := setHeader(readDraft(t, "4.1-3-ack.sip"), "To", "Juliet <im:juliet@thecappulets.example.com>;tag="+toTag)
			w.send(completeDraft(ack, tc.transport, w.local(), "ack1"))
			waitFor(t, "the ACK to confirm the dialog", func() bool {
				d := ts.dialogs.get(o.DialogID)
				return d != nil && d.isConfirmed()
			})

			if tc.byeFromUs {
				done := make(chan error, 1)
				go func() { done <- ts.Hangup(context.Background(), o.DialogID) }()
				bye := parseRequest(t, w.read())
				checkDraftBye(t, bye, toTag)
				w.answer200(bye)
				if err := <-done; err != nil {
					t.Fatalf("Hangup: %v", err)
				}
				h.waitEnded(t, o.CallID+" hangup")
			} else {
				bye := fmt.Sprintf("BYE sip:juliet@balcony.thecappulets.example.com SIP/2.0\r\n"+
					"From: Romeo <im:romeo@montague.example.net>;tag=29923923\r\n"+
					"To: Juliet <im:juliet@thecappulets.example.com>;tag=%s\r\n"+
					"Call-ID: 2349098234@orchard.montague.example.net\r\n"+
					"CSeq: 13993 BYE\r\n\r\n", toTag)
				w.send(completeDraft([]byte(bye), tc.transport, w.local(), "bye1"))
				if res := w.final(); res.StatusCode != 200 {
					t.Fatalf("BYE answered %d", res.StatusCode)
				}
				h.waitEnded(t, o.CallID+" bye")
			}
			if n := ts.Dialogs(); n != 0 {
				t.Fatalf("%d dialogs left", n)
			}
		})
	}
}

// checkDraftAnswer compares a 200 to the draft's SIP message 2: the same
// dialog fields, a Contact, and the answer SDP.
func checkDraftAnswer(t *testing.T, ok *sip.Response) {
	t.Helper()
	printed := parseResponse(t, completeDraft(readDraft(t, "4.1-2-ok.sip"), "udp", "127.0.0.1:1", "x"))
	if got, want := ok.From().Value(), printed.From().Value(); got != want {
		t.Errorf("From %q, want %q", got, want)
	}
	if got, want := ok.To().Address.String(), printed.To().Address.String(); got != want {
		t.Errorf("To %q, want %q", got, want)
	}
	if tag, _ := ok.To().Params.Get("tag"); tag == "" {
		t.Error("200 without To tag")
	}
	if ok.CallID().Value() != printed.CallID().Value() || ok.CSeq().Value() != printed.CSeq().Value() {
		t.Errorf("Call-ID/CSeq %q %q", ok.CallID().Value(), ok.CSeq().Value())
	}
	if c := ok.Contact(); c == nil || c.Address.Scheme != "sip" || c.Address.User != "juliet" {
		t.Errorf("Contact %v, want sip:juliet@<our address>", ok.Contact())
	}
	if ct := ok.ContentType(); ct == nil || ct.Value() != "application/sdp" {
		t.Fatalf("Content-Type %v", ct)
	}
	body := string(ok.Body())
	for _, line := range []string{
		"m=audio 0 RTP/AVP 0\r\n",
		"a=rtpmap:0 PCMU/8000\r\n",
		"m=message 5222 xmpp/tcp chat\r\n",
		"c=IN IP4 impish.thecapulets.example.com\r\n",
		"a=direction:passive\r\n",
		"a=jid:juliet@thecappulets.example.com/balcony\r\n",
	} {
		if !strings.Contains(body, line) {
			t.Errorf("answer lacks %q:\n%s", line, body)
		}
	}
	ans, err := sdp.Parse(ok.Body())
	if err != nil {
		t.Fatal(err)
	}
	want, err := sdp.Parse(printed.Body())
	if err != nil {
		t.Fatal(err)
	}
	// Everything but the o= and session c= lines (ours name our host).
	ans.Origin, want.Origin = sdp.Origin{}, sdp.Origin{}
	ans.Connection, want.Connection = nil, nil
	if got, exp := string(ans.Marshal()), string(want.Marshal()); got != exp {
		t.Errorf("answer SDP\n%s\nwant (the draft's)\n%s", got, exp)
	}
}

// checkDraftBye compares our BYE with the draft's SIP message 4.
func checkDraftBye(t *testing.T, bye *sip.Request, toTag string) {
	t.Helper()
	printed := parseRequest(t, completeDraft(readDraft(t, "4.1-4-bye.sip"), "udp", "127.0.0.1:1", "x"))
	if bye.Method != sip.BYE || bye.Recipient.String() != printed.Recipient.String() {
		t.Errorf("request line %s %s, want %s", bye.Method, bye.Recipient.String(), printed.Recipient.String())
	}
	if got := bye.From().Value(); got != "Juliet <im:juliet@thecappulets.example.com>;tag="+toTag &&
		got != "\"Juliet\" <im:juliet@thecappulets.example.com>;tag="+toTag {
		t.Errorf("From %q", got)
	}
	if got := bye.To().Address.String(); got != printed.To().Address.String() {
		t.Errorf("To %q, want %q", got, printed.To().Address.String())
	}
	if tag, _ := bye.To().Params.Get("tag"); tag != "29923923" {
		t.Errorf("To tag %q", tag)
	}
	if bye.CallID().Value() != printed.CallID().Value() {
		t.Errorf("Call-ID %q", bye.CallID().Value())
	}
}

// sdpBody builds an INVITE body from lines.
func sdpBody(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n"
}

var offerHead = []string{"v=0", "o=romeo 1 1 IN IP4 orchard.montague.example.net", "s=-", "c=IN IP4 xmpp.montague.example.net", "t=0 0"}

// invite builds an INVITE like the draft's with another target, From,
// Content-Type or body.
func invite(target, from, ctype, body, callID string) []byte {
	msg := fmt.Sprintf("INVITE im:%s SIP/2.0\r\n"+
		"To: <im:%s>\r\n"+
		"From: <im:%s>;tag=%s\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: 1 INVITE\r\n"+
		"Contact: <sip:romeo@orchard.montague.example.net>\r\n", target, target, from, callID, callID)
	if ctype != "" {
		msg += "Content-Type: " + ctype + "\r\n"
	}
	return []byte(msg + "\r\n" + body)
}

// TestInviteErrors: the status for each way an INVITE can be unusable.
func TestInviteErrors(t *testing.T) {
	chat := sdpBody(append(offerHead, "m=message 5222 xmpp/tcp chat", "a=jid:romeo@montague.example.net/orchard")...)
	group := sdpBody(append(offerHead, "m=message 5222 xmpp/tcp groupchat", "a=jid:romeo@montague.example.net/orchard")...)
	for _, tc := range []struct {
		name, target, from, ctype, body string
		err                             error
		offline                         bool
		want                            int
	}{
		{name: "not sdp content type", ctype: "text/plain", body: "wherefore", want: 415},
		{name: "not sdp body", ctype: "application/sdp", body: "wherefore art thou", want: 415},
		{name: "no body", want: 488},
		{name: "malformed sdp", ctype: "application/sdp", body: "v=0\r\nm=message\r\n", want: 488},
		{name: "audio only", ctype: "application/sdp", body: sdpBody(append(offerHead, "m=audio 4000 RTP/AVP 0")...), want: 488},
		{name: "msrp", ctype: "application/sdp", body: sdpBody(append(offerHead, "m=message 7394 TCP/MSRP *", "a=path:msrp://h/x;tcp")...), want: 488},
		{name: "jid not a jid", ctype: "application/sdp", body: sdpBody(append(offerHead, "m=message 5222 xmpp/tcp chat", "a=jid:@@")...), want: 488},
		{name: "groupchat to a user", ctype: "application/sdp", body: group, err: ErrNotRoom, want: 488},
		{name: "unknown user", target: "tybalt@" + capulets, ctype: "application/sdp", body: chat, want: 404},
		{name: "other domain", target: "tybalt@verona.example.org", ctype: "application/sdp", body: chat, want: 404},
		{name: "sender not a peer", from: "tybalt@verona.example.org", ctype: "application/sdp", body: chat, want: 403},
		{name: "handler refuses", ctype: "application/sdp", body: chat, err: ErrRefused, want: 403},
		{name: "user offline", ctype: "application/sdp", body: chat, offline: true, want: 480},
		{name: "handler fails", ctype: "application/sdp", body: chat, err: errors.New("disk on fire"), want: 500},
		{name: "handler status", ctype: "application/sdp", body: chat, err: &StatusError{Code: 486, Reason: "Busy Here"}, want: 486},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestSessions(julietJID, "juliet@"+capulets)
			if tc.offline {
				h.online = nil
			}
			h.err = tc.err
			ts := startCapulets(t, h, nil)
			w := dialWire(t, "udp", ts.udp)
			target, from := tc.target, tc.from
			if target == "" {
				target = "juliet@" + capulets
			}
			if from == "" {
				from = "romeo@" + montagues
			}
			w.send(completeDraft(invite(target, from, tc.ctype, tc.body, "err-"+strings.ReplaceAll(tc.name, " ", "-")), "udp", w.local(), "e1"))
			res := w.final()
			if res.StatusCode != tc.want {
				t.Fatalf("INVITE answered %d %s, want %d", res.StatusCode, res.Reason, tc.want)
			}
			if n := ts.Dialogs(); n != 0 {
				t.Fatalf("%d dialogs left", n)
			}
		})
	}
}

// TestInviteCancel: CANCEL before the answer gives 200 for the CANCEL and
// 487 for the INVITE, and leaves no dialog.
func TestInviteCancel(t *testing.T) {
	h := newTestSessions(julietJID, "juliet@"+capulets)
	h.block = true
	ts := startCapulets(t, h, nil)
	w := dialWire(t, "udp", ts.udp)
	inv := readDraft(t, "4.1-1-invite.sip")
	w.send(completeDraft(inv, "udp", w.local(), "can1"))
	if m := w.read(); statusOf(m) != 100 {
		t.Fatalf("expected 100 Trying, got\n%s", m)
	}
	waitFor(t, "the offer to reach the handler", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.offers) == 1
	})
	cancel := "CANCEL im:juliet@thecappulets.example.com SIP/2.0\r\n" +
		"To: Juliet <im:juliet@thecappulets.example.com>\r\n" +
		"From: Romeo <im:romeo@montague.example.net>;tag=29923923\r\n" +
		"Call-ID: 2349098234@orchard.montague.example.net\r\n" +
		"CSeq: 13992 CANCEL\r\n\r\n"
	w.send(completeDraft([]byte(cancel), "udp", w.local(), "can1"))
	got := map[string]int{}
	for len(got) < 2 {
		res := parseResponse(t, w.read())
		if res.StatusCode >= 200 {
			got[string(res.CSeq().MethodName)] = res.StatusCode
		}
	}
	if got["CANCEL"] != 200 || got["INVITE"] != 487 {
		t.Fatalf("answers %v, want CANCEL 200 and INVITE 487", got)
	}
	waitFor(t, "the dialog to go", func() bool { return ts.Dialogs() == 0 })
	// A CANCEL for nothing: 481.
	w.send(completeDraft([]byte(strings.Replace(cancel, "2349098234@", "nothing@", 1)), "udp", w.local(), "can2"))
	if res := w.final(); res.StatusCode != 481 {
		t.Fatalf("stray CANCEL answered %d", res.StatusCode)
	}
}

// TestReInvite: a new offer in the confirmed dialog (direction passive)
// is answered active; re-INVITE and BYE for unknown dialogs get 481.
func TestReInvite(t *testing.T) {
	h := newTestSessions(julietJID, "juliet@"+capulets)
	ts := startCapulets(t, h, nil)
	w := dialWire(t, "udp", ts.udp)
	w.send(completeDraft(readDraft(t, "4.1-1-invite.sip"), "udp", w.local(), "re1"))
	ok := w.final()
	if ok.StatusCode != 200 {
		t.Fatalf("INVITE answered %d", ok.StatusCode)
	}
	toTag, _ := ok.To().Params.Get("tag")
	w.send(completeDraft(setHeader(readDraft(t, "4.1-3-ack.sip"), "To", "Juliet <im:juliet@thecappulets.example.com>;tag="+toTag), "udp", w.local(), "re2"))
	id := h.lastOffer(t).DialogID
	waitFor(t, "confirmation", func() bool { d := ts.dialogs.get(id); return d != nil && d.isConfirmed() })

	reinvite := func(tag string, cseq int, branch string) *sip.Response {
		body := sdpBody(append(offerHead, "m=message 5222 xmpp/tcp chat", "a=direction:passive", "a=jid:romeo@montague.example.net/orchard", "a=thread:283461923759234")...)
		msg := fmt.Sprintf("INVITE sip:juliet@balcony.thecappulets.example.com SIP/2.0\r\n"+
			"To: Juliet <im:juliet@thecappulets.example.com>;tag=%s\r\n"+
			"From: Romeo <im:romeo@montague.example.net>;tag=29923923\r\n"+
			"Call-ID: 2349098234@orchard.montague.example.net\r\n"+
			"CSeq: %d INVITE\r\n"+
			"Contact: <sip:romeo@orchard.montague.example.net>\r\n"+
			"Content-Type: application/sdp\r\n\r\n%s", tag, cseq, body)
		w.send(completeDraft([]byte(msg), "udp", w.local(), branch))
		return w.final()
	}
	res := reinvite(toTag, 13993, "re3")
	if res.StatusCode != 200 {
		t.Fatalf("re-INVITE answered %d", res.StatusCode)
	}
	ans, err := sdp.Parse(res.Body())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ans.XMPPSession()
	if err != nil || s.Direction != "active" || s.JID != julietJID {
		t.Fatalf("re-answer %+v %v", s, err)
	}
	first, _ := sdp.Parse(ok.Body())
	if ans.Origin.SessionID != first.Origin.SessionID || ans.Origin.SessionVersion != first.Origin.SessionVersion+1 {
		t.Errorf("o= %+v after %+v: same session, version + 1 (RFC 3264 §8)", ans.Origin, first.Origin)
	}
	if o := h.lastOffer(t); !o.ReInvite || o.Session.Direction != "passive" {
		t.Fatalf("handler saw %+v", o)
	}
	w.send(completeDraft(setHeader(setHeader(readDraft(t, "4.1-3-ack.sip"), "To", "Juliet <im:juliet@thecappulets.example.com>;tag="+toTag), "CSeq", "13993 ACK"), "udp", w.local(), "re4"))

	if res := reinvite("nosuchtag", 13994, "re5"); res.StatusCode != 481 {
		t.Fatalf("re-INVITE of an unknown dialog answered %d", res.StatusCode)
	}
	if res := reinvite(toTag, 13000, "re6"); res.StatusCode != 500 {
		t.Fatalf("re-INVITE with an old CSeq answered %d", res.StatusCode)
	}
	bye := fmt.Sprintf("BYE sip:juliet@balcony.thecappulets.example.com SIP/2.0\r\n"+
		"From: Romeo <im:romeo@montague.example.net>;tag=29923923\r\n"+
		"To: Juliet <im:juliet@thecappulets.example.com>;tag=%s\r\n"+
		"Call-ID: 2349098234@orchard.montague.example.net\r\nCSeq: 14000 BYE\r\n\r\n", "other")
	w.send(completeDraft([]byte(bye), "udp", w.local(), "re7"))
	if res := w.final(); res.StatusCode != 481 {
		t.Fatalf("BYE of an unknown dialog answered %d", res.StatusCode)
	}
	if n := ts.Dialogs(); n != 1 {
		t.Fatalf("%d dialogs, want the one", n)
	}
}

// TestInviteBetweenServers: our UAC (Invite) against our UAS on another
// server, as two UMPP domains would: INVITE im:, 200 with the answer,
// ACK, BYE from the caller; then a second session ended by the caller's
// shutdown, which sends BYE.
func TestInviteBetweenServers(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			h := newTestSessions(julietJID, "juliet@"+capulets)
			capServer := startCapulets(t, h, nil)

			res := &staticResolver{}
			res.set(capulets, transport, capServer.addrOf(transport))
			users := newUsers(t)
			addUser(t, users, "romeo", montagues, "rosaline")
			ctx, stop := context.WithCancel(context.Background())
			monH := newTestSessions("romeo@montague.example.net/orchard")
			mon := startServerCtx(t, ctx, users, []string{montagues}, func(o *Options) {
				o.Sessions = monH
				o.Resolver = res
				o.PeerPolicy = func(d string) bool { return d == capulets }
			})

			romeo := mustAddr(t, "romeo@"+montagues)
			juliet := mustAddr(t, "juliet@"+capulets)
			local := sdp.XMPPSession{ConnAddr: "xmpp.montague.example.net", Port: 5269, JID: "romeo@montague.example.net/orchard", Thread: "283461923759234"}
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d, ans, err := mon.Invite(cctx, romeo, juliet, local)
			if err != nil {
				t.Fatalf("Invite: %v", err)
			}
			if ans.JID != julietJID || ans.Direction != "passive" || ans.ConnAddr != "impish.thecapulets.example.com" || ans.Port != 5222 {
				t.Fatalf("answer %+v", ans)
			}
			o := h.lastOffer(t)
			if o.From != romeo || o.To != juliet || o.Session.Thread != "283461923759234" || o.Session.JID != local.JID || o.CallID != d.CallID {
				t.Fatalf("offer at the callee %+v", o)
			}
			waitFor(t, "the callee's dialog to be confirmed", func() bool {
				cd := capServer.dialogs.get(o.DialogID)
				return cd != nil && cd.isConfirmed()
			})
			if err := d.Bye(cctx); err != nil {
				t.Fatalf("Bye: %v", err)
			}
			h.waitEnded(t, d.CallID+" bye")
			monH.waitEnded(t, d.CallID+" hangup")
			if capServer.Dialogs() != 0 || mon.Dialogs() != 0 {
				t.Fatalf("dialogs left: %d %d", capServer.Dialogs(), mon.Dialogs())
			}

			// The callee hangs up: the caller's side hears of it.
			d1, _, err := mon.Invite(cctx, romeo, juliet, local)
			if err != nil {
				t.Fatalf("Invite: %v", err)
			}
			o1 := h.lastOffer(t)
			waitFor(t, "confirmation", func() bool {
				cd := capServer.dialogs.get(o1.DialogID)
				return cd != nil && cd.isConfirmed()
			})
			if err := capServer.Hangup(cctx, o1.DialogID); err != nil {
				t.Fatalf("callee Hangup: %v", err)
			}
			h.waitEnded(t, d1.CallID+" hangup")
			monH.waitEnded(t, d1.CallID+" bye")
			if capServer.Dialogs() != 0 || mon.Dialogs() != 0 {
				t.Fatalf("dialogs left: %d %d", capServer.Dialogs(), mon.Dialogs())
			}

			// Offline callee: 480 comes back as a StatusError.
			h.setOnline("juliet@"+capulets, false)
			_, _, err = mon.Invite(cctx, romeo, juliet, local)
			var st *StatusError
			if !errors.As(err, &st) || st.Code != 480 {
				t.Fatalf("Invite to an offline user: %v", err)
			}
			h.setOnline("juliet@"+capulets, true)

			// Shutdown of the caller ends the session with BYE.
			d2, _, err := mon.Invite(cctx, romeo, juliet, local)
			if err != nil {
				t.Fatalf("second Invite: %v", err)
			}
			o2 := h.lastOffer(t)
			waitFor(t, "confirmation", func() bool {
				cd := capServer.dialogs.get(o2.DialogID)
				return cd != nil && cd.isConfirmed()
			})
			stop()
			h.waitEnded(t, d2.CallID+" bye")
			monH.waitEnded(t, d2.CallID+" shutdown")
			if capServer.Dialogs() != 0 {
				t.Fatalf("callee keeps %d dialogs", capServer.Dialogs())
			}
		})
	}
}

// TestDraftInviteSIPp: SIPp, as Romeo's server, sends the draft's INVITE
// (invite_uac.xml), checks the answer, ACKs and hangs up.
func TestDraftInviteSIPp(t *testing.T) {
	needSIPpOrFail(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			h := newTestSessions(julietJID, "juliet@"+capulets)
			ts := startCapulets(t, h, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := []string{"-m", "1", "-cid_str", "2349098234@orchard.montague.example.net"}
			if transport == "tcp" {
				args = append(args, "-t", "t1")
			}
			if out, err := runSIPp(ctx, t, ts.addrOf(transport), "invite_uac.xml", freeUDPPort(t), args...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			h.waitEnded(t, "2349098234@orchard.montague.example.net bye")
			if n := ts.Dialogs(); n != 0 {
				t.Fatalf("%d dialogs left", n)
			}
		})
	}
}

// needSIPpOrFail skips without SIPp, unless UMPP_REQUIRE_PEERS is set.
func needSIPpOrFail(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(sippBinary); err != nil {
		if os.Getenv("UMPP_REQUIRE_PEERS") != "" {
			t.Fatalf("SIPp required (UMPP_REQUIRE_PEERS is set) but %s: %v", sippBinary, err)
		}
		t.Skipf("SIPp not installed (%s: %v); install Debian package sip-tester", sippBinary, err)
	}
}

// TestInvite2xxRetransmission: over UDP the 200 is sent again (T1, 2*T1,
// ...) until the ACK arrives, then no more (RFC 3261 §13.3.1.4).
func TestInvite2xxRetransmission(t *testing.T) {
	h := newTestSessions(julietJID, "juliet@"+capulets)
	ts := startCapulets(t, h, nil)
	w := dialWire(t, "udp", ts.udp)
	w.send(completeDraft(readDraft(t, "4.1-1-invite.sip"), "udp", w.local(), "rt1"))
	first := w.final()
	again := w.final()
	if first.StatusCode != 200 || again.StatusCode != 200 {
		t.Fatalf("answers %d, %d", first.StatusCode, again.StatusCode)
	}
	tag1, _ := first.To().Params.Get("tag")
	tag2, _ := again.To().Params.Get("tag")
	if tag1 != tag2 || string(first.Body()) != string(again.Body()) {
		t.Fatalf("retransmission differs: tags %q %q", tag1, tag2)
	}
	w.send(completeDraft(setHeader(readDraft(t, "4.1-3-ack.sip"), "To", "Juliet <im:juliet@thecappulets.example.com>;tag="+tag1), "udp", w.local(), "rt2"))
	id := h.lastOffer(t).DialogID
	waitFor(t, "confirmation", func() bool { d := ts.dialogs.get(id); return d != nil && d.isConfirmed() })
	// A retransmission may already have been on its way; after that, quiet.
	deadline := time.Now().Add(2500 * time.Millisecond)
	late := 0
	for time.Now().Before(deadline) {
		if _, err := w.readTimeout(time.Until(deadline)); err == nil {
			late++
		}
	}
	if late > 1 {
		t.Fatalf("%d retransmissions after the ACK", late)
	}
}
