package sipside

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/config"
	"github.com/umpp/umpp/pidf"
	"github.com/umpp/umpp/store"
)

// Options configure a Server. Domains, Users and at least one Listen entry
// are required; every other field has a default.
type Options struct {
	// Domains are the domains this server is authoritative for. Requests
	// for other domains are never relayed (no open relay): MESSAGE goes
	// to Gateway, everything else is answered 404.
	Domains []string
	// Users holds the accounts and their digest HA1s (realm = domain,
	// username = localpart).
	Users store.Users
	// TLS is the server configuration for "tls" listeners.
	TLS *tls.Config
	// Listen are the sockets to bind: Transport "udp", "tcp" or "tls";
	// Port 0 picks a free port (see Addrs).
	Listen []config.Listen
	// MaxMessageBytes bounds a request body; larger ones get 413.
	// Default 65536.
	MaxMessageBytes int
	// UserAgent is the Server/User-Agent header value. Default "umppd".
	UserAgent string
	// Logger receives structured logs; default slog.Default().
	Logger *slog.Logger
	// Registrations keeps registrar bindings; default an in-memory
	// table (NewMemoryRegistrations).
	Registrations Registrations
	// PresencePolicy decides who may SUBSCRIBE to whose presence: allow,
	// deny, or pending until Server.Authorize. Nil lets a user watch
	// only their own presence.
	PresencePolicy PresencePolicy
	// Gateway receives MESSAGE requests for non-local targets from
	// local senders, and those for local users without registered SIP
	// contacts. Nil answers the former 403 (no open relay), the latter
	// 480.
	Gateway Gateway
	// Metrics counts transactions, deliveries and subscriptions; nil
	// counts nothing.
	Metrics Metrics
	// MinExpires, MaxExpires and DefaultExpires bound registrations
	// (RFC 3261 §10.3). Defaults 60s, 3600s, 3600s.
	MinExpires, MaxExpires, DefaultExpires time.Duration
	// NonceLifetime is how long a digest nonce is accepted before the
	// challenge is repeated with stale=true. Default 5 minutes.
	NonceLifetime time.Duration
	// DigestAlgorithms are the challenge algorithms, in order of
	// preference: "SHA-256" and/or "MD5" (RFC 8760). Default both,
	// SHA-256 first.
	DigestAlgorithms []string
	// NonceSecret keys the nonce MAC. Default: 32 random bytes, so
	// nonces do not survive a restart.
	NonceSecret []byte
	// AuthFailures is how many failed digest attempts one source IP may
	// make per AuthFailureWindow before it is answered 403 without a
	// check. Defaults 20 per minute.
	AuthFailures      int
	AuthFailureWindow time.Duration
	// ForwardTimeout bounds a forked MESSAGE to the recipient's contacts.
	// Default 10 seconds.
	ForwardTimeout time.Duration
	// Sessions decides on INVITEs offering XMPP message sessions to
	// local users (draft §4.1, invite.go). Nil answers them 480.
	Sessions SessionHandler
	// Resolver finds peer SIP servers for Invite and the targets of
	// in-dialog requests and NOTIFYs named by host (RFC 3263).
	// *addressing.Resolver satisfies it. Nil: Invite fails, and hosts are
	// left to sipgo's DNS lookup.
	Resolver Resolver
	// PeerPolicy reports whether a domain is a peer UMPP domain whose
	// servers may INVITE, SUBSCRIBE and send MESSAGEs to local users
	// without digest authentication, once the request is proven to come
	// from that domain's server (peer.go: a TLS client certificate for
	// the domain, or a source address of its resolved SIP servers).
	// Nil: no peers.
	PeerPolicy func(domain string) bool
	// RootCAs returns the roots that verify peer servers' TLS client
	// certificates (RFC 5922). Nil, or a nil pool, means the system
	// roots.
	RootCAs func() *x509.CertPool
	// PresenceChanged is called when the SIP-published state of a local
	// presentity changes (PUBLISH that creates, modifies or removes a
	// publication, or a publication's expiry), with the composition of
	// its SIP publications (nil when none is left; the SetPresence
	// document is not part of it). Calls come from one goroutine, in
	// order, never with the server's locks held; a slow callback delays
	// the next calls, not SIP traffic.
	PresenceChanged func(presentity string, doc *pidf.Document)
	// RemotePresence follows presentities of other domains for local
	// SIP watchers: with it, a SUBSCRIBE from an authenticated local user
	// to a user of another domain is served here (draft §4.2, the
	// gateway subscribing on the watcher's behalf). Nil answers such
	// SUBSCRIBEs 404.
	RemotePresence RemotePresence
	// SubscribeRate and SubscribeBurst bound SUBSCRIBE requests per
	// source IP address (a token bucket, checked before digest
	// authentication): beyond them the answer is 503 with Retry-After.
	// Defaults 20 per second with a burst of 100.
	SubscribeRate  float64
	SubscribeBurst int
	// MaxSubscriptionsPerWatcher and MaxWatchersPerPresentity bound
	// presence subscriptions; beyond them a new one gets 403. Defaults
	// 1024 and 256.
	MaxSubscriptionsPerWatcher, MaxWatchersPerPresentity int
}

