package session

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umpp/umpp/addressing"
)

// modelSession and tableModel are a plain, single-threaded reference for
// MemTable's semantics: what every operation must return, and what every
// index must hold.
type modelSession struct {
	thread     string
	local      addressing.Address
	remote     addressing.Address // bare until known
	domain     string
	dialog     string
	state      State
	queue      [][]byte
	draining   bool
	outKey     pairKey
	inKey      pairKey
	inIndexed  bool
	outIndexed bool
}

type tableModel struct {
	maxPeer, maxQueue int
	threads           map[string]*modelSession
	dialogs           map[string]*modelSession
	outgoing          map[pairKey]*modelSession
	incoming          map[pairKey]*modelSession
	domains           map[string]int
}

func newTableModel(maxPeer, maxQueue int) *tableModel {
	return &tableModel{
		maxPeer: maxPeer, maxQueue: maxQueue,
		threads:  map[string]*modelSession{},
		dialogs:  map[string]*modelSession{},
		outgoing: map[pairKey]*modelSession{},
		incoming: map[pairKey]*modelSession{},
		domains:  map[string]int{},
	}
}

func (m *tableModel) ready(s *modelSession) bool {
	return s.state == StateEstablished && !s.draining
}

func (m *tableModel) end(s *modelSession) [][]byte {
	delete(m.threads, s.thread)
	if s.dialog != "" && m.dialogs[s.dialog] == s {
		delete(m.dialogs, s.dialog)
	}
	if m.outgoing[s.outKey] == s {
		delete(m.outgoing, s.outKey)
	}
	if s.inIndexed && m.incoming[s.inKey] == s {
		delete(m.incoming, s.inKey)
	}
	if m.domains[s.domain]--; m.domains[s.domain] == 0 {
		delete(m.domains, s.domain)
	}
	s.state = StateEnded
	q := s.queue
	s.queue = nil
	return q
}

// modelPool is the small world the random operations draw from, so that
// pairs, threads and dialogs collide often.
type modelPool struct {
	locals  []addressing.Address // full
	remotes []addressing.Address // full, over two domains
	threads []string             // peer-chosen threads for Accept
	dialogs []string
}

func newModelPool(t testing.TB) modelPool {
	var p modelPool
	for _, s := range []string{"romeo@montague.example.net/orchard", "romeo@montague.example.net/garden", "benvolio@montague.example.net/street"} {
		p.locals = append(p.locals, jid(t, s))
	}
	for _, s := range []string{"juliet@capulets.example.com/balcony", "juliet@capulets.example.com/tomb", "nurse@capulets.example.com/kitchen", "mercutio@verona.example/square"} {
		p.remotes = append(p.remotes, jid(t, s))
	}
	for i := range 6 {
		p.threads = append(p.threads, fmt.Sprintf("peer-thread-%d", i))
	}
	for i := range 8 {
		p.dialogs = append(p.dialogs, fmt.Sprintf("call-%d|a|b", i))
	}
	return p
}

// TestTableAgainstModel runs random operation sequences (fixed seeds)
// against the table and the reference model, comparing every result and
// every index after each step, then ends everything and checks that no
// index holds anything. "collisions" runs them with hash functions that
// put many keys on one hash, through the indexes' overflow path.
func TestTableAgainstModel(t *testing.T) {
	for _, mode := range []string{"hashed", "collisions"} {
		for seed := uint64(1); seed <= 20; seed++ {
			t.Run(fmt.Sprintf("%s/%d", mode, seed), func(t *testing.T) {
				opts := MemTableOptions{MaxSessionsPerPeer: 3, MaxQueue: 3, Shards: 4}
				var tab *MemTable
				if mode == "hashed" {
					tab = NewMemTable(opts)
				} else {
					tab = newMemTable(opts, time.Now, maphash.MakeSeed(),
						func(k string) uint64 { return uint64(len(k) % 3) },
						func(k pairKey) uint64 { return uint64(len(k.full.Resource) % 2) })
				}
				runModel(t, tab, seed, 2000)
			})
		}
	}
}

