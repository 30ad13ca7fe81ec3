package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umpp/umpp/addressing"
)

func jid(t testing.TB, s string) addressing.Address {
	t.Helper()
	a, err := addressing.ParseJID(s)
	if err != nil {
		t.Fatalf("ParseJID(%q): %v", s, err)
	}
	return a
}

// fakeClock is a settable clock for MemTableOptions.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// assertEmpty checks that no index, and no peer-domain counter, holds
// anything.
func assertEmpty(t *testing.T, tab *MemTable) {
	t.Helper()
	sizes := map[string]int{
		"threads":  tab.threads.len(),
		"dialogs":  tab.dialogs.len(),
		"outgoing": tab.outgoing.len(),
		"incoming": tab.incoming.len(),
		"domains":  tab.domains.total(),
	}
	for name, n := range sizes {
		if n != 0 {
			t.Errorf("index %s holds %d entries after every session ended", name, n)
		}
	}
}

func msgs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func TestNewThread(t *testing.T) {
	seen := make(map[string]bool)
	for range 10000 {
		th := newThread()
		if len(th) != 22 { // 128 bits in unpadded base64
			t.Fatalf("thread %q: %d characters, want 22", th, len(th))
		}
		if strings.Trim(th, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("thread %q is not URL-safe", th)
		}
		if seen[th] {
			t.Fatalf("thread %q generated twice", th)
		}
		seen[th] = true
	}
}

func TestOutboundLifecycle(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 2, 14, 1, 0, 0, 0, time.UTC)}
	tab := NewMemTable(MemTableOptions{Now: clock.Now})
	romeo := jid(t, "romeo@montague.example.net/orchard")
	juliet := jid(t, "juliet@capulets.example.com")
	balcony := jid(t, "juliet@capulets.example.com/balcony")

	b, err := tab.Begin(ctx, romeo, juliet, []byte("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if !b.Created || !b.Queued || b.Session.State != StateSettingUp || b.Session.Direction != Outbound {
		t.Fatalf("first Begin = %+v, want created, queued, setting up, outbound", b)
	}
	th := b.Session.Thread
	if b.Session.Remote != juliet || b.Session.RemoteDomain != "capulets.example.com" {
		t.Errorf("remote %v/%s, want the bare JID and its domain", b.Session.Remote, b.Session.RemoteDomain)
	}
	// A second message, to the full JID this time, queues behind the setup.
	b2, err := tab.Begin(ctx, romeo, balcony, []byte("m2"))
	if err != nil {
		t.Fatal(err)
	}
	if b2.Created || !b2.Queued || b2.Session.Thread != th || b2.Session.Queued != 2 {
		t.Fatalf("second Begin = %+v, want the pending session with 2 queued", b2)
	}
	if s, err := tab.Outgoing(ctx, romeo, juliet); err != nil || s.Thread != th || s.Ready() {
		t.Fatalf("Outgoing during setup = %+v, %v", s, err)
	}
	if _, err := tab.ByDialog(ctx, "call|a|b"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("ByDialog before the answer: %v, want ErrNoSession", err)
	}

	clock.Advance(time.Second)
	q, err := tab.Established(ctx, th, balcony, "call|a|b", "call")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(q, msgs("m1", "m2"), slices.Equal) {
		t.Fatalf("Established returned %q, want m1, m2", q)
	}
	// While the caller sends them, m3 queues behind.
	b3, err := tab.Begin(ctx, romeo, juliet, []byte("m3"))
	if err != nil || !b3.Queued || b3.Session.Ready() {
		t.Fatalf("Begin while draining = %+v, %v; want queued", b3, err)
	}
	if q, err = tab.Drain(ctx, th); err != nil || !slices.EqualFunc(q, msgs("m3"), slices.Equal) {
		t.Fatalf("Drain = %q, %v; want m3", q, err)
	}
	if q, err = tab.Drain(ctx, th); err != nil || len(q) != 0 {
		t.Fatalf("last Drain = %q, %v; want nothing", q, err)
	}
	b4, err := tab.Begin(ctx, romeo, juliet, []byte("m4"))
	if err != nil || b4.Queued || b4.Created || !b4.Session.Ready() {
		t.Fatalf("Begin on the ready session = %+v, %v; want a direct send", b4, err)
	}

	for name, get := range map[string]func() (Session, error){
		"ByThread": func() (Session, error) { return tab.ByThread(ctx, th) },
		"ByDialog": func() (Session, error) { return tab.ByDialog(ctx, "call|a|b") },
		"Outgoing": func() (Session, error) { return tab.Outgoing(ctx, romeo, balcony) },
		"Incoming": func() (Session, error) { return tab.Incoming(ctx, balcony, romeo) },
	} {
		s, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Thread != th || s.Remote != balcony || s.Local != romeo || s.State != StateEstablished || s.CallID != "call" {
			t.Errorf("%s = %+v", name, s)
		}
	}
	if _, err := tab.Incoming(ctx, juliet, romeo); !errors.Is(err, ErrNoSession) {
		t.Errorf("Incoming from the bare JID: %v, want ErrNoSession", err)
	}

	clock.Advance(time.Minute)
	if err := tab.Touch(ctx, th); err != nil {
		t.Fatal(err)
	}
	s, _ := tab.ByThread(ctx, th)
	if want := clock.Now(); !s.LastActivity.Equal(want) {
		t.Errorf("LastActivity %v, want %v", s.LastActivity, want)
	}

	ended, q, err := tab.EndDialog(ctx, "call|a|b", EndBye)
	if err != nil || len(q) != 0 || ended.State != StateEnded || ended.EndReason != EndBye {
		t.Fatalf("EndDialog = %+v, %q, %v", ended, q, err)
	}
	if _, _, err := tab.End(ctx, th, EndBye); !errors.Is(err, ErrNoSession) {
		t.Errorf("second End: %v, want ErrNoSession", err)
	}
	if err := tab.Touch(ctx, th); !errors.Is(err, ErrNoSession) {
		t.Errorf("Touch after End: %v, want ErrNoSession", err)
	}
	assertEmpty(t, tab)

	// Later messages open a new session.
	b5, err := tab.Begin(ctx, romeo, juliet, []byte("m5"))
	if err != nil || !b5.Created || b5.Session.Thread == th {
		t.Fatalf("Begin after the end = %+v, %v; want a new session", b5, err)
	}
}