// Addr is one bound listener.
type Addr struct {
	Transport string // "udp", "tcp" or "tls"
	Addr      net.Addr
}

func (a Addr) String() string { return a.Transport + "://" + a.Addr.String() }

// Server is the SIP side of umppd.
type Server struct {
	opts     Options
	log      *slog.Logger
	domains  map[string]bool
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	regs     Registrations
	auth     *authenticator
	parser   *sip.Parser
	presence *presence
	dialogs  dialogTable // INVITE dialogs (dialog.go)

	subs subscriberTable // outgoing SUBSCRIBE dialogs (subscriber.go)

	peers peerAuth // peer-domain proof: TLS identities and resolved addresses (peer.go)

	mu       sync.Mutex
	listened bool
	served   bool
	udp      map[string]net.PacketConn // by local address, for stateless answers
	packet   []net.PacketConn
	streams  []streamListener
	addrs    []Addr
	client   *sipgo.Client
	localIPs map[string]bool
	ctx      context.Context // the Serve context, for work started by handlers
	bg       sync.WaitGroup  // background sends started by handlers
	closing  bool
}

// spawn runs f in the background; Serve waits for it before returning.
// Once Serve is closing, f is not run.
func (s *Server) spawn(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.bg.Go(f)
}

type streamListener struct {
	transport string
	l         net.Listener
}

