// Package storetest is the conformance suite every store.Store
// implementation runs, so that SQLite and a future PostgreSQL store
// behave the same for the XMPP host and the SIP server.
//
// An implementation's test calls Run with a function that opens a fresh,
// empty store whose per-recipient offline quota is MaxOffline:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "umpp.db"),
//				sqlite.WithMaxOffline(storetest.MaxOffline))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// Times are compared at microsecond precision (what PostgreSQL keeps).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umpp/umpp/store"
)

// MaxOffline is the per-recipient offline quota the stores given to Run
// must enforce.
const MaxOffline = 8

// Run runs the conformance suite; open must return a new, empty store
// for each call, closed by the caller's cleanup (Run closes nothing).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateUser", testCreateUser},
		{"CreateUserDuplicate", testCreateUserDuplicate},
		{"CreateUserDefaultCreated", testCreateUserDefaultCreated},
		{"UserNotFound", testUserNotFound},
		{"DeleteUser", testDeleteUser},
		{"ListUsers", testListUsers},
		{"SetCredentials", testSetCredentials},
		{"RosterItemRoundTrip", testRosterItemRoundTrip},
		{"RosterReplaceAndVersions", testRosterReplaceAndVersions},
		{"RosterSortedAndEmpty", testRosterSortedAndEmpty},
		{"RosterDelete", testRosterDelete},
		{"RosterUnknownOwner", testRosterUnknownOwner},
		{"Watchers", testWatchers},
		{"OfflineOrder", testOfflineOrder},
		{"OfflineDeleteUpTo", testOfflineDeleteUpTo},
		{"OfflineQuota", testOfflineQuota},
		{"OfflineUnknownRecipient", testOfflineUnknownRecipient},
		{"OfflineDefaultStamp", testOfflineDefaultStamp},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"SubscriptionAdd", testSubscriptionAdd},
		{"SubscriptionAddTwiceKeepsCreated", testSubscriptionAddTwice},
		{"SubscriptionRemove", testSubscriptionRemove},
		{"SubscriptionsSorted", testSubscriptionsSorted},
		{"SubscriptionUnknownWatcher", testSubscriptionUnknownWatcher},
		{"SubscriptionInvalid", testSubscriptionInvalid},
		{"DeleteUserRemovesSubscriptions", testDeleteUserRemovesSubscriptions},
		{"CanceledContext", testCanceledContext},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// creds derives credentials for jid's localpart and domain.
func creds(t testing.TB, jid, password string) store.Credentials {
	t.Helper()
	local, domain, ok := cutAt(jid)
	if !ok {
		t.Fatalf("test jid %q has no localpart", jid)
	}
	c, err := store.DeriveCredentials(local, domain, password)
	if err != nil {
		t.Fatalf("DeriveCredentials(%s): %v", jid, err)
	}
	return c
}

func cutAt(jid string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(jid, '@')
	if i < 0 {
		return "", "", false
	}
	return jid[:i], jid[i+1:], true
}

// addUser creates jid with the password "pw-" + jid.
func addUser(t testing.TB, s store.Store, jid string) {
	t.Helper()
	u := store.User{JID: jid, Credentials: creds(t, jid, "pw-"+jid), Created: time.Now()}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", jid, err)
	}
}

func putItem(t testing.TB, s store.Store, it store.RosterItem) int64 {
	t.Helper()
	v, err := s.PutRosterItem(context.Background(), it)
	if err != nil {
		t.Fatalf("PutRosterItem(%s/%s): %v", it.Owner, it.Contact, err)
	}
	return v
}

func storeMsg(t testing.TB, s store.Store, to, from, body string) int64 {
	t.Helper()
	id, err := s.StoreOffline(context.Background(), store.OfflineMessage{
		To: to, From: from, Stamp: time.Now(), Stanza: []byte(body),
	})
	if err != nil {
		t.Fatalf("StoreOffline(%s, %q): %v", to, body, err)
	}
	return id
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", what, err, target)
	}
}

func sameCredentials(a, b store.Credentials) bool {
	return bytes.Equal(a.Salt, b.Salt) && a.Iterations == b.Iterations &&
		bytes.Equal(a.SaltedSHA1, b.SaltedSHA1) && bytes.Equal(a.SaltedSHA256, b.SaltedSHA256) &&
		a.HA1MD5 == b.HA1MD5 && a.HA1SHA256 == b.HA1SHA256
}

func testCreateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := creds(t, "juliet@capulet.example", "wherefore")
	created := time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.FixedZone("CET", 3600))
	if err := s.CreateUser(ctx, store.User{JID: "juliet@capulet.example", Credentials: c, Created: created}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	u, err := s.User(ctx, "juliet@capulet.example")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if u.JID != "juliet@capulet.example" {
		t.Errorf("JID = %q", u.JID)
	}
	if !sameCredentials(u.Credentials, c) {
		t.Errorf("stored credentials differ from the created ones")
	}
	if !u.Created.Equal(created) {
		t.Errorf("Created = %v, want %v", u.Created, created)
	}
	// What a user sees: the password works after the round trip, for
	// PLAIN, SCRAM and SIP digest alike.
	if !u.Credentials.VerifyPassword("wherefore") || u.Credentials.VerifyPassword("Wherefore") {
		t.Error("stored credentials do not verify exactly the password")
	}
	if _, _, _, ok := u.Credentials.SCRAMLookup("SCRAM-SHA-256"); !ok {
		t.Error("stored credentials have no SCRAM-SHA-256 entry")
	}
	if ha1, ok := u.Credentials.HA1("MD5"); !ok || ha1 != c.HA1MD5 {
		t.Errorf("HA1(MD5) = %q, %v; want %q", ha1, ok, c.HA1MD5)
	}
}

func testCreateUserDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "romeo@montague.example")
	err := s.CreateUser(ctx, store.User{JID: "romeo@montague.example", Credentials: creds(t, "romeo@montague.example", "other")})
	wantErr(t, "second CreateUser", err, store.ErrExists)
	u, err := s.User(ctx, "romeo@montague.example")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if !u.Credentials.VerifyPassword("pw-romeo@montague.example") || u.Credentials.VerifyPassword("other") {
		t.Error("a refused duplicate changed the account's password")
	}
}

func testCreateUserDefaultCreated(t *testing.T, s store.Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	if err := s.CreateUser(ctx, store.User{JID: "nurse@capulet.example", Credentials: creds(t, "nurse@capulet.example", "x")}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	u, err := s.User(ctx, "nurse@capulet.example")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if u.Created.Before(before) || u.Created.After(time.Now().Add(time.Second)) {
		t.Errorf("Created = %v for a user created just now", u.Created)
	}
}

func testUserNotFound(t *testing.T, s store.Store) {
	addUser(t, s, "romeo@montague.example")
	for _, jid := range []string{"juliet@capulet.example", "ROMEO@montague.example", "romeo@montague.example.net", ""} {
		_, err := s.User(t.Context(), jid)
		wantErr(t, fmt.Sprintf("User(%q)", jid), err, store.ErrNotFound)
	}
}

func testDeleteUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "romeo@montague.example")
	addUser(t, s, "juliet@capulet.example")
	if err := s.DeleteUser(ctx, "romeo@montague.example"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err := s.User(ctx, "romeo@montague.example")
	wantErr(t, "User after delete", err, store.ErrNotFound)
	wantErr(t, "second DeleteUser", s.DeleteUser(ctx, "romeo@montague.example"), store.ErrNotFound)
	if _, err := s.User(ctx, "juliet@capulet.example"); err != nil {
		t.Errorf("deleting romeo lost juliet: %v", err)
	}
	// The JID is free again.
	addUser(t, s, "romeo@montague.example")
}

func testListUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, j := range []string{
		"tybalt@capulet.example", "juliet@capulet.example", "nurse@capulet.example",
		"romeo@montague.example", "benvolio@montague.example",
		"mercutio@notcapulet.example", "paris@sub.capulet.example",
	} {
		addUser(t, s, j)
	}
	tests := []struct {
		domain string
		want   []string
	}{
		{"capulet.example", []string{"juliet@capulet.example", "nurse@capulet.example", "tybalt@capulet.example"}},
		{"montague.example", []string{"benvolio@montague.example", "romeo@montague.example"}},
		{"sub.capulet.example", []string{"paris@sub.capulet.example"}},
		{"verona.example", nil},
		{"", []string{ // every domain
			"benvolio@montague.example", "juliet@capulet.example", "mercutio@notcapulet.example",
			"nurse@capulet.example", "paris@sub.capulet.example", "romeo@montague.example", "tybalt@capulet.example",
		}},
	}
	for _, tt := range tests {
		name := tt.domain
		if name == "" {
			name = "all"
		}
		t.Run(name, func(t *testing.T) {
			got, err := s.ListUsers(ctx, tt.domain)
			if err != nil {
				t.Fatalf("ListUsers(%q): %v", tt.domain, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ListUsers(%q) = %q, want %q", tt.domain, got, tt.want)
			}
		})
	}
}

func testSetCredentials(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "romeo@montague.example")
	c := creds(t, "romeo@montague.example", "new password")
	if err := s.SetCredentials(ctx, "romeo@montague.example", c); err != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	u, err := s.User(ctx, "romeo@montague.example")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if !sameCredentials(u.Credentials, c) {
		t.Error("stored credentials differ from the set ones")
	}
	if !u.Credentials.VerifyPassword("new password") || u.Credentials.VerifyPassword("pw-romeo@montague.example") {
		t.Error("after a password change the new password must work and the old one not")
	}
	err = s.SetCredentials(ctx, "juliet@capulet.example", c)
	wantErr(t, "SetCredentials for a missing account", err, store.ErrNotFound)
	if _, err := s.User(ctx, "juliet@capulet.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetCredentials created an account: User = %v", err)
	}
}

