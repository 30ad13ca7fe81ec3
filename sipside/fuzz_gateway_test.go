package sipside

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/config"
	"github.com/umpp/umpp/pidf"
)

// quietGateway and quietRemote accept everything and keep nothing.
type (
	quietGateway struct{}
	quietRemote  struct{}
)

func (quietGateway) DeliverMessage(context.Context, Message) (int, string, error) {
	return 202, "Accepted", nil
}
func (quietRemote) Watch(context.Context, string, string) (PolicyDecision, error) {
	return PolicyPending, nil
}
func (quietRemote) Unwatch(string, string) {}

// FuzzGatewaySeams feeds arbitrary bytes to the request paths added for
// the gateway (peer MESSAGE and SUBSCRIBE with peer authentication,
// SUBSCRIBE to remote presentities, MESSAGE to users without contacts)
// through the request checks and the dispatcher, with no sockets: every
// request gets exactly one final response and nothing panics. The body
// is also offered to SetPresence when it parses as PIDF.
func FuzzGatewaySeams(f *testing.F) {
	users := newUsers(f)
	addUser(f, users, "juliet", capulets, "balcony")
	res := &staticResolver{}
	res.set(montagues, "udp", "127.0.0.1:5060") // the fuzzed requests' source
	s, err := New(Options{
		Domains:        []string{capulets},
		Users:          users,
		Listen:         []config.Listen{{Transport: "udp", Host: "127.0.0.1"}},
		PeerPolicy:     func(d string) bool { return d == montagues },
		Resolver:       res,
		Gateway:        quietGateway{},
		RemotePresence: quietRemote{},
		PresencePolicy: allowAll{},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	s.closing = true // no background NOTIFYs in a fuzz run
	f.Cleanup(func() { _ = s.Close() })
	for _, kind := range []string{"SUBSCRIBE", "MESSAGE", "INVITE"} {
		f.Add(completeDraft(peerRequest(f, kind, ""), "udp", "127.0.0.1:5060", "s"+kind))
	}
	f.Add(completeDraft([]byte("SUBSCRIBE sip:romeo@montague.example.net SIP/2.0\r\nTo: <sip:romeo@montague.example.net>\r\n"+
		"From: <sip:juliet@"+capulets+">;tag=j1\r\nCall-ID: c1\r\nCSeq: 1 SUBSCRIBE\r\nEvent: presence\r\n"+
		"Contact: <sip:juliet@127.0.0.1:5070>\r\n\r\n"), "udp", "127.0.0.1:5060", "r1"))
	f.Add(completeDraft([]byte("MESSAGE sip:juliet@"+capulets+" SIP/2.0\r\nTo: <sip:juliet@"+capulets+">\r\n"+
		"From: <sip:romeo@montague.example.net>;tag=r2\r\nCall-ID: c2\r\nCSeq: 1 MESSAGE\r\n"+
		"Content-Type: message/cpim\r\n\r\nFrom: <im:romeo@montague.example.net>\r\nTo: <im:juliet@"+capulets+">\r\n\r\n"+
		"Content-Type: text/plain\r\n\r\nhi"), "udp", "127.0.0.1:5060", "m2"))
	f.Add(completeDraft([]byte("PUBLISH sip:juliet@"+capulets+" SIP/2.0\r\nTo: <sip:juliet@"+capulets+">\r\n"+
		"From: <sip:juliet@"+capulets+">;tag=p1\r\nCall-ID: c3\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\n"+
		"Content-Type: application/pidf+xml\r\n\r\n"+openPIDF), "udp", "127.0.0.1:5060", "p1"))
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := parser.ParseSIP(b)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok || req.IsAck() {
			return
		}
		if doc, err := pidf.Parse(req.Body(), pidf.Limits{}); err == nil {
			s.SetPresence("juliet@"+capulets, doc)
			_, _ = s.presence.document("juliet@"+capulets, time.Now()).Marshal()
		}
		if req.Method == sip.INVITE {
			return // FuzzInviteRequest covers INVITE, which waits for ACKs
		}
		if rej := validate(req, nil, 65536); rej != nil {
			return
		}
		req.SetSource("127.0.0.1:5060")
		tx := newFakeTx()
		s.handle(req, tx)
		if n, _ := tx.finals(); n != 1 {
			t.Fatalf("%d final responses to\n%s", n, b)
		}
	})
}
