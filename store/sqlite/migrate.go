package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one step of the schema history. Steps are never edited
// once released: a schema change is a new step at the end.
type migration struct {
	name  string
	stmts []string
}

// migrations returns the schema history in order; step i brings the
// database from version i to version i+1.
func migrations() []migration {
	return []migration{
		{
			name: "initial schema",
			stmts: []string{
				`CREATE TABLE users (
					jid           TEXT PRIMARY KEY NOT NULL,
					domain        TEXT NOT NULL,
					salt          BLOB NOT NULL,
					iterations    INTEGER NOT NULL,
					salted_sha1   BLOB,
					salted_sha256 BLOB,
					ha1_md5       TEXT NOT NULL DEFAULT '',
					ha1_sha256    TEXT NOT NULL DEFAULT '',
					created       INTEGER NOT NULL
				)`,
				`CREATE INDEX users_domain ON users (domain, jid)`,
				`CREATE TABLE roster_items (
					owner        TEXT NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
					contact      TEXT NOT NULL,
					name         TEXT NOT NULL DEFAULT '',
					groups       TEXT NOT NULL DEFAULT '[]',
					subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
					pending_out  INTEGER NOT NULL DEFAULT 0,
					pending_in   INTEGER NOT NULL DEFAULT 0,
					approved     INTEGER NOT NULL DEFAULT 0,
					stanza       BLOB,
					PRIMARY KEY (owner, contact)
				) WITHOUT ROWID`,
				`CREATE INDEX roster_items_contact ON roster_items (contact, subscription)`,
				`CREATE TABLE roster_versions (
					owner   TEXT PRIMARY KEY NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
					version INTEGER NOT NULL
				) WITHOUT ROWID`,
				`CREATE TABLE offline_messages (
					id        INTEGER PRIMARY KEY AUTOINCREMENT,
					recipient TEXT NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
					sender    TEXT NOT NULL,
					stamp     INTEGER NOT NULL,
					stanza    BLOB NOT NULL
				)`,
				`CREATE INDEX offline_messages_recipient ON offline_messages (recipient, id)`,
			},
		},
		{
			name: "presence subscriptions",
			stmts: []string{
				`CREATE TABLE presence_subscriptions (
					watcher    TEXT NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
					presentity TEXT NOT NULL,
					created    INTEGER NOT NULL,
					PRIMARY KEY (watcher, presentity)
				) WITHOUT ROWID`,
			},
		},
	}
}

// SchemaVersion is the schema version this code writes: the number of
// migration steps it knows.
func SchemaVersion() int { return len(migrations()) }

// migrate brings the schema to the version of steps (all of migrations()
// but in tests of an upgrade), one transaction per step, and refuses a
// database whose version is newer.
func migrate(ctx context.Context, w *sql.DB, steps []migration) error {
	_, err := w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		version INTEGER NOT NULL
	)`)
	if err != nil {
		return fmt.Errorf("migrate: create schema_version: %w", err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING`); err != nil {
		return fmt.Errorf("migrate: init schema_version: %w", err)
	}
	for {
		done, err := migrateStep(ctx, w, steps)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateStep applies the next step, if any, in its own transaction. The
// version is read inside the transaction, so two processes opening the
// same file do not both apply a step.
func migrateStep(ctx context.Context, w *sql.DB, steps []migration) (done bool, err error) {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE id = 1`).Scan(&v); err != nil {
		return false, fmt.Errorf("migrate: read schema_version: %w", err)
	}
	switch {
	case v > len(steps):
		return false, fmt.Errorf("%w: database has schema version %d, this umppd knows up to %d; run a newer umppd or restore a backup", ErrNewerSchema, v, len(steps))
	case v == len(steps):
		return true, nil
	case v < 0:
		return false, fmt.Errorf("migrate: invalid schema version %d", v)
	}
	m := steps[v]
	for _, s := range m.stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return false, fmt.Errorf("migrate to version %d (%s): %w", v+1, m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ? WHERE id = 1`, v+1); err != nil {
		return false, fmt.Errorf("migrate to version %d: %w", v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate to version %d (%s): commit: %w", v+1, m.name, err)
	}
	return false, nil
}