func sameItem(a, b store.RosterItem) bool {
	return a.Owner == b.Owner && a.Contact == b.Contact && a.Name == b.Name &&
		slices.Equal(a.Groups, b.Groups) && a.Subscription == b.Subscription &&
		a.PendingOut == b.PendingOut && a.PendingIn == b.PendingIn && a.Approved == b.Approved &&
		bytes.Equal(a.Stanza, b.Stanza)
}

func testRosterItemRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "juliet@capulet.example")
	items := []store.RosterItem{
		{
			Owner: "juliet@capulet.example", Contact: "romeo@montague.example", Name: "Romeo ❤",
			Groups: []string{"Friends", "Lovers", "«Montagues»"}, Subscription: store.SubBoth,
		},
		{
			Owner: "juliet@capulet.example", Contact: "paris@verona.example",
			Subscription: store.SubNone, PendingIn: true,
			Stanza: []byte(`<presence from='paris@verona.example' to='juliet@capulet.example' type='subscribe'/>`),
		},
		{
			Owner: "juliet@capulet.example", Contact: "sip-user@sip.example",
			Subscription: store.SubTo, PendingOut: false, Approved: true, Groups: []string{},
		},
		{Owner: "juliet@capulet.example", Contact: "nurse@capulet.example", Subscription: store.SubFrom, PendingOut: true},
	}
	for _, it := range items {
		putItem(t, s, it)
	}
	for _, want := range items {
		got, err := s.RosterItem(ctx, want.Owner, want.Contact)
		if err != nil {
			t.Fatalf("RosterItem(%s): %v", want.Contact, err)
		}
		if len(want.Groups) == 0 && len(got.Groups) == 0 {
			got.Groups = want.Groups // nil and empty are the same roster
		}
		if !sameItem(got, want) {
			t.Errorf("RosterItem(%s) = %+v\nwant %+v", want.Contact, got, want)
		}
	}
	// An empty subscription is "none".
	putItem(t, s, store.RosterItem{Owner: "juliet@capulet.example", Contact: "tybalt@capulet.example"})
	got, err := s.RosterItem(ctx, "juliet@capulet.example", "tybalt@capulet.example")
	if err != nil {
		t.Fatalf("RosterItem(tybalt): %v", err)
	}
	if got.Subscription != store.SubNone {
		t.Errorf("empty subscription stored as %q, want %q", got.Subscription, store.SubNone)
	}
	_, err = s.RosterItem(ctx, "juliet@capulet.example", "benvolio@montague.example")
	wantErr(t, "RosterItem for a missing contact", err, store.ErrNotFound)
	_, err = s.RosterItem(ctx, "romeo@montague.example", "juliet@capulet.example")
	wantErr(t, "RosterItem for a missing owner", err, store.ErrNotFound)
}

func testRosterReplaceAndVersions(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "juliet@capulet.example")
	addUser(t, s, "romeo@montague.example")
	it := store.RosterItem{Owner: "juliet@capulet.example", Contact: "romeo@montague.example", Subscription: store.SubNone, PendingOut: true}
	v1 := putItem(t, s, it)
	it.Subscription, it.PendingOut, it.Name, it.Groups = store.SubTo, false, "Romeo", []string{"Friends"}
	v2 := putItem(t, s, it)
	if v2 <= v1 {
		t.Errorf("version after replace = %d, not above %d", v2, v1)
	}
	got, err := s.RosterItem(ctx, it.Owner, it.Contact)
	if err != nil {
		t.Fatalf("RosterItem: %v", err)
	}
	if !sameItem(got, it) {
		t.Errorf("after replace RosterItem = %+v, want %+v", got, it)
	}
	items, v, err := s.Roster(ctx, "juliet@capulet.example")
	if err != nil {
		t.Fatalf("Roster: %v", err)
	}
	if len(items) != 1 || v != v2 {
		t.Errorf("Roster = %d items, version %d; want 1 item, version %d", len(items), v, v2)
	}
	// Another owner's writes do not change juliet's version.
	putItem(t, s, store.RosterItem{Owner: "romeo@montague.example", Contact: "juliet@capulet.example", Subscription: store.SubFrom})
	if _, v, _ := s.Roster(ctx, "juliet@capulet.example"); v != v2 {
		t.Errorf("juliet's version moved from %d to %d when romeo's roster changed", v2, v)
	}
}

func testRosterSortedAndEmpty(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "romeo@montague.example")
	items, v, err := s.Roster(ctx, "romeo@montague.example")
	if err != nil || len(items) != 0 || v != 0 {
		t.Errorf("empty Roster = %v, %d, %v; want no items, version 0, nil", items, v, err)
	}
	contacts := []string{"tybalt@capulet.example", "benvolio@montague.example", "juliet@capulet.example", "mercutio@verona.example"}
	var last int64
	for _, c := range contacts {
		last = putItem(t, s, store.RosterItem{Owner: "romeo@montague.example", Contact: c, Subscription: store.SubBoth})
	}
	items, v, err = s.Roster(ctx, "romeo@montague.example")
	if err != nil {
		t.Fatalf("Roster: %v", err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.Contact)
		if it.Owner != "romeo@montague.example" {
			t.Errorf("item %s has owner %q", it.Contact, it.Owner)
		}
	}
	want := slices.Clone(contacts)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Roster contacts = %q, want sorted %q", got, want)
	}
	if v != last {
		t.Errorf("Roster version = %d, want the last returned %d", v, last)
	}
}

func testRosterDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "juliet@capulet.example")
	putItem(t, s, store.RosterItem{Owner: "juliet@capulet.example", Contact: "nurse@capulet.example", Subscription: store.SubBoth})
	v1 := putItem(t, s, store.RosterItem{Owner: "juliet@capulet.example", Contact: "romeo@montague.example", Subscription: store.SubBoth})
	v2, err := s.DeleteRosterItem(ctx, "juliet@capulet.example", "romeo@montague.example")
	if err != nil {
		t.Fatalf("DeleteRosterItem: %v", err)
	}
	if v2 <= v1 {
		t.Errorf("version after delete = %d, not above %d", v2, v1)
	}
	_, err = s.RosterItem(ctx, "juliet@capulet.example", "romeo@montague.example")
	wantErr(t, "RosterItem after delete", err, store.ErrNotFound)
	_, err = s.DeleteRosterItem(ctx, "juliet@capulet.example", "romeo@montague.example")
	wantErr(t, "second DeleteRosterItem", err, store.ErrNotFound)
	items, v, err := s.Roster(ctx, "juliet@capulet.example")
	if err != nil {
		t.Fatalf("Roster: %v", err)
	}
	if len(items) != 1 || items[0].Contact != "nurse@capulet.example" {
		t.Errorf("Roster after delete = %+v, want only the nurse", items)
	}
	if v != v2 {
		t.Errorf("a failed delete moved the version from %d to %d", v2, v)
	}
}

func testRosterUnknownOwner(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.PutRosterItem(ctx, store.RosterItem{Owner: "ghost@capulet.example", Contact: "romeo@montague.example", Subscription: store.SubBoth})
	wantErr(t, "PutRosterItem for an owner with no account", err, store.ErrNotFound)
	items, v, err := s.Roster(ctx, "ghost@capulet.example")
	if err != nil || len(items) != 0 || v != 0 {
		t.Errorf("Roster(ghost) = %v, %d, %v; want nothing", items, v, err)
	}
}

func testWatchers(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, j := range []string{"juliet@capulet.example", "nurse@capulet.example", "benvolio@montague.example", "tybalt@capulet.example", "mercutio@verona.example"} {
		addUser(t, s, j)
	}
	romeo := "romeo@montague.example" // a contact, not necessarily local
	putItem(t, s, store.RosterItem{Owner: "nurse@capulet.example", Contact: romeo, Subscription: store.SubBoth})
	putItem(t, s, store.RosterItem{Owner: "juliet@capulet.example", Contact: romeo, Subscription: store.SubTo})
	putItem(t, s, store.RosterItem{Owner: "benvolio@montague.example", Contact: romeo, Subscription: store.SubFrom})
	putItem(t, s, store.RosterItem{Owner: "tybalt@capulet.example", Contact: romeo, Subscription: store.SubNone, PendingOut: true})
	putItem(t, s, store.RosterItem{Owner: "mercutio@verona.example", Contact: "juliet@capulet.example", Subscription: store.SubBoth})
	tests := []struct {
		contact string
		want    []string
	}{
		{romeo, []string{"juliet@capulet.example", "nurse@capulet.example"}},
		{"juliet@capulet.example", []string{"mercutio@verona.example"}},
		{"paris@verona.example", nil},
	}
	for _, tt := range tests {
		got, err := s.Watchers(ctx, tt.contact)
		if err != nil {
			t.Fatalf("Watchers(%s): %v", tt.contact, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Watchers(%s) = %q, want %q", tt.contact, got, tt.want)
		}
	}
	// Losing the subscription stops the presence.
	putItem(t, s, store.RosterItem{Owner: "juliet@capulet.example", Contact: romeo, Subscription: store.SubNone})
	got, err := s.Watchers(ctx, romeo)
	if err != nil {
		t.Fatalf("Watchers: %v", err)
	}
	if !slices.Equal(got, []string{"nurse@capulet.example"}) {
		t.Errorf("Watchers(romeo) after juliet unsubscribed = %q, want only the nurse", got)
	}
}

func testOfflineOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "juliet@capulet.example")
	addUser(t, s, "romeo@montague.example")
	stamp := time.Date(2026, 11, 24, 4, 30, 0, 123456000, time.UTC)
	bodies := []string{"<message>one</message>", "<message>two</message>", "<message>three</message>"}
	var ids []int64
	for i, b := range bodies {
		id, err := s.StoreOffline(ctx, store.OfflineMessage{
			ID: 999, To: "juliet@capulet.example", From: "romeo@montague.example/orchard",
			Stamp: stamp.Add(time.Duration(i) * time.Second), Stanza: []byte(b),
		})
		if err != nil {
			t.Fatalf("StoreOffline(%s): %v", b, err)
		}
		ids = append(ids, id)
		storeMsg(t, s, "romeo@montague.example", "juliet@capulet.example", "<message>for romeo</message>")
	}
	msgs, err := s.OfflineMessages(ctx, "juliet@capulet.example")
	if err != nil {
		t.Fatalf("OfflineMessages: %v", err)
	}
	if len(msgs) != len(bodies) {
		t.Fatalf("OfflineMessages = %d messages, want %d", len(msgs), len(bodies))
	}
	for i, m := range msgs {
		if string(m.Stanza) != bodies[i] || m.ID != ids[i] || m.To != "juliet@capulet.example" ||
			m.From != "romeo@montague.example/orchard" || !m.Stamp.Equal(stamp.Add(time.Duration(i)*time.Second)) {
			t.Errorf("message %d = %+v (stanza %q), want id %d, stanza %q", i, m, m.Stanza, ids[i], bodies[i])
		}
		if i > 0 && m.ID <= msgs[i-1].ID {
			t.Errorf("IDs not increasing: %d after %d", m.ID, msgs[i-1].ID)
		}
	}
	msgs, err = s.OfflineMessages(ctx, "nurse@capulet.example")
	if err != nil || len(msgs) != 0 {
		t.Errorf("OfflineMessages(nurse) = %v, %v; want none", msgs, err)
	}
}

