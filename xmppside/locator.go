package xmppside

import (
	"context"
	"hash/maphash"
	"sync"
)

// Endpoint is one connected resource of a local account as the router
// sees it. A multi-node Locator may return endpoints that forward to the
// node where the resource is connected.
type Endpoint interface {
	// JID is the endpoint's full JID, normalized.
	JID() string
	// Presence returns the resource's priority and whether it sent
	// available presence (RFC 6121 §4.2: "available resource").
	Presence() (priority int, available bool)
	// LastPresence is the resource's current available presence as
	// broadcast (from stamped), or nil when it is unavailable.
	LastPresence() []byte
	// Deliver queues a serialized stanza for the resource. raw is only
	// valid during the call. It returns ErrQueueFull when the resource
	// cannot take more within the server's SendTimeout and ErrGone when
	// the resource has disconnected.
	Deliver(ctx context.Context, raw []byte) error
	// Close ends the resource's stream with a stream error condition
	// ("conflict", "system-shutdown", ...).
	Close(condition string)
}

// Locator answers "where do the resources of this bare JID live". The
// routing path calls Lookup for every stanza, so implementations must not
// take a global lock there.
type Locator interface {
	// Register adds e and returns the endpoint it replaces (same full
	// JID), if any.
	Register(e Endpoint) (replaced Endpoint)
	// Unregister removes e if it is still the endpoint registered for its
	// full JID.
	Unregister(e Endpoint)
	// Lookup appends the endpoints of a bare JID to dst.
	Lookup(bare string, dst []Endpoint) []Endpoint
}

const locatorShards = 64

// MemLocator is the in-memory Locator of a single node: a map from bare
// JID to resources, split in shards with their own locks.
type MemLocator struct {
	seed   maphash.Seed
	shards [locatorShards]locShard
}

type locShard struct {
	mu sync.RWMutex
	m  map[string][]Endpoint // bare JID -> resources; slices are never mutated in place
}

// NewMemLocator returns an empty MemLocator.
func NewMemLocator() *MemLocator {
	l := &MemLocator{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[string][]Endpoint)
	}
	return l
}

func (l *MemLocator) shard(bare string) *locShard {
	return &l.shards[maphash.String(l.seed, bare)%locatorShards]
}

func bareOf(full string) string {
	for i := 0; i < len(full); i++ {
		if full[i] == '/' {
			return full[:i]
		}
	}
	return full
}

// Register implements Locator.
func (l *MemLocator) Register(e Endpoint) Endpoint {
	full := e.JID()
	bare := bareOf(full)
	sh := l.shard(bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := sh.m[bare]
	next := make([]Endpoint, 0, len(old)+1)
	var replaced Endpoint
	for _, o := range old {
		if o.JID() == full {
			replaced = o
			continue
		}
		next = append(next, o)
	}
	sh.m[bare] = append(next, e)
	return replaced
}

// Unregister implements Locator.
func (l *MemLocator) Unregister(e Endpoint) {
	bare := bareOf(e.JID())
	sh := l.shard(bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := sh.m[bare]
	next := make([]Endpoint, 0, len(old))
	for _, o := range old {
		if o != e {
			next = append(next, o)
		}
	}
	if len(next) == 0 {
		delete(sh.m, bare)
		return
	}
	sh.m[bare] = next
}

// Lookup implements Locator.
func (l *MemLocator) Lookup(bare string, dst []Endpoint) []Endpoint {
	sh := l.shard(bare)
	sh.mu.RLock()
	dst = append(dst, sh.m[bare]...)
	sh.mu.RUnlock()
	return dst
}
