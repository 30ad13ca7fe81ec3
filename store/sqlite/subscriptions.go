package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/umpp/umpp/store"
)

// AddSubscription records that the server keeps a presence subscription
// for watcher to presentity. Adding an existing pair is not an error and
// keeps its Created; store.ErrNotFound if watcher has no account,
// store.ErrInvalid for an address store.CheckSubscription refuses.
func (db *DB) AddSubscription(ctx context.Context, watcher, presentity string) error {
	if err := store.CheckSubscription(watcher, presentity); err != nil {
		return fmt.Errorf("store/sqlite: add subscription: %w", err)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := db.userExists(ctx, tx, watcher); err != nil {
			return err
		}
		_, err := tx.StmtContext(ctx, db.q.addSubscription).ExecContext(ctx, watcher, presentity, nanos(time.Now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("store/sqlite: add subscription %s to %s: %w", watcher, presentity, err)
	}
	return nil
}

// RemoveSubscription forgets the pair; removing a missing pair is not an
// error. store.ErrInvalid for an address store.CheckSubscription refuses.
func (db *DB) RemoveSubscription(ctx context.Context, watcher, presentity string) error {
	if err := store.CheckSubscription(watcher, presentity); err != nil {
		return fmt.Errorf("store/sqlite: remove subscription: %w", err)
	}
	if _, err := db.q.removeSubscription.ExecContext(ctx, watcher, presentity); err != nil {
		return fmt.Errorf("store/sqlite: remove subscription %s to %s: %w", watcher, presentity, err)
	}
	return nil
}

// PresenceSubscriptions returns every pair, sorted by watcher then
// presentity in byte order (SQLite's BINARY collation).
func (db *DB) PresenceSubscriptions(ctx context.Context) ([]store.PresenceSubscription, error) {
	rows, err := db.q.presenceSubscriptions.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: presence subscriptions: %w", err)
	}
	defer rows.Close()
	var subs []store.PresenceSubscription
	for rows.Next() {
		var ps store.PresenceSubscription
		var created int64
		if err := rows.Scan(&ps.Watcher, &ps.Presentity, &created); err != nil {
			return nil, fmt.Errorf("store/sqlite: presence subscriptions: %w", err)
		}
		ps.Created = fromNanos(created)
		subs = append(subs, ps)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store/sqlite: presence subscriptions: %w", err)
	}
	return subs, nil
}
