package store

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxJIDLength is the longest bare JID the store keeps, in bytes: a
// localpart and a domainpart of at most 1023 bytes each, joined by '@'
// (RFC 7622 §3.2 and §3.3).
const MaxJIDLength = 1023 + 1 + 1023

// PresenceSubscription is a presence subscription the server keeps on
// behalf of a local watcher to a presentity of another domain.
type PresenceSubscription struct {
	Watcher    string    // bare JID of the local user
	Presentity string    // bare JID of the remote user
	Created    time.Time // first added
}

// Subscriptions keeps the outbound presence subscriptions to be
// re-established after a restart: the gateway holds one SIP SUBSCRIBE per
// (local watcher, remote presentity) pair
// (draft-mahy-impp-unified-proposal §4.2).
//
// Invalid addresses (see CheckSubscription) give ErrInvalid.
type Subscriptions interface {
	// AddSubscription records the pair; adding an existing pair is not
	// an error and keeps Created. ErrNotFound if the watcher has no
	// account.
	AddSubscription(ctx context.Context, watcher, presentity string) error
	// RemoveSubscription forgets the pair; removing a missing pair is
	// not an error.
	RemoveSubscription(ctx context.Context, watcher, presentity string) error
	// PresenceSubscriptions returns every pair, sorted by watcher then
	// presentity (byte order).
	PresenceSubscriptions(ctx context.Context) ([]PresenceSubscription, error)
}

// CheckSubscription returns an error wrapping ErrInvalid unless watcher
// and presentity are both non-empty, valid UTF-8 and at most
// MaxJIDLength bytes long. It does not parse them: callers normalize
// JIDs before every call. Implementations of Subscriptions call it
// before touching the database.
func CheckSubscription(watcher, presentity string) error {
	if err := checkJID(watcher); err != nil {
		return fmt.Errorf("watcher: %w", err)
	}
	if err := checkJID(presentity); err != nil {
		return fmt.Errorf("presentity: %w", err)
	}
	return nil
}

func checkJID(jid string) error {
	switch {
	case jid == "":
		return fmt.Errorf("empty address: %w", ErrInvalid)
	case len(jid) > MaxJIDLength:
		return fmt.Errorf("address of %d bytes, longer than %d: %w", len(jid), MaxJIDLength, ErrInvalid)
	case !utf8.ValidString(jid):
		return fmt.Errorf("address %q is not UTF-8: %w", jid, ErrInvalid)
	}
	return nil
}
