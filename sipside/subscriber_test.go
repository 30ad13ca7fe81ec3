package sipside

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/config"
	"github.com/umpp/umpp/pidf"
)

func TestParseSubState(t *testing.T) {
	tests := []struct {
		in      string
		want    SubState
		wantErr bool
	}{
		{in: "active;expires=600", want: SubState{State: "active", Expires: 600 * time.Second}},
		{in: "Pending", want: SubState{State: "pending"}},
		{in: "terminated;reason=deactivated", want: SubState{State: "terminated", Reason: "deactivated"}},
		{in: "terminated ; reason=Probation ; retry-after=30", want: SubState{State: "terminated", Reason: "probation", RetryAfter: 30 * time.Second, HasRetry: true}},
		{in: "terminated;reason=rejected;foo=bar;flag", want: SubState{State: "terminated", Reason: "rejected"}},
		{in: "active;expires=abc", wantErr: true},
		{in: "active;expires=-1", wantErr: true},
		{in: "", wantErr: true},
		{in: "act ive", wantErr: true},
		{in: "active;=3", wantErr: true},
		{in: "active;expires=99999999999", wantErr: true},
		{in: strings.Repeat("a", 2000), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 40)], func(t *testing.T) {
			got, err := ParseSubState(tt.in)
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrBadSubState) {
					t.Fatalf("ParseSubState(%q) = %+v, %v; want ErrBadSubState", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSubState(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			again, err := ParseSubState(got.String())
			if err != nil || again != got {
				t.Fatalf("round trip %q -> %q -> %+v, %v", tt.in, got.String(), again, err)
			}
		})
	}
}

func TestRefreshDelay(t *testing.T) {
	tests := []struct{ granted, lo, hi time.Duration }{
		{time.Hour, 2592 * time.Second, 2880 * time.Second},
		{100 * time.Second, 63 * time.Second, 70 * time.Second},
		{5 * time.Second, 3600 * time.Millisecond, 4 * time.Second},
		{0, 900 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		for range 50 {
			if d := refreshDelay(tt.granted); d < tt.lo || d > tt.hi {
				t.Fatalf("refreshDelay(%v) = %v, want in [%v, %v]", tt.granted, d, tt.lo, tt.hi)
			}
		}
	}
}

// subResolver is a static Resolver for the subscriber tests.
type subResolver struct {
	mu sync.Mutex
	m  map[string]addressing.Target
}

func (r *subResolver) set(domain, hostPort string) { r.setTransport(domain, "udp", hostPort) }

func (r *subResolver) setTransport(domain, transport, hostPort string) {
	h, p, _ := net.SplitHostPort(hostPort)
	port, _ := strconv.Atoi(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]addressing.Target)
	}
	r.m[domain] = addressing.Target{Protocol: addressing.ProtocolSIP, Transport: transport, Host: h, Port: port, Source: addressing.SourceStaticPeer}
}

func (r *subResolver) ResolveSIP(_ context.Context, domain string) ([]addressing.Target, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.m[domain]; ok {
		return []addressing.Target{t}, nil
	}
	return nil, fmt.Errorf("%s: not in the test resolver", domain)
}

