package session

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/pidf"
	"github.com/umpp/umpp/session/sdp"
	"github.com/umpp/umpp/store"
)

// The gateway: the UMPP server's core. It sits between the XMPP host and
// the SIP server (both reach it through the small interfaces below, which
// adapters in cmd/umppd implement with xmppside and sipside) and decides,
// for every message and presence change of a local user, which protocol
// carries it:
//
//   - to a user of a UMPP peer: an IM session set up with SIP INVITE
//     (draft §4.1), then XMPP <message/>s with the session's thread over
//     s2s; presence by SIP SUBSCRIBE/NOTIFY (draft §4.2);
//   - to a user of an XMPP-only peer: plain XMPP federation;
//   - to a user of a SIP-only (SIMPLE) peer: SIP MESSAGE and SUBSCRIBE;
//   - between local XMPP and SIMPLE users: the RFC 7247/7572/8048 mapping.
//
// SIMPLE users of our domains appear to the XMPP host as one resource of
// their account (SIPResource): the gateway registers an Endpoint for each
// account with live registrar bindings, so XMPP routing (local and s2s)
// reaches them, and submits their messages and presence to the XMPP host
// as that resource. Rosters are the one record of presence authorization
// for both kinds of client.

// Peer modes, as addressing.Resolution.Mode names them.
const (
	ModeUMPP = "umpp"
	ModeXMPP = "xmpp"
	ModeSIP  = "sip"
	ModeNone = "none"
)

// DefaultSIPResource is the resource of an account's SIMPLE clients as
// XMPP sees them.
const DefaultSIPResource = "umpp-sip"

// Defaults of GatewayOptions.
const (
	DefaultIdleTimeout  = 10 * time.Minute
	DefaultSetupTimeout = 20 * time.Second
	defaultWorkers      = 64
	defaultWorkerQueue  = 256
)

// SIP is what the gateway needs from the SIP server.
type SIP interface {
	// Invite offers an XMPP message session to a user of another domain
	// and returns the confirmed dialog (ACK sent) and the answer. Errors
	// with a SIPStatus() (int, string) method carry the final response.
	Invite(ctx context.Context, from, to addressing.Address, offer sdp.XMPPSession) (Dialog, sdp.XMPPSession, error)
	// Hangup sends BYE in a dialog.
	Hangup(ctx context.Context, dialogID string) error
	// SendMessage sends a pager-mode MESSAGE to a local user's SIP
	// contacts or to a user of another domain.
	SendMessage(ctx context.Context, from, to addressing.Address, contentType string, body []byte) error
	// Subscribe starts an outgoing presence subscription, kept alive by
	// the SIP server until unsubscribed; notify gets its NOTIFYs in order.
	// sipURIs asks for sip: URIs instead of pres: (SIMPLE-only peers).
	Subscribe(ctx context.Context, watcher, presentity addressing.Address, sipURIs bool, notify func(Notification)) (Unsubscriber, error)
	// Authorize answers pending subscriptions of watcher to a presentity.
	Authorize(ctx context.Context, presentity, watcher string, allowed bool)
	// SetPresence sets the document the gateway holds for a presentity
	// (nil removes it); SIP watchers are notified.
	SetPresence(presentity string, doc *pidf.Document)
	// Registered reports whether a local account has live registrar
	// bindings.
	Registered(ctx context.Context, aor string) bool
}

// Dialog names an INVITE dialog.
type Dialog struct{ ID, CallID string }

// Notification is one NOTIFY of an outgoing subscription, or its end.
type Notification struct {
	// State is "active", "pending" or "terminated"; Reason the
	// Subscription-State reason.
	State, Reason string
	ContentType   string
	Body          []byte
	// Final: nothing follows, the SIP server gave up or was told to stop.
	Final bool
}

// Unsubscriber ends an outgoing subscription.
type Unsubscriber interface {
	Unsubscribe(ctx context.Context) error
}