// New checks opts and builds a Server. Nothing is bound until Listen.
func New(opts Options) (*Server, error) {
	if len(opts.Domains) == 0 {
		return nil, errors.New("sipside: new: no domains")
	}
	if opts.Users == nil {
		return nil, errors.New("sipside: new: no user store")
	}
	if len(opts.Listen) == 0 {
		return nil, errors.New("sipside: new: no listeners")
	}
	for _, l := range opts.Listen {
		switch l.Transport {
		case "udp", "tcp":
		case "tls":
			if opts.TLS == nil {
				return nil, fmt.Errorf("sipside: new: tls listener %s:%d without a TLS configuration", l.Host, l.Port)
			}
		default:
			return nil, fmt.Errorf("sipside: new: unknown transport %q", l.Transport)
		}
		if l.Port < 0 || l.Port > 65535 {
			return nil, fmt.Errorf("sipside: new: port %d out of range", l.Port)
		}
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 65536
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "umppd"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MinExpires <= 0 {
		opts.MinExpires = 60 * time.Second
	}
	if opts.MaxExpires <= 0 {
		opts.MaxExpires = time.Hour
	}
	if opts.DefaultExpires <= 0 {
		opts.DefaultExpires = time.Hour
	}
	if opts.MinExpires > opts.MaxExpires || opts.DefaultExpires < opts.MinExpires || opts.DefaultExpires > opts.MaxExpires {
		return nil, fmt.Errorf("sipside: new: expires bounds min %v default %v max %v are inconsistent",
			opts.MinExpires, opts.DefaultExpires, opts.MaxExpires)
	}
	if opts.NonceLifetime <= 0 {
		opts.NonceLifetime = 5 * time.Minute
	}
	if len(opts.DigestAlgorithms) == 0 {
		opts.DigestAlgorithms = []string{"SHA-256", "MD5"}
	}
	for _, a := range opts.DigestAlgorithms {
		if a != "SHA-256" && a != "MD5" {
			return nil, fmt.Errorf("sipside: new: digest algorithm %q (want SHA-256 or MD5)", a)
		}
	}
	if len(opts.NonceSecret) == 0 {
		opts.NonceSecret = make([]byte, 32)
		if _, err := rand.Read(opts.NonceSecret); err != nil {
			return nil, fmt.Errorf("sipside: new: nonce secret: %w", err)
		}
	}
	if opts.AuthFailures <= 0 {
		opts.AuthFailures = 20
	}
	if opts.AuthFailureWindow <= 0 {
		opts.AuthFailureWindow = time.Minute
	}
	if opts.ForwardTimeout <= 0 {
		opts.ForwardTimeout = 10 * time.Second
	}
	if opts.TLS != nil && opts.TLS.ClientAuth == tls.NoClientCert {
		// Peer servers prove their domain with a client certificate
		// (RFC 5922, peer.go); users need none, so it is asked for,
		// not required, and checked per request, not by the handshake.
		opts.TLS = opts.TLS.Clone()
		opts.TLS.ClientAuth = tls.RequestClientCert
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger.With("component", "sipside"),
		domains:  make(map[string]bool),
		udp:      make(map[string]net.PacketConn),
		localIPs: make(map[string]bool),
		parser:   sip.NewParser(),
		presence: newPresence(opts),
	}
	for _, d := range opts.Domains {
		s.domains[strings.ToLower(d)] = true
	}
	s.regs = opts.Registrations
	if s.regs == nil {
		s.regs = NewMemoryRegistrations(0)
	}
	s.auth = newAuthenticator(opts.DigestAlgorithms, opts.NonceSecret, opts.NonceLifetime, opts.AuthFailures, opts.AuthFailureWindow)

	sipgoLog := s.log.With("layer", "sipgo")
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(opts.UserAgent),
		sipgo.WithUserAgentHostname(opts.Domains[0]),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(sipgoLog),
			sip.WithTransportLayerReadFilter(s.readFilter),
		),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(sipgoLog),
			sip.WithTransactionLayerUnhandledResponseHandler(func(r *sip.Response) {
				// Responses matching no client transaction: stray or
				// retransmitted; RFC 3261 §18.1.2 says discard.
				sipgoLog.Debug("discarded response without transaction", "call_id", callID(r), "status", r.StatusCode)
			}),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("sipside: new: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(sipgoLog))
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("sipside: new: server: %w", err)
	}
	for m := range knownMethods {
		srv.OnRequest(m, s.handle)
	}
	srv.OnNoRoute(s.handle)
	s.ua, s.srv = ua, srv
	return s, nil
}