// startSubServer runs a Server for domain on UDP 127.0.0.2 (port 0)
// until the returned stop is called or the test ends.
func startSubServer(t *testing.T, domain string, res Resolver, mod func(*Options)) (*Server, func()) {
	t.Helper()
	opts := Options{
		Domains:        []string{domain},
		Listen:         []config.Listen{{Transport: "udp", Host: "127.0.0.2"}},
		Logger:         testLogger(t),
		Resolver:       res,
		ForwardTimeout: 2 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	if opts.Users == nil {
		opts.Users = newUsers(t)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Listen(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// presUAS is the presentity's side: a plain sipgo UAS on 127.0.0.3 that
// answers SUBSCRIBE like a presence server and sends NOTIFYs. It loses
// its dialogs on restart.
type presUAS struct {
	t    *testing.T
	addr string

	mu      sync.Mutex
	ua      *sipgo.UserAgent
	client  *sipgo.Client
	pc      net.PacketConn
	dialogs map[string]*uasDialog // by Call-ID
	subs    []*sip.Request        // every SUBSCRIBE received
	grant   int                   // Expires granted
	reject  int                   // answer every SUBSCRIBE with this status when set
	open    bool
	served  chan struct{}
}

type uasDialog struct {
	callID, localTag, remoteTag string
	from, to                    sip.Uri // ours (the presentity), theirs
	contact                     sip.Uri
	cseq                        uint32
}

func newPresUAS(t *testing.T, grant int) *presUAS {
	u := &presUAS{t: t, grant: grant, open: true, addr: "127.0.0.3:0"}
	u.start()
	t.Cleanup(u.stop)
	return u
}

func (u *presUAS) start() {
	t := u.t
	pc, err := net.ListenPacket("udp", u.addr)
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().String()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("capulets.example.com"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog.New(slog.DiscardHandler))))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.3"), sipgo.WithClientConnectionAddr("127.0.0.3:0"), sipgo.WithClientLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv.OnSubscribe(u.onSubscribe)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.ServeUDP(pc)
	}()
	u.mu.Lock()
	u.ua, u.client, u.pc, u.served = ua, client, pc, served
	u.dialogs = make(map[string]*uasDialog)
	u.mu.Unlock()
}

func (u *presUAS) stop() {
	u.mu.Lock()
	ua, pc, served := u.ua, u.pc, u.served
	u.ua = nil
	u.mu.Unlock()
	if ua == nil {
		return
	}
	_ = pc.Close()
	_ = ua.Close()
	<-served
}

// restart loses every dialog and listens again on the same address.
func (u *presUAS) restart() {
	u.stop()
	u.start()
}

func (u *presUAS) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	u.mu.Lock()
	u.subs = append(u.subs, req)
	reject, grant := u.reject, u.grant
	u.mu.Unlock()
	if reject != 0 {
		_ = tx.Respond(sip.NewResponseFromRequest(req, reject, "Rejected", nil))
		return
	}
	exp := grant
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(h.Value()); err == nil && n < exp {
			exp = n
		}
	}
	cid := callID(req)
	fromTag, _ := req.From().Params.Get("tag")
	u.mu.Lock()
	d := u.dialogs[cid]
	if toTag, ok := req.To().Params.Get("tag"); ok && (d == nil || d.localTag != toTag) {
		u.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if d == nil {
		d = &uasDialog{callID: cid, localTag: sip.GenerateTagN(10), remoteTag: fromTag,
			from: req.To().Address, to: req.From().Address, cseq: 100}
		u.dialogs[cid] = d
	}
	d.contact = req.Contact().Address
	if exp == 0 {
		delete(u.dialogs, cid)
	}
	u.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.To().Params.Add("tag", d.localTag)
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(exp)))
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.3", Port: u.port()}})
	_ = tx.Respond(res)
	state := "active;expires=" + strconv.Itoa(exp)
	if exp == 0 {
		state = "terminated;reason=timeout"
	}
	go u.notify(d, state)
}

