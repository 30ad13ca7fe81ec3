package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/store/sqlite"
)

// benchStanza is a typical one-to-one chat message as stored offline.
var benchStanza = []byte(`<message xmlns='jabber:client' from='romeo@montague.example/orchard' ` +
	`to='juliet@capulet.example' type='chat' id='ktx72v49'><body>Art thou not Romeo, and a Montague?</body>` +
	`<active xmlns='http://jabber.org/protocol/chatstates'/></message>`)

// benchDB opens a database with users user0..user{n-1}@capulet.example,
// all sharing one derived credential (deriving is deliberately slow).
func benchDB(b *testing.B, users int, opts ...sqlite.Option) *sqlite.DB {
	b.Helper()
	db := open(b, filepath.Join(b.TempDir(), "umpp.db"), opts...)
	c, err := store.DeriveCredentials("user", "capulet.example", "secret")
	if err != nil {
		b.Fatal(err)
	}
	for i := range users {
		if err := db.CreateUser(context.Background(), store.User{JID: benchUser(i), Credentials: c}); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

func benchUser(i int) string { return fmt.Sprintf("user%d@capulet.example", i) }

func BenchmarkStoreOffline(b *testing.B) {
	const users, perUser = 100, 500 // stays under the default quota
	db := benchDB(b, users)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == users*perUser {
			b.StopTimer()
			for u := range users {
				if err := db.DeleteOffline(ctx, benchUser(u), 1<<62); err != nil {
					b.Fatal(err)
				}
			}
			i = 0
			b.StartTimer()
		}
		m := store.OfflineMessage{To: benchUser(i % users), From: "romeo@montague.example/orchard", Stanza: benchStanza}
		if _, err := db.StoreOffline(ctx, m); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkOfflineMessages(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			db := benchDB(b, 1)
			ctx := b.Context()
			for range n {
				m := store.OfflineMessage{To: benchUser(0), From: "romeo@montague.example/orchard", Stanza: benchStanza}
				if _, err := db.StoreOffline(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				msgs, err := db.OfflineMessages(ctx, benchUser(0))
				if err != nil || len(msgs) != n {
					b.Fatalf("OfflineMessages = %d, %v", len(msgs), err)
				}
			}
		})
	}
}

// BenchmarkUser is the credential lookup on every login.
func BenchmarkUser(b *testing.B) {
	const users = 1000
	db := benchDB(b, users)
	ctx := b.Context()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := db.User(ctx, benchUser(i%users)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := db.User(ctx, benchUser(i%users)); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	// Logins while offline messages are being written: with WAL and a
	// separate read pool, reads do not queue behind the writer.
	b.Run("parallel-with-writer", func(b *testing.B) {
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; wctx.Err() == nil; i++ {
				to := benchUser(i % users)
				if _, err := db.StoreOffline(wctx, store.OfflineMessage{To: to, From: "romeo@montague.example", Stanza: benchStanza}); err != nil && wctx.Err() == nil {
					if err := db.DeleteOffline(wctx, to, 1<<62); err != nil && wctx.Err() == nil {
						b.Error(err)
						return
					}
				}
			}
		})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := db.User(ctx, benchUser(i%users)); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
		b.StopTimer()
		stop()
		wg.Wait()
	})
}

func BenchmarkRosterItem(b *testing.B) {
	const contacts = 200
	db := benchDB(b, 1)
	ctx := b.Context()
	for i := range contacts {
		if _, err := db.PutRosterItem(ctx, store.RosterItem{
			Owner: benchUser(0), Contact: fmt.Sprintf("contact%d@montague.example", i),
			Name: "Contact", Groups: []string{"Friends"}, Subscription: store.SubBoth,
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := db.RosterItem(ctx, benchUser(0), fmt.Sprintf("contact%d@montague.example", i%contacts)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("put", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := db.PutRosterItem(ctx, store.RosterItem{
				Owner: benchUser(0), Contact: fmt.Sprintf("contact%d@montague.example", i%contacts),
				Name: "Contact", Groups: []string{"Friends", "Verona"}, Subscription: store.SubTo,
			}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run(fmt.Sprintf("roster=%d", contacts), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			items, _, err := db.Roster(ctx, benchUser(0))
			if err != nil || len(items) != contacts {
				b.Fatalf("Roster = %d, %v", len(items), err)
			}
		}
	})
	b.Run("watchers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.Watchers(ctx, "contact7@montague.example"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
