package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/umpp/umpp/store"
)

// TestReadDuringWrite holds the writer inside an open transaction and
// looks an account up: the login must be answered from the last commit,
// not wait for the writer. The deadline only turns a hang into a failure.
func TestReadDuringWrite(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "umpp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cred := store.Credentials{Salt: []byte("salt"), Iterations: 1}
	if err := db.CreateUser(t.Context(), store.User{JID: "juliet@capulet.example", Credentials: cred}); err != nil {
		t.Fatal(err)
	}
	tx, err := db.w.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.StmtContext(t.Context(), db.q.createUser).ExecContext(t.Context(),
		"romeo@montague.example", "montague.example", []byte("salt"), 1, nil, nil, "", "", time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := db.User(ctx, "juliet@capulet.example"); err != nil {
		t.Errorf("User(juliet) while a write is open: %v", err)
	}
	if _, err := db.User(ctx, "romeo@montague.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("User(romeo) before commit = %v, want ErrNotFound (uncommitted)", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.User(t.Context(), "romeo@montague.example"); err != nil {
		t.Errorf("User(romeo) after commit: %v", err)
	}
}

// TestUpgradeFromVersion1 writes a file as the first release did (schema
// version 1, before presence subscriptions), then opens it with this
// code: the upgrade must keep every account, roster and offline message
// and give a working presence_subscriptions table.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "umpp.db")
	old, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, old, migrations()[:1]); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	created := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (jid, domain, salt, iterations, ha1_md5, created) VALUES (?, ?, ?, ?, ?, ?)`,
			[]any{"juliet@capulet.example", "capulet.example", []byte("salt"), 4096, "0123abcd", created.UnixNano()}},
		{`INSERT INTO users (jid, domain, salt, iterations, created) VALUES (?, ?, ?, ?, ?)`,
			[]any{"nurse@capulet.example", "capulet.example", []byte("salt"), 4096, created.UnixNano()}},
		{`INSERT INTO roster_items (owner, contact, name, groups, subscription) VALUES (?, ?, ?, ?, ?)`,
			[]any{"juliet@capulet.example", "romeo@montague.example", "Romeo", `["Montagues"]`, "both"}},
		{`INSERT INTO roster_versions (owner, version) VALUES (?, ?)`, []any{"juliet@capulet.example", 7}},
		{`INSERT INTO offline_messages (recipient, sender, stamp, stanza) VALUES (?, ?, ?, ?)`,
			[]any{"juliet@capulet.example", "romeo@montague.example/orchard", created.UnixNano(), []byte("<message>But soft!</message>")}},
	} {
		if _, err := old.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version 1 file: %v", err)
	}
	defer db.Close()
	var v int
	if err := db.w.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion() {
		t.Errorf("schema version after upgrade = %d, %v; want %d", v, err, SchemaVersion())
	}
	u, err := db.User(ctx, "juliet@capulet.example")
	if err != nil || string(u.Credentials.Salt) != "salt" || u.Credentials.HA1MD5 != "0123abcd" || !u.Created.Equal(created) {
		t.Errorf("User after upgrade = %+v, %v", u, err)
	}
	items, rv, err := db.Roster(ctx, "juliet@capulet.example")
	if err != nil || len(items) != 1 || items[0].Name != "Romeo" || items[0].Subscription != store.SubBoth || rv != 7 {
		t.Errorf("Roster after upgrade = %+v, version %d, %v", items, rv, err)
	}
	msgs, err := db.OfflineMessages(ctx, "juliet@capulet.example")
	if err != nil || len(msgs) != 1 || string(msgs[0].Stanza) != "<message>But soft!</message>" {
		t.Errorf("OfflineMessages after upgrade = %+v, %v", msgs, err)
	}

	// The new table works, cascade included.
	for _, w := range []string{"juliet@capulet.example", "nurse@capulet.example"} {
		if err := db.AddSubscription(ctx, w, "romeo@montague.example"); err != nil {
			t.Fatalf("AddSubscription(%s) after upgrade: %v", w, err)
		}
	}
	if err := db.DeleteUser(ctx, "nurse@capulet.example"); err != nil {
		t.Fatal(err)
	}
	subs, err := db.PresenceSubscriptions(ctx)
	if err != nil || len(subs) != 1 || subs[0].Watcher != "juliet@capulet.example" || subs[0].Presentity != "romeo@montague.example" {
		t.Errorf("PresenceSubscriptions after upgrade = %+v, %v; want juliet watching romeo", subs, err)
	}
}
