package xmppside

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/umpp/umpp/store"
)

// Options configure a Server. Domains, Users, Rosters, Offline and TLS are
// required; zero values of the others select the documented defaults.
type Options struct {
	// Domains are the XMPP domains this server hosts.
	Domains []string
	Users   store.Users
	Rosters store.Rosters
	Offline store.Offline
	// TLS is the server configuration used for STARTTLS and direct TLS
	// (usually with GetCertificate). It is cloned; the clone advertises
	// ALPN "xmpp-client" (XEP-0368) and requires TLS 1.2 or later.
	TLS *tls.Config

	// MaxStanzaBytes bounds one top-level element (default 256 KiB);
	// a larger one gets the policy-violation stream error.
	MaxStanzaBytes int
	// HandshakeTimeout bounds the time from accept to resource binding
	// (default 30s); a slower client gets connection-timeout.
	HandshakeTimeout time.Duration
	// QueueLen is the per-session outbound queue length (default 1024).
	QueueLen int
	// SendTimeout is how long a sender waits on a recipient whose queue is
	// full before the stanza is dropped and the sender gets a
	// resource-constraint error of type wait (default 250ms).
	SendTimeout time.Duration
	// WriteTimeout bounds one write to a client (default 30s).
	WriteTimeout time.Duration
	// KeepAlive is the interval of whitespace keepalives on idle streams
	// (RFC 6120 §4.6.1; default 90s, negative disables).
	KeepAlive time.Duration
	// ShutdownTimeout bounds how long Serve waits for streams to close
	// after its context ends (default 5s).
	ShutdownTimeout time.Duration

	// AuthFailures is how many failed logins a remote IP may make in a
	// burst (default 5); afterwards it may make one more per
	// AuthFailureInterval (default 30s). Throttled attempts wait
	// AuthFailureDelay (default 1s) and fail with temporary-auth-failure.
	AuthFailures        int
	AuthFailureInterval time.Duration
	AuthFailureDelay    time.Duration

	// Remote delivers stanzas for domains this server does not host. Nil:
	// such stanzas bounce with remote-server-not-found.
	Remote Remote
	// Locator finds the connected resources of local accounts; nil selects
	// an in-memory one (one node).
	Locator Locator
	// Presence learns every broadcast presence change of a local user
	// (available, updates, unavailable), so that the UMPP session layer
	// can notify SIP watchers. Nil: nobody is told.
	Presence PresenceObserver
	// Roster learns every persisted change of a roster item, so that the
	// UMPP session layer can authorize SIP watchers and start or stop SIP
	// subscriptions. Nil: nobody is told.
	Roster RosterObserver
	// Messages learns of messages that arrive from other domains (s2s
	// and Receive) before they are delivered. Nil: nobody is told.
	Messages MessageObserver
	// Metrics counts routing outcomes; nil counts nothing.
	Metrics Metrics

	// Server-to-server (RFC 6120, XEP-0220, XEP-0178); see s2s.go.
	//
	// Resolver finds peers' s2s endpoints; when it is set and Remote is
	// nil, stanzas for other domains go over s2s (Server.S2S).
	Resolver Resolver
	// ClientTLS returns the TLS configuration for an outbound connection
	// to serverName (certs.Store.ClientConfig): our certificate is
	// presented as client certificate for SASL EXTERNAL. Peer
	// certificates need not verify (dialback covers untrusted peers).
	ClientTLS func(serverName string) *tls.Config
	// RootCAs verifies peers' certificates for SASL EXTERNAL (nil: the
	// system roots).
	RootCAs func() *x509.CertPool
	// DialbackSecret keys XEP-0185 dialback keys
	// (dialback.LoadOrCreateSecret); required for s2s.
	DialbackSecret []byte
	// S2SAllowPlain permits s2s streams without STARTTLS; the zero value
	// requires TLS both ways (RFC 6120 §5, UMPP's security
	// considerations). Never set it in production.
	S2SAllowPlain bool
	// S2SIdleTimeout closes s2s streams without stanzas for this long
	// (default 10m).
	S2SIdleTimeout time.Duration
	// S2SConnectTimeout bounds resolving, connecting and authenticating
	// an outbound stream, and a dialback callback (default 20s).
	S2SConnectTimeout time.Duration
	// S2SQueueLen bounds the stanzas waiting per remote domain (default
	// 1000); beyond it senders get resource-constraint.
	S2SQueueLen int
	// AllowDomain is the federation policy: false refuses a remote
	// domain both ways (nil: open federation).
	AllowDomain func(domain string) bool

	// SoftwareName and SoftwareVersion answer XEP-0092 queries (defaults
	// "umppd" and "dev").
	SoftwareName, SoftwareVersion string

	Logger *slog.Logger
}

