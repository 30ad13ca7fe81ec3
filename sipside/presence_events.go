package sipside

import (
	"context"
	"time"
)

// Callbacks of presence state (Options.PresenceChanged and
// RemotePresence.Unwatch) are run by one goroutine per server, from a
// queue that holds each pending event once: a presentity whose state
// changed several times before its turn is reported once, with the
// state it has then, so the queue is bounded by the number of
// presentities and watchers, never drops an event, and keeps the calls
// for one presentity in order.

// RemotePresence follows presentities of other domains for local SIP
// watchers (the gateway subscribes on their behalf, draft §4.2).
type RemotePresence interface {
	// Watch is asked once for a new subscription; it answers like
	// PresencePolicy (PolicyPending until the remote side answers; the
	// gateway then calls Authorize(presentity, watcher, true/false)).
	Watch(ctx context.Context, watcher, presentity string) (PolicyDecision, error)
	// Unwatch reports that the watcher's last subscription to
	// presentity ended (Expires: 0, expiry, rejection). Not called at
	// shutdown.
	Unwatch(watcher, presentity string)
}

// presEvent is one pending callback.
type presEvent struct {
	kind       int
	presentity string
	watcher    string // evUnwatch
}

const (
	evChanged = iota + 1 // PresenceChanged(presentity, SIP-published document)
	evUnwatch            // RemotePresence.Unwatch(watcher, presentity)
)

// queueLocked adds ev unless it is already waiting; p.mu is held.
func (p *presence) queueLocked(ev presEvent) {
	if p.queued[ev] {
		return
	}
	p.queued[ev] = true
	p.events = append(p.events, ev)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// next takes the first waiting event.
func (p *presence) next() (presEvent, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.events) == 0 {
		p.events = nil // let a grown backing array go
		return presEvent{}, false
	}
	ev := p.events[0]
	p.events[0] = presEvent{}
	p.events = p.events[1:]
	delete(p.queued, ev)
	return ev, true
}

// runPresenceEvents runs the callbacks until ctx ends; what is still
// queued then is dropped (a shutdown is not a change of state).
func (s *Server) runPresenceEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.presence.wake:
		}
		for ctx.Err() == nil {
			ev, ok := s.presence.next()
			if !ok {
				break
			}
			switch ev.kind {
			case evChanged:
				s.reportChanged(ev.presentity)
			case evUnwatch:
				s.reportUnwatch(ev.watcher, ev.presentity)
			}
		}
	}
}

// reportChanged calls PresenceChanged with presentity's SIP-published
// state, unless that is what it was last told.
func (s *Server) reportChanged(presentity string) {
	p := s.presence
	p.mu.Lock()
	doc := p.publishedLocked(presentity, time.Now())
	var key string
	if doc != nil {
		b, err := doc.Marshal()
		if err != nil {
			p.mu.Unlock()
			s.log.Error("published presence document", "presentity", presentity, "error", err)
			return
		}
		key = string(b)
	}
	last, had := p.reported[presentity]
	switch {
	case doc == nil && !had, doc != nil && had && last == key:
		p.mu.Unlock()
		return
	case doc == nil:
		delete(p.reported, presentity)
	default:
		p.reported[presentity] = key
	}
	p.mu.Unlock()
	s.opts.PresenceChanged(presentity, doc)
}

// reportUnwatch calls Unwatch when watcher still has no subscription to
// presentity (a new one may have come while the event waited).
func (s *Server) reportUnwatch(watcher, presentity string) {
	p := s.presence
	l := p.watchLock(watcher, presentity)
	l.Lock()
	defer l.Unlock()
	p.mu.Lock()
	n, closed := p.remoteRefs[remoteKey(watcher, presentity)], p.closed
	p.mu.Unlock()
	if n > 0 || closed {
		return
	}
	s.opts.RemotePresence.Unwatch(watcher, presentity)
}
