package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/store/sqlite"
	"github.com/umpp/umpp/store/storetest"
)

func open(t testing.TB, path string, opts ...sqlite.Option) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "umpp.db"), sqlite.WithMaxOffline(storetest.MaxOffline))
	})
}

// TestRestart checks that what was written is there after the daemon
// stops and starts again on the same file.
func TestRestart(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "var", "lib", "umpp", "umpp.db")
	c, err := store.DeriveCredentials("juliet", "capulet.example", "wherefore art thou")
	if err != nil {
		t.Fatal(err)
	}

	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.CreateUser(ctx, store.User{JID: "juliet@capulet.example", Credentials: c}); err != nil {
		t.Fatal(err)
	}
	wantVersion, err := db.PutRosterItem(ctx, store.RosterItem{
		Owner: "juliet@capulet.example", Contact: "romeo@montague.example",
		Name: "Romeo", Groups: []string{"Montagues"}, Subscription: store.SubBoth,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.StoreOffline(ctx, store.OfflineMessage{
		To: "juliet@capulet.example", From: "romeo@montague.example/orchard",
		Stanza: []byte("<message><body>But soft!</body></message>"),
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = open(t, path)
	u, err := db.User(ctx, "juliet@capulet.example")
	if err != nil {
		t.Fatalf("User after restart: %v", err)
	}
	if !u.Credentials.VerifyPassword("wherefore art thou") {
		t.Error("password does not work after restart")
	}
	items, v, err := db.Roster(ctx, "juliet@capulet.example")
	if err != nil || len(items) != 1 || items[0].Name != "Romeo" || v != wantVersion {
		t.Errorf("Roster after restart = %+v, %d, %v; want Romeo at version %d", items, v, err, wantVersion)
	}
	msgs, err := db.OfflineMessages(ctx, "juliet@capulet.example")
	if err != nil || len(msgs) != 1 || string(msgs[0].Stanza) != "<message><body>But soft!</body></message>" {
		t.Errorf("OfflineMessages after restart = %+v, %v", msgs, err)
	}
	// Versions keep increasing across restarts.
	v2, err := db.PutRosterItem(ctx, store.RosterItem{Owner: "juliet@capulet.example", Contact: "nurse@capulet.example"})
	if err != nil || v2 <= wantVersion {
		t.Errorf("version after restart = %d, %v; want above %d", v2, err, wantVersion)
	}

	info, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("created directory mode = %o, want 700", perm)
	}
}

// rawDB opens the file with a plain connection, as an operator's sqlite3
// shell would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

func TestWALMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "umpp.db")
	db := open(t, path)
	if err := db.CreateUser(t.Context(), store.User{JID: "a@b.example", Credentials: store.Credentials{Salt: []byte("s"), Iterations: 1}}); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := rawDB(t, path).QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no write-ahead log next to the database: %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "umpp.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	newer := sqlite.SchemaVersion() + 1
	if _, err := rawDB(t, path).Exec("UPDATE schema_version SET version = ?", newer); err != nil {
		t.Fatal(err)
	}
	db, err = sqlite.Open(t.Context(), path)
	if err == nil {
		db.Close()
		t.Fatal("Open accepted a database from a newer umppd")
	}
	if !errors.Is(err, sqlite.ErrNewerSchema) {
		t.Errorf("error %v is not ErrNewerSchema", err)
	}
	for _, want := range []string{path, fmt.Sprintf("schema version %d", newer), fmt.Sprintf("knows up to %d", sqlite.SchemaVersion())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestMigrateExistingFile opens a file that already has the version
// table at 0 (a crash between creating it and the first step) beside an
// unrelated table.
func TestMigrateExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "umpp.db")
	raw := rawDB(t, path)
	if _, err := raw.Exec(`CREATE TABLE notes (x TEXT); CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db := open(t, path)
	if _, err := db.ListUsers(t.Context(), ""); err != nil {
		t.Errorf("ListUsers on a migrated file: %v", err)
	}
	var v int
	if err := rawDB(t, path).QueryRow("SELECT version FROM schema_version").Scan(&v); err != nil || v != sqlite.SchemaVersion() {
		t.Errorf("schema version = %d, %v; want %d", v, err, sqlite.SchemaVersion())
	}
}

func TestOpenUnwritablePath(t *testing.T) {
	dir := t.TempDir()
	// A regular file where a directory should be: fails even for root.
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
	}{
		{"file as parent", filepath.Join(blocker, "umpp.db")},
		{"file as grandparent", filepath.Join(blocker, "sub", "umpp.db")},
		{"directory as database", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sqlite.Open(t.Context(), tt.path)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%s) succeeded", tt.path)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the path %s", err, tt.path)
			}
		})
	}
	if _, err := sqlite.Open(t.Context(), ""); err == nil {
		t.Error("Open with an empty path succeeded")
	}
}

// TestOpenOddPath uses characters that mean something in a file: URI.
func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%chars&")
	path := filepath.Join(dir, "umpp db?.sqlite")
	db := open(t, path)
	if err := db.CreateUser(t.Context(), store.User{JID: "a@b.example", Credentials: store.Credentials{Salt: []byte("s"), Iterations: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %s: %v", path, err)
	}
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
}

// TestTwoOpenersSameFile is an admin tool adding accounts while umppd
// runs on the same file: two *DB, writing at once, must both succeed
// (busy_timeout and BEGIN IMMEDIATE, no SQLITE_BUSY) and lose nothing.
func TestTwoOpenersSameFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "umpp.db")
	a, b := open(t, path), open(t, path)
	ctx := t.Context()
	cred := store.Credentials{Salt: []byte("salt"), Iterations: 1}
	if err := a.CreateUser(ctx, store.User{JID: "juliet@capulet.example", Credentials: cred}); err != nil {
		t.Fatal(err)
	}
	const perWorker = 25
	var wg sync.WaitGroup
	errs := make(chan error, 4*perWorker*2)
	for w, db := range []*sqlite.DB{a, b, a, b} {
		wg.Go(func() {
			for i := range perWorker {
				contact := fmt.Sprintf("c%d-%d@verona.example", w, i)
				if _, err := db.PutRosterItem(ctx, store.RosterItem{Owner: "juliet@capulet.example", Contact: contact, Subscription: store.SubTo}); err != nil {
					errs <- err
				}
				if err := db.CreateUser(ctx, store.User{JID: contact, Credentials: cred}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, db := range []*sqlite.DB{a, b} {
		items, v, err := db.Roster(ctx, "juliet@capulet.example")
		if err != nil || len(items) != 4*perWorker || v != 4*perWorker {
			t.Errorf("Roster = %d items, version %d, %v; want %d and %d", len(items), v, err, 4*perWorker, 4*perWorker)
		}
		users, err := db.ListUsers(ctx, "verona.example")
		if err != nil || len(users) != 4*perWorker {
			t.Errorf("ListUsers = %d, %v; want %d", len(users), err, 4*perWorker)
		}
	}
}