func TestInbound(t *testing.T) {
	ctx := context.Background()
	tab := NewMemTable(MemTableOptions{})
	romeo := jid(t, "romeo@montague.example.net/orchard")
	balcony := jid(t, "juliet@capulets.example.com/balcony")
	in := InboundSetup{Thread: "283461923759234", Local: balcony, Remote: romeo, DialogID: "c1|x|y", CallID: "c1"}
	s, err := tab.Accept(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if s.Direction != Inbound || s.State != StateSettingUp || s.Remote != romeo || s.RemoteDomain != "montague.example.net" {
		t.Fatalf("Accept = %+v", s)
	}
	// Juliet answers before the ACK: queued.
	b, err := tab.Begin(ctx, balcony, romeo.Bare(), []byte("art thou not Romeo"))
	if err != nil || b.Created || !b.Queued || b.Session.Thread != in.Thread {
		t.Fatalf("Begin on the inbound session = %+v, %v", b, err)
	}
	if got, err := tab.Incoming(ctx, romeo, balcony.Bare()); err != nil || got.Thread != in.Thread {
		t.Fatalf("Incoming = %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		in   InboundSetup
	}{
		{"same thread", InboundSetup{Thread: in.Thread, Local: balcony, Remote: romeo, DialogID: "c2|x|y"}},
		{"same dialog", InboundSetup{Thread: "other", Local: balcony, Remote: romeo, DialogID: in.DialogID}},
	} {
		if _, err := tab.Accept(ctx, tc.in); !errors.Is(err, ErrSessionConflict) {
			t.Errorf("%s: %v, want ErrSessionConflict", tc.name, err)
		}
	}
	if _, err := tab.Established(ctx, in.Thread, romeo, "c9|x|y", "c9"); !errors.Is(err, ErrSessionConflict) {
		t.Errorf("Established with another dialog: %v, want ErrSessionConflict", err)
	}
	q, err := tab.Established(ctx, in.Thread, romeo, in.DialogID, in.CallID)
	if err != nil || !slices.EqualFunc(q, msgs("art thou not Romeo"), slices.Equal) {
		t.Fatalf("Established = %q, %v", q, err)
	}
	if _, err := tab.Established(ctx, in.Thread, romeo, in.DialogID, in.CallID); !errors.Is(err, ErrSessionState) {
		t.Errorf("second Established: %v, want ErrSessionState", err)
	}
	if tab.Len() != 1 {
		t.Errorf("Len = %d, want 1", tab.Len())
	}
	if _, _, err := tab.EndDialog(ctx, in.DialogID, EndBye); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, tab)
}

func TestGlareKeepsFirstOutgoing(t *testing.T) {
	ctx := context.Background()
	tab := NewMemTable(MemTableOptions{})
	romeo := jid(t, "romeo@montague.example.net/orchard")
	balcony := jid(t, "juliet@capulets.example.com/balcony")
	b, err := tab.Begin(ctx, romeo, balcony.Bare(), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := InboundSetup{Thread: "peer-thread", Local: romeo, Remote: balcony, DialogID: "d2"}
	if _, err := tab.Accept(ctx, in); err != nil {
		t.Fatal(err)
	}
	if s, _ := tab.Outgoing(ctx, romeo, balcony); s.Thread != b.Session.Thread {
		t.Errorf("Outgoing after glare = %s, want our own %s", s.Thread, b.Session.Thread)
	}
	if s, _ := tab.Incoming(ctx, balcony, romeo); s.Thread != in.Thread {
		t.Errorf("Incoming after glare = %s, want the peer's %s", s.Thread, in.Thread)
	}
	if _, _, err := tab.End(ctx, b.Session.Thread, EndRejected); err != nil {
		t.Fatal(err)
	}
	if s, _ := tab.Incoming(ctx, balcony, romeo); s.Thread != in.Thread {
		t.Errorf("Incoming lost the peer's session when ours ended")
	}
	if _, _, err := tab.End(ctx, in.Thread, EndBye); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, tab)
}

func TestInvalid(t *testing.T) {
	ctx := context.Background()
	tab := NewMemTable(MemTableOptions{})
	romeo := jid(t, "romeo@montague.example.net/orchard")
	juliet := jid(t, "juliet@capulets.example.com/balcony")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		op   func() error
		want error
	}{
		{"begin bare local", func() error { _, err := tab.Begin(ctx, romeo.Bare(), juliet, nil); return err }, ErrInvalidSession},
		{"begin no remote", func() error { _, err := tab.Begin(ctx, romeo, addressing.Address{}, nil); return err }, ErrInvalidSession},
		{"begin cancelled", func() error { _, err := tab.Begin(cancelled, romeo, juliet, nil); return err }, context.Canceled},
		{"accept no thread", func() error {
			_, err := tab.Accept(ctx, InboundSetup{Local: romeo, Remote: juliet, DialogID: "d"})
			return err
		}, ErrInvalidSession},
		{"accept long thread", func() error {
			_, err := tab.Accept(ctx, InboundSetup{Thread: strings.Repeat("t", MaxThreadLen+1), Local: romeo, Remote: juliet, DialogID: "d"})
			return err
		}, ErrInvalidSession},
		{"accept bare remote", func() error {
			_, err := tab.Accept(ctx, InboundSetup{Thread: "t", Local: romeo, Remote: juliet.Bare(), DialogID: "d"})
			return err
		}, ErrInvalidSession},
		{"accept no dialog", func() error {
			_, err := tab.Accept(ctx, InboundSetup{Thread: "t", Local: romeo, Remote: juliet})
			return err
		}, ErrInvalidSession},
		{"established unknown", func() error { _, err := tab.Established(ctx, "nope", juliet, "d", "c"); return err }, ErrNoSession},
		{"drain unknown", func() error { _, err := tab.Drain(ctx, "nope"); return err }, ErrNoSession},
		{"end unknown", func() error { _, _, err := tab.End(ctx, "nope", EndBye); return err }, ErrNoSession},
		{"end dialog unknown", func() error { _, _, err := tab.EndDialog(ctx, "nope", EndBye); return err }, ErrNoSession},
		{"touch unknown", func() error { return tab.Touch(ctx, "nope") }, ErrNoSession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	// Established with the answer from another domain.
	b, err := tab.Begin(ctx, romeo, juliet, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Established(ctx, b.Session.Thread, jid(t, "juliet@elsewhere.example/x"), "d", "c"); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("answer from another domain: %v, want ErrInvalidSession", err)
	}
	if _, err := tab.Established(ctx, b.Session.Thread, juliet.Bare(), "d", "c"); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("answer with a bare JID: %v, want ErrInvalidSession", err)
	}
}

func TestEndReturnsQueue(t *testing.T) {
	ctx := context.Background()
	romeo := jid(t, "romeo@montague.example.net/orchard")
	juliet := jid(t, "juliet@capulets.example.com")
	for _, tc := range []struct {
		reason EndReason
		bounce string
	}{
		{EndRejected, CondRecipientUnavailable},
		{EndPeerFailure, CondRemoteServerNotFound},
		{EndShutdown, CondServiceUnavailable},
		{EndIdle, ""},
		{EndBye, ""},
	} {
		t.Run(string(tc.reason), func(t *testing.T) {
			tab := NewMemTable(MemTableOptions{})
			b, err := tab.Begin(ctx, romeo, juliet, []byte("a"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tab.Begin(ctx, romeo, juliet, []byte("b")); err != nil {
				t.Fatal(err)
			}
			s, q, err := tab.End(ctx, b.Session.Thread, tc.reason)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(q, msgs("a", "b"), slices.Equal) {
				t.Errorf("End returned %q, want a, b", q)
			}
			if s.EndReason != tc.reason || s.State != StateEnded || s.Queued != 0 {
				t.Errorf("ended session %+v", s)
			}
			if got := tc.reason.BounceCondition(); got != tc.bounce {
				t.Errorf("BounceCondition = %q, want %q", got, tc.bounce)
			}
			assertEmpty(t, tab)
		})
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	tab := NewMemTable(MemTableOptions{MaxSessionsPerPeer: 2, MaxQueue: 2})
	peer := func(i int) addressing.Address { return jid(t, fmt.Sprintf("u%d@capulets.example.com", i)) }
	romeo := jid(t, "romeo@montague.example.net/orchard")
	b0, err := tab.Begin(ctx, romeo, peer(0), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Begin(ctx, romeo, peer(0), []byte("2")); err != nil {
		t.Fatal(err)
	}
	b, err := tab.Begin(ctx, romeo, peer(0), []byte("3"))
	if !errors.Is(err, ErrQueueFull) || b.Queued || b.Session.Thread != b0.Session.Thread {
		t.Fatalf("third message: %+v, %v; want ErrQueueFull with the session", b, err)
	}
	if _, err := tab.Accept(ctx, InboundSetup{Thread: "t1", Local: romeo, Remote: jid(t, "u1@capulets.example.com/r"), DialogID: "d1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Begin(ctx, romeo, peer(2), nil); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("third session with the peer: %v, want ErrTooManySessions", err)
	}
	if _, err := tab.Accept(ctx, InboundSetup{Thread: "t3", Local: romeo, Remote: jid(t, "u3@capulets.example.com/r"), DialogID: "d3"}); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("third inbound session with the peer: %v, want ErrTooManySessions", err)
	}
	// Another peer is not affected.
	if _, err := tab.Begin(ctx, romeo, jid(t, "mercutio@verona.example"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tab.End(ctx, "t1", EndBye); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Begin(ctx, romeo, peer(2), nil); err != nil {
		t.Fatalf("after one ended: %v", err)
	}
	if n := tab.domains.count("capulets.example.com"); n != 2 {
		t.Errorf("count = %d, want 2", n)
	}
}

func TestIdleAndAll(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 2, 14, 1, 0, 0, 0, time.UTC)}
	tab := NewMemTable(MemTableOptions{Now: clock.Now})
	romeo := jid(t, "romeo@montague.example.net/orchard")
	var threads []string
	for i := range 3 {
		b, err := tab.Begin(ctx, romeo, jid(t, fmt.Sprintf("u%d@capulets.example.com", i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		threads = append(threads, b.Session.Thread)
		clock.Advance(time.Minute)
	}
	// Now: t0 3m old, t1 2m, t2 1m; t1 gets traffic.
	if err := tab.Touch(ctx, threads[1]); err != nil {
		t.Fatal(err)
	}
	idle, err := tab.Idle(ctx, clock.Now(), 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(idle) != 1 || idle[0].Thread != threads[0] {
		t.Fatalf("Idle = %+v, want only the first session", idle)
	}
	all, err := tab.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range all {
		got = append(got, s.Thread)
	}
	if !slices.Equal(got, threads) {
		t.Errorf("All = %v, want %v in start order", got, threads)
	}

	// Shutdown: Close refuses new sessions; the caller ends the rest.
	tab.Close()
	if _, err := tab.Begin(ctx, romeo, jid(t, "new@capulets.example.com"), nil); !errors.Is(err, ErrTableClosed) {
		t.Errorf("Begin after Close: %v, want ErrTableClosed", err)
	}
	if _, err := tab.Accept(ctx, InboundSetup{Thread: "x", Local: romeo, Remote: jid(t, "a@b.example/c"), DialogID: "d"}); !errors.Is(err, ErrTableClosed) {
		t.Errorf("Accept after Close: %v, want ErrTableClosed", err)
	}
	for _, s := range all {
		if _, _, err := tab.End(ctx, s.Thread, EndShutdown); err != nil {
			t.Fatal(err)
		}
	}
	if tab.Len() != 0 {
		t.Errorf("Len after shutdown = %d", tab.Len())
	}
	assertEmpty(t, tab)
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{StateSettingUp.String(), "setting-up"},
		{StateEstablished.String(), "established"},
		{StateEnded.String(), "ended"},
		{State(9).String(), "state(9)"},
		{Outbound.String(), "outbound"},
		{Inbound.String(), "inbound"},
		{Direction(0).String(), "direction(0)"},
		{EndReason("odd").BounceCondition(), CondUndefinedCondition},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