func runModel(t *testing.T, tab *MemTable, seed uint64, steps int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x5e55))
	maxPeer, maxQueue := tab.opts.MaxSessionsPerPeer, tab.opts.MaxQueue
	m := newTableModel(maxPeer, maxQueue)
	pool := newModelPool(t)
	msgN := 0
	// anyThread picks a live thread most of the time, sometimes a dead or
	// unknown one.
	var deadThreads []string
	anyThread := func() string {
		if len(m.threads) > 0 && rng.IntN(5) > 0 {
			keys := make([]string, 0, len(m.threads))
			for k := range m.threads {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			return keys[rng.IntN(len(keys))]
		}
		if len(deadThreads) > 0 && rng.IntN(2) == 0 {
			return deadThreads[rng.IntN(len(deadThreads))]
		}
		return pool.threads[rng.IntN(len(pool.threads))]
	}
	errIs := func(step int, op string, err, want error) {
		t.Helper()
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("step %d %s: error %v, want %v", step, op, err, want)
		}
	}

	for step := range steps {
		switch op := rng.IntN(10); op {
		case 0, 1, 2: // Begin
			local := pool.locals[rng.IntN(len(pool.locals))]
			remote := pool.remotes[rng.IntN(len(pool.remotes))].Bare()
			var msg []byte
			if rng.IntN(4) > 0 {
				msgN++
				msg = fmt.Appendf(nil, "m%d", msgN)
			}
			got, err := tab.Begin(ctx, local, remote, msg)
			k := pairKey{full: local, bare: remote}
			if s := m.outgoing[k]; s != nil {
				switch {
				case m.ready(s) || msg == nil:
					errIs(step, "begin", err, nil)
					if got.Queued {
						t.Fatalf("step %d: queued on a ready session", step)
					}
				case len(s.queue) >= m.maxQueue:
					errIs(step, "begin", err, ErrQueueFull)
				default:
					errIs(step, "begin", err, nil)
					s.queue = append(s.queue, msg)
				}
				if got.Session.Thread != s.thread || got.Created {
					t.Fatalf("step %d: Begin = %+v, want the live session %s", step, got, s.thread)
				}
				continue
			}
			if m.domains[remote.Domain] >= m.maxPeer {
				errIs(step, "begin", err, ErrTooManySessions)
				continue
			}
			errIs(step, "begin", err, nil)
			if !got.Created || m.threads[got.Session.Thread] != nil {
				t.Fatalf("step %d: Begin = %+v, want a new session", step, got)
			}
			s := &modelSession{thread: got.Session.Thread, local: local, remote: remote, domain: remote.Domain, state: StateSettingUp, outKey: k, outIndexed: true}
			if msg != nil {
				s.queue = [][]byte{msg}
			}
			m.threads[s.thread] = s
			m.outgoing[k] = s
			m.domains[s.domain]++
		case 3: // Accept
			in := InboundSetup{
				Thread:   pool.threads[rng.IntN(len(pool.threads))],
				Local:    pool.locals[rng.IntN(len(pool.locals))],
				Remote:   pool.remotes[rng.IntN(len(pool.remotes))],
				DialogID: pool.dialogs[rng.IntN(len(pool.dialogs))],
			}
			_, err := tab.Accept(ctx, in)
			switch {
			case m.domains[in.Remote.Domain] >= m.maxPeer:
				errIs(step, "accept", err, ErrTooManySessions)
			case m.threads[in.Thread] != nil || m.dialogs[in.DialogID] != nil:
				errIs(step, "accept", err, ErrSessionConflict)
			default:
				errIs(step, "accept", err, nil)
				s := &modelSession{thread: in.Thread, local: in.Local, remote: in.Remote, domain: in.Remote.Domain, dialog: in.DialogID, state: StateSettingUp,
					outKey: pairKey{full: in.Local, bare: in.Remote.Bare()}, inKey: pairKey{full: in.Remote, bare: in.Local.Bare()}, inIndexed: true}
				m.threads[s.thread] = s
				m.dialogs[s.dialog] = s
				m.incoming[s.inKey] = s
				if m.outgoing[s.outKey] == nil {
					m.outgoing[s.outKey] = s
				}
				m.domains[s.domain]++
			}
		case 4, 5: // Established
			th := anyThread()
			s := m.threads[th]
			var remote addressing.Address
			dialog := pool.dialogs[rng.IntN(len(pool.dialogs))]
			if s != nil {
				// An answer from the peer domain the session is with.
				for {
					remote = pool.remotes[rng.IntN(len(pool.remotes))]
					if remote.Domain == s.domain {
						break
					}
				}
				if s.dialog != "" && rng.IntN(4) > 0 {
					dialog = s.dialog
				}
				if !s.remote.IsBare() && rng.IntN(4) > 0 {
					remote = s.remote
				}
			} else {
				remote = pool.remotes[0]
			}
			q, err := tab.Established(ctx, th, remote, dialog, "cid")
			switch {
			case s == nil:
				errIs(step, "established", err, ErrNoSession)
			case s.state != StateSettingUp:
				errIs(step, "established", err, ErrSessionState)
			case !s.remote.IsBare() && s.remote != remote:
				errIs(step, "established", err, ErrInvalidSession)
			case s.dialog != "" && s.dialog != dialog, s.dialog == "" && m.dialogs[dialog] != nil:
				errIs(step, "established", err, ErrSessionConflict)
			default:
				errIs(step, "established", err, nil)
				if !slices.EqualFunc(q, s.queue, slices.Equal) {
					t.Fatalf("step %d: Established returned %q, want %q", step, q, s.queue)
				}
				s.draining = len(s.queue) > 0
				s.queue = nil
				s.state = StateEstablished
				s.remote = remote
				s.dialog = dialog
				m.dialogs[dialog] = s
				s.inKey = pairKey{full: remote, bare: s.local.Bare()}
				s.inIndexed = true
				m.incoming[s.inKey] = s
			}
		case 6: // Drain
			th := anyThread()
			q, err := tab.Drain(ctx, th)
			s := m.threads[th]
			if s == nil {
				errIs(step, "drain", err, ErrNoSession)
				continue
			}
			errIs(step, "drain", err, nil)
			if !slices.EqualFunc(q, s.queue, slices.Equal) {
				t.Fatalf("step %d: Drain returned %q, want %q", step, q, s.queue)
			}
			if len(s.queue) == 0 {
				s.draining = false
			}
			s.queue = nil
		case 7, 8: // End, by thread or dialog
			var s *modelSession
			var q [][]byte
			var err error
			if rng.IntN(2) == 0 {
				th := anyThread()
				s = m.threads[th]
				_, q, err = tab.End(ctx, th, EndBye)
			} else {
				d := pool.dialogs[rng.IntN(len(pool.dialogs))]
				s = m.dialogs[d]
				_, q, err = tab.EndDialog(ctx, d, EndIdle)
			}
			if s == nil {
				errIs(step, "end", err, ErrNoSession)
				continue
			}
			errIs(step, "end", err, nil)
			want := m.end(s)
			if !slices.EqualFunc(q, want, slices.Equal) {
				t.Fatalf("step %d: End returned %q, want %q", step, q, want)
			}
			deadThreads = append(deadThreads, s.thread)
		case 9: // Touch
			th := anyThread()
			err := tab.Touch(ctx, th)
			if m.threads[th] == nil {
				errIs(step, "touch", err, ErrNoSession)
			} else {
				errIs(step, "touch", err, nil)
			}
		}
		compareModel(t, step, tab, m, pool)
	}

	// End everything left, as shutdown does; nothing may remain anywhere.
	all, err := tab.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(m.threads) {
		t.Fatalf("All has %d sessions, model %d", len(all), len(m.threads))
	}
	for _, s := range all {
		if _, _, err := tab.End(ctx, s.Thread, EndShutdown); err != nil {
			t.Fatal(err)
		}
	}
	assertEmpty(t, tab)
}

