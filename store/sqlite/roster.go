package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/umpp/umpp/store"
)

// scanRosterItem reads one row selected with rosterColumns.
func scanRosterItem(s interface{ Scan(...any) error }, owner string) (store.RosterItem, error) {
	it := store.RosterItem{Owner: owner}
	var groups, sub string
	var out, in, approved int
	if err := s.Scan(&it.Contact, &it.Name, &groups, &sub, &out, &in, &approved, &it.Stanza); err != nil {
		return store.RosterItem{}, err
	}
	if err := json.Unmarshal([]byte(groups), &it.Groups); err != nil {
		return store.RosterItem{}, fmt.Errorf("groups of %s: %w", it.Contact, err)
	}
	it.Subscription = store.Subscription(sub)
	it.PendingOut, it.PendingIn, it.Approved = out != 0, in != 0, approved != 0
	return it, nil
}

// Roster returns an owner's items sorted by contact and the roster
// version, read in one snapshot. An owner who never had an item (or has
// no account) has no items and version 0.
func (db *DB) Roster(ctx context.Context, owner string) ([]store.RosterItem, int64, error) {
	var items []store.RosterItem
	var version int64
	err := db.read(ctx, func(tx *sql.Tx) error {
		err := tx.StmtContext(ctx, db.q.rosterVersion).QueryRowContext(ctx, owner).Scan(&version)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("version: %w", err)
		}
		rows, err := tx.StmtContext(ctx, db.q.roster).QueryContext(ctx, owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			it, err := scanRosterItem(rows, owner)
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store/sqlite: roster %s: %w", owner, err)
	}
	return items, version, nil
}

// RosterItem returns one item; store.ErrNotFound if there is none.
func (db *DB) RosterItem(ctx context.Context, owner, contact string) (store.RosterItem, error) {
	row := db.q.rosterItem.QueryRowContext(ctx, owner, contact)
	it, err := scanRosterItem(row, owner)
	if errors.Is(err, sql.ErrNoRows) {
		return store.RosterItem{}, fmt.Errorf("store/sqlite: roster item %s/%s: %w", owner, contact, store.ErrNotFound)
	}
	if err != nil {
		return store.RosterItem{}, fmt.Errorf("store/sqlite: roster item %s/%s: %w", owner, contact, err)
	}
	return it, nil
}

// PutRosterItem inserts or replaces an item and returns the new roster
// version; store.ErrNotFound if the owner has no account. An empty
// Subscription is stored as "none".
func (db *DB) PutRosterItem(ctx context.Context, item store.RosterItem) (int64, error) {
	sub := item.Subscription
	if sub == "" {
		sub = store.SubNone
	}
	switch sub {
	case store.SubNone, store.SubTo, store.SubFrom, store.SubBoth:
	default:
		return 0, fmt.Errorf("store/sqlite: put roster item %s/%s: subscription %q: %w", item.Owner, item.Contact, sub, store.ErrInvalid)
	}
	if item.Contact == "" {
		return 0, fmt.Errorf("store/sqlite: put roster item %s: empty contact: %w", item.Owner, store.ErrInvalid)
	}
	groups := item.Groups
	if groups == nil {
		groups = []string{}
	}
	gj, err := json.Marshal(groups)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: put roster item %s/%s: groups: %w", item.Owner, item.Contact, err)
	}
	var version int64
	err = db.write(ctx, func(tx *sql.Tx) error {
		if err := db.userExists(ctx, tx, item.Owner); err != nil {
			return err
		}
		_, err := tx.StmtContext(ctx, db.q.putRosterItem).ExecContext(ctx, item.Owner, item.Contact, item.Name, string(gj), string(sub),
			boolInt(item.PendingOut), boolInt(item.PendingIn), boolInt(item.Approved), item.Stanza)
		if err != nil {
			return err
		}
		version, err = db.bumpVersion(ctx, tx, item.Owner)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: put roster item %s/%s: %w", item.Owner, item.Contact, err)
	}
	return version, nil
}

// DeleteRosterItem removes an item and returns the new roster version;
// store.ErrNotFound if there is none.
func (db *DB) DeleteRosterItem(ctx context.Context, owner, contact string) (int64, error) {
	var version int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, db.q.deleteRosterItem).ExecContext(ctx, owner, contact)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		version, err = db.bumpVersion(ctx, tx, owner)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: delete roster item %s/%s: %w", owner, contact, err)
	}
	return version, nil
}

// Watchers returns, sorted, the owners whose roster has contact with
// subscription "to" or "both".
func (db *DB) Watchers(ctx context.Context, contact string) ([]string, error) {
	rows, err := db.q.watchers.QueryContext(ctx, contact)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: watchers of %s: %w", contact, err)
	}
	defer rows.Close()
	var owners []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, fmt.Errorf("store/sqlite: watchers of %s: %w", contact, err)
		}
		owners = append(owners, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store/sqlite: watchers of %s: %w", contact, err)
	}
	return owners, nil
}

// userExists returns store.ErrNotFound when jid has no account.
func (db *DB) userExists(ctx context.Context, tx *sql.Tx, jid string) error {
	var one int
	err := tx.StmtContext(ctx, db.q.userExists).QueryRowContext(ctx, jid).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("no account %s: %w", jid, store.ErrNotFound)
	}
	return err
}

// bumpVersion increments owner's roster version and returns it.
func (db *DB) bumpVersion(ctx context.Context, tx *sql.Tx, owner string) (int64, error) {
	var v int64
	err := tx.StmtContext(ctx, db.q.bumpVersion).QueryRowContext(ctx, owner).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("roster version: %w", err)
	}
	return v, nil
}
