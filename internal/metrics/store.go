package metrics

import (
	"context"
	"time"

	"github.com/umpp/umpp/store"
)

// Store wraps a store.Store and records the latency of every call in
// umpp_store_duration_seconds{op}, op being the method name.
type Store struct {
	next store.Store
	m    *Metrics
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.Subscriptions = (*Store)(nil)
)

// WrapStore returns s timed by m. With a nil m it returns s itself.
func (m *Metrics) WrapStore(s store.Store) store.Store {
	if m == nil {
		return s
	}
	return &Store{next: s, m: m}
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() store.Store { return s.next }

func (s *Store) observe(op string, start time.Time) { s.m.ObserveStore(op, time.Since(start)) }

// CreateUser implements store.Users.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	defer s.observe("CreateUser", time.Now())
	return s.next.CreateUser(ctx, u)
}

// DeleteUser implements store.Users.
func (s *Store) DeleteUser(ctx context.Context, jid string) error {
	defer s.observe("DeleteUser", time.Now())
	return s.next.DeleteUser(ctx, jid)
}

// SetCredentials implements store.Users.
func (s *Store) SetCredentials(ctx context.Context, jid string, c store.Credentials) error {
	defer s.observe("SetCredentials", time.Now())
	return s.next.SetCredentials(ctx, jid, c)
}

// User implements store.Users.
func (s *Store) User(ctx context.Context, jid string) (store.User, error) {
	defer s.observe("User", time.Now())
	return s.next.User(ctx, jid)
}

// ListUsers implements store.Users.
func (s *Store) ListUsers(ctx context.Context, domain string) ([]string, error) {
	defer s.observe("ListUsers", time.Now())
	return s.next.ListUsers(ctx, domain)
}

// Roster implements store.Rosters.
func (s *Store) Roster(ctx context.Context, owner string) ([]store.RosterItem, int64, error) {
	defer s.observe("Roster", time.Now())
	return s.next.Roster(ctx, owner)
}

// RosterItem implements store.Rosters.
func (s *Store) RosterItem(ctx context.Context, owner, contact string) (store.RosterItem, error) {
	defer s.observe("RosterItem", time.Now())
	return s.next.RosterItem(ctx, owner, contact)
}

// PutRosterItem implements store.Rosters.
func (s *Store) PutRosterItem(ctx context.Context, item store.RosterItem) (int64, error) {
	defer s.observe("PutRosterItem", time.Now())
	return s.next.PutRosterItem(ctx, item)
}

// DeleteRosterItem implements store.Rosters.
func (s *Store) DeleteRosterItem(ctx context.Context, owner, contact string) (int64, error) {
	defer s.observe("DeleteRosterItem", time.Now())
	return s.next.DeleteRosterItem(ctx, owner, contact)
}

// Watchers implements store.Rosters.
func (s *Store) Watchers(ctx context.Context, contact string) ([]string, error) {
	defer s.observe("Watchers", time.Now())
	return s.next.Watchers(ctx, contact)
}

// StoreOffline implements store.Offline.
func (s *Store) StoreOffline(ctx context.Context, msg store.OfflineMessage) (int64, error) {
	defer s.observe("StoreOffline", time.Now())
	return s.next.StoreOffline(ctx, msg)
}

// OfflineMessages implements store.Offline.
func (s *Store) OfflineMessages(ctx context.Context, to string) ([]store.OfflineMessage, error) {
	defer s.observe("OfflineMessages", time.Now())
	return s.next.OfflineMessages(ctx, to)
}

// DeleteOffline implements store.Offline.
func (s *Store) DeleteOffline(ctx context.Context, to string, upTo int64) error {
	defer s.observe("DeleteOffline", time.Now())
	return s.next.DeleteOffline(ctx, to, upTo)
}

// AddSubscription implements store.Subscriptions.
func (s *Store) AddSubscription(ctx context.Context, watcher, presentity string) error {
	defer s.observe("AddSubscription", time.Now())
	return s.next.AddSubscription(ctx, watcher, presentity)
}

// RemoveSubscription implements store.Subscriptions.
func (s *Store) RemoveSubscription(ctx context.Context, watcher, presentity string) error {
	defer s.observe("RemoveSubscription", time.Now())
	return s.next.RemoveSubscription(ctx, watcher, presentity)
}

// PresenceSubscriptions implements store.Subscriptions.
func (s *Store) PresenceSubscriptions(ctx context.Context) ([]store.PresenceSubscription, error) {
	defer s.observe("PresenceSubscriptions", time.Now())
	return s.next.PresenceSubscriptions(ctx)
}

// Close implements store.Store; it closes the wrapped store.
func (s *Store) Close() error { return s.next.Close() }