func testOfflineDeleteUpTo(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "juliet@capulet.example")
	addUser(t, s, "romeo@montague.example")
	var ids []int64
	for i := range 4 {
		ids = append(ids, storeMsg(t, s, "juliet@capulet.example", "romeo@montague.example", fmt.Sprintf("m%d", i)))
	}
	romeos := storeMsg(t, s, "romeo@montague.example", "juliet@capulet.example", "r")
	// Delivered the first two; a crash now must keep the other two.
	if err := s.DeleteOffline(ctx, "juliet@capulet.example", ids[1]); err != nil {
		t.Fatalf("DeleteOffline: %v", err)
	}
	msgs, err := s.OfflineMessages(ctx, "juliet@capulet.example")
	if err != nil {
		t.Fatalf("OfflineMessages: %v", err)
	}
	if len(msgs) != 2 || string(msgs[0].Stanza) != "m2" || string(msgs[1].Stanza) != "m3" {
		t.Errorf("after DeleteOffline up to the second: %d messages %+v, want m2, m3", len(msgs), msgs)
	}
	// Deleting juliet's messages up to an ID above romeo's leaves romeo's.
	if err := s.DeleteOffline(ctx, "juliet@capulet.example", romeos+100); err != nil {
		t.Fatalf("DeleteOffline: %v", err)
	}
	if msgs, _ := s.OfflineMessages(ctx, "juliet@capulet.example"); len(msgs) != 0 {
		t.Errorf("juliet has %d messages left after deleting all", len(msgs))
	}
	if msgs, _ := s.OfflineMessages(ctx, "romeo@montague.example"); len(msgs) != 1 {
		t.Errorf("romeo has %d messages after juliet's were deleted, want 1", len(msgs))
	}
	if err := s.DeleteOffline(ctx, "juliet@capulet.example", romeos+100); err != nil {
		t.Errorf("DeleteOffline with nothing to delete: %v", err)
	}
}

func testOfflineQuota(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "juliet@capulet.example")
	addUser(t, s, "romeo@montague.example")
	var first int64
	for i := range MaxOffline {
		id := storeMsg(t, s, "juliet@capulet.example", "romeo@montague.example", fmt.Sprintf("m%d", i))
		if i == 0 {
			first = id
		}
	}
	_, err := s.StoreOffline(ctx, store.OfflineMessage{To: "juliet@capulet.example", From: "romeo@montague.example", Stanza: []byte("one too many")})
	wantErr(t, "StoreOffline over the quota", err, store.ErrQuota)
	msgs, err := s.OfflineMessages(ctx, "juliet@capulet.example")
	if err != nil || len(msgs) != MaxOffline {
		t.Fatalf("OfflineMessages = %d, %v; want %d stored", len(msgs), err, MaxOffline)
	}
	if string(msgs[len(msgs)-1].Stanza) != fmt.Sprintf("m%d", MaxOffline-1) {
		t.Errorf("the refused message replaced a stored one: last is %q", msgs[len(msgs)-1].Stanza)
	}
	// The quota is per recipient.
	storeMsg(t, s, "romeo@montague.example", "juliet@capulet.example", "still fine")
	// Delivering frees room.
	if err := s.DeleteOffline(ctx, "juliet@capulet.example", first); err != nil {
		t.Fatalf("DeleteOffline: %v", err)
	}
	storeMsg(t, s, "juliet@capulet.example", "romeo@montague.example", "fits again")
}

func testOfflineUnknownRecipient(t *testing.T, s store.Store) {
	_, err := s.StoreOffline(t.Context(), store.OfflineMessage{To: "ghost@capulet.example", From: "romeo@montague.example", Stanza: []byte("x")})
	wantErr(t, "StoreOffline for a recipient with no account", err, store.ErrNotFound)
}

