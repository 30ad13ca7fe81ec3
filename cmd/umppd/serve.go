package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/config"
	"github.com/umpp/umpp/internal/admin"
	"github.com/umpp/umpp/internal/certs"
	"github.com/umpp/umpp/internal/metrics"
	"github.com/umpp/umpp/session"
	"github.com/umpp/umpp/store/sqlite"
)

// shutdownGrace is how long umppd waits for its parts to drain after
// SIGINT/SIGTERM before it gives up on them.
const shutdownGrace = 10 * time.Second

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "configuration file (default: the embedded default)")
	logFormat := fs.String("log-format", "", "log record format: text or json (default: [log] format)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: serve takes no arguments besides its flags", errUsage)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	format := cfg.Log.Format
	if *logFormat != "" {
		format = *logFormat
	}
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.Log.Level))
	log, err := newLogger(stderr, format, level)
	if err != nil {
		return err
	}

	d, err := newDaemon(ctx, cfg, *path, log, level)
	if err != nil {
		log.Error("cannot start", "err", err)
		return errReported
	}
	if err := d.run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return errReported
	}
	return nil
}

// component is a part of the daemon with a lifecycle: it has bound its
// listeners before Serve, and Serve returns once ctx ends and it drained.
type component interface {
	Serve(ctx context.Context) error
}

// daemon is one running umppd: the parts built from a configuration, and
// what SIGHUP can change live.
type daemon struct {
	path  string // configuration file; "" for the embedded default
	log   *slog.Logger
	level *slog.LevelVar

	started *config.Config // the configuration the listeners were built from
	mu      sync.Mutex     // guards cfg across reloads
	cfg     *config.Config // the configuration in force

	store    *sqlite.DB
	certs    *certs.Store
	resolver *addressing.Resolver
	parts    []namedComponent
	gateway  *session.Gateway
	// peerModes is the last mode logged per peer domain (string).
	peerModes sync.Map

	startedAt  time.Time
	ready      atomic.Bool      // serving: set by run once the parts serve
	metrics    *metrics.Metrics // nil when [metrics] listen is empty
	metricsSrv *metrics.Server
	adminSrv   *admin.Server
}

type namedComponent struct {
	name string
	c    component
}

// newDaemon builds every part and binds every listener, so that once it
// returns the server accepts connections.
func newDaemon(ctx context.Context, cfg *config.Config, path string, log *slog.Logger, level *slog.LevelVar) (*daemon, error) {
	d := &daemon{path: path, log: log, level: level, started: cfg, cfg: cfg, startedAt: time.Now()}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := d.listenAdmin(ctx); err != nil {
		return nil, err
	}
	d.metrics = d.newMetrics()
	db, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "umppd.db"), sqlite.WithMaxOffline(cfg.Limits.MaxOfflinePerUser))
	if err != nil {
		return nil, err
	}
	d.store = db

	if d.certs, err = loadCerts(cfg, log); err != nil {
		return nil, err
	}
	if d.resolver, err = newResolver(cfg, log); err != nil {
		return nil, err
	}
	if err := d.buildParts(ctx); err != nil {
		return nil, err
	}
	if err := d.listenMetrics(); err != nil {
		return nil, err
	}
	d.parts = append(d.parts, namedComponent{"admin", d.adminSrv})
	ok = true
	return d, nil
}

// loadCerts loads the configured certificate, or the self-signed one in
// the data directory, generating it on first run.
func loadCerts(cfg *config.Config, log *slog.Logger) (*certs.Store, error) {
	certFile, keyFile, err := certFiles(cfg, log)
	if err != nil {
		return nil, err
	}
	return certs.New(certFile, keyFile, cfg.TLS.CA)
}

// certFiles returns the certificate and key files to use: the configured
// ones, or the self-signed pair in the data directory (generated when
// missing or no longer covering the domains).
func certFiles(cfg *config.Config, log *slog.Logger) (certFile, keyFile string, err error) {
	if cfg.TLS.Cert != "" {
		return cfg.TLS.Cert, cfg.TLS.Key, nil
	}
	certFile, keyFile, _, err = certs.LoadOrCreate(cfg.DataDir, cfg.Domains, log)
	return certFile, keyFile, err
}