// Stanza is an XMPP stanza as the XMPP host hands it over.
type Stanza struct {
	Name, From, To, Type, ID string
	Raw                      []byte
}

// Resource is one connected resource of a local account.
type Resource struct {
	JID       string
	Priority  int
	Available bool
	// Presence is its current broadcast presence, nil if unavailable.
	Presence []byte
}

// Endpoint is a resource of a local account as the XMPP router sees it;
// its method set is xmppside's Endpoint.
type Endpoint interface {
	JID() string
	Presence() (priority int, available bool)
	LastPresence() []byte
	Deliver(ctx context.Context, raw []byte) error
	Close(condition string)
}

// Errors of Endpoint.Deliver, which the XMPP adapter maps to its own.
var (
	ErrEndpointGone = errors.New("session: endpoint gone")
	ErrBusy         = errors.New("session: gateway queue full")
)

// XMPP is what the gateway needs from the XMPP host.
type XMPP interface {
	// Receive routes a stanza from a user of another domain to local
	// users.
	Receive(ctx context.Context, raw []byte) error
	// Submit routes a stanza sent by a local account's non-XMPP resource
	// (from, a full JID); a message that cannot be delivered is an error
	// with a Condition() string method.
	Submit(ctx context.Context, from string, raw []byte) error
	// SendRemote sends a stanza from a local user over s2s.
	SendRemote(ctx context.Context, st Stanza) error
	// Resources returns the connected resources of a local account.
	Resources(bare string) []Resource
	// AddEndpoint and RemoveEndpoint register the gateway's resources.
	AddEndpoint(e Endpoint)
	RemoveEndpoint(e Endpoint)
}

// Metrics counts what the gateway does; *metrics.Metrics satisfies it.
// Subscriptions are counted by the SIP server, which sees them
// established.
type Metrics interface {
	SessionStarted()
	SessionEnded(reason string)
	MessageRouted(path string)
	DeliveryFailed(condition string)
}

// GatewayOptions configure a Gateway.
type GatewayOptions struct {
	// Domains are the domains we serve.
	Domains []string
	SIP     SIP
	XMPP    XMPP
	// Mode returns how a peer domain is reached (Mode*; static [[peer]]
	// configuration, then DNS).
	Mode func(ctx context.Context, domain string) (string, error)
	// Table holds the IM sessions (default a MemTable).
	Table Table
	// Users answers whether accounts exist.
	Users store.Users
	// Rosters decide presence authorization.
	Rosters store.Rosters
	// Subscriptions persists outgoing presence subscriptions; nil keeps
	// them in memory only.
	Subscriptions store.Subscriptions
	// Offline holds messages stored for users with no available resource;
	// they go to a SIMPLE user's contacts when it registers. Nil: they
	// wait for an XMPP client.
	Offline store.Offline
	// Host and Port are our XMPP s2s host and port for the SDP (c=, m=).
	// Host defaults to the user's domain.
	Host string
	Port int
	// IdleTimeout ends sessions without traffic (default 10 minutes);
	// SetupTimeout bounds an INVITE (default 20 s).
	IdleTimeout, SetupTimeout time.Duration
	// MaxSubscriptionsPerPeer bounds the outgoing presence subscriptions
	// kept to one peer domain (0: no bound).
	MaxSubscriptionsPerPeer int
	// SIPResource is the resource of SIMPLE clients (DefaultSIPResource).
	SIPResource string
	Metrics     Metrics
	Logger      *slog.Logger
}

// Gateway is the UMPP core; see the package documentation.
type Gateway struct {
	opts    GatewayOptions
	log     *slog.Logger
	domains map[string]bool
	table   Table
	seed    maphash.Seed

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	lanes  []chan func(context.Context)
	modes  sync.Map     // peer domain -> cachedMode
	idle   atomic.Int64 // the idle timeout in force (SetIdleTimeout)

	mu        sync.Mutex
	setups    map[string]*setup         // thread -> outbound setup in progress
	endpoints map[string]*sipEndpoint   // bare JID -> SIP resource
	subs      map[subKey]*outSub        // outgoing presence subscriptions
	docs      map[string]*pidf.Document // bare JID -> SIP-published document
	remote    map[string]*pidf.Document // remote presentity -> last NOTIFYed document
	closed    bool
}

