package main

import (
	"context"
	"fmt"
	"slices"

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

	ss, err := sipside.New(sipside.Options{
		Domains:         cfg.Domains,
		Users:           st,
		TLS:             d.certs.ServerConfig(),
		Listen:          cfg.SIP.Listen,
		MaxMessageBytes: cfg.Limits.MaxSIPMessageBytes,
		UserAgent:       cfg.SIP.UserAgent,
		Logger:          d.log.With("part", "sip"),
		// Peer domains' requests (PeerPolicy) stay refused until they
		// can be authenticated (TLS mutual authentication).
		Resolver:         d.resolver,
		DigestAlgorithms: cfg.SIP.DigestAlgorithms,
		Metrics:          d.sipMetrics(),
	})
	if err != nil {
		return err
	}
	if err := ss.Listen(ctx); err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	for _, a := range ss.Addrs() {
		d.log.Info("listening", "proto", "sip", "addr", a.String())
	}
	d.parts = append(d.parts, namedComponent{"sip", ss})
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
