package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The SQL of every statement, prepared once per connection at Open:
// parsing SQL is about half the cost of a point query in SQLite.
const (
	rosterColumns = `contact, name, groups, subscription, pending_out, pending_in, approved, stanza`

	sqlCreateUser = `INSERT INTO users
		(jid, domain, salt, iterations, salted_sha1, salted_sha256, ha1_md5, ha1_sha256, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (jid) DO NOTHING`
	sqlDeleteUser     = `DELETE FROM users WHERE jid = ?`
	sqlSetCredentials = `UPDATE users SET
		salt = ?, iterations = ?, salted_sha1 = ?, salted_sha256 = ?, ha1_md5 = ?, ha1_sha256 = ?
		WHERE jid = ?`
	sqlUser = `SELECT salt, iterations, salted_sha1, salted_sha256, ha1_md5, ha1_sha256, created
		FROM users WHERE jid = ?`
	sqlListAllUsers    = `SELECT jid FROM users ORDER BY jid`
	sqlListDomainUsers = `SELECT jid FROM users WHERE domain = ? ORDER BY jid`
	sqlUserExists      = `SELECT 1 FROM users WHERE jid = ?`

	sqlRosterVersion = `SELECT version FROM roster_versions WHERE owner = ?`
	sqlRoster        = `SELECT ` + rosterColumns + ` FROM roster_items WHERE owner = ? ORDER BY contact`
	sqlRosterItem    = `SELECT ` + rosterColumns + ` FROM roster_items WHERE owner = ? AND contact = ?`
	sqlPutRosterItem = `INSERT INTO roster_items (owner, ` + rosterColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (owner, contact) DO UPDATE SET
			name = excluded.name, groups = excluded.groups, subscription = excluded.subscription,
			pending_out = excluded.pending_out, pending_in = excluded.pending_in,
			approved = excluded.approved, stanza = excluded.stanza`
	sqlDeleteRosterItem = `DELETE FROM roster_items WHERE owner = ? AND contact = ?`
	sqlBumpVersion      = `INSERT INTO roster_versions (owner, version) VALUES (?, 1)
		ON CONFLICT (owner) DO UPDATE SET version = version + 1
		RETURNING version`
	sqlWatchers = `SELECT owner FROM roster_items
		WHERE contact = ? AND subscription IN ('to', 'both') ORDER BY owner`

	// Counting stops at the quota, so its cost stays bounded.
	sqlCountOffline = `SELECT count(*) FROM (SELECT 1 FROM offline_messages
		WHERE recipient = ? LIMIT ?)`
	sqlInsertOffline = `INSERT INTO offline_messages (recipient, sender, stamp, stanza)
		VALUES (?, ?, ?, ?) RETURNING id`
	sqlOfflineMessages = `SELECT id, sender, stamp, stanza FROM offline_messages
		WHERE recipient = ? ORDER BY id`
	sqlDeleteOffline = `DELETE FROM offline_messages WHERE recipient = ? AND id <= ?`

	sqlAddSubscription = `INSERT INTO presence_subscriptions (watcher, presentity, created)
		VALUES (?, ?, ?) ON CONFLICT (watcher, presentity) DO NOTHING`
	sqlRemoveSubscription    = `DELETE FROM presence_subscriptions WHERE watcher = ? AND presentity = ?`
	sqlPresenceSubscriptions = `SELECT watcher, presentity, created FROM presence_subscriptions
		ORDER BY watcher, presentity`
)

// stmts holds the prepared statements: reads on the read pool, writes
// (and the reads inside write transactions) on the writer.
type stmts struct {
	// read pool
	user, listAll, listDomain         *sql.Stmt
	rosterVersion, roster, rosterItem *sql.Stmt
	watchers, offlineMessages         *sql.Stmt
	presenceSubscriptions             *sql.Stmt
	// writer
	createUser, deleteUser, setCredentials, userExists *sql.Stmt
	putRosterItem, deleteRosterItem, bumpVersion       *sql.Stmt
	countOffline, insertOffline, deleteOffline         *sql.Stmt
	addSubscription, removeSubscription                *sql.Stmt

	all []*sql.Stmt
}

// prepare prepares every statement; on error it closes those already
// prepared.
func prepare(ctx context.Context, r, w *sql.DB) (*stmts, error) {
	s := &stmts{}
	list := []struct {
		dst   **sql.Stmt
		pool  *sql.DB
		query string
	}{
		{&s.user, r, sqlUser},
		{&s.listAll, r, sqlListAllUsers},
		{&s.listDomain, r, sqlListDomainUsers},
		{&s.rosterVersion, r, sqlRosterVersion},
		{&s.roster, r, sqlRoster},
		{&s.rosterItem, r, sqlRosterItem},
		{&s.watchers, r, sqlWatchers},
		{&s.offlineMessages, r, sqlOfflineMessages},
		{&s.presenceSubscriptions, r, sqlPresenceSubscriptions},
		{&s.createUser, w, sqlCreateUser},
		{&s.deleteUser, w, sqlDeleteUser},
		{&s.setCredentials, w, sqlSetCredentials},
		{&s.userExists, w, sqlUserExists},
		{&s.putRosterItem, w, sqlPutRosterItem},
		{&s.deleteRosterItem, w, sqlDeleteRosterItem},
		{&s.bumpVersion, w, sqlBumpVersion},
		{&s.countOffline, w, sqlCountOffline},
		{&s.insertOffline, w, sqlInsertOffline},
		{&s.deleteOffline, w, sqlDeleteOffline},
		{&s.addSubscription, w, sqlAddSubscription},
		{&s.removeSubscription, w, sqlRemoveSubscription},
	}
	for _, p := range list {
		st, err := p.pool.PrepareContext(ctx, p.query)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.dst = st
		s.all = append(s.all, st)
	}
	return s, nil
}

func (s *stmts) close() error {
	var errs []error
	for _, st := range s.all {
		if err := st.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