// compareModel checks every index of tab against m.
func compareModel(t *testing.T, step int, tab *MemTable, m *tableModel, pool modelPool) {
	t.Helper()
	ctx := context.Background()
	for name, sizes := range map[string][2]int{
		"threads":  {tab.threads.len(), len(m.threads)},
		"dialogs":  {tab.dialogs.len(), len(m.dialogs)},
		"outgoing": {tab.outgoing.len(), len(m.outgoing)},
		"incoming": {tab.incoming.len(), len(m.incoming)},
		"domains":  {tab.domains.total(), len(m.domains)},
	} {
		if sizes[0] != sizes[1] {
			t.Fatalf("step %d: index %s has %d entries, model %d", step, name, sizes[0], sizes[1])
		}
	}
	for d, n := range m.domains {
		if got := tab.domains.count(d); got != n {
			t.Fatalf("step %d: domain %s count %d, model %d", step, d, got, n)
		}
	}
	for th, s := range m.threads {
		got, err := tab.ByThread(ctx, th)
		if err != nil {
			t.Fatalf("step %d: ByThread(%s): %v", step, th, err)
		}
		if got.State != s.state || got.Remote != s.remote || got.DialogID != s.dialog || got.Queued != len(s.queue) || got.Draining != s.draining || got.Local != s.local {
			t.Fatalf("step %d: ByThread(%s) = %+v, model %+v", step, th, got, *s)
		}
	}
	for d, s := range m.dialogs {
		if got, err := tab.ByDialog(ctx, d); err != nil || got.Thread != s.thread {
			t.Fatalf("step %d: ByDialog(%s) = %s, %v; model %s", step, d, got.Thread, err, s.thread)
		}
	}
	for _, l := range pool.locals {
		for _, r := range pool.remotes {
			got, err := tab.Outgoing(ctx, l, r)
			if s := m.outgoing[pairKey{full: l, bare: r.Bare()}]; s == nil {
				if !errors.Is(err, ErrNoSession) {
					t.Fatalf("step %d: Outgoing(%s, %s) = %s, model none", step, l, r, got.Thread)
				}
			} else if err != nil || got.Thread != s.thread {
				t.Fatalf("step %d: Outgoing(%s, %s) = %s, %v; model %s", step, l, r, got.Thread, err, s.thread)
			}
			got, err = tab.Incoming(ctx, r, l)
			if s := m.incoming[pairKey{full: r, bare: l.Bare()}]; s == nil {
				if !errors.Is(err, ErrNoSession) {
					t.Fatalf("step %d: Incoming(%s, %s) = %s, model none", step, r, l, got.Thread)
				}
			} else if err != nil || got.Thread != s.thread {
				t.Fatalf("step %d: Incoming(%s, %s) = %s, %v; model %s", step, r, l, got.Thread, err, s.thread)
			}
		}
	}
}

