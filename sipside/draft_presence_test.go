package sipside

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/pidf"
)

// insertHeader adds a header line before the end of a raw message's
// header section.
func insertHeader(msg []byte, line string) []byte {
	head, body, _ := strings.Cut(string(msg), "\r\n\r\n")
	return []byte(head + "\r\n" + line + "\r\n\r\n" + body)
}

// TestDraftSubscribe replays the draft's §4.2 flow: its SUBSCRIBE byte for
// byte (pres: URIs; only Via, Max-Forwards and Content-Length added) from
// the montague server to the capulets server, where Juliet has published
// open presence. The answer is 200, and a NOTIFY with Subscription-State
// active and an open PIDF document arrives at the SUBSCRIBE's Contact
// (sip:romeo@orchard.montague.example.net, which the test's resolver maps
// to the test's socket): application/pidf+xml by default, the draft's
// application/cpim-pidf+xml when the Accept header asks for it.
func TestDraftSubscribe(t *testing.T) {
	for _, tc := range []struct {
		name, accept, ctype, ns string
	}{
		{"as printed", "", pidf.ContentTypePIDF, pidf.NamespacePIDF},
		{"accept cpim-pidf", "application/cpim-pidf+xml", pidf.ContentTypeCPIM, pidf.NamespaceCPIM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &staticResolver{}
			ts := startCapulets(t, nil, res)
			publishOpen(t, ts)

			w := dialWire(t, "udp", ts.udp)
			res.set("orchard.montague.example.net", "udp", w.local())
			msg := readDraft(t, "4.2-1-subscribe.sip")
			if tc.accept != "" {
				msg = insertHeader(msg, "Accept: "+tc.accept)
			}
			w.send(completeDraft(msg, "udp", w.local(), "sub1"))

			var ok *sip.Response
			var notify *sip.Request
			for ok == nil || notify == nil {
				m := w.read()
				if statusOf(m) >= 200 {
					ok = parseResponse(t, m)
					continue
				}
				if statusOf(m) > 0 {
					continue
				}
				notify = parseRequest(t, m)
				w.answer200(notify)
			}
			if ok.StatusCode != 200 {
				t.Fatalf("SUBSCRIBE answered %d %s", ok.StatusCode, ok.Reason)
			}
			toTag, _ := ok.To().Params.Get("tag")
			if toTag == "" || ok.Contact() == nil || ok.CallID().Value() != "98394813@orchard.montague.example.net" {
				t.Fatalf("200 lacks the dialog fields of the draft's message 2:\n%s", ok)
			}
			if e := ok.GetHeader("Expires"); e == nil || e.Value() != "3600" {
				t.Errorf("200 Expires %v, want 3600", e)
			}

			// The draft's message 3.
			if notify.Method != sip.NOTIFY || notify.Recipient.String() != "sip:romeo@orchard.montague.example.net" {
				t.Errorf("NOTIFY request line %s %s", notify.Method, notify.Recipient.String())
			}
			if got := notify.To().Address.String(); got != "pres:romeo@montague.example.net" {
				t.Errorf("NOTIFY To %q", got)
			}
			if tag, _ := notify.To().Params.Get("tag"); tag != "23923" {
				t.Errorf("NOTIFY To tag %q", tag)
			}
			if got := notify.From().Address.String(); got != "pres:juliet@thecappulets.example.com" {
				t.Errorf("NOTIFY From %q", got)
			}
			if tag, _ := notify.From().Params.Get("tag"); tag != toTag {
				t.Errorf("NOTIFY From tag %q, want the 200's %q", tag, toTag)
			}
			if notify.CallID().Value() != "98394813@orchard.montague.example.net" {
				t.Errorf("NOTIFY Call-ID %q", notify.CallID().Value())
			}
			if s := notify.GetHeader("Subscription-State"); s == nil || !strings.HasPrefix(s.Value(), "active") {
				t.Errorf("Subscription-State %v, want active", s)
			}
			if ct := notify.ContentType(); ct == nil || mediaType(ct.Value()) != tc.ctype {
				t.Errorf("NOTIFY Content-Type %v, want %s", ct, tc.ctype)
			}
			doc, err := pidf.Parse(notify.Body(), pidf.Limits{})
			if err != nil {
				t.Fatalf("NOTIFY body: %v\n%s", err, notify.Body())
			}
			if !doc.Available() || doc.Namespace != tc.ns {
				t.Errorf("NOTIFY document: open %v, namespace %q, want open in %q\n%s", doc.Available(), doc.Namespace, tc.ns, notify.Body())
			}
		})
	}
}

// TestPeerSubscribeRefused: SUBSCRIBE from a domain that is not a peer
// is refused as before (403), and a peer may not subscribe to someone who
// is not a local user (404).
func TestPeerSubscribeRefused(t *testing.T) {
	ts := startCapulets(t, nil, nil)
	w := dialWire(t, "udp", ts.udp)
	msg := strings.ReplaceAll(string(readDraft(t, "4.2-1-subscribe.sip")), "montague.example.net", "verona.example.org")
	w.send(completeDraft([]byte(msg), "udp", w.local(), "ref1"))
	if res := w.final(); res.StatusCode != 403 {
		t.Fatalf("SUBSCRIBE from a non-peer answered %d", res.StatusCode)
	}
	msg = strings.ReplaceAll(string(readDraft(t, "4.2-1-subscribe.sip")), "juliet@", "tybalt@")
	w.send(completeDraft([]byte(msg), "udp", w.local(), "ref2"))
	if res := w.final(); res.StatusCode != 404 {
		t.Fatalf("SUBSCRIBE to an unknown user answered %d", res.StatusCode)
	}
}

// publishOpen publishes open presence for juliet with digest
// authentication.
func publishOpen(t *testing.T, ts *testServer) {
	t.Helper()
	p := newPeer(t, "juliet", 200)
	req := ts.request(sip.PUBLISH, "sip:juliet@"+capulets, "udp")
	aor := sip.Uri{Scheme: "sip", User: "juliet", Host: capulets}
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", newTag())
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/pidf+xml"))
	req.SetBody([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:juliet@thecappulets.example.com">
  <tuple id="balcony"><status><basic>open</basic></status><timestamp>1597-02-14T01:00:00Z</timestamp></tuple>
</presence>`))
	if res := authed(t, p, req, "juliet", "balcony"); res.StatusCode != 200 {
		t.Fatalf("PUBLISH answered %d", res.StatusCode)
	}
}