// Server is the client-to-server side of the XMPP host.
type Server struct {
	opts    Options
	log     *slog.Logger
	domains map[string]bool
	loc     Locator
	tls     *tls.Config
	limiter *authLimiter
	pool    bufPool
	rlocks  rosterLocks
	fakeKey [32]byte // for made-up SCRAM credentials of unknown accounts

	s2s *s2sManager

	subMu      sync.Mutex
	submitters map[string]*submitter // full JID -> presence state of Submit resources

	mu        sync.Mutex
	c2sLn     []net.Listener
	directLn  []net.Listener
	s2sLn     []net.Listener
	conns     map[*conn]struct{}
	s2sConns  map[*s2sIn]struct{}
	serving   bool
	connWG    sync.WaitGroup
	acceptsWG sync.WaitGroup
}

// New checks opts and returns a Server that is not yet listening.
func New(opts Options) (*Server, error) {
	var problems []string
	if len(opts.Domains) == 0 {
		problems = append(problems, "no domains")
	}
	if opts.Users == nil || opts.Rosters == nil || opts.Offline == nil {
		problems = append(problems, "Users, Rosters and Offline stores are required")
	}
	if opts.TLS == nil {
		problems = append(problems, "no TLS configuration")
	}
	domains := make(map[string]bool, len(opts.Domains))
	for _, d := range opts.Domains {
		a, err := parseAddr(d)
		if err != nil || a.local != "" || a.resource != "" {
			problems = append(problems, fmt.Sprintf("invalid domain %q", d))
			continue
		}
		domains[a.domain] = true
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("xmppside: %s", strings.Join(problems, "; "))
	}
	if opts.MaxStanzaBytes <= 0 {
		opts.MaxStanzaBytes = 256 << 10
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 30 * time.Second
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = 1024
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 250 * time.Millisecond
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 90 * time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	if opts.AuthFailures <= 0 {
		opts.AuthFailures = 5
	}
	if opts.AuthFailureInterval <= 0 {
		opts.AuthFailureInterval = 30 * time.Second
	}
	if opts.AuthFailureDelay <= 0 {
		opts.AuthFailureDelay = time.Second
	}
	if opts.S2SIdleTimeout <= 0 {
		opts.S2SIdleTimeout = DefaultS2SIdleTimeout
	}
	if opts.S2SConnectTimeout <= 0 {
		opts.S2SConnectTimeout = DefaultS2SConnectTimeout
	}
	if opts.S2SQueueLen <= 0 {
		opts.S2SQueueLen = DefaultS2SQueueLen
	}
	if opts.SoftwareName == "" {
		opts.SoftwareName = "umppd"
	}
	if opts.SoftwareVersion == "" {
		opts.SoftwareVersion = "dev"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	loc := opts.Locator
	if loc == nil {
		loc = NewMemLocator()
	}
	tcfg := opts.TLS.Clone()
	if tcfg.MinVersion < tls.VersionTLS12 {
		tcfg.MinVersion = tls.VersionTLS12
	}
	tcfg.NextProtos = append([]string{"xmpp-client"}, tcfg.NextProtos...)
	srv := &Server{
		opts:     opts,
		log:      log.With("component", "xmpp-c2s"),
		domains:  domains,
		loc:      loc,
		tls:      tcfg,
		limiter:  newAuthLimiter(opts.AuthFailures, opts.AuthFailureInterval, 10000),
		conns:    make(map[*conn]struct{}),
		s2sConns: make(map[*s2sIn]struct{}),

		submitters: make(map[string]*submitter),
	}
	srv.s2s = newS2SManager(srv, log)
	if srv.opts.Remote == nil && opts.Resolver != nil {
		srv.opts.Remote = srv.s2s
	}
	srv.rlocks.seed = maphash.MakeSeed()
	if _, err := rand.Read(srv.fakeKey[:]); err != nil {
		return nil, fmt.Errorf("xmppside: random key: %w", err)
	}
	return srv, nil
}

// Listen binds the client listeners: c2s addresses take STARTTLS (RFC
// 6120 §5), directTLS addresses start with TLS (XEP-0368). Ports may be
// 0. On error nothing stays bound.
func (s *Server) Listen(c2s, directTLS []string) error {
	var lc net.ListenConfig
	var bound []net.Listener
	fail := func(err error) error {
		for _, l := range bound {
			_ = l.Close()
		}
		return err
	}
	var c2sLn, directLn []net.Listener
	for _, a := range c2s {
		l, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			return fail(fmt.Errorf("xmppside: listen c2s %s: %w", a, err))
		}
		bound = append(bound, l)
		c2sLn = append(c2sLn, l)
	}
	for _, a := range directTLS {
		l, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			return fail(fmt.Errorf("xmppside: listen direct TLS %s: %w", a, err))
		}
		bound = append(bound, l)
		directLn = append(directLn, l)
	}
	s.mu.Lock()
	s.c2sLn = append(s.c2sLn, c2sLn...)
	s.directLn = append(s.directLn, directLn...)
	s.mu.Unlock()
	for _, l := range c2sLn {
		s.log.Debug("listening", "addr", l.Addr().String(), "mode", "starttls")
	}
	for _, l := range directLn {
		s.log.Debug("listening", "addr", l.Addr().String(), "mode", "direct-tls")
	}
	return nil
}

