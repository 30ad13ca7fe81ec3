package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/umpp/umpp/store"
)

// StoreOffline appends a message for m.To and returns its ID (m.ID is
// ignored). store.ErrQuota when the recipient already has the maximum
// number of messages (WithMaxOffline), store.ErrNotFound when the
// recipient has no account. A zero Stamp is set to the current time.
func (db *DB) StoreOffline(ctx context.Context, m store.OfflineMessage) (int64, error) {
	stamp := m.Stamp
	if stamp.IsZero() {
		stamp = time.Now()
	}
	var id int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := db.userExists(ctx, tx, m.To); err != nil {
			return err
		}
		if db.maxOffline > 0 {
			var n int
			err := tx.StmtContext(ctx, db.q.countOffline).QueryRowContext(ctx, m.To, db.maxOffline).Scan(&n)
			if err != nil {
				return fmt.Errorf("count: %w", err)
			}
			if n >= db.maxOffline {
				return fmt.Errorf("%d messages stored: %w", n, store.ErrQuota)
			}
		}
		return tx.StmtContext(ctx, db.q.insertOffline).QueryRowContext(ctx, m.To, m.From, nanos(stamp), nonNil(m.Stanza)).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: store offline message for %s: %w", m.To, err)
	}
	return id, nil
}

// OfflineMessages returns a recipient's messages in arrival order.
func (db *DB) OfflineMessages(ctx context.Context, to string) ([]store.OfflineMessage, error) {
	rows, err := db.q.offlineMessages.QueryContext(ctx, to)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: offline messages for %s: %w", to, err)
	}
	defer rows.Close()
	var msgs []store.OfflineMessage
	for rows.Next() {
		m := store.OfflineMessage{To: to}
		var stamp int64
		if err := rows.Scan(&m.ID, &m.From, &stamp, &m.Stanza); err != nil {
			return nil, fmt.Errorf("store/sqlite: offline messages for %s: %w", to, err)
		}
		m.Stamp = fromNanos(stamp)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store/sqlite: offline messages for %s: %w", to, err)
	}
	return msgs, nil
}

// DeleteOffline removes a recipient's messages with ID <= upTo. Deleting
// nothing is not an error: a second delivery attempt may race the first.
func (db *DB) DeleteOffline(ctx context.Context, to string, upTo int64) error {
	_, err := db.q.deleteOffline.ExecContext(ctx, to, upTo)
	if err != nil {
		return fmt.Errorf("store/sqlite: delete offline messages for %s up to %d: %w", to, upTo, err)
	}
	return nil
}