// TestConcurrent runs many goroutines over overlapping pairs: Begin (with
// messages), Established, Drain, lookups and End, by thread and by dialog.
// Every queued message must come back exactly once (from Established,
// Drain or End), every pair must have had one setup at a time, and the
// table must be empty at the end.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	tab := NewMemTable(MemTableOptions{MaxQueue: 1 << 20, Shards: 8})
	pool := newModelPool(t)
	const workers, rounds = 16, 400

	var (
		mu       sync.Mutex
		queued   = map[string]bool{} // message -> returned yet
		returned int
		dialogN  atomic.Int64
	)
	give := func(q [][]byte) {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range q {
			if done, ok := queued[string(b)]; !ok || done {
				t.Errorf("message %s returned twice or never queued", b)
			}
			queued[string(b)] = true
			returned++
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range rounds {
				local := pool.locals[rng.IntN(len(pool.locals))]
				remote := pool.remotes[rng.IntN(len(pool.remotes))]
				msg := fmt.Sprintf("w%d-%d", w, i)
				mu.Lock()
				queued[msg] = false
				mu.Unlock()
				b, err := tab.Begin(ctx, local, remote.Bare(), []byte(msg))
				if err != nil {
					t.Errorf("Begin: %v", err)
					return
				}
				if !b.Queued {
					give([][]byte{[]byte(msg)}) // sent directly
				}
				th := b.Session.Thread
				switch rng.IntN(8) {
				case 0, 1, 2: // the setup succeeds (whoever gets there first)
					d := fmt.Sprintf("d%d", dialogN.Add(1))
					q, err := tab.Established(ctx, th, remote, d, d)
					give(q)
					if err == nil {
						for len(q) > 0 {
							if q, err = tab.Drain(ctx, th); err != nil {
								break
							}
							give(q)
						}
					}
				case 3: // hang up by dialog
					if s, err := tab.ByThread(ctx, th); err == nil && s.DialogID != "" {
						_, q, _ := tab.EndDialog(ctx, s.DialogID, EndBye)
						give(q)
					}
				case 4: // end by thread
					_, q, _ := tab.End(ctx, th, EndPeerFailure)
					give(q)
				case 6, 7: // an inbound session for the same pair, glare with ours
					d := fmt.Sprintf("d%d", dialogN.Add(1))
					in := InboundSetup{Thread: pool.threads[rng.IntN(len(pool.threads))], Local: local, Remote: remote, DialogID: d, CallID: d}
					if _, err := tab.Accept(ctx, in); err != nil {
						if !errors.Is(err, ErrSessionConflict) {
							t.Errorf("Accept: %v", err)
						}
						continue
					}
					if rng.IntN(2) == 0 {
						q, err := tab.Established(ctx, in.Thread, remote, d, d)
						give(q)
						for err == nil && len(q) > 0 {
							if q, err = tab.Drain(ctx, in.Thread); err == nil {
								give(q)
							}
						}
					}
					if rng.IntN(2) == 0 {
						_, q, _ := tab.EndDialog(ctx, d, EndBye)
						give(q)
					}
				case 5: // traffic and lookups
					_ = tab.Touch(ctx, th)
					_, _ = tab.Outgoing(ctx, local, remote)
					_, _ = tab.Incoming(ctx, remote, local)
					_, _ = tab.Idle(ctx, tab.now(), 0)
				}
			}
		})
	}
	wg.Wait()
	all, err := tab.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		_, q, err := tab.End(ctx, s.Thread, EndShutdown)
		if err != nil {
			t.Fatal(err)
		}
		give(q)
	}
	assertEmpty(t, tab)
	if returned != len(queued) {
		t.Errorf("%d messages came back, %d were queued or sent", returned, len(queued))
	}
}

// TestConcurrentSingleSetup checks that concurrent Begins for one pair
// create exactly one session.
func TestConcurrentSingleSetup(t *testing.T) {
	ctx := context.Background()
	tab := NewMemTable(MemTableOptions{MaxQueue: 1000})
	romeo := jid(t, "romeo@montague.example.net/orchard")
	juliet := jid(t, "juliet@capulets.example.com")
	var created atomic.Int64
	threads := make([]string, 64)
	var wg sync.WaitGroup
	for i := range threads {
		wg.Go(func() {
			b, err := tab.Begin(ctx, romeo, juliet, fmt.Appendf(nil, "%d", i))
			if err != nil {
				t.Error(err)
				return
			}
			if b.Created {
				created.Add(1)
			}
			threads[i] = b.Session.Thread
		})
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("%d setups for one pair, want 1", created.Load())
	}
	for _, th := range threads {
		if th != threads[0] {
			t.Fatalf("callers got different sessions: %s, %s", th, threads[0])
		}
	}
	s, q, err := tab.End(ctx, threads[0], EndRejected)
	if err != nil || len(q) != len(threads) || s.Queued != 0 {
		t.Fatalf("End = %+v, %d queued, %v", s, len(q), err)
	}
	assertEmpty(t, tab)
}
