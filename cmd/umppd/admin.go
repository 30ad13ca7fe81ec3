package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/umpp/umpp/internal/admin"
	"github.com/umpp/umpp/sipside"
	"github.com/umpp/umpp/xmppside"
)

// adminSocket is where the daemon of a configuration answers.
func adminSocket(dataDir string) string { return filepath.Join(dataDir, admin.SocketName) }

// listenAdmin binds the admin socket in the data directory; it fails when
// another daemon answers there. It runs before anything else is opened,
// so a second umppd on the same data directory stops at once with a
// clear reason.
func (d *daemon) listenAdmin(ctx context.Context) error {
	srv, err := admin.Listen(ctx, adminSocket(d.config().DataDir), d.status, d.log.With("part", "admin"))
	if err != nil {
		return err
	}
	d.adminSrv = srv
	d.log.Info("listening", "proto", "admin", "addr", srv.Path())
	return nil
}

// status is the daemon's answer to `umppd status`: it reads the parts'
// snapshots, never their hot paths.
func (d *daemon) status(ctx context.Context) admin.Status {
	cfg := d.config()
	st := admin.Status{
		Version:   bareVersion(),
		PID:       os.Getpid(),
		Started:   d.startedAt,
		Domains:   cfg.Domains,
		Ready:     d.ready.Load(),
		Listeners: []admin.Listener{},
		Sessions:  []admin.Session{},
		Peers:     []admin.Peer{},
	}
	for _, p := range d.parts {
		switch c := p.c.(type) {
		case *xmppside.Server:
			c2s, direct := c.Addrs()
			for _, a := range c2s {
				st.Listeners = append(st.Listeners, admin.Listener{Proto: "xmpp-c2s", Addr: a.String(), TLS: "starttls"})
			}
			for _, a := range direct {
				st.Listeners = append(st.Listeners, admin.Listener{Proto: "xmpp-c2s", Addr: a.String(), TLS: "direct"})
			}
			xs := c.Stats()
			st.Counts.C2SConnections += xs.Connections
			for _, s := range xs.Sessions {
				st.Sessions = append(st.Sessions, admin.Session{Protocol: "xmpp", Address: s.JID, Remote: s.Remote, TLSVersion: s.TLSVersion})
			}
			st.Counts.XMPPSessions += len(xs.Sessions)
			for _, p := range xs.S2S {
				st.Peers = append(st.Peers, admin.Peer{Domain: p.Domain, Local: p.Local, Protocol: "xmpp-s2s",
					Direction: p.Direction, Auth: p.Auth, TLSVersion: p.TLSVersion, Remote: p.Remote, Since: p.Since})
			}
		case *sipside.Server:
			for _, a := range c.Addrs() {
				l := admin.Listener{Proto: "sip", Addr: a.String()}
				if a.Transport == "tls" {
					l.TLS = "direct"
				}
				st.Listeners = append(st.Listeners, l)
			}
			ss := c.Stats()
			for _, b := range ss.Registrations {
				st.Sessions = append(st.Sessions, admin.Session{Protocol: "sip", Address: b.AOR, Contact: b.Contact,
					Remote: b.Source, Transport: b.Transport, Expires: b.Expires})
			}
			st.Counts.SIPRegistrations += len(ss.Registrations)
			st.Counts.SubscriptionsIn += ss.Subscriptions
		}
	}
	if d.metricsSrv != nil {
		st.Listeners = append(st.Listeners, admin.Listener{Proto: "metrics", Addr: d.metricsSrv.Addr().String()})
	}
	if d.adminSrv != nil {
		st.Listeners = append(st.Listeners, admin.Listener{Proto: "admin", Addr: d.adminSrv.Path()})
	}
	if d.gateway != nil {
		// UMPP IM sessions: the local full JID, the peer's full JID and the
		// session's thread.
		all, _ := d.gateway.Table().All(ctx)
		for _, s := range all {
			st.Sessions = append(st.Sessions, admin.Session{Protocol: "umpp-im", Address: s.Local.String(),
				Remote: s.Remote.String(), Contact: "thread=" + s.Thread + " " + s.State.String()})
		}
		st.Counts.IMSessions = len(all)
		st.Counts.SubscriptionsOut = d.gateway.Subscriptions()
	}
	st.Counts.Peers = len(st.Peers)
	return st
}
