package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umpp/umpp/addressing"
)

// Errors of the session table. Lookups return ErrNoSession unwrapped (the
// hot path allocates nothing); other operations wrap these with context.
var (
	// ErrNoSession: no live session for the thread, dialog or pair.
	ErrNoSession = errors.New("session: no such session")
	// ErrTooManySessions: the peer domain has limits.max_sessions_per_peer
	// live sessions (map to resource-constraint, or SIP 503/486).
	ErrTooManySessions = errors.New("session: too many sessions with peer domain")
	// ErrQueueFull: the session being set up already queues the maximum
	// number of messages (bounce with resource-constraint).
	ErrQueueFull = errors.New("session: setup queue full")
	// ErrSessionConflict: the thread or dialog of an inbound offer is
	// already in use, or Established names another dialog.
	ErrSessionConflict = errors.New("session: thread or dialog already in use")
	// ErrSessionState: the operation does not fit the session's state
	// (Established twice).
	ErrSessionState = errors.New("session: wrong session state")
	// ErrInvalidSession: bad arguments (a bare JID where a full one is
	// needed, an empty thread or dialog, mismatched domains).
	ErrInvalidSession = errors.New("session: invalid session parameters")
	// ErrTableClosed: the table was closed for shutdown.
	ErrTableClosed = errors.New("session: table closed")
)

// State is where a session is in its life.
type State uint8

// Session states.
const (
	StateSettingUp   State = iota + 1 // INVITE sent or answered, no ACK yet
	StateEstablished                  // ACKed: messages flow
	StateEnded                        // removed from the table
)