// setup is an outbound INVITE in progress; done closes when it ends.
type setup struct {
	done chan struct{}
	code int // SIP status of the failure, 0 on success
	cond string
}

// NewGateway returns a gateway; Start runs it.
func NewGateway(opts GatewayOptions) (*Gateway, error) {
	if opts.SIP == nil || opts.XMPP == nil || opts.Mode == nil || opts.Users == nil || opts.Rosters == nil {
		return nil, errors.New("session: gateway needs SIP, XMPP, Mode, Users and Rosters")
	}
	if len(opts.Domains) == 0 {
		return nil, errors.New("session: gateway needs a domain")
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.SetupTimeout <= 0 {
		opts.SetupTimeout = DefaultSetupTimeout
	}
	if opts.SIPResource == "" {
		opts.SIPResource = DefaultSIPResource
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{
		opts:      opts,
		log:       opts.Logger,
		domains:   make(map[string]bool),
		table:     opts.Table,
		seed:      maphash.MakeSeed(),
		setups:    make(map[string]*setup),
		endpoints: make(map[string]*sipEndpoint),
		subs:      make(map[subKey]*outSub),
		docs:      make(map[string]*pidf.Document),
		remote:    make(map[string]*pidf.Document),
	}
	for _, d := range opts.Domains {
		g.domains[d] = true
	}
	g.idle.Store(int64(opts.IdleTimeout))
	if g.table == nil {
		g.table = NewMemTable(MemTableOptions{})
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.lanes = make([]chan func(context.Context), defaultWorkers)
	for i := range g.lanes {
		g.lanes[i] = make(chan func(context.Context), defaultWorkerQueue)
	}
	return g, nil
}

// Table returns the session table (for status and tests).
func (g *Gateway) Table() Table { return g.table }

// Start runs the gateway's workers and sweepers, and re-establishes the
// persisted presence subscriptions. The SIP and XMPP servers must be
// listening.
func (g *Gateway) Start(ctx context.Context) {
	for _, lane := range g.lanes {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for {
				select {
				case <-g.ctx.Done():
					return
				case job := <-lane:
					job(g.ctx)
				}
			}
		}()
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.sweep()
	}()
	g.restoreSubscriptions(ctx)
}

// Close ends every session (bouncing what was still queued; the SIP
// server sends the BYEs as it stops), stops the workers and forgets the
// SIP resources. Persisted subscriptions stay for the next start; the SIP
// server ends the live ones itself when it stops.
func (g *Gateway) Close(ctx context.Context) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	eps := make([]*sipEndpoint, 0, len(g.endpoints))
	for _, e := range g.endpoints {
		eps = append(eps, e)
	}
	g.endpoints = map[string]*sipEndpoint{}
	g.mu.Unlock()

	// The sessions end here (queued messages bounce); their BYEs are the
	// SIP server's to send as it stops, and it waits for the answers
	// before it closes its transports: a BYE of ours racing with that
	// would leave the peer unable to answer, and its session up.
	g.table.Close()
	for range 3 {
		all, _ := g.table.All(ctx)
		if len(all) == 0 {
			break
		}
		for _, s := range all {
			g.end(ctx, s.Thread, EndShutdown, "")
		}
	}
	for _, e := range eps {
		g.opts.XMPP.RemoveEndpoint(e)
	}
	g.cancel()
	g.wg.Wait()
}

// SetIdleTimeout changes the idle timeout of sessions (a SIGHUP reload);
// zero or less restores the default.
func (g *Gateway) SetIdleTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultIdleTimeout
	}
	g.idle.Store(int64(d))
}

