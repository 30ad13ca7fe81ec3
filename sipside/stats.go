package sipside

import (
	"sort"
	"time"
)

// Stats is a snapshot of the SIP server's tables, for the operator:
// metrics gauges and `umppd status`.
type Stats struct {
	// Registrations lists the unexpired registrar bindings, sorted by
	// AOR then contact; nil when the Registrations in use is not the
	// in-memory one (a shared table is the operator's to inspect).
	Registrations []Binding
	// Subscriptions counts unexpired SUBSCRIBE dialogs for presence of
	// local users (watchers subscribed to us).
	Subscriptions int
	// Publications counts unexpired PUBLISHed presence documents.
	Publications int
}

// Stats returns a snapshot of the registrations and presence tables,
// each read under its own lock.
func (s *Server) Stats() Stats {
	now := time.Now()
	var st Stats
	// The in-memory table, also when a caller wraps it (embedding it).
	if mr, ok := s.regs.(interface{ snapshot(time.Time) []Binding }); ok {
		st.Registrations = mr.snapshot(now)
	}
	p := s.presence
	p.mu.Lock()
	for _, subs := range p.subs {
		for _, sub := range subs {
			if sub.expires.After(now) {
				st.Subscriptions++
			}
		}
	}
	for _, pubs := range p.pubs {
		for _, pub := range pubs {
			if pub.expires.After(now) {
				st.Publications++
			}
		}
	}
	p.mu.Unlock()
	return st
}

// snapshot returns the unexpired bindings of every AOR, sorted.
func (r *MemoryRegistrations) snapshot(now time.Time) []Binding {
	out := []Binding{}
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for _, bs := range sh.m {
			for _, b := range bs {
				if b.Expires.After(now) {
					out = append(out, b)
				}
			}
		}
		sh.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].AOR != out[j].AOR {
			return out[i].AOR < out[j].AOR
		}
		return out[i].Contact < out[j].Contact
	})
	return out
}