func testOfflineDefaultStamp(t *testing.T, s store.Store) {
	addUser(t, s, "juliet@capulet.example")
	before := time.Now().Add(-time.Second)
	if _, err := s.StoreOffline(t.Context(), store.OfflineMessage{To: "juliet@capulet.example", From: "romeo@montague.example", Stanza: []byte("x")}); err != nil {
		t.Fatalf("StoreOffline: %v", err)
	}
	msgs, err := s.OfflineMessages(t.Context(), "juliet@capulet.example")
	if err != nil || len(msgs) != 1 {
		t.Fatalf("OfflineMessages = %d, %v", len(msgs), err)
	}
	if msgs[0].Stamp.Before(before) || msgs[0].Stamp.After(time.Now().Add(time.Second)) {
		t.Errorf("Stamp = %v for a message stored just now without one", msgs[0].Stamp)
	}
}

func testDeleteUserCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "romeo@montague.example")
	addUser(t, s, "juliet@capulet.example")
	putItem(t, s, store.RosterItem{Owner: "romeo@montague.example", Contact: "juliet@capulet.example", Subscription: store.SubBoth})
	putItem(t, s, store.RosterItem{Owner: "juliet@capulet.example", Contact: "romeo@montague.example", Subscription: store.SubBoth})
	storeMsg(t, s, "romeo@montague.example", "juliet@capulet.example", "parting is such sweet sorrow")
	storeMsg(t, s, "juliet@capulet.example", "romeo@montague.example", "for juliet")

	if err := s.DeleteUser(ctx, "romeo@montague.example"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	w, err := s.Watchers(ctx, "juliet@capulet.example")
	if err != nil || len(w) != 0 {
		t.Errorf("Watchers(juliet) after romeo's deletion = %q, %v; want none", w, err)
	}
	// A new account with the same address starts empty.
	addUser(t, s, "romeo@montague.example")
	items, v, err := s.Roster(ctx, "romeo@montague.example")
	if err != nil || len(items) != 0 {
		t.Errorf("recreated romeo's Roster = %+v, %d, %v; want empty", items, v, err)
	}
	_, err = s.RosterItem(ctx, "romeo@montague.example", "juliet@capulet.example")
	wantErr(t, "recreated romeo's RosterItem", err, store.ErrNotFound)
	msgs, err := s.OfflineMessages(ctx, "romeo@montague.example")
	if err != nil || len(msgs) != 0 {
		t.Errorf("recreated romeo's OfflineMessages = %d, %v; want none", len(msgs), err)
	}
	// Juliet's own data is untouched.
	if _, err := s.RosterItem(ctx, "juliet@capulet.example", "romeo@montague.example"); err != nil {
		t.Errorf("juliet's item for romeo: %v", err)
	}
	if msgs, _ := s.OfflineMessages(ctx, "juliet@capulet.example"); len(msgs) != 1 {
		t.Errorf("juliet has %d offline messages, want 1", len(msgs))
	}
}

func addSub(t testing.TB, s store.Store, watcher, presentity string) {
	t.Helper()
	if err := s.AddSubscription(context.Background(), watcher, presentity); err != nil {
		t.Fatalf("AddSubscription(%s, %s): %v", watcher, presentity, err)
	}
}

// subPairs lists the stored subscriptions as "watcher presentity".
func subPairs(t *testing.T, s store.Store) []string {
	t.Helper()
	subs, err := s.PresenceSubscriptions(t.Context())
	if err != nil {
		t.Fatalf("PresenceSubscriptions: %v", err)
	}
	var pairs []string
	for _, ps := range subs {
		pairs = append(pairs, ps.Watcher+" "+ps.Presentity)
	}
	return pairs
}

func testSubscriptionAdd(t *testing.T, s store.Store) {
	addUser(t, s, "juliet@capulet.example")
	subs, err := s.PresenceSubscriptions(t.Context())
	if err != nil || len(subs) != 0 {
		t.Errorf("PresenceSubscriptions of an empty store = %+v, %v; want none", subs, err)
	}
	before := time.Now().Add(-time.Second)
	addSub(t, s, "juliet@capulet.example", "romeo@montague.example")
	after := time.Now().Add(time.Second)
	subs, err = s.PresenceSubscriptions(t.Context())
	if err != nil || len(subs) != 1 {
		t.Fatalf("PresenceSubscriptions = %+v, %v; want one", subs, err)
	}
	got := subs[0]
	if got.Watcher != "juliet@capulet.example" || got.Presentity != "romeo@montague.example" {
		t.Errorf("PresenceSubscriptions = %+v, want juliet watching romeo", got)
	}
	if got.Created.Before(before) || got.Created.After(after) {
		t.Errorf("Created = %v for a subscription added just now", got.Created)
	}
}