// Addrs returns the bound addresses of the STARTTLS and direct TLS
// listeners.
func (s *Server) Addrs() (c2s, directTLS []net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.c2sLn {
		c2s = append(c2s, l.Addr())
	}
	for _, l := range s.directLn {
		directTLS = append(directTLS, l.Addr())
	}
	return c2s, directTLS
}

// Serve accepts clients on the bound listeners until ctx ends, then closes
// the listeners, ends every stream with the system-shutdown stream error
// and returns once they are closed or ShutdownTimeout has passed.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("xmppside: Serve called twice")
	}
	lns := map[net.Listener]bool{}
	for _, l := range s.c2sLn {
		lns[l] = false
	}
	for _, l := range s.directLn {
		lns[l] = true
	}
	s2sLn := append([]net.Listener(nil), s.s2sLn...)
	if len(lns) == 0 && len(s2sLn) == 0 {
		s.mu.Unlock()
		return errors.New("xmppside: Serve without Listen")
	}
	s.serving = true
	s.mu.Unlock()

	connCtx, cancelConns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConns()
	for l, direct := range lns {
		s.acceptsWG.Add(1)
		go s.accept(connCtx, l, func(nc net.Conn) func() { return s.startC2S(connCtx, nc, direct) })
	}
	for _, l := range s2sLn {
		s.acceptsWG.Add(1)
		go s.accept(connCtx, l, func(nc net.Conn) func() { return s.startS2S(connCtx, nc) })
	}
	<-ctx.Done()

	for l := range lns {
		_ = l.Close()
	}
	for _, l := range s2sLn {
		_ = l.Close()
	}
	s.acceptsWG.Wait()

	s.mu.Lock()
	for c := range s.conns {
		c.closeStream("system-shutdown")
	}
	for c := range s.s2sConns {
		c.closeStream("system-shutdown")
	}
	s.mu.Unlock()
	s.s2s.shutdown()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	t := time.NewTimer(s.opts.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			_ = c.nc.Close()
		}
		n += len(s.s2sConns)
		for c := range s.s2sConns {
			_ = c.wire.raw.Close()
		}
		s.mu.Unlock()
		s.log.Warn("streams did not close in time; connections closed", "count", n)
		cancelConns()
		<-done
	}
	s.log.Info("stopped")
	return nil
}

// accept runs the accept loop of l until l is closed. For each
// connection it calls start on the loop itself, so that the connection is
// registered before Serve's shutdown (which waits for the loops) looks,
// then runs what start returns on a goroutine that connWG tracks. A
// temporary failure (EMFILE, say) backs off and retries.
func (s *Server) accept(ctx context.Context, l net.Listener, start func(net.Conn) (serve func())) {
	defer s.acceptsWG.Done()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "addr", l.Addr().String(), "err", err)
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return
			}
		}
		backoff = 0
		serve := start(nc)
		go func() {
			defer s.connWG.Done()
			serve()
		}()
	}
}

// startC2S registers a client connection in s.conns and returns what
// serves it.
func (s *Server) startC2S(ctx context.Context, nc net.Conn, direct bool) func() {
	c := s.newConn(nc)
	track(s, s.conns, c)
	return func() {
		defer untrack(s, s.conns, c)
		c.serve(ctx, direct)
	}
}

// track registers a live connection of one kind (for shutdown and Stats)
// and counts it in connWG; untrack removes it when it ends.
func track[C comparable](s *Server, m map[C]struct{}, c C) {
	s.mu.Lock()
	m[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
}

func untrack[C comparable](s *Server, m map[C]struct{}, c C) {
	s.mu.Lock()
	delete(m, c)
	s.mu.Unlock()
}

// isLocal reports whether domain is hosted here.
func (s *Server) isLocal(domain string) bool { return s.domains[domain] }

// Close releases the listeners of a Server whose Serve was never called,
// for a daemon whose startup fails after Listen. A serving Server is
// stopped by cancelling Serve's context instead; then Close does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	serving := s.serving
	s.mu.Unlock()
	if serving {
		return nil
	}
	s.s2s.shutdown()
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, l := range append(append(s.c2sLn, s.directLn...), s.s2sLn...) {
		if err := l.Close(); err != nil && first == nil {
			first = fmt.Errorf("xmppside: close %s: %w", l.Addr(), err)
		}
	}
	s.c2sLn, s.directLn, s.s2sLn = nil, nil, nil
	return first
}
