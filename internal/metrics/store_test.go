package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/umpp/umpp/store"
)

// The presence subscriptions pass through the wrapper, timed and with
// their errors unchanged.
func TestStoreSubscriptionsTiming(t *testing.T) {
	m := New(Options{})
	var s store.Subscriptions = m.WrapStore(openStore(t))
	ctx := context.Background()
	if err := s.(store.Users).CreateUser(ctx, store.User{JID: "juliet@capulet.example", Credentials: store.Credentials{Salt: []byte("s"), Iterations: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSubscription(ctx, "juliet@capulet.example", "romeo@montague.example"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSubscription(ctx, "", "romeo@montague.example"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("AddSubscription with no watcher = %v, want ErrInvalid through the wrapper", err)
	}
	subs, err := s.PresenceSubscriptions(ctx)
	if err != nil || len(subs) != 1 || subs[0].Presentity != "romeo@montague.example" {
		t.Errorf("PresenceSubscriptions = %+v, %v", subs, err)
	}
	if err := s.RemoveSubscription(ctx, "juliet@capulet.example", "romeo@montague.example"); err != nil {
		t.Fatal(err)
	}
	got := expose(t, m)
	for _, want := range []string{
		`umpp_store_duration_seconds_count{op="AddSubscription"} 2`,
		`umpp_store_duration_seconds_count{op="PresenceSubscriptions"} 1`,
		`umpp_store_duration_seconds_count{op="RemoveSubscription"} 1`,
	} {
		if !strings.Contains(got, "\n"+want+"\n") {
			t.Errorf("exposition lacks %q:\n%s", want, grep(got, "umpp_store"))
		}
	}
}