func testSubscriptionAddTwice(t *testing.T, s store.Store) {
	addUser(t, s, "juliet@capulet.example")
	addSub(t, s, "juliet@capulet.example", "romeo@montague.example")
	first, err := s.PresenceSubscriptions(t.Context())
	if err != nil || len(first) != 1 {
		t.Fatalf("PresenceSubscriptions = %+v, %v; want one", first, err)
	}
	time.Sleep(2 * time.Millisecond) // well above the compared precision
	addSub(t, s, "juliet@capulet.example", "romeo@montague.example")
	again, err := s.PresenceSubscriptions(t.Context())
	if err != nil || len(again) != 1 {
		t.Fatalf("PresenceSubscriptions after adding the pair again = %+v, %v; want one", again, err)
	}
	if !again[0].Created.Equal(first[0].Created) {
		t.Errorf("adding the pair again moved Created from %v to %v", first[0].Created, again[0].Created)
	}
}

func testSubscriptionRemove(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "juliet@capulet.example")
	addSub(t, s, "juliet@capulet.example", "romeo@montague.example")
	addSub(t, s, "juliet@capulet.example", "mercutio@verona.example")
	if err := s.RemoveSubscription(ctx, "juliet@capulet.example", "romeo@montague.example"); err != nil {
		t.Fatalf("RemoveSubscription: %v", err)
	}
	if got, want := subPairs(t, s), []string{"juliet@capulet.example mercutio@verona.example"}; !slices.Equal(got, want) {
		t.Errorf("after RemoveSubscription: %q, want %q", got, want)
	}
	// Removing what is not there: the pair just removed, a pair never
	// added, a watcher with no account.
	for _, p := range [][2]string{
		{"juliet@capulet.example", "romeo@montague.example"},
		{"juliet@capulet.example", "tybalt@verona.example"},
		{"ghost@capulet.example", "mercutio@verona.example"},
	} {
		if err := s.RemoveSubscription(ctx, p[0], p[1]); err != nil {
			t.Errorf("RemoveSubscription(%s, %s) of a missing pair: %v", p[0], p[1], err)
		}
	}
	if got := subPairs(t, s); len(got) != 1 {
		t.Errorf("removing missing pairs changed the subscriptions to %q", got)
	}
	// A removed pair can be added again.
	addSub(t, s, "juliet@capulet.example", "romeo@montague.example")
	if got := subPairs(t, s); len(got) != 2 {
		t.Errorf("after adding a removed pair again: %q, want two", got)
	}
}

// testSubscriptionsSorted adds pairs out of order. The order is bytewise:
// "élodie" (0xC3...) sorts after "zoe", which a locale collation would
// not do.
func testSubscriptionsSorted(t *testing.T, s store.Store) {
	for _, j := range []string{"romeo@montague.example", "juliet@capulet.example", "nurse@capulet.example"} {
		addUser(t, s, j)
	}
	pairs := [][2]string{
		{"romeo@montague.example", "zoe@verona.example"},
		{"juliet@capulet.example", "élodie@paris.example"},
		{"nurse@capulet.example", "romeo@sip.example"},
		{"juliet@capulet.example", "zoe@verona.example"},
		{"romeo@montague.example", "abram@verona.example"},
		{"juliet@capulet.example", "Zed@verona.example"},
		{"juliet@capulet.example", "abram@verona.example"},
	}
	for _, p := range pairs {
		addSub(t, s, p[0], p[1])
	}
	want := []string{
		"juliet@capulet.example Zed@verona.example",
		"juliet@capulet.example abram@verona.example",
		"juliet@capulet.example zoe@verona.example",
		"juliet@capulet.example élodie@paris.example",
		"nurse@capulet.example romeo@sip.example",
		"romeo@montague.example abram@verona.example",
		"romeo@montague.example zoe@verona.example",
	}
	if got := subPairs(t, s); !slices.Equal(got, want) {
		t.Errorf("PresenceSubscriptions =\n%q\nwant\n%q", got, want)
	}
}

func testSubscriptionUnknownWatcher(t *testing.T, s store.Store) {
	err := s.AddSubscription(t.Context(), "ghost@capulet.example", "romeo@montague.example")
	wantErr(t, "AddSubscription for a watcher with no account", err, store.ErrNotFound)
	if got := subPairs(t, s); len(got) != 0 {
		t.Errorf("a refused AddSubscription stored %q", got)
	}
}

func testSubscriptionInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	juliet := "juliet@capulet.example"
	addUser(t, s, juliet)
	long := strings.Repeat("a", store.MaxJIDLength-len("@verona.example")) + "@verona.example"
	tests := []struct {
		name                string
		watcher, presentity string
	}{
		{"empty watcher", "", "romeo@montague.example"},
		{"empty presentity", juliet, ""},
		{"both empty", "", ""},
		{"presentity too long", juliet, "x" + long},
		{"watcher too long", "x" + long, "romeo@montague.example"},
		{"presentity not UTF-8", juliet, "rom\xffeo@montague.example"},
	}
	for _, tt := range tests {
		err := s.AddSubscription(ctx, tt.watcher, tt.presentity)
		wantErr(t, "AddSubscription with "+tt.name, err, store.ErrInvalid)
		err = s.RemoveSubscription(ctx, tt.watcher, tt.presentity)
		wantErr(t, "RemoveSubscription with "+tt.name, err, store.ErrInvalid)
	}
	if got := subPairs(t, s); len(got) != 0 {
		t.Errorf("refused AddSubscription calls stored %q", got)
	}
	// The longest address is kept whole.
	addSub(t, s, juliet, long)
	if got, want := subPairs(t, s), []string{juliet + " " + long}; !slices.Equal(got, want) {
		t.Errorf("a presentity of %d bytes came back as %q", len(long), got)
	}
}

