// Package sqlite is the default store.Store: one SQLite file, through the
// pure-Go driver modernc.org/sqlite (no cgo).
//
// # File layout
//
// Open(ctx, path) creates path's parent directories (mode 0700) and the
// database file. Beside it SQLite keeps path+"-wal" (the write-ahead log)
// and path+"-shm" (its index); all three belong together and must be on a
// local file system (WAL needs shared memory, so not NFS). Back up with
// SQLite's online backup or VACUUM INTO, not by copying the file alone
// while umppd runs.
//
// # Connections and WAL
//
// Every connection runs with journal_mode=WAL, synchronous=NORMAL (a
// commit survives a crash of umppd; a power loss may lose the last
// commits but never corrupts the file), busy_timeout=5s and foreign_keys
// on. Writes go through a single connection whose transactions start
// with BEGIN IMMEDIATE, so writers queue in Go instead of failing with
// SQLITE_BUSY; reads use a separate pool of query_only connections
// (WithReaders), which WAL lets read the last committed state while a
// write is in progress, so a login (a User lookup) never waits for an
// offline message being written. Every statement is prepared once per
// connection.
//
// # Schema and migrations
//
// Tables: users (jid, domain, salt, iterations, salted_sha1,
// salted_sha256, ha1_md5, ha1_sha256, created), roster_items (owner,
// contact, name, groups as a JSON array, subscription, pending_out,
// pending_in, approved, stanza; primary key (owner, contact)),
// roster_versions (owner, version), offline_messages (id, recipient,
// sender, stamp, stanza) and, since schema version 2,
// presence_subscriptions (watcher, presentity, created; primary key
// (watcher, presentity)). Owners, recipients and watchers reference users
// with ON DELETE CASCADE, so deleting an account deletes its roster,
// roster version, offline messages and the presence subscriptions kept
// for it as watcher, in the one DELETE statement. Times are integer Unix
// nanoseconds (UTC).
//
// The schema is an ordered list of migration steps; table schema_version
// holds how many have run. Open applies the missing ones, each in its own
// transaction, and refuses with ErrNewerSchema a file whose version is
// higher than this code knows (a downgrade), leaving it untouched. A
// schema change is a new step appended to the list, never an edit of a
// released one.
//
// Roster versions count per owner from 1. When an account is deleted and
// created again its versions restart; a client caching the old roster
// under the same version number would not notice (RFC 6121 §2.6 asks
// only that versions differ; a server can avoid this by refusing to
// re-register a deleted address for a while).
//
// # What a PostgreSQL implementation must provide
//
// The same behaviour, checked by store/storetest.Run: ErrExists on a
// duplicate account, ErrNotFound for missing accounts, items, owners
// and watchers, ErrQuota per recipient, ErrInvalid for what
// store.CheckSubscription refuses; deletion of an account cascading to
// its roster, roster version, offline messages and presence
// subscriptions as watcher; a second AddSubscription keeping the first
// Created (INSERT ... ON CONFLICT DO NOTHING); presence subscriptions
// sorted bytewise (COLLATE "C", not the database's locale); roster
// writes and the version bump in one transaction (SELECT ... FOR UPDATE
// or an UPSERT ... RETURNING on the version row); offline IDs
// increasing per recipient (a BIGSERIAL or identity column), the quota
// counted inside the inserting transaction (lock the recipient's user
// row first, or several nodes race past it); times at microsecond
// precision at least; and migrations under an advisory lock, since
// several umppd nodes may start at once.
package sqlite