func newResolver(cfg *config.Config, log *slog.Logger) (*addressing.Resolver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return addressing.NewResolver(addressing.ResolverConfig{
		Server: cfg.DNS.Server,
		Peers:  staticPeers(cfg),
		Logger: log.With("part", "resolver"),
	})
}

// run serves until ctx ends, reloading on SIGHUP, then shuts every part
// down within shutdownGrace.
func (d *daemon) run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg := d.config()
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	sdn := notifier{d.log}
	go sdn.watchdog(serveCtx)
	errs := make(chan error, len(d.parts))
	var wg sync.WaitGroup
	for _, p := range d.parts {
		wg.Go(func() {
			if err := p.c.Serve(serveCtx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", p.name, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Every listener was bound by newDaemon: the server accepts now.
	sdn.ready()
	d.ready.Store(true)
	d.log.Info("umppd started", "version", versionString(), "domains", cfg.Domains, "data_dir", cfg.DataDir)

	var failure error
loop:
	for {
		select {
		case <-ctx.Done():
			d.log.Info("shutting down", "grace", shutdownGrace)
			break loop
		case err := <-errs:
			failure = err
			d.log.Error("a part failed; shutting down", "err", err)
			break loop
		case <-hup:
			sdn.reloading()
			d.reload()
			sdn.ready()
		}
	}
	d.ready.Store(false)
	sdn.stopping()
	cancel()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		failure = errors.Join(failure, fmt.Errorf("parts still running after %s", shutdownGrace))
	}
	d.close()
	if failure == nil {
		d.log.Info("stopped")
	}
	return failure
}

func (d *daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// reload applies SIGHUP: it re-reads the configuration and the TLS
// certificates, applies what can change live and logs what needs a
// restart. A configuration with problems changes nothing.
func (d *daemon) reload() {
	old := d.config()
	next := old
	if d.path != "" {
		cfg, err := config.Load(d.path)
		if err != nil {
			d.log.Error("reload: configuration not applied", "file", d.path, "err", err)
			return
		}
		next = cfg
	}
	live, _ := config.Reloadable(old, next)
	// What needs a restart is judged against what the process started
	// with, so it is reported on every reload until the restart.
	_, restart := config.Reloadable(d.started, next)
	if len(restart) > 0 {
		d.log.Warn("reload: these settings need a restart and were not applied", "keys", restart)
	}
	certFile, keyFile, err := certFiles(next, d.log)
	if err == nil {
		err = d.certs.ReloadFiles(certFile, keyFile, next.TLS.CA)
	}
	if err != nil {
		d.log.Error("reload: TLS certificate not reloaded; the old one stays in use", "err", err)
	}
	d.level.Set(parseLevel(next.Log.Level))
	if d.gateway != nil {
		d.gateway.SetIdleTimeout(next.Session.IdleTimeout)
	}
	if err := d.resolver.SetPeers(staticPeers(next)); err != nil {
		d.log.Error("reload: static peers not changed", "err", err)
	}
	d.mu.Lock()
	d.cfg = next
	d.mu.Unlock()
	d.log.Info("reloaded", "changed", live)
}

// close releases what newDaemon acquired.
func (d *daemon) close() {
	// The metrics and admin servers release their sockets here only when
	// run never served them; serving, they close when their context ends.
	if d.metricsSrv != nil {
		if err := d.metricsSrv.Close(); err != nil {
			d.log.Error("closing the metrics endpoint", "err", err)
		}
	}
	if d.adminSrv != nil {
		if err := d.adminSrv.Close(); err != nil {
			d.log.Error("closing the admin socket", "err", err)
		}
	}
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			d.log.Error("closing the store", "err", err)
		}
		d.store = nil
	}
}