// sweep ends idle sessions with BYE and drops SIP resources whose
// registrations expired.
func (g *Gateway) sweep() {
	every := 250 * time.Millisecond
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		idle, _ := g.table.Idle(g.ctx, time.Now(), time.Duration(g.idle.Load()))
		for _, s := range idle {
			g.log.Info("session idle, hanging up", "thread", s.Thread, "local", s.Local.String(), "remote", s.Remote.String())
			g.end(g.ctx, s.Thread, EndIdle, "")
			if s.DialogID != "" {
				hctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
				if err := g.opts.SIP.Hangup(hctx, s.DialogID); err != nil {
					g.log.Debug("idle hangup failed", "thread", s.Thread, "error", err)
				}
				cancel()
			}
		}
		g.sweepEndpoints()
	}
}

// lane queues job on the worker of key, so jobs for one key run in order.
// It fails with ErrBusy when that worker is backed up. A slow SIP client
// holds up the keys that share its lane (1/64 of them) for at most the
// job's own timeout.
func (g *Gateway) lane(key string, job func(context.Context)) error {
	l := g.lanes[maphash.String(g.seed, key)%uint64(len(g.lanes))]
	select {
	case l <- job:
		return nil
	default:
		return ErrBusy
	}
}

// isLocal reports whether domain is one of ours.
func (g *Gateway) isLocal(domain string) bool { return g.domains[domain] }

// modeTTL is how long the gateway reuses a peer's mode before asking
// again (the resolver below keeps DNS answers for their own TTL).
const modeTTL = 5 * time.Second

type cachedMode struct {
	mode  string
	until int64 // unix nanoseconds
}

// mode returns how domain is reached.
func (g *Gateway) mode(ctx context.Context, domain string) string {
	now := time.Now().UnixNano()
	if v, ok := g.modes.Load(domain); ok {
		if c := v.(cachedMode); now < c.until {
			return c.mode
		}
	}
	m, err := g.opts.Mode(ctx, domain)
	if err != nil {
		g.log.Debug("peer mode lookup failed", "domain", domain, "error", err)
		return ModeNone // not kept: the next message asks again
	}
	g.modes.Store(domain, cachedMode{mode: m, until: now + int64(modeTTL)})
	return m
}

// StanzaError is an XMPP stanza error condition for the sender.
type StanzaError struct {
	Cond, Text string
	Err        error
}

func (e *StanzaError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("session: %s: %v", e.Cond, e.Err)
	}
	return "session: " + e.Cond
}

// Condition returns the RFC 6120 condition.
func (e *StanzaError) Condition() string { return e.Cond }

func (e *StanzaError) Unwrap() error { return e.Err }

// SIPStatusError is a SIP final status for a sender.
type SIPStatusError struct {
	Code   int
	Reason string
}

func (e *SIPStatusError) Error() string { return fmt.Sprintf("session: %d %s", e.Code, e.Reason) }

// SIPStatus returns the status and reason.
func (e *SIPStatusError) SIPStatus() (int, string) { return e.Code, e.Reason }

// sipStatusOf returns the SIP status an error carries, or 0.
func sipStatusOf(err error) int {
	var se interface{ SIPStatus() (int, string) }
	if errors.As(err, &se) {
		c, _ := se.SIPStatus()
		return c
	}
	return 0
}

// conditionOf returns the stanza error condition an error carries, or "".
func conditionOf(err error) string {
	var ce interface{ Condition() string }
	if errors.As(err, &ce) {
		return ce.Condition()
	}
	return ""
}

func (g *Gateway) countRouted(path string) {
	if g.opts.Metrics != nil {
		g.opts.Metrics.MessageRouted(path)
	}
}

func (g *Gateway) countFailed(cond string) {
	if g.opts.Metrics != nil {
		g.opts.Metrics.DeliveryFailed(cond)
	}
}