// Listen binds every configured listener. Call it once, before Serve.
func (s *Server) Listen(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listened {
		return errors.New("sipside: listen: already listening")
	}
	var lc net.ListenConfig
	for _, l := range s.opts.Listen {
		hostPort := net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
		switch l.Transport {
		case "udp":
			pc, err := lc.ListenPacket(ctx, "udp", hostPort)
			if err != nil {
				s.closeListenersLocked()
				return fmt.Errorf("sipside: listen udp %s: %w", hostPort, err)
			}
			s.packet = append(s.packet, pc)
			s.udp[pc.LocalAddr().String()] = pc
			s.addrs = append(s.addrs, Addr{Transport: "udp", Addr: pc.LocalAddr()})
		case "tcp", "tls":
			ln, err := lc.Listen(ctx, "tcp", hostPort)
			if err != nil {
				s.closeListenersLocked()
				return fmt.Errorf("sipside: listen %s %s: %w", l.Transport, hostPort, err)
			}
			s.addrs = append(s.addrs, Addr{Transport: l.Transport, Addr: ln.Addr()})
			if l.Transport == "tls" {
				ln = tls.NewListener(ln, s.opts.TLS)
			}
			ln = &framedListener{Listener: ln, s: s, transport: l.Transport}
			s.streams = append(s.streams, streamListener{transport: l.Transport, l: ln})
		}
	}
	for _, a := range s.addrs {
		if h, _, err := net.SplitHostPort(a.Addr.String()); err == nil {
			s.localIPs[h] = true
		}
	}
	// Via sent-by of requests we originate: the first listener's address,
	// or our first domain when that is a wildcard address.
	host := s.opts.Domains[0]
	if h, _, err := net.SplitHostPort(s.addrs[0].Addr.String()); err == nil {
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
			host = h
		}
	}
	copts := []sipgo.ClientOption{sipgo.WithClientHostname(host), sipgo.WithClientLogger(s.log.With("layer", "sipgo-client"))}
	if host != s.opts.Domains[0] {
		// Requests leave from the listener's address (any port), not
		// from whatever address the route picks: a peer that checks our
		// source address against our resolved servers (peer.go) must
		// see the address it resolved.
		copts = append(copts, sipgo.WithClientConnectionAddr(net.JoinHostPort(host, "0")))
	}
	client, err := sipgo.NewClient(s.ua, copts...)
	if err != nil {
		s.closeListenersLocked()
		return fmt.Errorf("sipside: listen: client: %w", err)
	}
	s.client = client
	s.listened = true
	for _, a := range s.addrs {
		s.log.Debug("sip listener bound", "transport", a.Transport, "addr", a.Addr.String())
	}
	return nil
}

func (s *Server) closeListenersLocked() {
	for _, pc := range s.packet {
		_ = pc.Close()
	}
	for _, sl := range s.streams {
		_ = sl.l.Close()
	}
	s.packet, s.streams, s.addrs = nil, nil, nil
	clear(s.udp)
}

// Close releases the listeners and sipgo's layers of a Server that was
// bound with Listen but will not Serve (say, startup failed later). A
// serving Server is stopped by ending Serve's context instead.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.served {
		s.mu.Unlock()
		return errors.New("sipside: close: serving; cancel Serve's context instead")
	}
	s.served = true // no Serve after Close
	s.closeListenersLocked()
	s.mu.Unlock()
	if err := closeUA(s.ua); err != nil {
		return fmt.Errorf("sipside: close user agent: %w", err)
	}
	return nil
}

// closeUA closes sipgo's user agent. Its transports close the sockets we
// handed them too, which closeListenersLocked may have closed first: a
// socket already closed is what closing wanted, not a failure.
func closeUA(ua *sipgo.UserAgent) error {
	if err := ua.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// Addrs returns the bound listeners, in the order of Options.Listen.
func (s *Server) Addrs() []Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Addr(nil), s.addrs...)
}

