package store

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every Store implementation. Callers test them with
// errors.Is; implementations wrap them with context.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrQuota    = errors.New("store: quota exceeded")
	// ErrInvalid is an argument no store keeps: an empty or overlong
	// address, an unknown subscription state.
	ErrInvalid = errors.New("store: invalid argument")
)

// Store is everything umppd persists. It is the union of small
// interfaces so that a consumer asks only for what it uses (the XMPP host
// takes Users, Rosters and Offline; the SIP registrar only Users; the
// gateway's presence subscriptions to other domains, Subscriptions).
//
// Addresses are bare JIDs in their normalized string form
// ("localpart@domain"); the store never parses them.
type Store interface {
	Users
	Rosters
	Offline
	Subscriptions
	// Close releases the database. It is safe to call once.
	Close() error
}

// User is a local account.
type User struct {
	JID         string // bare, normalized: "romeo@montague.example.net"
	Credentials Credentials
	Created     time.Time
}

// Users manages local accounts.
type Users interface {
	// CreateUser adds an account; ErrExists if the JID is taken,
	// ErrInvalid if it is empty. A zero Created is set to the current
	// time.
	CreateUser(ctx context.Context, u User) error
	// DeleteUser removes an account with its roster, offline messages
	// and the presence subscriptions it is the watcher of, in one
	// transaction; ErrNotFound if there is none.
	DeleteUser(ctx context.Context, jid string) error
	// SetCredentials replaces an account's credentials; ErrNotFound if
	// there is no such account.
	SetCredentials(ctx context.Context, jid string, c Credentials) error
	// User returns one account; ErrNotFound if there is none.
	User(ctx context.Context, jid string) (User, error)
	// ListUsers returns the bare JIDs of a domain's accounts, sorted; an
	// empty domain lists every account.
	ListUsers(ctx context.Context, domain string) ([]string, error)
}

// Subscription is the RFC 6121 subscription state of a roster item, as
// seen by the roster's owner.
type Subscription string

// The RFC 6121 §2.1.2.5 subscription values.
const (
	SubNone Subscription = "none"
	SubTo   Subscription = "to"   // owner receives the contact's presence
	SubFrom Subscription = "from" // the contact receives the owner's presence
	SubBoth Subscription = "both"
)

// RosterItem is one contact of one owner, with the full subscription state
// of RFC 6121 Appendix A (the four states plus the pending flags).
type RosterItem struct {
	Owner        string // bare JID of the roster's owner
	Contact      string // bare JID of the contact
	Name         string
	Groups       []string
	Subscription Subscription
	PendingOut   bool // the owner asked to subscribe (ask="subscribe")
	PendingIn    bool // the contact asked to subscribe and awaits approval
	Approved     bool // pre-approved (RFC 6121 §3.4)
	// Stanza is the raw subscription request kept while PendingIn, so it
	// can be re-delivered at the owner's next login (RFC 6121 §3.1.3).
	Stanza []byte
}

// Rosters keeps contact lists and presence-subscription states.
type Rosters interface {
	// Roster returns an owner's items sorted by contact, and the roster
	// version (RFC 6121 §2.6), which increases with every write. An owner
	// who has no items yet (or no account) gets no items and version 0.
	Roster(ctx context.Context, owner string) ([]RosterItem, int64, error)
	// RosterItem returns one item; ErrNotFound if there is none.
	RosterItem(ctx context.Context, owner, contact string) (RosterItem, error)
	// PutRosterItem inserts or replaces an item and returns the new
	// roster version; ErrNotFound if the owner has no account,
	// ErrInvalid for an empty contact or an unknown Subscription. An
	// empty Subscription is stored as SubNone.
	PutRosterItem(ctx context.Context, item RosterItem) (int64, error)
	// DeleteRosterItem removes an item and returns the new roster
	// version; ErrNotFound if there is none.
	DeleteRosterItem(ctx context.Context, owner, contact string) (int64, error)
	// Watchers returns, sorted, the owners whose roster has contact with
	// subscription "to" or "both": who receives contact's presence.
	Watchers(ctx context.Context, contact string) ([]string, error)
}

// OfflineMessage is a stanza kept for a user who was not online.
type OfflineMessage struct {
	ID     int64     // assigned by the store, increasing per recipient
	To     string    // bare JID of the recipient
	From   string    // full or bare JID of the sender
	Stamp  time.Time // when the server received it (XEP-0203)
	Stanza []byte    // the stanza as received, serialized XML
}

// Offline keeps messages for users who are not online. Messages are
// removed only after they were delivered (DeleteOffline), so a crash
// between reading and delivering loses nothing.
type Offline interface {
	// StoreOffline appends a message and returns its ID (m.ID is
	// ignored); ErrQuota when the recipient already has the maximum
	// number of stored messages, ErrNotFound when the recipient has no
	// account. A zero Stamp is set to the current time.
	StoreOffline(ctx context.Context, m OfflineMessage) (int64, error)
	// OfflineMessages returns a recipient's messages in arrival order.
	OfflineMessages(ctx context.Context, to string) ([]OfflineMessage, error)
	// DeleteOffline removes a recipient's messages with ID <= upTo;
	// deleting nothing is not an error.
	DeleteOffline(ctx context.Context, to string, upTo int64) error
}