func (s State) String() string {
	switch s {
	case StateSettingUp:
		return "setting-up"
	case StateEstablished:
		return "established"
	case StateEnded:
		return "ended"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Direction says which side sent the INVITE.
type Direction uint8

// Session directions.
const (
	Outbound Direction = iota + 1 // we sent the INVITE
	Inbound                       // the peer did
)

func (d Direction) String() string {
	switch d {
	case Outbound:
		return "outbound"
	case Inbound:
		return "inbound"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// EndReason says why a session ended.
type EndReason string

// End reasons.
const (
	EndBye         EndReason = "bye"          // BYE from either side
	EndIdle        EndReason = "idle"         // no traffic for the idle timeout
	EndPeerFailure EndReason = "peer-failure" // no answer, transport or s2s failure
	EndShutdown    EndReason = "shutdown"     // the daemon stops
	EndRejected    EndReason = "rejected"     // the INVITE got a final non-2xx
)

// BounceCondition returns the XMPP stanza error condition for messages
// still queued when a session ends for reason r. It returns "" for bye
// and idle: those messages were never offered to the peer and should go
// to Begin again. For rejected, prefer ConditionForSIPStatus of the
// INVITE's final status when the caller has it.
func (r EndReason) BounceCondition() string {
	switch r {
	case EndBye, EndIdle:
		return ""
	case EndRejected:
		return CondRecipientUnavailable
	case EndPeerFailure:
		return CondRemoteServerNotFound
	case EndShutdown:
		return CondServiceUnavailable
	}
	return CondUndefinedCondition
}

// Session is a snapshot of one session; the table keeps the live record.
type Session struct {
	// Thread is the XMPP thread, the SDP a=thread value.
	Thread string
	// Local is the local user's full JID. Remote is the remote user's
	// full JID once known (inbound: from the offer; outbound: from the
	// answer); before that it is the bare JID the session was begun for.
	Local, Remote addressing.Address
	// RemoteDomain is the peer domain, the domain limits count against.
	RemoteDomain string
	// DialogID and CallID are the SIP side's names for the INVITE dialog
	// (opaque here); empty until known.
	DialogID, CallID string
	Direction        Direction
	State            State
	// Started is when the session was created, LastActivity the last
	// Touch (or creation, or establishment).
	Started, LastActivity time.Time
	// EndReason is set once State is StateEnded.
	EndReason EndReason
	// Queued is the number of messages waiting behind the setup.
	Queued int
	// Draining is true between Established and the Drain that returns
	// nothing: messages still queue behind those being sent.
	Draining bool
}

// Ready reports whether a message for the session can be sent directly:
// it is established and nothing is queued ahead. Once true, it stays true
// until the session ends.
func (s Session) Ready() bool { return s.State == StateEstablished && !s.Draining }

// Begun is Begin's result.
type Begun struct {
	// Session is the pair's live session.
	Session Session
	// Created: the caller created the session and owns its setup (send
	// the INVITE, then Established or End).
	Created bool
	// Queued: the message was queued behind the setup; it will come back
	// from Established, Drain or End. When false (and the error is nil)
	// the session is Ready and the caller sends the message itself.
	Queued bool
}

// InboundSetup describes a peer's offer that we accept.
type InboundSetup struct {
	// Thread is the offer's a=thread.
	Thread string
	// Local is the local full JID we answer with (a=jid of the answer);
	// Remote the peer's full JID (a=jid of the offer).
	Local, Remote addressing.Address
	// DialogID and CallID name the INVITE dialog.
	DialogID, CallID string
}

// Table is the session table of UMPP IM sessions
// (draft-mahy-impp-unified-proposal-00 §4.1): what the session layer
// needs from it. MemTable is the single-node implementation; one shared
// between nodes (NATS, PostgreSQL) can satisfy the same interface.
// Lookups return ErrNoSession (unwrapped) when there is no live session.
//
// A session is one XMPP thread between a local full JID and a remote full
// JID, set up by one SIP INVITE dialog. Outbound (we sent the INVITE), the
// local user and the remote bare JID are known first, the remote full JID
// only from the answer's a=jid. Inbound (we answered), the peer's offer
// names the thread, its full JID and the dialog; we name the local full
// JID in the answer. A session is SettingUp until the dialog is confirmed
// (outbound: the 2xx was ACKed; inbound: the ACK of our 2xx arrived),
// Established while messages flow, and Ended once removed.
//
// The table indexes every live session four ways: by thread (the
// <thread> of stanzas), by SIP dialog ID (BYE, Ended), by (local full JID,
// remote bare JID) for stanzas a local user sends (Outgoing, Begin), and
// by (remote full JID, local bare JID) for stanzas arriving on the s2s
// stream (Incoming). The pair indexes hold one session per pair: for
// Outgoing the first live one (glare keeps the one we started, or the one
// accepted first), for Incoming the most recently established one; every
// session stays reachable by thread and dialog.
//
// Ownership. Who creates:
//   - Begin, called for a local user's message to a remote user of a UMPP
//     peer, creates an outbound session when the pair has none. The caller
//     that gets Begun.Created owns the setup: it sends the INVITE
//     (sipside Server.Invite) and must then call exactly one of
//     Established (2xx, ACK sent) or End (rejected, peer-failure,
//     shutdown). Every other concurrent caller gets the same pending
//     session with its message queued (Begun.Queued) and does nothing more.
//   - Accept, called from the SIP side's SessionHandler.Offer, creates an
//     inbound session; the accepting caller calls Established when the ACK
//     arrives (or right away if the SIP side does not report ACKs), or End
//     if the answer fails.
//
// Who sends the queue: Established returns the messages queued during
// setup, in order, and clears the queue. While the caller sends them,
// new messages for the session are still queued behind them (Begin
// reports Queued), so order holds across goroutines; the caller then
// calls Drain until it returns nothing, which ends queueing:
//
//	msgs, err := t.Established(ctx, thread, remote, dialogID, callID)
//	for err == nil && len(msgs) > 0 {
//		send(msgs)
//		msgs, err = t.Drain(ctx, thread)
//	}
//
// Once Session.Ready reports true a session never queues again, so the
// per-message hot path is Outgoing and, if the session is Ready, a direct
// send; anything else goes through Begin.
//
// Who ends: any holder of the thread or dialog ID may call End or
// EndDialog; the first call wins and later calls get ErrNoSession.
//   - bye: the SIP side reports the peer's BYE or our own hangup
//     (SessionHandler.Ended → EndDialog).
//   - idle: the idle sweeper (Idle) found no traffic for the configured
//     timeout (session.idle_timeout, default 10 minutes); it sends BYE
//     (Dialog.Bye / Server.Hangup), then calls End.
//   - peer-failure: the INVITE got no answer or a transport error, or the
//     s2s stream to the peer failed; the session is ended, later messages
//     open a new one.
//   - rejected: the INVITE got a final non-2xx, or an inbound answer could
//     not be completed.
//   - shutdown: the daemon stops; Close refuses new sessions, and the
//     caller sends BYE for every session in All and ends it, repeating
//     until Len is 0.
//
// End removes the session from every index and returns what was still
// queued, so nothing is lost silently. What the caller does with it
// depends on the reason (EndReason.BounceCondition):
//   - rejected: bounce each message to its sender with the condition of
//     the SIP status (ConditionForSIPStatus), recipient-unavailable when
//     there is none;
//   - peer-failure: bounce with remote-server-not-found (no answer, no
//     route) or remote-server-timeout (the INVITE timed out);
//   - shutdown: bounce with service-unavailable;
//   - bye, idle: the queue is normally empty (it was flushed after ACK);
//     anything left was never offered to the peer, so the caller hands it
//     to Begin again, which opens a new session.
//
// The table stores queued stanzas as given and never changes them; the
// caller must not modify a slice after queueing it.
type Table interface {
	// Begin returns the live session for (local full JID, remote user),
	// creating one in StateSettingUp with a fresh thread when there is
	// none; msg, if not nil, is queued when the session is not Ready.
	// At most one setup runs per pair. With an error wrapping
	// ErrQueueFull the result still names the session, and msg was not
	// queued.
	Begin(ctx context.Context, local, remote addressing.Address, msg []byte) (Begun, error)
	// Accept records an inbound session (StateSettingUp).
	Accept(ctx context.Context, in InboundSetup) (Session, error)
	// Established marks the session established with the remote full JID
	// (of the peer's domain, and for an inbound session the one it
	// offered) and dialog, and returns the queued messages in order. If
	// the session ended meanwhile it returns them with an error wrapping
	// ErrNoSession: the caller bounces them as End's.
	Established(ctx context.Context, thread string, remote addressing.Address, dialogID, callID string) ([][]byte, error)
	// Drain returns messages queued since Established or the last Drain;
	// when there are none, the session stops queueing.
	Drain(ctx context.Context, thread string) ([][]byte, error)

	// ByThread, ByDialog, Outgoing (local full JID, remote JID) and
	// Incoming (remote full JID, local JID) look a live session up.
	ByThread(ctx context.Context, thread string) (Session, error)
	ByDialog(ctx context.Context, dialogID string) (Session, error)
	Outgoing(ctx context.Context, local, remote addressing.Address) (Session, error)
	Incoming(ctx context.Context, remote, local addressing.Address) (Session, error)
	// Touch records traffic on the session.
	Touch(ctx context.Context, thread string) error

	// End and EndDialog end a session: it is removed from every index,
	// and the messages still queued are returned.
	End(ctx context.Context, thread string, reason EndReason) (Session, [][]byte, error)
	EndDialog(ctx context.Context, dialogID string, reason EndReason) (Session, [][]byte, error)
	// Idle returns the live sessions without traffic for longer than
	// timeout at now.
	Idle(ctx context.Context, now time.Time, timeout time.Duration) ([]Session, error)
	// All returns every live session, ordered by Started.
	All(ctx context.Context) ([]Session, error)
	// Len returns the number of live sessions.
	Len() int
	// Close refuses new sessions (Begin, Accept) from now on.
	Close()
}

// MemTableOptions configure a MemTable.
type MemTableOptions struct {
	// MaxSessionsPerPeer bounds the live sessions with one peer domain
	// (limits.max_sessions_per_peer); 0 means no limit.
	MaxSessionsPerPeer int
	// MaxQueue bounds the messages queued per session during setup;
	// 0 means DefaultMaxQueue.
	MaxQueue int
	// Shards is the number of lock shards per index, rounded up to a
	// power of two; 0 means DefaultShards.
	Shards int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Defaults for MemTableOptions.
const (
	DefaultMaxQueue = 64
	DefaultShards   = 64
	// MaxThreadLen bounds a peer-chosen thread id.
	MaxThreadLen = 256
	// threadBytes is the entropy of a thread we generate (128 bits).
	threadBytes = 16
)

// MemTable is the in-memory Table. Each index is split into shards with
// their own locks, so lookups of different sessions do not contend; a
// session's own fields are guarded by its record's lock.
//
// Lock order: an Outgoing-index shard, then a record, then any other
// index shard or the domain counter; every other path holds one lock at
// a time.
type MemTable struct {
	opts   MemTableOptions
	now    func() time.Time
	closed atomic.Bool

	threads  index[string]
	dialogs  index[string]
	outgoing index[pairKey]
	incoming index[pairKey]
	domains  domainCounts
}

var _ Table = (*MemTable)(nil)

// pairKey is a (full JID, bare JID) pair: (local, remote) in the Outgoing
// index, (remote, local) in the Incoming one.
type pairKey struct {
	full addressing.Address
	bare addressing.Address
}

// record is a live session. thread, local, out, dir and started never
// change; the rest is guarded by mu, except last (atomic, for Touch) and
// pub, the snapshot lookups read without taking mu, replaced under mu
// after every change.
type record struct {
	thread  string
	local   addressing.Address
	out     pairKey
	domain  string
	dir     Direction
	started time.Time
	last    atomic.Int64 // UnixNano of the last activity
	pub     atomic.Pointer[Session]

	mu       sync.Mutex
	state    State
	remote   addressing.Address
	dialogID string
	callID   string
	queue    [][]byte
	draining bool
	reason   EndReason
}

// NewMemTable returns an empty in-memory table.
func NewMemTable(opts MemTableOptions) *MemTable {
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = DefaultMaxQueue
	}
	n := opts.Shards
	if n <= 0 {
		n = DefaultShards
	}
	p := 1
	for p < n {
		p <<= 1
	}
	opts.Shards = p
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	seed := maphash.MakeSeed()
	return newMemTable(opts, now, seed,
		func(k string) uint64 { return maphash.String(seed, k) },
		func(k pairKey) uint64 { return hashPair(seed, k) })
}

// newMemTable builds a table with the given hash functions (tests use
// poor ones to exercise the collision path).
func newMemTable(opts MemTableOptions, now func() time.Time, seed maphash.Seed, hashString func(string) uint64, hashPairKey func(pairKey) uint64) *MemTable {
	p := opts.Shards
	return &MemTable{
		opts:     opts,
		now:      now,
		threads:  newIndex(p, hashString),
		dialogs:  newIndex(p, hashString),
		outgoing: newIndex(p, hashPairKey),
		incoming: newIndex(p, hashPairKey),
		domains:  newDomainCounts(p, seed),
	}
}

// hashPair hashes a pair key. Our own domain is left out (it repeats
// across sessions); entries keep whole keys, so equal hashes of different
// keys are told apart.
func hashPair(seed maphash.Seed, k pairKey) uint64 {
	return maphash.String(seed, k.full.Local) ^
		maphash.String(seed, k.full.Resource)*0x9e3779b97f4a7c15 ^
		maphash.String(seed, k.bare.Local)*0xc2b2ae3d27d4eb4f ^
		maphash.String(seed, k.bare.Domain)*0x94d049bb133111eb
}

// newThread returns a fresh thread id: 128 random bits, URL-safe base64.
func newThread() string {
	var b [threadBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func validUser(a addressing.Address) bool { return a.Local != "" && a.Domain != "" }

// snapshot copies r; r.mu must be held.
func (r *record) snapshot() Session {
	return Session{
		Thread:       r.thread,
		Local:        r.local,
		Remote:       r.remote,
		RemoteDomain: r.domain,
		DialogID:     r.dialogID,
		CallID:       r.callID,
		Direction:    r.dir,
		State:        r.state,
		Started:      r.started,
		LastActivity: time.Unix(0, r.last.Load()),
		EndReason:    r.reason,
		Queued:       len(r.queue),
		Draining:     r.draining,
	}
}

// publish makes the current fields what lookups see; r.mu must be held.
func (r *record) publish() {
	s := r.snapshot()
	r.pub.Store(&s)
}

// snap returns the published snapshot and whether the session is live.
func (r *record) snap() (Session, bool) {
	s := *r.pub.Load()
	s.LastActivity = time.Unix(0, r.last.Load())
	return s, s.State != StateEnded
}

// enqueue queues msg unless the session is Ready; r.mu must be held.
func (t *MemTable) enqueue(r *record, msg []byte) (bool, error) {
	if r.state == StateEstablished && !r.draining {
		return false, nil
	}
	if msg == nil {
		return false, nil
	}
	if len(r.queue) >= t.opts.MaxQueue {
		return false, ErrQueueFull
	}
	r.queue = append(r.queue, msg)
	r.publish()
	return true, nil
}

// Begin implements Table.
func (t *MemTable) Begin(ctx context.Context, local, remote addressing.Address, msg []byte) (Begun, error) {
	if err := ctx.Err(); err != nil {
		return Begun{}, fmt.Errorf("session: begin: %w", err)
	}
	if !validUser(local) || local.IsBare() || !validUser(remote) {
		return Begun{}, fmt.Errorf("session: begin %s -> %s: %w: need a local full JID and a remote user", local, remote.Bare(), ErrInvalidSession)
	}
	k := pairKey{full: local, bare: remote.Bare()}
	sh, h := t.outgoing.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r := sh.lookup(h, k); r != nil {
		r.mu.Lock()
		if r.state != StateEnded {
			queued, err := t.enqueue(r, msg)
			res := Begun{Session: r.snapshot(), Queued: queued}
			r.mu.Unlock()
			if err != nil {
				return res, fmt.Errorf("session: begin %s -> %s: thread %s: %w", local, k.bare, r.thread, err)
			}
			return res, nil
		}
		r.mu.Unlock() // being removed: replace it below
	}
	if t.closed.Load() {
		return Begun{}, fmt.Errorf("session: begin %s -> %s: %w", local, k.bare, ErrTableClosed)
	}
	if !t.domains.acquire(k.bare.Domain, t.opts.MaxSessionsPerPeer) {
		return Begun{}, fmt.Errorf("session: begin %s -> %s: %w (%d)", local, k.bare, ErrTooManySessions, t.opts.MaxSessionsPerPeer)
	}
	now := t.now()
	r := &record{
		local: local, out: k, domain: k.bare.Domain, dir: Outbound, started: now,
		state: StateSettingUp, remote: k.bare,
	}
	r.last.Store(now.UnixNano())
	if msg != nil {
		r.queue = append(make([][]byte, 0, 4), msg)
	}
	for {
		r.thread = newThread()
		r.publish() // before anyone can find it
		if t.threads.putNew(r.thread, r) {
			break
		}
	}
	sh.set(h, k, r)
	return Begun{Session: r.snapshot(), Created: true, Queued: msg != nil}, nil
}

// Accept implements Table.
func (t *MemTable) Accept(ctx context.Context, in InboundSetup) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, fmt.Errorf("session: accept: %w", err)
	}
	switch {
	case in.Thread == "" || len(in.Thread) > MaxThreadLen:
		return Session{}, fmt.Errorf("session: accept %s -> %s: %w: thread of %d bytes", in.Remote, in.Local, ErrInvalidSession, len(in.Thread))
	case !validUser(in.Local) || in.Local.IsBare() || !validUser(in.Remote) || in.Remote.IsBare():
		return Session{}, fmt.Errorf("session: accept %s -> %s: %w: need full JIDs", in.Remote, in.Local, ErrInvalidSession)
	case in.DialogID == "":
		return Session{}, fmt.Errorf("session: accept %s -> %s: %w: no dialog", in.Remote, in.Local, ErrInvalidSession)
	}
	if t.closed.Load() {
		return Session{}, fmt.Errorf("session: accept %s -> %s: %w", in.Remote, in.Local, ErrTableClosed)
	}
	if !t.domains.acquire(in.Remote.Domain, t.opts.MaxSessionsPerPeer) {
		return Session{}, fmt.Errorf("session: accept %s -> %s: %w (%d)", in.Remote, in.Local, ErrTooManySessions, t.opts.MaxSessionsPerPeer)
	}
	now := t.now()
	r := &record{
		thread: in.Thread, local: in.Local, out: pairKey{full: in.Local, bare: in.Remote.Bare()},
		domain: in.Remote.Domain, dir: Inbound, started: now,
		state: StateSettingUp, remote: in.Remote, dialogID: in.DialogID, callID: in.CallID,
	}
	r.last.Store(now.UnixNano())
	r.publish()
	if !t.threads.putNew(r.thread, r) {
		t.domains.release(r.domain)
		return Session{}, fmt.Errorf("session: accept %s -> %s: thread %q: %w", in.Remote, in.Local, in.Thread, ErrSessionConflict)
	}
	if !t.dialogs.putNew(r.dialogID, r) {
		t.finish(r, EndRejected) // visible by thread already: end it the one way
		return Session{}, fmt.Errorf("session: accept %s -> %s: dialog %s: %w", in.Remote, in.Local, in.DialogID, ErrSessionConflict)
	}
	t.incoming.put(pairKey{full: in.Remote, bare: in.Local.Bare()}, r)
	t.putOutgoing(r)
	s, live := r.snap()
	if !live {
		t.unindex(r) // ended while we indexed it
		return s, fmt.Errorf("session: accept %s -> %s: %w", in.Remote, in.Local, ErrNoSession)
	}
	return s, nil
}

// putOutgoing indexes r by its outgoing pair unless a live session holds
// the pair already.
func (t *MemTable) putOutgoing(r *record) {
	sh, h := t.outgoing.shard(r.out)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.lookup(h, r.out); old != nil {
		old.mu.Lock()
		live := old.state != StateEnded
		old.mu.Unlock()
		if live {
			return
		}
	}
	sh.set(h, r.out, r)
}

// Established implements Table.
// It does not fail for a cancelled context: the dialog is confirmed
// already.
func (t *MemTable) Established(_ context.Context, thread string, remote addressing.Address, dialogID, callID string) ([][]byte, error) {
	r := t.threads.get(thread)
	if r == nil {
		return nil, fmt.Errorf("session: established %s: %w", thread, ErrNoSession)
	}
	if !validUser(remote) || remote.IsBare() || remote.Domain != r.domain || dialogID == "" {
		return nil, fmt.Errorf("session: established %s: %w: remote %s for peer %s, dialog %q", thread, ErrInvalidSession, remote, r.domain, dialogID)
	}
	r.mu.Lock()
	state, have, known := r.state, r.dialogID, r.remote
	r.mu.Unlock()
	switch {
	case state == StateEnded:
		return nil, fmt.Errorf("session: established %s: %w", thread, ErrNoSession)
	case state != StateSettingUp:
		return nil, fmt.Errorf("session: established %s: %w: %s", thread, ErrSessionState, state)
	case !known.IsBare() && known != remote:
		return nil, fmt.Errorf("session: established %s: %w: remote %s, not %s", thread, ErrInvalidSession, known, remote)
	case have != "" && have != dialogID:
		return nil, fmt.Errorf("session: established %s: dialog %s, not %s: %w", thread, have, dialogID, ErrSessionConflict)
	}
	if have == "" && !t.dialogs.putNew(dialogID, r) {
		return nil, fmt.Errorf("session: established %s: dialog %s: %w", thread, dialogID, ErrSessionConflict)
	}
	r.mu.Lock()
	if r.state != StateSettingUp {
		st := r.state
		r.mu.Unlock()
		if have == "" {
			t.dialogs.del(dialogID, r)
		}
		if st == StateEnded {
			t.unindex(r)
			return nil, fmt.Errorf("session: established %s: %w", thread, ErrNoSession)
		}
		return nil, fmt.Errorf("session: established %s: %w: %s", thread, ErrSessionState, st)
	}
	r.state = StateEstablished
	r.remote = remote
	r.dialogID = dialogID
	if callID != "" {
		r.callID = callID
	}
	q := r.queue
	r.queue = nil
	r.draining = len(q) > 0
	r.last.Store(t.now().UnixNano())
	r.publish()
	r.mu.Unlock()

	t.incoming.put(pairKey{full: remote, bare: r.local.Bare()}, r)
	if _, live := r.snap(); !live {
		t.unindex(r) // ended while we indexed it; End returned nothing queued
		return q, fmt.Errorf("session: established %s: %w", thread, ErrNoSession)
	}
	return q, nil
}

// Drain implements Table.
func (t *MemTable) Drain(_ context.Context, thread string) ([][]byte, error) {
	r := t.threads.get(thread)
	if r == nil {
		return nil, fmt.Errorf("session: drain %s: %w", thread, ErrNoSession)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == StateEnded {
		return nil, fmt.Errorf("session: drain %s: %w", thread, ErrNoSession)
	}
	q := r.queue
	r.queue = nil
	if len(q) == 0 {
		r.draining = false
	}
	r.publish()
	return q, nil
}

// fill copies r's published snapshot into *s (the caller's result, so
// the lookups copy it once) and reports whether r is live.
func fill(r *record, s *Session) bool {
	if r == nil {
		return false
	}
	p := r.pub.Load()
	if p.State == StateEnded {
		return false
	}
	*s = *p
	s.LastActivity = time.Unix(0, r.last.Load())
	return true
}

// ByThread implements Table.
func (t *MemTable) ByThread(_ context.Context, thread string) (s Session, err error) {
	if !fill(t.threads.get(thread), &s) {
		return Session{}, ErrNoSession
	}
	return s, nil
}

// ByDialog implements Table.
func (t *MemTable) ByDialog(_ context.Context, dialogID string) (s Session, err error) {
	if !fill(t.dialogs.get(dialogID), &s) {
		return Session{}, ErrNoSession
	}
	return s, nil
}

// Outgoing implements Table: the session for a stanza from local (a full
// JID) to remote (bare or full).
func (t *MemTable) Outgoing(_ context.Context, local, remote addressing.Address) (s Session, err error) {
	remote.Resource = ""
	if !fill(t.outgoing.get(pairKey{full: local, bare: remote}), &s) {
		return Session{}, ErrNoSession
	}
	return s, nil
}

// Incoming implements Table: the session for a stanza from remote (a full
// JID) to local (bare or full).
func (t *MemTable) Incoming(_ context.Context, remote, local addressing.Address) (s Session, err error) {
	local.Resource = ""
	if !fill(t.incoming.get(pairKey{full: remote, bare: local}), &s) {
		return Session{}, ErrNoSession
	}
	return s, nil
}

// Touch implements Table.
func (t *MemTable) Touch(_ context.Context, thread string) error {
	r := t.threads.get(thread)
	if r == nil {
		return ErrNoSession
	}
	r.last.Store(t.now().UnixNano())
	return nil
}

// End implements Table.
func (t *MemTable) End(_ context.Context, thread string, reason EndReason) (Session, [][]byte, error) {
	r := t.threads.get(thread)
	if r == nil {
		return Session{}, nil, fmt.Errorf("session: end %s (%s): %w", thread, reason, ErrNoSession)
	}
	s, q, ok := t.finish(r, reason)
	if !ok {
		return s, nil, fmt.Errorf("session: end %s (%s): %w", thread, reason, ErrNoSession)
	}
	return s, q, nil
}

// EndDialog implements Table.
func (t *MemTable) EndDialog(_ context.Context, dialogID string, reason EndReason) (Session, [][]byte, error) {
	r := t.dialogs.get(dialogID)
	if r == nil {
		return Session{}, nil, fmt.Errorf("session: end dialog %s (%s): %w", dialogID, reason, ErrNoSession)
	}
	s, q, ok := t.finish(r, reason)
	if !ok {
		return s, nil, fmt.Errorf("session: end dialog %s (%s): %w", dialogID, reason, ErrNoSession)
	}
	return s, q, nil
}

// finish ends r once: the first call marks it ended, takes its queue,
// removes it from every index and releases its peer-domain slot.
func (t *MemTable) finish(r *record, reason EndReason) (Session, [][]byte, bool) {
	r.mu.Lock()
	if r.state == StateEnded {
		s := r.snapshot()
		r.mu.Unlock()
		return s, nil, false
	}
	r.state = StateEnded
	r.reason = reason
	q := r.queue
	r.queue = nil
	r.draining = false
	r.publish()
	s := r.snapshot()
	r.mu.Unlock()
	t.unindex(r)
	t.domains.release(r.domain)
	return s, q, true
}

// unindex removes r from every index it may be in; entries that now name
// another record are left alone, so it is safe to repeat.
func (t *MemTable) unindex(r *record) {
	r.mu.Lock()
	remote, dialogID := r.remote, r.dialogID
	r.mu.Unlock()
	t.threads.del(r.thread, r)
	if dialogID != "" {
		t.dialogs.del(dialogID, r)
	}
	t.outgoing.del(r.out, r)
	if !remote.IsBare() {
		t.incoming.del(pairKey{full: remote, bare: r.local.Bare()}, r)
	}
}

// Idle implements Table.
func (t *MemTable) Idle(ctx context.Context, now time.Time, timeout time.Duration) ([]Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("session: idle: %w", err)
	}
	cutoff := now.Add(-timeout).UnixNano()
	var out []Session
	t.threads.each(func(r *record) {
		if r.last.Load() < cutoff {
			if s, live := r.snap(); live {
				out = append(out, s)
			}
		}
	})
	sortByStart(out)
	return out, nil
}

// All implements Table.
func (t *MemTable) All(ctx context.Context) ([]Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("session: all: %w", err)
	}
	out := make([]Session, 0, t.Len())
	t.threads.each(func(r *record) {
		if s, live := r.snap(); live {
			out = append(out, s)
		}
	})
	sortByStart(out)
	return out, nil
}

func sortByStart(ss []Session) {
	slices.SortFunc(ss, func(a, b Session) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		switch {
		case a.Thread < b.Thread:
			return -1
		case a.Thread > b.Thread:
			return 1
		}
		return 0
	})
}

// Len implements Table.
func (t *MemTable) Len() int { return t.threads.len() }

// Close implements Table.
func (t *MemTable) Close() { t.closed.Store(true) }

// index is one sharded map to records. Keys are found by a 64-bit seeded
// hash the index computes once for both the shard and the map; an entry
// keeps its whole key, and a key whose hash slot another key holds goes to
// the shard's overflow map, so collisions cost speed, never correctness.
type index[K comparable] struct {
	shards []indexShard[K]
	mask   uint64
	hash   func(K) uint64
}

type indexEntry[K comparable] struct {
	k K
	r *record
}

type indexShard[K comparable] struct {
	mu   sync.RWMutex
	m    map[uint64]indexEntry[K]
	over map[K]*record // keys whose hash slot holds another key
	_    [32]byte      // keep shards on separate cache lines
}

func newIndex[K comparable](n int, hash func(K) uint64) index[K] {
	x := index[K]{shards: make([]indexShard[K], n), mask: uint64(n - 1), hash: hash}
	for i := range x.shards {
		x.shards[i].m = make(map[uint64]indexEntry[K])
	}
	return x
}

// shard returns k's shard and hash.
func (x *index[K]) shard(k K) (*indexShard[K], uint64) {
	h := x.hash(k)
	return &x.shards[h&x.mask], h
}

// lookup finds k; sh.mu must be held.
func (sh *indexShard[K]) lookup(h uint64, k K) *record {
	if e, ok := sh.m[h]; ok && e.k == k {
		return e.r
	}
	if sh.over != nil {
		return sh.over[k]
	}
	return nil
}

// set makes k name r; sh.mu must be held for writing. A key lives either
// in its hash slot or in the overflow map, never both.
func (sh *indexShard[K]) set(h uint64, k K, r *record) {
	if _, ok := sh.over[k]; ok {
		sh.over[k] = r
		return
	}
	if e, ok := sh.m[h]; ok && e.k != k {
		if sh.over == nil {
			sh.over = make(map[K]*record)
		}
		sh.over[k] = r
		return
	}
	sh.m[h] = indexEntry[K]{k: k, r: r}
}

// remove deletes k if it names r; sh.mu must be held for writing.
func (sh *indexShard[K]) remove(h uint64, k K, r *record) {
	if e, ok := sh.m[h]; ok && e.k == k {
		if e.r == r {
			delete(sh.m, h)
		}
		return
	}
	if sh.over[k] == r && r != nil {
		delete(sh.over, k)
		if len(sh.over) == 0 {
			sh.over = nil
		}
	}
}

func (x *index[K]) get(k K) *record {
	sh, h := x.shard(k)
	sh.mu.RLock()
	r := sh.lookup(h, k)
	sh.mu.RUnlock()
	return r
}

// putNew adds k -> r unless k is taken.
func (x *index[K]) putNew(k K, r *record) bool {
	sh, h := x.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.lookup(h, k) != nil {
		return false
	}
	sh.set(h, k, r)
	return true
}

// put sets k -> r, replacing any other record.
func (x *index[K]) put(k K, r *record) {
	sh, h := x.shard(k)
	sh.mu.Lock()
	sh.set(h, k, r)
	sh.mu.Unlock()
}

// del removes k if it still names r.
func (x *index[K]) del(k K, r *record) {
	sh, h := x.shard(k)
	sh.mu.Lock()
	sh.remove(h, k, r)
	sh.mu.Unlock()
}

func (x *index[K]) len() int {
	n := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.RLock()
		n += len(sh.m) + len(sh.over)
		sh.mu.RUnlock()
	}
	return n
}

// each calls fn for every record, one shard at a time, without holding a
// shard lock during fn.
func (x *index[K]) each(fn func(*record)) {
	var buf []*record
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.RLock()
		buf = buf[:0]
		for _, e := range sh.m {
			buf = append(buf, e.r)
		}
		for _, r := range sh.over {
			buf = append(buf, r)
		}
		sh.mu.RUnlock()
		for _, r := range buf {
			fn(r)
		}
	}
}