func testDeleteUserRemovesSubscriptions(t *testing.T, s store.Store) {
	ctx := t.Context()
	addUser(t, s, "romeo@montague.example")
	addUser(t, s, "juliet@capulet.example")
	addSub(t, s, "romeo@montague.example", "rosaline@verona.example")
	addSub(t, s, "romeo@montague.example", "mercutio@verona.example")
	addSub(t, s, "juliet@capulet.example", "paris@verona.example")
	// Romeo as a presentity is not his subscription: it stays.
	addSub(t, s, "juliet@capulet.example", "romeo@montague.example")
	if err := s.DeleteUser(ctx, "romeo@montague.example"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	want := []string{
		"juliet@capulet.example paris@verona.example",
		"juliet@capulet.example romeo@montague.example",
	}
	if got := subPairs(t, s); !slices.Equal(got, want) {
		t.Errorf("after deleting romeo: %q, want only juliet's %q", got, want)
	}
	// A new account with the same address watches nobody.
	addUser(t, s, "romeo@montague.example")
	if got := subPairs(t, s); !slices.Equal(got, want) {
		t.Errorf("after recreating romeo: %q, want %q", got, want)
	}
}

func testCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	u := store.User{JID: "romeo@montague.example", Credentials: creds(t, "romeo@montague.example", "x")}
	wantErr(t, "CreateUser with a canceled context", s.CreateUser(ctx, u), context.Canceled)
	_, err := s.User(ctx, "romeo@montague.example")
	wantErr(t, "User with a canceled context", err, context.Canceled)
	_, err = s.User(t.Context(), "romeo@montague.example")
	wantErr(t, "User after a canceled CreateUser", err, store.ErrNotFound)
	addUser(t, s, "juliet@capulet.example")
	wantErr(t, "AddSubscription with a canceled context",
		s.AddSubscription(ctx, "juliet@capulet.example", "romeo@montague.example"), context.Canceled)
	_, err = s.PresenceSubscriptions(ctx)
	wantErr(t, "PresenceSubscriptions with a canceled context", err, context.Canceled)
	if got := subPairs(t, s); len(got) != 0 {
		t.Errorf("a canceled AddSubscription stored %q", got)
	}
}

// testConcurrent runs writers and readers at once: every operation must
// succeed (no "database is locked"), and every write must be visible.
func testConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers, rounds = 8, 20
	addUser(t, s, "juliet@capulet.example")
	c := creds(t, "x@concurrent.example", "x")
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*4)
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("user%d@concurrent.example", w)
			if err := s.CreateUser(ctx, store.User{JID: owner, Credentials: c}); err != nil {
				errs <- err
				return
			}
			for r := range rounds {
				contact := fmt.Sprintf("contact%d@verona.example", r)
				if _, err := s.PutRosterItem(ctx, store.RosterItem{Owner: owner, Contact: contact, Subscription: store.SubTo}); err != nil {
					errs <- err
				}
				if _, err := s.StoreOffline(ctx, store.OfflineMessage{To: "juliet@capulet.example", From: owner, Stanza: []byte("hi")}); err != nil && !errors.Is(err, store.ErrQuota) {
					errs <- err
				}
				if _, _, err := s.Roster(ctx, owner); err != nil {
					errs <- err
				}
				if _, err := s.User(ctx, "juliet@capulet.example"); err != nil {
					errs <- err
				}
				if _, err := s.Watchers(ctx, contact); err != nil {
					errs <- err
				}
				if err := s.AddSubscription(ctx, owner, contact); err != nil {
					errs <- err
				}
				if _, err := s.PresenceSubscriptions(ctx); err != nil {
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
	for w := range workers {
		owner := fmt.Sprintf("user%d@concurrent.example", w)
		items, v, err := s.Roster(ctx, owner)
		if err != nil || len(items) != rounds || v == 0 {
			t.Errorf("Roster(%s) = %d items, version %d, %v; want %d items and a version", owner, len(items), v, err, rounds)
		}
	}
	w, err := s.Watchers(ctx, "contact0@verona.example")
	if err != nil || len(w) != workers {
		t.Errorf("Watchers(contact0) = %d, %v; want %d", len(w), err, workers)
	}
	msgs, err := s.OfflineMessages(ctx, "juliet@capulet.example")
	if err != nil || len(msgs) != MaxOffline {
		t.Errorf("juliet has %d offline messages, %v; want the quota %d", len(msgs), err, MaxOffline)
	}
	if subs := subPairs(t, s); len(subs) != workers*rounds {
		t.Errorf("%d presence subscriptions, want %d", len(subs), workers*rounds)
	}
}