func (u *presUAS) port() int {
	_, p, _ := net.SplitHostPort(u.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// notify sends a NOTIFY in d with the current PIDF.
func (u *presUAS) notify(d *uasDialog, state string) {
	u.mu.Lock()
	d.cseq++
	client, open, dc := u.client, u.open, *d
	u.mu.Unlock()
	d = &dc
	if client == nil {
		return
	}
	req := sip.NewRequest(sip.NOTIFY, d.contact)
	from := &sip.FromHeader{Address: d.from, Params: sip.NewParams()}
	from.Params.Add("tag", d.localTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: d.to, Params: sip.NewParams()}
	to.Params.Add("tag", d.remoteTag)
	req.AppendHeader(to)
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.cseq, MethodName: sip.NOTIFY})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.3", Port: u.port()}})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	basic := "closed"
	if open {
		basic = "open"
	}
	req.AppendHeader(sip.NewHeader("Content-Type", pidf.ContentTypePIDF))
	req.SetBody([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:juliet@capulets.example.com">
<tuple id="t1"><status><basic>` + basic + `</basic></status></tuple></presence>`))
	req.SetTransport("UDP")
	req.SetDestination(net.JoinHostPort(d.contact.Host, strconv.Itoa(d.contact.Port)))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, _ = client.Do(ctx, req)
}

// notifyAll sends a NOTIFY in every dialog.
func (u *presUAS) notifyAll(state string) {
	u.mu.Lock()
	ds := make([]*uasDialog, 0, len(u.dialogs))
	for _, d := range u.dialogs {
		ds = append(ds, d)
	}
	if strings.HasPrefix(state, "terminated") {
		clear(u.dialogs)
	}
	u.mu.Unlock()
	for _, d := range ds {
		u.notify(d, state)
	}
}

func (u *presUAS) setOpen(open bool) {
	u.mu.Lock()
	u.open = open
	u.mu.Unlock()
	u.notifyAll("active")
}

func (u *presUAS) received() []*sip.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*sip.Request(nil), u.subs...)
}

// notes collects what OnNotify saw.
type notes struct {
	mu  sync.Mutex
	all []Notification
	ch  chan Notification
}

func newNotes() *notes { return &notes{ch: make(chan Notification, 64)} }

func (n *notes) add(x Notification) {
	n.mu.Lock()
	n.all = append(n.all, x)
	n.mu.Unlock()
	n.ch <- x
}

// next waits for a Notification that satisfies ok, skipping others.
func (n *notes) next(t *testing.T, what string, d time.Duration, ok func(Notification) bool) Notification {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case x := <-n.ch:
			if ok(x) {
				return x
			}
		case <-deadline:
			t.Fatalf("no notification: %s", what)
			return Notification{}
		}
	}
}

func basicIs(b string) func(Notification) bool {
	return func(x Notification) bool {
		return x.State.State == StateActive && strings.Contains(string(x.Body), "<basic>"+b+"</basic>")
	}
}

func subAddr(t *testing.T, jid string) addressing.Address {
	t.Helper()
	a, err := addressing.ParseJID(jid)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func subscribeOf(req *sip.Request) (cid string, cseq uint32, expires string) {
	if h := req.GetHeader("Expires"); h != nil {
		expires = h.Value()
	}
	return callID(req), req.CSeq().SeqNo, expires
}

// TestSubscriberLifecycle: subscribe, NOTIFY open then closed, refresh in
// the dialog, the peer restarts (481, new dialog), Unsubscribe.
func TestSubscriberLifecycle(t *testing.T) {
	uas := newPresUAS(t, 4)
	res := &subResolver{}
	res.set("capulets.example.com", uas.addr)
	s, _ := startSubServer(t, "montague.example.net", res, nil)
	got := newNotes()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := s.Subscribe(ctx, SubscribeRequest{
		Watcher: subAddr(t, "romeo@montague.example.net"), Presentity: subAddr(t, "juliet@capulets.example.com"),
		Expires: 5 * time.Second, RetryMin: 200 * time.Millisecond, RetryMax: time.Second, OnNotify: got.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	first := uas.received()[0]
	if first.Recipient.String() != "pres:juliet@capulets.example.com" ||
		first.To().Address.String() != "pres:juliet@capulets.example.com" ||
		first.From().Address.String() != "pres:romeo@montague.example.net" {
		t.Errorf("initial SUBSCRIBE addressed %s To %s From %s", first.Recipient.String(), first.To().Address.String(), first.From().Address.String())
	}
	if ev := first.GetHeader("Event"); ev == nil || ev.Value() != "presence" {
		t.Errorf("Event = %v", ev)
	}
	if acc := first.GetHeader("Accept"); acc == nil || !strings.Contains(acc.Value(), pidf.ContentTypePIDF) || !strings.Contains(acc.Value(), pidf.ContentTypeCPIM) {
		t.Errorf("Accept = %v", acc)
	}
	n := got.next(t, "active open", 3*time.Second, basicIs("open"))
	if n.ContentType != pidf.ContentTypePIDF || n.CallID != callID(first) || n.Final {
		t.Errorf("first notification %+v", n)
	}
	if doc, err := pidf.Parse(n.Body, pidf.Limits{}); err != nil || len(doc.Tuples) != 1 {
		t.Errorf("PIDF: %v", err)
	}

	uas.setOpen(false)
	got.next(t, "active closed", 3*time.Second, basicIs("closed"))

	// Refresh before the 4 s granted run out: same Call-ID, higher CSeq.
	subWait(t, "refresh", func() bool { return len(uas.received()) >= 2 })
	cid1, seq1, _ := subscribeOf(first)
	cid2, seq2, exp2 := subscribeOf(uas.received()[1])
	if cid2 != cid1 || seq2 <= seq1 || exp2 != "5" {
		t.Errorf("refresh Call-ID %s CSeq %d Expires %s; initial %s %d", cid2, seq2, exp2, cid1, seq1)
	}
	if tag, ok := uas.received()[1].To().Params.Get("tag"); !ok || tag == "" {
		t.Error("refresh without To tag")
	}

	// The presentity's server restarts and forgets the dialog: the next
	// refresh gets 481, a new SUBSCRIBE (new Call-ID) follows.
	uas.restart()
	res.set("capulets.example.com", uas.addr)
	n = got.next(t, "NOTIFY after re-subscription", 8*time.Second, func(x Notification) bool {
		return x.State.State == StateActive && x.CallID != cid1
	})
	if sub.CallID() != n.CallID {
		t.Errorf("CallID() = %s, want %s", sub.CallID(), n.CallID)
	}
	var sawNew bool
	for _, r := range uas.received() {
		if c, _, _ := subscribeOf(r); c == n.CallID {
			_, hasTag := r.To().Params.Get("tag")
			sawNew = sawNew || !hasTag
		}
	}
	if !sawNew {
		t.Error("no initial SUBSCRIBE for the new dialog")
	}

	before := len(uas.received())
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	last := uas.received()[len(uas.received())-1]
	if c, _, exp := subscribeOf(last); len(uas.received()) <= before || c != n.CallID || exp != "0" {
		t.Errorf("unsubscribe: Call-ID %s Expires %s", c, exp)
	}
	fin := got.next(t, "final", time.Second, func(x Notification) bool { return x.Final })
	if fin.State.State != StateTerminated || fin.CallID != n.CallID {
		t.Errorf("final notification %+v", fin)
	}
	if s.Subscriptions() != 0 {
		t.Errorf("%d subscriptions left", s.Subscriptions())
	}
}

// TestSubscriberTermination: what a NOTIFY "terminated" with each reason
// leads to (RFC 6665 §4.1.3).
func TestSubscriberTermination(t *testing.T) {
	tests := []struct {
		state       string
		resubscribe bool
	}{
		{"terminated;reason=deactivated", true},
		{"terminated;reason=timeout", true},
		{"terminated;reason=probation;retry-after=1", true},
		{"terminated", true},
		{"terminated;reason=rejected", false},
		{"terminated;reason=noresource", false},
		{"terminated;reason=invariant", false},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			uas := newPresUAS(t, 3600)
			res := &subResolver{}
			res.set("capulets.example.com", uas.addr)
			s, _ := startSubServer(t, "montague.example.net", res, nil)
			got := newNotes()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sub, err := s.Subscribe(ctx, SubscribeRequest{
				Watcher: subAddr(t, "romeo@montague.example.net"), Presentity: subAddr(t, "juliet@capulets.example.com"),
				RetryMin: 300 * time.Millisecond, OnNotify: got.add,
			})
			if err != nil {
				t.Fatal(err)
			}
			first := got.next(t, "active", 3*time.Second, basicIs("open"))
			uas.notifyAll(tt.state)
			term := got.next(t, "terminated", 3*time.Second, func(x Notification) bool { return x.State.State == StateTerminated })
			if term.Final == tt.resubscribe {
				t.Errorf("Final = %v", term.Final)
			}
			if tt.resubscribe {
				again := got.next(t, "active again", 5*time.Second, basicIs("open"))
				if again.CallID == first.CallID {
					t.Error("re-subscribed in the old dialog")
				}
				if err := sub.Unsubscribe(ctx); err != nil {
					t.Fatal(err)
				}
				return
			}
			time.Sleep(500 * time.Millisecond)
			if n := len(uas.received()); n != 1 {
				t.Errorf("%d SUBSCRIBEs after a permanent end, want 1", n)
			}
			subWait(t, "subscription removed", func() bool { return s.Subscriptions() == 0 })
			if err := sub.Unsubscribe(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSubscriberRejected: a permanent status to the initial SUBSCRIBE is
// Subscribe's error; a transient one is retried with backoff.
func TestSubscriberRejected(t *testing.T) {
	tests := []struct {
		status    int
		permanent bool
	}{
		{403, true}, {489, true}, {603, true}, {480, false}, {503, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			uas := newPresUAS(t, 3600)
			uas.mu.Lock()
			uas.reject = tt.status
			uas.mu.Unlock()
			res := &subResolver{}
			res.set("capulets.example.com", uas.addr)
			s, _ := startSubServer(t, "montague.example.net", res, nil)
			got := newNotes()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sub, err := s.Subscribe(ctx, SubscribeRequest{
				Watcher: subAddr(t, "romeo@montague.example.net"), Presentity: subAddr(t, "juliet@capulets.example.com"),
				RetryMin: 200 * time.Millisecond, RetryMax: 400 * time.Millisecond, OnNotify: got.add,
			})
			if tt.permanent {
				var st *StatusError
				if !errors.As(err, &st) || st.Code != tt.status {
					t.Fatalf("Subscribe error %v, want status %d", err, tt.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			subWait(t, "retries", func() bool { return len(uas.received()) >= 3 })
			uas.mu.Lock()
			uas.reject = 0
			uas.mu.Unlock()
			got.next(t, "active after retries", 5*time.Second, basicIs("open"))
			if err := sub.Unsubscribe(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSubscriberShutdown: ending Serve unsubscribes (Expires: 0) and
// delivers the Final notification.
func TestSubscriberShutdown(t *testing.T) {
	users := newUsers(t)
	before := runtime.NumGoroutine()
	uas := newPresUAS(t, 3600)
	res := &subResolver{}
	res.set("capulets.example.com", uas.addr)
	s, stop := startSubServer(t, "montague.example.net", res, func(o *Options) { o.Users = users })
	got := newNotes()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, who := range []string{"juliet", "nurse"} {
		if _, err := s.Subscribe(ctx, SubscribeRequest{
			Watcher: subAddr(t, "romeo@montague.example.net"), Presentity: subAddr(t, who+"@capulets.example.com"),
			OnNotify: got.add,
		}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	stop()
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	zero := 0
	for _, r := range uas.received() {
		if _, _, exp := subscribeOf(r); exp == "0" {
			zero++
		}
	}
	if zero != 2 {
		t.Errorf("%d SUBSCRIBEs with Expires: 0 at shutdown, want 2", zero)
	}
	// No goroutine of the server or its subscriptions outlives Serve
	// (goleak is not a dependency: counted by hand, with the peer gone).
	uas.stop()
	var after int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if after = runtime.NumGoroutine(); after <= before {
			break
		}
	}
	if after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after shutdown, %d before the server started\n%s", after, before, buf[:runtime.Stack(buf, true)])
	}
	got.mu.Lock()
	finals := 0
	for _, n := range got.all {
		if n.Final {
			finals++
		}
	}
	got.mu.Unlock()
	if finals != 2 {
		t.Errorf("%d final notifications, want 2", finals)
	}
	if _, err := s.Subscribe(ctx, SubscribeRequest{Watcher: subAddr(t, "romeo@montague.example.net"), Presentity: subAddr(t, "juliet@capulets.example.com")}); err == nil {
		t.Error("Subscribe after shutdown succeeded")
	}
}

// TestSubscriberNotifyChecks: NOTIFYs outside our dialogs get 481,
// malformed ones 400 or 489, out of order ones 500 (RFC 6665 §4.1.3,
// RFC 3261 §12.2.2).
func TestSubscriberNotifyChecks(t *testing.T) {
	uas := newPresUAS(t, 3600)
	res := &subResolver{}
	res.set("capulets.example.com", uas.addr)
	s, _ := startSubServer(t, "montague.example.net", res, nil)
	got := newNotes()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := s.Subscribe(ctx, SubscribeRequest{
		Watcher: subAddr(t, "romeo@montague.example.net"), Presentity: subAddr(t, "juliet@capulets.example.com"),
		OnNotify: got.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	got.next(t, "active", 3*time.Second, basicIs("open"))
	first := uas.received()[0]
	ourTag, _ := first.From().Params.Get("tag")
	uas.mu.Lock()
	theirTag := uas.dialogs[callID(first)].localTag
	uas.mu.Unlock()
	addr := s.Addrs()[0].Addr.String()

	tests := []struct {
		name                         string
		callID, fromTag, toTag, hdrs string
		cseq                         int
		want                         int
	}{
		{"unknown dialog", "x" + newTag(), theirTag, ourTag, "Event: presence\r\nSubscription-State: active\r\n", 1000, 481},
		{"other remote tag", callID(first), "fork", ourTag, "Event: presence\r\nSubscription-State: active\r\n", 1000, 481},
		{"other event", callID(first), theirTag, ourTag, "Event: dialog\r\nSubscription-State: active\r\n", 1000, 489},
		{"no Subscription-State", callID(first), theirTag, ourTag, "Event: presence\r\n", 1000, 400},
		{"bad Subscription-State", callID(first), theirTag, ourTag, "Event: presence\r\nSubscription-State: active;expires=soon\r\n", 1000, 400},
		{"old CSeq", callID(first), theirTag, ourTag, "Event: presence\r\nSubscription-State: active\r\n", 1, 500},
		{"in order", callID(first), theirTag, ourTag, "Event: presence\r\nSubscription-State: active;expires=3000\r\n", 1000, 200},
		{"no Event (as the draft prints it)", callID(first), theirTag, ourTag, "Subscription-State: active\r\n", 1001, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			local := c.LocalAddr().String()
			msg := "NOTIFY sip:romeo@" + addr + " SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-" + newTag() + "\r\n" +
				"Max-Forwards: 70\r\n" +
				"From: <pres:juliet@capulets.example.com>;tag=" + tt.fromTag + "\r\n" +
				"To: <pres:romeo@montague.example.net>;tag=" + tt.toTag + "\r\n" +
				"Call-ID: " + tt.callID + "\r\n" +
				"CSeq: " + strconv.Itoa(tt.cseq) + " NOTIFY\r\n" + tt.hdrs +
				"Content-Length: 0\r\n\r\n"
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 4096)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := statusOf(buf[:n]); got != tt.want {
				t.Errorf("status %d, want %d\n%s", got, tt.want, buf[:n])
			}
		})
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
}

// subWait polls cond for up to ten seconds.
func subWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestSubscriberSIPp: SIPp plays the presentity's server of the draft's
// §4.2 (testdata/sipp/notify_uas.xml): 200 to our SUBSCRIBE, a NOTIFY
// with the draft's CPIM-PIDF body (which SIPp checks we answer 200), then
// our unsubscription and its NOTIFY terminated.
func TestSubscriberSIPp(t *testing.T) {
	if _, err := os.Stat(sippBinary); err != nil {
		if os.Getenv("UMPP_REQUIRE_PEERS") != "" {
			t.Fatalf("SIPp required but not installed (%s: %v)", sippBinary, err)
		}
		t.Skipf("SIPp not installed (%s: %v); install Debian package sip-tester", sippBinary, err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, sippBinary, "-sf", filepath.Join("testdata", "sipp", "notify_uas.xml"),
		"-i", "127.0.0.3", "-p", strconv.Itoa(port), "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "err.log"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sippDone := make(chan error, 1)
	go func() { sippDone <- cmd.Wait() }()
	defer func() {
		cancel()
		<-sippDone
	}()

	res := &subResolver{}
	res.set("capulets.example.com", net.JoinHostPort("127.0.0.3", strconv.Itoa(port)))
	s, _ := startSubServer(t, "montague.example.net", res, nil)
	got := newNotes()
	var sub *Subscription
	// SIPp may need a moment to bind: Subscribe retries transient
	// failures itself, but the first attempt's error is returned.
	for i := 0; ; i++ {
		sub, err = s.Subscribe(ctx, SubscribeRequest{
			Watcher: subAddr(t, "romeo@montague.example.net"), Presentity: subAddr(t, "juliet@capulets.example.com"),
			RetryMin: 200 * time.Millisecond, OnNotify: got.add,
		})
		if err == nil || i == 20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	n := got.next(t, "the draft's NOTIFY", 10*time.Second, func(x Notification) bool { return x.State.State == StateActive })
	if n.ContentType != pidf.ContentTypeCPIM {
		t.Errorf("Content-Type %q", n.ContentType)
	}
	doc, err := pidf.Parse(n.Body, pidf.Limits{})
	if err != nil {
		t.Fatalf("body: %v\n%s", err, n.Body)
	}
	if !doc.Available() || doc.Namespace != pidf.NamespaceCPIM {
		t.Errorf("document open %v namespace %q", doc.Available(), doc.Namespace)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	fin := got.next(t, "final", time.Second, func(x Notification) bool { return x.Final })
	if fin.State.State != StateTerminated || fin.State.Reason != ReasonTimeout {
		t.Errorf("final %+v, want the NOTIFY terminated;reason=timeout", fin.State)
	}
	select {
	case err := <-sippDone:
		sippDone <- err
		if err != nil {
			errLog, _ := os.ReadFile(filepath.Join(dir, "err.log"))
			t.Fatalf("sipp: %v\n%s\n%s", err, out.String(), errLog)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("sipp did not finish\n%s", out.String())
	}
}

type subPolicyAll struct{}

func (subPolicyAll) MaySubscribe(context.Context, string, string) (PolicyDecision, error) {
	return PolicyAllow, nil
}

// subPublish publishes juliet's presence to the capulets server at addr
// with digest authentication (MD5) from a plain sipgo client; etag
// modifies an earlier publication. It returns the new entity-tag.
func subPublish(t *testing.T, addr, basic, etag string) string {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("capulets.example.com"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog.New(slog.DiscardHandler))))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.4"), sipgo.WithClientConnectionAddr("127.0.0.4:0"),
		sipgo.WithClientLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	aor := sip.Uri{Scheme: "sip", User: "juliet", Host: "capulets.example.com"}
	req := sip.NewRequest(sip.PUBLISH, aor)
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", newTag())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	if etag != "" {
		req.AppendHeader(sip.NewHeader("SIP-If-Match", etag))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", pidf.ContentTypePIDF))
	req.SetBody([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:juliet@capulets.example.com">
<tuple id="balcony"><status><basic>` + basic + `</basic></status></tuple></presence>`))
	req.SetTransport("UDP")
	req.SetDestination(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := client.Do(ctx, req)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		res, err = client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "juliet", Password: "balcony"})
	}
	if err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("PUBLISH answered %d %s", res.StatusCode, res.Reason)
	}
	h := res.GetHeader("SIP-ETag")
	if h == nil {
		t.Fatal("PUBLISH 200 without SIP-ETag")
	}
	return h.Value()
}

