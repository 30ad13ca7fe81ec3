package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/umpp/umpp/internal/metrics"
	"github.com/umpp/umpp/sipside"
	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/xmppside"
)

// pingJID is an account that cannot exist (.invalid, RFC 2606): looking
// it up is a cheap indexed read that proves the store answers.
const pingJID = "readyz@ping.invalid"

// pingStore checks that the store answers a read.
func (d *daemon) pingStore(ctx context.Context) error {
	_, err := d.store.User(ctx, pingJID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// partsStore is the store the protocol parts use: the SQLite store, timed
// by the metrics when they are on.
func (d *daemon) partsStore() store.Store {
	if d.metrics == nil {
		return d.store
	}
	return d.metrics.WrapStore(d.store)
}

// ready reports whether the daemon serves: every listener bound, run
// started the parts, and the store answers.
func (d *daemon) readyCheck(ctx context.Context) error {
	if !d.ready.Load() {
		return errors.New("not serving (starting or stopping)")
	}
	return d.pingStore(ctx)
}

// newMetrics builds the daemon's metrics, reading live counts from the
// parts at every scrape. It is nil when [metrics] listen is empty.
func (d *daemon) newMetrics() *metrics.Metrics {
	if d.config().Metrics.Listen == "" {
		return nil
	}
	return metrics.New(metrics.Options{Version: bareVersion(), Snapshot: d.metricsSnapshot})
}

// bareVersion is versionString without the program name:
// "v1.2.3 (go1.26.0)".
func bareVersion() string { return strings.TrimPrefix(versionString(), "umppd ") }

// listenMetrics binds the metrics endpoint and adds it to the parts.
func (d *daemon) listenMetrics() error {
	if d.metrics == nil {
		return nil
	}
	addr := d.config().Metrics.Listen
	srv, err := metrics.NewServer(addr, d.metrics, d.readyCheck, d.log.With("part", "metrics"))
	if err != nil {
		return err
	}
	d.metricsSrv = srv
	d.log.Info("listening", "proto", "metrics", "addr", srv.Addr().String())
	d.parts = append(d.parts, namedComponent{"metrics", srv})
	return nil
}

// xmppStats and sipStats are what the parts export for the operator.
type xmppStats interface{ Stats() xmppside.Stats }
type sipStats interface{ Stats() sipside.Stats }

// metricsSnapshot reads the live counts from the parts.
func (d *daemon) metricsSnapshot() metrics.Snapshot {
	s := metrics.Snapshot{C2SStreams: map[string]int{}, Subscriptions: map[string]int{}}
	for _, p := range d.parts {
		switch c := p.c.(type) {
		case xmppStats:
			st := c.Stats()
			s.C2SConnections += st.Connections
			for _, ss := range st.Sessions {
				s.C2SStreams[ss.Domain]++
			}
			for _, p := range st.S2S {
				s.S2S = append(s.S2S, metrics.S2SStream{Domain: p.Domain, Direction: p.Direction})
			}
		case sipStats:
			st := c.Stats()
			s.SIPRegistrations += len(st.Registrations)
			s.Subscriptions[metrics.DirectionIn] += st.Subscriptions
		}
	}
	// Hosted domains without a session report 0 rather than nothing.
	for _, dom := range d.config().Domains {
		s.C2SStreams[dom] += 0
	}
	return s
}
