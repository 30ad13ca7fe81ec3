package sipside

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/config"
	"github.com/umpp/umpp/session/sdp"
)

// fakeTx is a server transaction that records responses.
type fakeTx struct {
	mu    sync.Mutex
	res   []*sip.Response
	done  chan struct{}
	acks  chan *sip.Request
	close sync.Once
}

func newFakeTx() *fakeTx {
	return &fakeTx{done: make(chan struct{}), acks: make(chan *sip.Request)}
}

func (f *fakeTx) Terminate()                         { f.close.Do(func() { close(f.done) }) }
func (f *fakeTx) OnTerminate(sip.FnTxTerminate) bool { return true }
func (f *fakeTx) Done() <-chan struct{}              { return f.done }
func (f *fakeTx) Err() error                         { return nil }
func (f *fakeTx) Acks() <-chan *sip.Request          { return f.acks }
func (f *fakeTx) OnCancel(sip.FnTxCancel) bool       { return true }
func (f *fakeTx) Respond(r *sip.Response) error {
	f.mu.Lock()
	f.res = append(f.res, r)
	f.mu.Unlock()
	return nil
}
func (f *fakeTx) finals() (int, *sip.Response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	var last *sip.Response
	for _, r := range f.res {
		if r.StatusCode >= 200 {
			n++
			last = r
		}
	}
	return n, last
}

// acceptAll is a SessionHandler that takes every offer.
type acceptAll struct{}

func (acceptAll) Offer(context.Context, InviteOffer) (InviteAnswer, error) {
	return InviteAnswer{JID: julietJID, Host: "impish.thecapulets.example.com", Port: 5222}, nil
}
func (acceptAll) Ended(context.Context, string, string, string) {}

// FuzzInviteRequest feeds arbitrary bytes through sipgo's parser, the
// request checks and the INVITE handler (UAS side, no sockets): every
// INVITE that reaches the handler gets exactly one final response, and
// none panics. A 2xx carries SDP that parses back.
func FuzzInviteRequest(f *testing.F) {
	users := newUsers(f)
	addUser(f, users, "juliet", capulets, "balcony")
	s, err := New(Options{
		Domains:    []string{capulets},
		Users:      users,
		Listen:     []config.Listen{{Transport: "udp", Host: "127.0.0.1"}},
		Sessions:   acceptAll{},
		PeerPolicy: func(d string) bool { return d == montagues },
		Resolver: func() Resolver {
			r := &staticResolver{}
			r.set(montagues, "udp", "127.0.0.1:5060") // the fuzzed requests' source
			return r
		}(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	s.closing = true // no background 2xx retransmission in a fuzz run
	f.Cleanup(func() { _ = s.Close() })
	draft, err := os.ReadFile(filepath.Join("testdata", "draft", "4.1-1-invite.sip"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(completeDraft(draft, "udp", "127.0.0.1:5060", "f1"))
	f.Add(completeDraft(invite("juliet@"+capulets, "romeo@"+montagues, "application/sdp",
		sdpBody(append(offerHead, "m=message 5222 xmpp/tcp groupchat", "a=jid:romeo@montague.example.net/orchard")...), "c1"), "tcp", "127.0.0.1:5060", "f2"))
	f.Add(completeDraft(invite("juliet@"+capulets, "romeo@"+montagues, "text/plain", "hi", "c2"), "udp", "127.0.0.1:5060", "f3"))
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := parser.ParseSIP(b)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok || req.Method != sip.INVITE {
			return
		}
		if rej := validate(req, nil, 65536); rej != nil {
			return
		}
		req.SetSource("127.0.0.1:5060")
		tx := newFakeTx()
		s.handleInviteRequest(context.Background(), req, tx, s.isLocal(uriHost(req.Recipient)), req.To().Params.Has("tag"))
		n, last := tx.finals()
		if n != 1 {
			t.Fatalf("%d final responses to\n%s", n, b)
		}
		if last.StatusCode == 200 {
			if _, err := sdp.Parse(last.Body()); err != nil {
				t.Fatalf("our answer does not parse: %v\n%s", err, last.Body())
			}
		}
		for _, d := range s.dialogs.all() {
			_ = s.endDialog(context.Background(), d, "fuzz", false)
		}
	})
}