// Serve answers requests on the bound listeners until ctx ends, then
// closes the listeners and the transaction and transport layers and
// returns nil. It returns an error if Listen was not called or a listener
// fails.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if !s.listened {
		s.mu.Unlock()
		return errors.New("sipside: serve: not listening (call Listen first)")
	}
	if s.served {
		s.mu.Unlock()
		return errors.New("sipside: serve: already served")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.served = true
	s.ctx = ctx
	packet, streams := s.packet, s.streams
	s.mu.Unlock()

	var wg sync.WaitGroup
	errc := make(chan error, len(packet)+len(streams)+1)
	for _, pc := range packet {
		wg.Go(func() {
			if err := s.srv.ServeUDP(pc); err != nil && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				errc <- fmt.Errorf("sipside: serve udp %s: %w", pc.LocalAddr(), err)
			}
		})
	}
	for _, sl := range streams {
		wg.Go(func() {
			var err error
			if sl.transport == "tls" {
				err = s.srv.ServeTLS(sl.l)
			} else {
				err = s.srv.ServeTCP(sl.l)
			}
			if err != nil && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				errc <- fmt.Errorf("sipside: serve %s %s: %w", sl.transport, sl.l.Addr(), err)
			}
		})
	}
	wg.Go(func() { s.regs.Run(ctx) })
	wg.Go(func() { s.auth.run(ctx) })
	wg.Go(func() { s.runPresence(ctx) })
	wg.Go(func() { s.runPresenceEvents(ctx) })

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	// Before the transports close, in parallel, two seconds at most
	// each: our subscriptions end with Expires: 0, dialogs with BYE,
	// and subscribers to us hear "terminated;reason=deactivated".
	var ending sync.WaitGroup
	ending.Go(s.unsubscribeAll)
	ending.Go(s.byeAll)
	ending.Go(s.deactivateAll)
	ending.Wait()
	cancel()
	s.mu.Lock()
	s.closing = true
	s.closeListenersLocked()
	s.mu.Unlock()
	s.bg.Wait()
	if cerr := closeUA(s.ua); cerr != nil && err == nil {
		err = fmt.Errorf("sipside: serve: close user agent: %w", cerr)
	}
	wg.Wait()
	return err
}

// isLocal reports whether host names this server: one of its domains or
// an address it listens on.
func (s *Server) isLocal(host string) bool {
	h := strings.ToLower(strings.Trim(host, "[]"))
	if s.domains[h] {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.localIPs[h]
}

// readFilter sees every UDP datagram before sipgo parses it (stream reads
// were framed and filtered already by framedConn, stream.go). It
// normalizes the datagram, answers the requests sipgo would drop
// (unparseable, or refused by validate) statelessly, and passes the rest
// on.
func (s *Server) readFilter(info sip.TransportReadProps, data []byte) ([]byte, error) {
	if !strings.EqualFold(info.Transport, "udp") {
		return data, nil
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return data, nil // keep-alive
	}
	clean, resp := s.filterMessage("udp", info.RemoteAddr, data)
	if resp != nil {
		s.writeUDP(info, resp)
	}
	return clean, nil
}

func (s *Server) writeUDP(info sip.TransportReadProps, b []byte) {
	pc := s.udp[info.LocalAddr.String()]
	if pc == nil {
		return
	}
	if _, err := pc.WriteTo(b, info.RemoteAddr); err != nil {
		s.log.Debug("stateless response not sent", "peer", info.RemoteAddr.String(), "error", err)
	}
}

// response builds a response with our Server header and extra fields.
func (s *Server) response(req *sip.Request, code int, reason string, hdrs ...sip.Header) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sip.NewHeader("Server", s.opts.UserAgent))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	return res
}

// reply answers req in its transaction; errors are logged, not returned,
// since the requester retransmits.
func (s *Server) reply(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	s.respond(req, tx, s.response(req, code, reason, hdrs...))
}

func (s *Server) respond(req *sip.Request, tx sip.ServerTransaction, res *sip.Response) {
	s.countResponse(string(req.Method), res.StatusCode)
	if s.respondLargeUDP(req, tx, res) {
		return
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("response not sent", "call_id", callID(req), "method", string(req.Method),
			"peer", req.Source(), "status", res.StatusCode, "error", err)
	}
}

// udpSafeSize is where sipgo refuses to send a UDP message (its MTU
// guard, 1500-200 bytes).
const udpSafeSize = 1300