// TestSubscriberBetweenDomains: two sipside servers, montague.example.net
// on 127.0.0.2 subscribing for romeo to juliet at capulets.example.com on
// 127.0.0.3 (a peer domain there): NOTIFY open, then closed when juliet
// publishes closed; Unsubscribe ends with the notifier's NOTIFY
// terminated.
func TestSubscriberBetweenDomains(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) { testSubscriberBetweenDomains(t, transport) })
	}
}

func testSubscriberBetweenDomains(t *testing.T, transport string) {
	capUsers := newUsers(t)
	addUser(t, capUsers, "juliet", "capulets.example.com", "balcony")
	capulets, _ := startSubServer(t, "capulets.example.com", nil, func(o *Options) {
		o.Users = capUsers
		o.Listen = []config.Listen{{Transport: "udp", Host: "127.0.0.3"}, {Transport: "tcp", Host: "127.0.0.3"}}
		o.PeerPolicy = func(d string) bool { return d == "montague.example.net" }
		peers := &subResolver{}
		peers.set("montague.example.net", "127.0.0.2:5060") // proves montague's requests by address
		o.Resolver = peers
		o.PresencePolicy = subPolicyAll{}
		o.DigestAlgorithms = []string{"MD5"}
		o.MinExpires = 3 * time.Second
	})
	capAddr := capulets.Addrs()[0].Addr.String()
	etag := subPublish(t, capAddr, "open", "")

	res := &subResolver{}
	for _, a := range capulets.Addrs() {
		if a.Transport == transport {
			res.setTransport("capulets.example.com", transport, a.Addr.String())
		}
	}
	montague, _ := startSubServer(t, "montague.example.net", res, func(o *Options) {
		o.Listen = []config.Listen{{Transport: "udp", Host: "127.0.0.2"}, {Transport: "tcp", Host: "127.0.0.2"}}
	})
	got := newNotes()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	// 2 s is under capulets' Min-Expires: 423, then 3 s.
	sub, err := montague.Subscribe(ctx, SubscribeRequest{
		Watcher: subAddr(t, "romeo@montague.example.net"), Presentity: subAddr(t, "juliet@capulets.example.com"),
		Expires: 2 * time.Second, OnNotify: got.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := got.next(t, "NOTIFY open", 5*time.Second, basicIs("open"))
	if n.ContentType != pidf.ContentTypePIDF || n.State.Expires != 3*time.Second {
		t.Errorf("first NOTIFY: Content-Type %q, %s", n.ContentType, n.State)
	}
	// The refresh (at about 2.4 s) keeps it alive: a NOTIFY active
	// follows, in this dialog or a new one.
	got.next(t, "NOTIFY after the refresh", 6*time.Second, func(x Notification) bool {
		return x.State.State == StateActive && time.Since(start) > 2*time.Second
	})
	if montague.Subscriptions() != 1 {
		t.Fatalf("%d subscriptions after the refresh", montague.Subscriptions())
	}
	subPublish(t, capAddr, "closed", etag)
	got.next(t, "NOTIFY closed", 5*time.Second, basicIs("closed"))
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	fin := got.next(t, "final", time.Second, func(x Notification) bool { return x.Final })
	if fin.State.State != StateTerminated || fin.ContentType == "" && fin.Status != 0 {
		t.Errorf("final %+v", fin)
	}
}
