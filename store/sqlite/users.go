package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/umpp/umpp/store"
)

// domainOf returns the domain part of a bare JID: what follows the '@',
// or the whole string for a JID without a localpart.
func domainOf(jid string) string {
	if i := strings.LastIndexByte(jid, '@'); i >= 0 {
		return jid[i+1:]
	}
	return jid
}

// CreateUser adds an account; store.ErrExists if the JID is taken. A zero
// Created is set to the current time.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	if u.JID == "" {
		return fmt.Errorf("store/sqlite: create user: empty jid: %w", store.ErrInvalid)
	}
	created := u.Created
	if created.IsZero() {
		created = time.Now()
	}
	c := u.Credentials
	res, err := db.q.createUser.ExecContext(ctx, u.JID, domainOf(u.JID), nonNil(c.Salt), c.Iterations, c.SaltedSHA1, c.SaltedSHA256, c.HA1MD5, c.HA1SHA256, nanos(created))
	if err != nil {
		return fmt.Errorf("store/sqlite: create user %s: %w", u.JID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store/sqlite: create user %s: %w", u.JID, err)
	} else if n == 0 {
		return fmt.Errorf("store/sqlite: create user %s: %w", u.JID, store.ErrExists)
	}
	return nil
}

// DeleteUser removes an account; its roster items, roster version,
// offline messages and the presence subscriptions it is the watcher of go
// with it, in the same statement (foreign keys ON DELETE CASCADE). Items in
// other users' rosters that name this account as contact stay: cleaning
// those up (and telling the contacts) is the XMPP host's job.
func (db *DB) DeleteUser(ctx context.Context, jid string) error {
	res, err := db.q.deleteUser.ExecContext(ctx, jid)
	if err != nil {
		return fmt.Errorf("store/sqlite: delete user %s: %w", jid, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store/sqlite: delete user %s: %w", jid, err)
	} else if n == 0 {
		return fmt.Errorf("store/sqlite: delete user %s: %w", jid, store.ErrNotFound)
	}
	return nil
}

// SetCredentials replaces an account's credentials; store.ErrNotFound if
// there is no such account.
func (db *DB) SetCredentials(ctx context.Context, jid string, c store.Credentials) error {
	res, err := db.q.setCredentials.ExecContext(ctx,
		nonNil(c.Salt), c.Iterations, c.SaltedSHA1, c.SaltedSHA256, c.HA1MD5, c.HA1SHA256, jid)
	if err != nil {
		return fmt.Errorf("store/sqlite: set credentials %s: %w", jid, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store/sqlite: set credentials %s: %w", jid, err)
	} else if n == 0 {
		return fmt.Errorf("store/sqlite: set credentials %s: %w", jid, store.ErrNotFound)
	}
	return nil
}

// User returns one account; store.ErrNotFound if there is none.
func (db *DB) User(ctx context.Context, jid string) (store.User, error) {
	u := store.User{JID: jid}
	c := &u.Credentials
	var created int64
	err := db.q.user.QueryRowContext(ctx, jid).
		Scan(&c.Salt, &c.Iterations, &c.SaltedSHA1, &c.SaltedSHA256, &c.HA1MD5, &c.HA1SHA256, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, fmt.Errorf("store/sqlite: user %s: %w", jid, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("store/sqlite: user %s: %w", jid, err)
	}
	u.Created = fromNanos(created)
	return u, nil
}

// ListUsers returns the bare JIDs of a domain's accounts, sorted; an
// empty domain lists every account.
func (db *DB) ListUsers(ctx context.Context, domain string) ([]string, error) {
	var rows *sql.Rows
	var err error
	if domain == "" {
		rows, err = db.q.listAll.QueryContext(ctx)
	} else {
		rows, err = db.q.listDomain.QueryContext(ctx, domain)
	}
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list users %q: %w", domain, err)
	}
	defer rows.Close()
	var jids []string
	for rows.Next() {
		var j string
		if err := rows.Scan(&j); err != nil {
			return nil, fmt.Errorf("store/sqlite: list users %q: %w", domain, err)
		}
		jids = append(jids, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store/sqlite: list users %q: %w", domain, err)
	}
	return jids, nil
}

// nonNil turns a nil slice into an empty one, for NOT NULL BLOB columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