// respondLargeUDP sends a response sipgo's UDP transport would refuse as
// too large straight on the listener socket, statelessly: RFC 3261
// §18.2.2 has no transport switch for responses, and silence would make
// the client retransmit for 32 seconds.
func (s *Server) respondLargeUDP(req *sip.Request, tx sip.ServerTransaction, res *sip.Response) bool {
	if !strings.EqualFold(req.Transport(), "udp") {
		return false
	}
	b := res.String()
	if len(b) <= udpSafeSize {
		return false
	}
	withConn, ok := tx.(interface{ Connection() sip.Connection })
	if !ok {
		return false
	}
	uc, ok := withConn.Connection().(*sip.UDPConnection)
	if !ok || uc.PacketConn == nil {
		return false
	}
	dst, err := net.ResolveUDPAddr("udp", req.Source())
	if err != nil {
		return false
	}
	if _, err := uc.PacketConn.WriteTo([]byte(b), dst); err != nil {
		s.log.Debug("large response not sent", "call_id", callID(req), "method", string(req.Method), "peer", req.Source(), "error", err)
	}
	return true
}

func callID(m interface{ CallID() *sip.CallIDHeader }) string {
	if h := m.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// newTag returns a random token for To tags.
func newTag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b[:])
}

// allowed is our Allow header value.
const allowed = "OPTIONS, REGISTER, MESSAGE, PUBLISH, SUBSCRIBE, INVITE, ACK, BYE, CANCEL"

// handle is the single entry point for every request sipgo delivers.
func (s *Server) handle(req *sip.Request, tx sip.ServerTransaction) {
	if req.IsAck() {
		s.handleAck(req)
		return
	}
	if rej := validate(req, nil, s.opts.MaxMessageBytes); rej != nil {
		s.log.Debug("rejected request", "peer", req.Source(), "call_id", callID(req),
			"method", string(req.Method), "status", rej.code, "reason", rej.reason)
		s.reply(req, tx, rej.code, rej.reason, rej.headers...)
		return
	}
	ctx := s.serveContext()
	toTag := req.To().Params.Has("tag")
	local := s.isLocal(uriHost(req.Recipient))

	switch req.Method {
	case sip.OPTIONS:
		if !local {
			s.reply(req, tx, 404, "Not Found")
			return
		}
		s.handleOptions(req, tx)
	case sip.REGISTER:
		if !local {
			s.reply(req, tx, 404, "Not Found")
			return
		}
		s.handleRegister(ctx, req, tx)
	case sip.MESSAGE:
		if toTag {
			s.reply(req, tx, 481, "Call/Transaction Does Not Exist")
			return
		}
		s.handleMessage(ctx, req, tx, local)
	case sip.INVITE:
		s.handleInviteRequest(ctx, req, tx, local, toTag)
	case sip.BYE:
		s.handleBye(req, tx)
	case sip.PUBLISH:
		if toTag {
			s.reply(req, tx, 481, "Call/Transaction Does Not Exist")
			return
		}
		s.handlePublish(ctx, req, tx, local)
	case sip.SUBSCRIBE:
		s.handleSubscribe(ctx, req, tx, local)
	case sip.NOTIFY:
		s.handleNotify(req, tx)
	case sip.CANCEL, sip.PRACK, sip.UPDATE, sip.INFO:
		s.reply(req, tx, 481, "Call/Transaction Does Not Exist")
	default:
		s.reply(req, tx, 405, "Method Not Allowed", sip.NewHeader("Allow", allowed))
	}
}

func (s *Server) serveContext() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

// acceptsType reports whether an Accept value admits a media type.
func acceptsType(accept, mt string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	main, _, _ := strings.Cut(mt, "/")
	for _, v := range strings.Split(accept, ",") {
		t := mediaType(v)
		if t == mt || t == "*/*" || t == main+"/*" {
			return true
		}
	}
	return false
}
