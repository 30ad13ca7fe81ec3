package session

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkOutgoing is the per-message hot path: the established session
// for a stanza from a local full JID to a remote user.
func BenchmarkOutgoing(b *testing.B) {
	ctx := context.Background()
	tab := NewMemTable(MemTableOptions{})
	romeo := jid(b, "romeo@montague.example.net/orchard")
	// Some other sessions, so the maps are not trivially small.
	for i := range 1000 {
		peer := jid(b, fmt.Sprintf("u%d@capulets.example.com/r", i))
		bg, err := tab.Begin(ctx, romeo, peer.Bare(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tab.Established(ctx, bg.Session.Thread, peer, fmt.Sprintf("d%d", i), "c"); err != nil {
			b.Fatal(err)
		}
	}
	juliet := jid(b, "u500@capulets.example.com")
	b.ReportAllocs()
	for b.Loop() {
		s, err := tab.Outgoing(ctx, romeo, juliet)
		if err != nil || !s.Ready() {
			b.Fatal(s, err)
		}
	}
}

// BenchmarkOutgoingParallel is the hot path from many streams at once.
func BenchmarkOutgoingParallel(b *testing.B) {
	ctx := context.Background()
	tab := NewMemTable(MemTableOptions{})
	romeo := jid(b, "romeo@montague.example.net/orchard")
	const n = 256
	for i := range n {
		peer := jid(b, fmt.Sprintf("u%d@capulets.example.com/r", i))
		bg, err := tab.Begin(ctx, romeo, peer.Bare(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tab.Established(ctx, bg.Session.Thread, peer, fmt.Sprintf("d%d", i), "c"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		peers := make([]string, n)
		for j := range peers {
			peers[j] = fmt.Sprintf("u%d", j)
		}
		remote := jid(b, "u0@capulets.example.com")
		for pb.Next() {
			remote.Local = peers[i%n]
			if _, err := tab.Outgoing(ctx, romeo, remote); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkByThread is the lookup for an inbound stanza with a <thread>.
func BenchmarkByThread(b *testing.B) {
	ctx := context.Background()
	tab := NewMemTable(MemTableOptions{})
	romeo := jid(b, "romeo@montague.example.net/orchard")
	peer := jid(b, "juliet@capulets.example.com/balcony")
	bg, err := tab.Begin(ctx, romeo, peer.Bare(), nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tab.Established(ctx, bg.Session.Thread, peer, "d", "c"); err != nil {
		b.Fatal(err)
	}
	th := bg.Session.Thread
	b.ReportAllocs()
	for b.Loop() {
		if s, err := tab.ByThread(ctx, th); err != nil || s.Remote != peer {
			b.Fatal(s, err)
		}
	}
}

// BenchmarkCycle is a whole outbound session: Begin with a message,
// Established, the last Drain, End.
func BenchmarkCycle(b *testing.B) {
	ctx := context.Background()
	tab := NewMemTable(MemTableOptions{})
	romeo := jid(b, "romeo@montague.example.net/orchard")
	peer := jid(b, "juliet@capulets.example.com/balcony")
	msg := []byte("<message/>")
	b.ReportAllocs()
	for b.Loop() {
		bg, err := tab.Begin(ctx, romeo, peer.Bare(), msg)
		if err != nil {
			b.Fatal(err)
		}
		th := bg.Session.Thread
		if _, err := tab.Established(ctx, th, peer, "call|a|b", "call"); err != nil {
			b.Fatal(err)
		}
		if _, err := tab.Drain(ctx, th); err != nil {
			b.Fatal(err)
		}
		if _, _, err := tab.End(ctx, th, EndBye); err != nil {
			b.Fatal(err)
		}
	}
}
