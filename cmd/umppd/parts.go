package main

import (
	"context"
	"fmt"

	"github.com/umpp/umpp/sipside"
	"github.com/umpp/umpp/xmppside"
)

// buildParts creates the protocol servers and binds their listeners, so
// that when it returns every configured socket accepts.
func (d *daemon) buildParts(ctx context.Context) error {
	cfg := d.config()
	st := d.partsStore() // timed when metrics are on

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
	})
	if err != nil {
		return err
	}
	if err := xs.Listen(cfg.XMPP.C2SListen, cfg.XMPP.C2SDirectListen); err != nil {
		return fmt.Errorf("xmpp: %w", err)
	}
	c2s, direct := xs.Addrs()
	for _, a := range c2s {
		d.log.Info("listening", "proto", "xmpp-c2s", "addr", a.String(), "tls", "starttls")
	}
	for _, a := range direct {
		d.log.Info("listening", "proto", "xmpp-c2s", "addr", a.String(), "tls", "direct")
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