// domainCounts counts live sessions per peer domain.
type domainCounts struct {
	shards []countShard
	mask   uint64
	seed   maphash.Seed
}

type countShard struct {
	mu sync.Mutex
	m  map[string]int
}

func newDomainCounts(n int, seed maphash.Seed) domainCounts {
	c := domainCounts{shards: make([]countShard, n), mask: uint64(n - 1), seed: seed}
	for i := range c.shards {
		c.shards[i].m = make(map[string]int)
	}
	return c
}

func (c *domainCounts) shard(d string) *countShard {
	return &c.shards[maphash.String(c.seed, d)&c.mask]
}

// acquire takes a slot for domain d unless it has max (0: no limit).
func (c *domainCounts) acquire(d string, limit int) bool {
	sh := c.shard(d)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if limit > 0 && sh.m[d] >= limit {
		return false
	}
	sh.m[d]++
	return true
}

func (c *domainCounts) release(d string) {
	sh := c.shard(d)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if n := sh.m[d]; n > 1 {
		sh.m[d] = n - 1
	} else {
		delete(sh.m, d)
	}
}

// count returns the live sessions with domain d.
func (c *domainCounts) count(d string) int {
	sh := c.shard(d)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[d]
}

// total returns the number of domains with live sessions.
func (c *domainCounts) total() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
