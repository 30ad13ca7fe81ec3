package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/umpp/umpp/session"
	"github.com/umpp/umpp/sipside"
	"github.com/umpp/umpp/xmppside"
	"github.com/umpp/umpp/xmppside/dialback"
)

// buildParts creates the protocol servers and binds their listeners, so
// that when it returns every configured socket accepts.
func (d *daemon) buildParts(ctx context.Context) error {
	cfg := d.config()
	st := d.partsStore() // timed when metrics are on

	secret, err := dialback.LoadOrCreateSecret(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("xmpp: dialback secret: %w", err)
	}
	b := &bridge{}
	loc := xmppside.NewMemLocator()
	xs, err := xmppside.New(xmppside.Options{
		Domains:         cfg.Domains,
		Users:           st,
		Rosters:         st,
		Offline:         st,
		TLS:             d.certs.ServerConfig(),
		MaxStanzaBytes:  cfg.Limits.MaxStanzaBytes,
		SoftwareName:    "umppd",
		SoftwareVersion: versionString(),
		Logger:          d.log.With("part", "xmpp"),

		Resolver:       d.resolver,
		ClientTLS:      d.certs.ClientConfig,
		RootCAs:        d.certs.RootCAs,
		DialbackSecret: secret,
		S2SAllowPlain:  !cfg.XMPP.S2SRequireTLS,
		S2SIdleTimeout: cfg.XMPP.S2SIdleTimeout,
		AllowDomain:    d.federationAllows,
		Metrics:        d.xmppMetrics(),

		// The UMPP gateway (package session) behind the adapters in
		// gateway.go.
		Locator:  loc,
		Remote:   b,
		Presence: b,
		Roster:   b,
		Messages: b,
	})
	if err != nil {
		return err
	}
	if err := xs.Listen(cfg.XMPP.C2SListen, cfg.XMPP.C2SDirectListen); err != nil {
		xs.Close()
		return fmt.Errorf("xmpp: %w", err)
	}
	if err := xs.ListenS2S(cfg.XMPP.S2SListen); err != nil {
		xs.Close()
		return fmt.Errorf("xmpp: %w", err)
	}
	c2s, direct := xs.Addrs()
	for _, a := range c2s {
		d.log.Info("listening", "proto", "xmpp-c2s", "addr", a.String(), "tls", "starttls")
	}
	for _, a := range direct {
		d.log.Info("listening", "proto", "xmpp-c2s", "addr", a.String(), "tls", "direct")
	}
	for _, a := range xs.S2SAddrs() {
		d.log.Info("listening", "proto", "xmpp-s2s", "addr", a.String(), "tls", "starttls")
	}
	d.parts = append(d.parts, namedComponent{"xmpp", xs})

	regs := registrations{sipside.NewMemoryRegistrations(0), b}
	ss, err := sipside.New(sipside.Options{
		Domains:         cfg.Domains,
		Users:           st,
		TLS:             d.certs.ServerConfig(),
		Listen:          cfg.SIP.Listen,
		MaxMessageBytes: cfg.Limits.MaxSIPMessageBytes,
		UserAgent:       cfg.SIP.UserAgent,
		Logger:          d.log.With("part", "sip"),
		// Peer domains' requests are taken from the domains federation
		// allows, once proven to come from their servers (TLS client
		// certificate or resolved address; sipside/peer.go).
		PeerPolicy:       d.federationAllows,
		RootCAs:          d.certs.RootCAs,
		Resolver:         sipResolver{d.resolver},
		Registrations:    regs,
		PresencePolicy:   b,
		Gateway:          b,
		Sessions:         b,
		RemotePresence:   b,
		PresenceChanged:  b.presenceChanged,
		DigestAlgorithms: cfg.SIP.DigestAlgorithms,
		Metrics:          d.sipMetrics(),
	})
	if err != nil {
		return err
	}
	gw, err := d.newGateway(xs, loc, ss, regs)
	if err != nil {
		ss.Close()
		return err
	}
	b.gw.Store(gw)
	if err := ss.Listen(ctx); err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	for _, a := range ss.Addrs() {
		d.log.Info("listening", "proto", "sip", "addr", a.String())
	}
	d.parts = append(d.parts, namedComponent{"sip", ss}, namedComponent{"gateway", gatewayPart{gw}})
	d.gateway = gw
	return nil
}

// newGateway builds the UMPP gateway on the two servers.
func (d *daemon) newGateway(xs *xmppside.Server, loc xmppside.Locator, ss *sipside.Server, regs sipside.Registrations) (*session.Gateway, error) {
	cfg := d.config()
	port := 0
	if addrs := xs.S2SAddrs(); len(addrs) > 0 {
		if ta, ok := addrs[0].(*net.TCPAddr); ok {
			port = ta.Port
		}
	}
	var m session.Metrics
	if d.metrics != nil {
		m = d.metrics
	}
	st := d.partsStore()
	return session.NewGateway(session.GatewayOptions{
		Domains:       cfg.Domains,
		SIP:           sipAdapter{s: ss, regs: regs},
		XMPP:          &xmppAdapter{x: xs, loc: loc},
		Mode:          d.peerMode,
		Table:         session.NewMemTable(session.MemTableOptions{MaxSessionsPerPeer: cfg.Limits.MaxSessionsPerPeer}),
		Users:         st,
		Rosters:       st,
		Subscriptions: st,
		Offline:       st,
		Port:          port,
		IdleTimeout:   cfg.Session.IdleTimeout,

		MaxSubscriptionsPerPeer: cfg.Limits.MaxSubscriptionsPerPeer,
		Metrics:                 m,
		Logger:                  d.log.With("part", "gateway"),
	})
}

// peerMode is how a domain is reached: its [[peer]] entry, else DNS.
// Domains federation does not allow are not reached at all.
func (d *daemon) peerMode(ctx context.Context, domain string) (string, error) {
	if !d.federationAllows(domain) {
		return session.ModeNone, nil
	}
	res, err := d.resolver.Resolve(ctx, domain)
	if err != nil {
		return session.ModeNone, err
	}
	if old, seen := d.peerModes.Swap(domain, res.Mode); !seen || old.(string) != res.Mode {
		d.log.Info("peer mode", "domain", domain, "mode", res.Mode, "source", res.ModeSource,
			"sip_targets", len(res.SIP), "xmpp_targets", len(res.XMPP))
	}
	return res.Mode, nil
}

// gatewayPart runs the gateway as a daemon part: started once the
// listeners are bound, closed (BYE to every session) at shutdown.
type gatewayPart struct{ gw *session.Gateway }

func (p gatewayPart) Serve(ctx context.Context) error {
	p.gw.Start(ctx)
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	p.gw.Close(cctx)
	return nil
}

// federationAllows applies [federation]: every peer domain under the
// "open" policy, only the listed ones under "allowlist". It reads the
// configuration in force, so SIGHUP changes it live.
func (d *daemon) federationAllows(domain string) bool {
	cfg := d.config()
	return cfg.Federation.Policy != "allowlist" || slices.Contains(cfg.Federation.Allow, domain)
}

// xmppMetrics is the metrics recorder for the XMPP host, or nil (no
// calls on the routing path) when metrics are off.
func (d *daemon) xmppMetrics() xmppside.Metrics {
	if d.metrics == nil {
		return nil
	}
	return d.metrics
}

// sipMetrics is xmppMetrics for the SIP server.
func (d *daemon) sipMetrics() sipside.Metrics {
	if d.metrics == nil {
		return nil
	}
	return d.metrics
}
