package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/umpp/umpp/store"
)

// DefaultMaxOffline is how many offline messages one recipient may have
// stored before StoreOffline returns store.ErrQuota.
const DefaultMaxOffline = 1000

// busyTimeout is how long a connection waits for a lock held by another
// connection (a checkpoint, or another process on the same file) before
// failing with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// ErrNewerSchema is returned by Open for a database written by a newer
// umppd: its schema version is higher than this code knows, and opening
// it could corrupt data the newer version relies on.
var ErrNewerSchema = errors.New("store/sqlite: database schema is newer than this umppd")

// DB is a store.Store kept in one SQLite file. It is safe for concurrent
// use: writes go through a single connection, reads through a pool of
// read-only connections that WAL mode lets run beside the writer.
type DB struct {
	path       string
	w          *sql.DB // one connection, BEGIN IMMEDIATE
	r          *sql.DB // read-only connections
	q          *stmts
	maxOffline int
}

var _ store.Store = (*DB)(nil)

type config struct {
	maxOffline int
	readers    int
}

// Option configures Open.
type Option func(*config)

// WithMaxOffline sets how many offline messages a recipient may have
// stored (DefaultMaxOffline unless set); n <= 0 means no limit.
func WithMaxOffline(n int) Option {
	return func(c *config) { c.maxOffline = n }
}

// WithReaders sets the size of the read-only connection pool (by default
// the number of CPUs, at least 4); n < 1 means 1.
func WithReaders(n int) Option {
	return func(c *config) { c.readers = max(n, 1) }
}

// Open opens the SQLite database at path, creating the file and its
// parent directories (mode 0700) when missing, and brings its schema up
// to date. It refuses, with ErrNewerSchema, a database whose schema
// version is newer than this code knows.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	cfg := config{maxOffline: DefaultMaxOffline, readers: max(4, runtime.NumCPU())}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" {
		return nil, errors.New("store/sqlite: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("store/sqlite: open %s: create directory: %w", abs, err)
	}

	db := &DB{path: abs, maxOffline: cfg.maxOffline}
	db.w, err = sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: open %s: %w", abs, err)
	}
	// One writer connection, kept open: SQLite allows one writer at a
	// time anyway, and queueing in database/sql is cheaper than retrying
	// on SQLITE_BUSY.
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)
	if err := db.w.PingContext(ctx); err != nil {
		db.w.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: %w", abs, err)
	}
	var mode string
	if err := db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.w.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: journal mode: %w", abs, err)
	}
	if mode != "wal" {
		db.w.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: journal mode is %q, not wal", abs, mode)
	}
	if err := migrate(ctx, db.w, migrations()); err != nil {
		db.w.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: %w", abs, err)
	}

	db.r, err = sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		db.w.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: readers: %w", abs, err)
	}
	db.r.SetMaxOpenConns(cfg.readers)
	db.r.SetMaxIdleConns(cfg.readers)
	db.r.SetConnMaxIdleTime(0)
	if err := db.r.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: readers: %w", abs, err)
	}
	if db.q, err = prepare(ctx, db.r, db.w); err != nil {
		db.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: %w", abs, err)
	}
	return db, nil
}

// dsn builds the modernc.org/sqlite data source name for path: a file:
// URI, so any character in the path is escaped, with the pragmas every
// connection needs.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), OmitHost: true, RawQuery: q.Encode()}
	return u.String()
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close closes both connection pools. The WAL is checkpointed into the
// main file when the last connection closes.
func (db *DB) Close() error {
	var errs []error
	if db.q != nil {
		if err := db.q.close(); err != nil {
			errs = append(errs, fmt.Errorf("statements: %w", err))
		}
	}
	if db.r != nil {
		if err := db.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("readers: %w", err))
		}
	}
	if err := db.w.Close(); err != nil {
		errs = append(errs, fmt.Errorf("writer: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store/sqlite: close %s: %w", db.path, err)
	}
	return nil
}

// write runs fn in a write transaction (BEGIN IMMEDIATE) and commits it
// when fn returns nil.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// read runs fn in a read transaction, a consistent snapshot.
func (db *DB) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to undo
	return fn(tx)
}

// nanos and fromNanos store times as integer Unix nanoseconds (UTC).
func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
