package sqlite

import (
	"context"
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
