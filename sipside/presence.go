package sipside

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/pidf"
)

// Presence: an event state compositor for PUBLISH (RFC 3903) and a
// notifier for SUBSCRIBE/NOTIFY with the presence event package
// (RFC 6665, RFC 3856), for local presentities and, through
// RemotePresence, for presentities of other domains whose state the
// gateway holds (SetPresence). State is in memory.

// PolicyDecision is a PresencePolicy answer about one watcher and one
// presentity (RFC 3857 §3.2.1 names the same states).
type PolicyDecision int

const (
	// PolicyDeny refuses the subscription: 403.
	PolicyDeny PolicyDecision = iota
	// PolicyAllow accepts it: 200 and NOTIFY active with the presence
	// document.
	PolicyAllow
	// PolicyPending accepts it without showing anything until the
	// presentity decides: 200 and NOTIFY pending with no body
	// (RFC 3856 §6.6.2, RFC 6665 §4.2.1.1). Server.Authorize later
	// turns it active or rejected.
	PolicyPending
)

func (d PolicyDecision) String() string {
	switch d {
	case PolicyAllow:
		return "allow"
	case PolicyPending:
		return "pending"
	default:
		return "deny"
	}
}

// PresencePolicy decides who may watch whom (RFC 3856 §6.6). The seam for
// rosters: umppd answers with the XMPP subscription state, PolicyPending
// while the XMPP user has not answered the subscription request
// (RFC 8048 §4: answering PolicyPending is the moment to send the XMPP
// user a subscription request), and calls Server.Authorize when they
// answer. A user may always watch themselves; the policy is not asked
// then. MaySubscribe is called once per new subscription, not on
// refreshes, and should not block for long: the SUBSCRIBE waits for it.
type PresencePolicy interface {
	MaySubscribe(ctx context.Context, watcher, presentity string) (PolicyDecision, error)
}

// Bounds on presence state.
const (
	maxPublications = 16
	// Defaults of Options.MaxWatchersPerPresentity and
	// MaxSubscriptionsPerWatcher.
	defaultMaxWatchers      = 256
	defaultMaxSubscriptions = 1024
	defaultSubscribeRate    = 20
	defaultSubscribeBurst   = 100
	maxRateSources          = 65536
	rateLimitLogInterval    = 10 * time.Second
)

type publication struct {
	etag    string
	doc     *pidf.Document
	expires time.Time
}

type subscription struct {
	id        string // Call-ID + tags
	watcher   string // bare JID of the subscriber
	callID    string
	localTag  string // our tag (To of the SUBSCRIBE)
	remoteTag string // the subscriber's tag
	local     sip.Uri
	remote    sip.Uri // the watcher's AOR
	target    sip.Uri // the subscriber's Contact
	transport string
	cseq      uint32
	ctype     string // body type to NOTIFY with
	expires   time.Time
	pending   bool // awaiting the presentity's authorization: no state shown
	foreign   bool // the presentity is of another domain (RemotePresence)
}

// presence holds publications and subscriptions by presentity JID.
type presence struct {
	maxWatchers, maxPerWatcher int
	changes, watches           bool         // PresenceChanged and RemotePresence are set
	limiter                    *rateLimiter // SUBSCRIBE per source IP

	mu        sync.Mutex
	pubs      map[string]map[string]*publication  // presentity -> etag -> publication
	subs      map[string]map[string]*subscription // presentity -> id -> subscription
	byWatcher map[string]int                      // watcher -> live subscriptions
	// dialogs names the presentity of each subscription by its id: an
	// in-dialog SUBSCRIBE (refresh, unsubscribe) is addressed to our
	// Contact, not to the presentity (RFC 6665 §4.1.2.1).
	dialogs map[string]string
	// held are the SetPresence documents, by presentity.
	held map[string]*pidf.Document
	// remoteRefs counts, per watcher and remote presentity
	// (remoteKey), the live subscriptions plus the Watch calls under
	// way; Unwatch is due when it drops to zero.
	remoteRefs map[string]int
	// watchLocks serialize Watch and Unwatch calls of one watcher and
	// presentity (by a hash of remoteKey), so the gateway hears them
	// in the order the subscriptions come and go.
	watchLocks [64]sync.Mutex
	// Events for the callbacks (presence_events.go): a queue without
	// duplicates, worked off by one goroutine.
	events   []presEvent
	queued   map[presEvent]bool
	wake     chan struct{}
	reported map[string]string // presentity -> document last given to PresenceChanged
	closed   bool              // shutting down: no new subscriptions, no Unwatch
	// notifying holds the NOTIFY lane of each subscription that has a
	// NOTIFY in flight, by subscription id (notify).
	notifying map[string]*notifyLane
}

// notifyLane sends one subscription's NOTIFYs one at a time, in order: a
// NOTIFY goes out when the previous one is answered, so the subscriber
// never sees them overtake each other (a NOTIFY with a CSeq lower than
// the last one is refused, RFC 3261 §12.2.2). Since a presence NOTIFY
// carries the whole state, only the newest waits behind the one in
// flight; a terminating NOTIFY is never replaced.
type notifyLane struct {
	next *queuedNotify // guarded by presence.mu
	cseq uint32        // the last CSeq sent; only the lane's goroutine uses it
}

type queuedNotify struct {
	presentity string
	sub        subscription
	state      string
}

func newPresence(opts Options) *presence {
	p := &presence{
		maxWatchers:   opts.MaxWatchersPerPresentity,
		maxPerWatcher: opts.MaxSubscriptionsPerWatcher,
		pubs:          make(map[string]map[string]*publication),
		subs:          make(map[string]map[string]*subscription),
		byWatcher:     make(map[string]int),
		dialogs:       make(map[string]string),
		held:          make(map[string]*pidf.Document),
		remoteRefs:    make(map[string]int),
		queued:        make(map[presEvent]bool),
		wake:          make(chan struct{}, 1),
		reported:      make(map[string]string),
		notifying:     make(map[string]*notifyLane),
		changes:       opts.PresenceChanged != nil,
		watches:       opts.RemotePresence != nil,
	}
	if p.maxWatchers <= 0 {
		p.maxWatchers = defaultMaxWatchers
	}
	if p.maxPerWatcher <= 0 {
		p.maxPerWatcher = defaultMaxSubscriptions
	}
	rate, burst := opts.SubscribeRate, opts.SubscribeBurst
	if rate <= 0 {
		rate = defaultSubscribeRate
	}
	if burst <= 0 {
		burst = defaultSubscribeBurst
	}
	p.limiter = newRateLimiter(rate, burst, maxRateSources, rateLimitLogInterval)
	return p
}

// addSubLocked stores a subscription; p.mu is held.
func (p *presence) addSubLocked(presentity string, sub *subscription) {
	m := p.subs[presentity]
	if m == nil {
		m = make(map[string]*subscription)
		p.subs[presentity] = m
	}
	if _, dup := m[sub.id]; !dup {
		p.byWatcher[sub.watcher]++
	}
	m[sub.id] = sub
	p.dialogs[sub.id] = presentity
}

// delSubLocked removes a subscription; p.mu is held.
func (p *presence) delSubLocked(presentity, id string) {
	m := p.subs[presentity]
	sub := m[id]
	if sub == nil {
		return
	}
	delete(m, id)
	delete(p.dialogs, id)
	if len(m) == 0 {
		delete(p.subs, presentity)
	}
	if p.byWatcher[sub.watcher]--; p.byWatcher[sub.watcher] <= 0 {
		delete(p.byWatcher, sub.watcher)
	}
	if sub.foreign {
		p.releaseRemoteLocked(sub.watcher, presentity, true)
	}
}

// remoteKey names a watcher's interest in a remote presentity.
func remoteKey(watcher, presentity string) string { return watcher + "\x00" + presentity }

// releaseRemoteLocked drops one reference of watcher to a remote
// presentity; at zero, Unwatch is queued when watched says the gateway
// was asked to follow it. p.mu is held.
func (p *presence) releaseRemoteLocked(watcher, presentity string, watched bool) {
	k := remoteKey(watcher, presentity)
	if p.remoteRefs[k]--; p.remoteRefs[k] > 0 {
		return
	}
	delete(p.remoteRefs, k)
	if watched && !p.closed && p.watches {
		p.queueLocked(presEvent{kind: evUnwatch, presentity: presentity, watcher: watcher})
	}
}

// watchLock returns the lock that orders Watch and Unwatch calls for
// watcher and presentity.
func (p *presence) watchLock(watcher, presentity string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(remoteKey(watcher, presentity)))
	return &p.watchLocks[h.Sum32()%uint32(len(p.watchLocks))]
}

// document composes a presentity's state for NOTIFYs: the tuples of
// every live publication and of the SetPresence document, or one closed
// tuple when there is none.
func (p *presence) document(presentity string, now time.Time) *pidf.Document {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.documentLocked(presentity, now)
}

func (p *presence) documentLocked(presentity string, now time.Time) *pidf.Document {
	d := p.publishedLocked(presentity, now)
	if d == nil {
		d = &pidf.Document{Entity: "pres:" + presentity}
	}
	if h := p.held[presentity]; h != nil {
		addDocument(d, h)
	}
	if len(d.Tuples) == 0 {
		d.Tuples = []pidf.Tuple{{ID: "none", Basic: pidf.BasicClosed}}
	}
	return d
}

// publishedLocked composes the live SIP publications of presentity, in
// the order of their entity-tags (so that the same state marshals to the
// same bytes), or returns nil when there is none. p.mu is held.
func (p *presence) publishedLocked(presentity string, now time.Time) *pidf.Document {
	pubs := p.pubs[presentity]
	etags := make([]string, 0, len(pubs))
	for k, pub := range pubs {
		if pub.expires.After(now) {
			etags = append(etags, k)
		}
	}
	if len(etags) == 0 {
		return nil
	}
	sort.Strings(etags)
	d := &pidf.Document{Entity: "pres:" + presentity}
	for _, k := range etags {
		addDocument(d, pubs[k].doc)
	}
	return d
}

// addDocument joins src's tuples and notes to d; d keeps its person
// element when it has one.
func addDocument(d, src *pidf.Document) {
	d.Tuples = append(d.Tuples, src.Tuples...)
	d.Notes = append(d.Notes, src.Notes...)
	if d.Person == nil {
		d.Person = src.Person
	}
}

// SetPresence sets the presence document the gateway holds for
// presentity (a bare JID): a local user's XMPP presence (RFC 8048) or
// the state of a presentity of another domain that local SIP watchers
// follow through RemotePresence. It replaces the previous SetPresence
// document of presentity; nil removes it. It never expires. Watchers are
// notified when the composed document (SIP publications plus this one)
// changes. doc must not be modified after the call; a document that
// cannot be marshalled is refused with an error log.
func (s *Server) SetPresence(presentity string, doc *pidf.Document) {
	if doc != nil {
		if _, err := doc.Marshal(); err != nil {
			s.log.Error("presence document refused", "presentity", presentity, "error", err)
			return
		}
		c := *doc
		c.Tuples = slices.Clone(doc.Tuples)
		c.Notes = slices.Clone(doc.Notes)
		doc = &c
	}
	now := time.Now()
	p := s.presence
	p.mu.Lock()
	before, _ := p.documentLocked(presentity, now).Marshal()
	if doc == nil {
		delete(p.held, presentity)
	} else {
		p.held[presentity] = doc
	}
	after, _ := p.documentLocked(presentity, now).Marshal()
	p.mu.Unlock()
	if !bytes.Equal(before, after) {
		s.notifyAll(presentity)
	}
}

func eventIsPresence(req *sip.Request) bool {
	h := req.GetHeader("Event")
	if h == nil {
		return false
	}
	pkg, _, _ := strings.Cut(h.Value(), ";")
	return strings.EqualFold(strings.TrimSpace(pkg), "presence")
}

// expiresOf returns the Expires header value, or def; ok false when it is
// not a number.
func expiresOf(req *sip.Request, def int) (int, bool) {
	h := req.GetHeader("Expires")
	if h == nil {
		return def, true
	}
	n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil {
		return 0, false
	}
	return int(min(n, 1<<31)), true
}

// presenceTarget runs the checks PUBLISH and SUBSCRIBE share: event
// package, local presentity that exists, authenticated local sender. It
// answers and returns ok false when one fails.
func (s *Server) presenceTarget(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, local bool) (presentity, sender string, ok bool) {
	if !eventIsPresence(req) {
		s.reply(req, tx, 489, "Bad Event", sip.NewHeader("Allow-Events", "presence"))
		return "", "", false
	}
	if !local {
		if req.Method == sip.SUBSCRIBE && s.opts.RemotePresence != nil {
			return s.remotePresenceTarget(ctx, req, tx)
		}
		s.reply(req, tx, 404, "Not Found")
		return "", "", false
	}
	if peer, ok := s.peerSender(req); ok {
		if presentity, inDialog := s.subscriptionPresentity(req, tx); inDialog {
			return presentity, peer, presentity != ""
		}
		if !s.authenticatePeer(ctx, req, tx, domainOf(peer)) {
			return "", "", false
		}
		return s.peerPresenceTarget(ctx, req, tx, local, peer)
	}
	if sender, ok = s.localSubscriber(ctx, req, tx); !ok {
		return "", "", false
	}
	if presentity, inDialog := s.subscriptionPresentity(req, tx); inDialog {
		return presentity, sender, presentity != ""
	}
	if presentity, ok = s.localPresentity(ctx, req, tx); !ok {
		return "", "", false
	}
	return presentity, sender, true
}

// handlePublish is the event state compositor of RFC 3903 §6.
func (s *Server) handlePublish(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, local bool) {
	presentity, sender, ok := s.presenceTarget(ctx, req, tx, local)
	if !ok {
		return
	}
	if sender != presentity {
		s.reply(req, tx, 403, "Forbidden - Only the presentity publishes")
		return
	}
	exp, ok := expiresOf(req, int(s.opts.DefaultExpires/time.Second))
	if !ok {
		s.reply(req, tx, 400, "Bad Request - Expires")
		return
	}
	if minExp := int(s.opts.MinExpires / time.Second); exp > 0 && exp < minExp {
		s.reply(req, tx, 423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(minExp)))
		return
	}
	exp = min(exp, int(s.opts.MaxExpires/time.Second))
	var doc *pidf.Document
	if body := req.Body(); len(body) > 0 {
		d, err := pidf.Parse(body, pidf.Limits{MaxBytes: s.opts.MaxMessageBytes})
		switch {
		case errors.Is(err, pidf.ErrTooLarge):
			s.reply(req, tx, 413, "Request Entity Too Large")
			return
		case errors.Is(err, pidf.ErrNotPIDF):
			s.reply(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/pidf+xml, application/cpim-pidf+xml"))
			return
		case err != nil:
			s.reply(req, tx, 400, "Bad Request - Malformed presence document")
			return
		}
		doc = d
	}
	now := time.Now()
	ifMatch := ""
	if h := req.GetHeader("SIP-If-Match"); h != nil {
		ifMatch = strings.TrimSpace(h.Value())
	}
	newETag := newTag()
	code, reason := 200, "OK"
	s.presence.mu.Lock()
	pubs := s.presence.pubs[presentity]
	if pubs == nil {
		pubs = make(map[string]*publication)
		s.presence.pubs[presentity] = pubs
	}
	for k, p := range pubs {
		if !p.expires.After(now) {
			delete(pubs, k)
		}
	}
	switch {
	case ifMatch == "" && doc == nil:
		code, reason = 400, "Bad Request - Initial PUBLISH without a body"
	case ifMatch == "" && exp == 0:
		code, reason = 400, "Bad Request - Initial PUBLISH with Expires 0"
	case ifMatch == "":
		if len(pubs) >= maxPublications {
			code, reason = 403, "Forbidden - Too Many Publications"
			break
		}
		pubs[newETag] = &publication{etag: newETag, doc: doc, expires: now.Add(time.Duration(exp) * time.Second)}
	default:
		old := pubs[ifMatch]
		if old == nil {
			code, reason = 412, "Conditional Request Failed"
			break
		}
		delete(pubs, ifMatch)
		if exp == 0 {
			newETag = ""
			break
		}
		if doc == nil {
			doc = old.doc // refresh
		}
		pubs[newETag] = &publication{etag: newETag, doc: doc, expires: now.Add(time.Duration(exp) * time.Second)}
	}
	if len(pubs) == 0 {
		delete(s.presence.pubs, presentity)
	}
	if code == 200 && s.presence.changes {
		s.presence.queueLocked(presEvent{kind: evChanged, presentity: presentity})
	}
	s.presence.mu.Unlock()
	if code != 200 {
		s.reply(req, tx, code, reason)
		return
	}
	var hdrs []sip.Header
	if newETag != "" {
		hdrs = append(hdrs, sip.NewHeader("SIP-ETag", newETag))
	}
	hdrs = append(hdrs, sip.NewHeader("Expires", strconv.Itoa(exp)))
	s.reply(req, tx, 200, "OK", hdrs...)
	s.notifyAll(presentity)
}

// contactFor returns our Contact URI for a transport.
func (s *Server) contactFor(transport string) sip.Uri {
	t := strings.ToLower(transport)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.addrs {
		if a.Transport == t {
			host, port, _ := net.SplitHostPort(a.Addr.String())
			p, _ := strconv.Atoi(port)
			u := sip.Uri{Scheme: "sip", Host: host, Port: p, UriParams: sip.NewParams()}
			if t != "udp" {
				u.UriParams.Add("transport", t)
			}
			return u
		}
	}
	return sip.Uri{Scheme: "sip", Host: s.opts.Domains[0]}
}

// handleSubscribe is the presence notifier (RFC 6665 §4.2, RFC 3856 §6).
func (s *Server) handleSubscribe(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, local bool) {
	if !s.subscribeAllowed(req, tx) {
		return
	}
	presentity, watcher, ok := s.presenceTarget(ctx, req, tx, local)
	if !ok {
		return
	}
	exp, ok := expiresOf(req, int(s.opts.DefaultExpires/time.Second))
	if !ok {
		s.reply(req, tx, 400, "Bad Request - Expires")
		return
	}
	if minExp := int(s.opts.MinExpires / time.Second); exp > 0 && exp < minExp {
		s.reply(req, tx, 423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(minExp)))
		return
	}
	exp = min(exp, int(s.opts.MaxExpires/time.Second))
	ctype := pidf.ContentTypePIDF
	if h := req.GetHeader("Accept"); h != nil {
		switch {
		case acceptsType(h.Value(), pidf.ContentTypePIDF):
		case acceptsType(h.Value(), pidf.ContentTypeCPIM):
			ctype = pidf.ContentTypeCPIM
		default:
			s.reply(req, tx, 406, "Not Acceptable")
			return
		}
	}
	contact := req.Contact()
	if contact == nil {
		s.reply(req, tx, 400, "Bad Request - Missing Contact")
		return
	}
	fromTag, _ := req.From().Params.Get("tag")
	toTag, inDialog := req.To().Params.Get("tag")
	now := time.Now()
	cid := callID(req)

	var sub *subscription
	s.presence.mu.Lock()
	if inDialog {
		sub = s.presence.subs[presentity][cid+"|"+toTag+"|"+fromTag]
		if sub == nil || sub.watcher != watcher {
			s.presence.mu.Unlock()
			s.reply(req, tx, 481, "Subscription Does Not Exist")
			return
		}
	} else {
		if fromTag == "" {
			s.presence.mu.Unlock()
			s.reply(req, tx, 400, "Bad Request - From tag required")
			return
		}
		remote := !s.domains[domainOf(presentity)] && watcher != presentity
		decision := PolicyAllow
		if watcher != presentity {
			s.presence.mu.Unlock()
			var d PolicyDecision
			var err error
			if remote {
				d, err = s.watchRemote(ctx, watcher, presentity)
			} else {
				d, err = s.maySubscribe(ctx, watcher, presentity)
			}
			if err != nil {
				s.log.Error("presence policy failed", "call_id", cid, "method", "SUBSCRIBE", "presentity", presentity, "error", err)
				s.reply(req, tx, 500, "Server Internal Error")
				return
			}
			if d != PolicyAllow && d != PolicyPending {
				s.reply(req, tx, 403, "Forbidden")
				return
			}
			decision = d
			s.presence.mu.Lock()
		}
		// refuse ends a new subscription before it is stored; a remote
		// presentity the gateway was asked to follow is let go again.
		refuse := func(code int, reason string, hdrs ...sip.Header) {
			if remote {
				s.presence.releaseRemoteLocked(watcher, presentity, true)
			}
			s.presence.mu.Unlock()
			s.reply(req, tx, code, reason, hdrs...)
		}
		switch {
		case s.presence.closed:
			refuse(503, "Service Unavailable", sip.NewHeader("Retry-After", "30"))
			return
		case exp > 0 && len(s.presence.subs[presentity]) >= s.presence.maxWatchers:
			refuse(403, "Forbidden - Too Many Watchers")
			return
		case exp > 0 && s.presence.byWatcher[watcher] >= s.presence.maxPerWatcher:
			refuse(403, "Forbidden - Too Many Subscriptions")
			return
		}
		toTag = newTag()
		sub = &subscription{
			id: cid + "|" + toTag + "|" + fromTag, watcher: watcher, callID: cid, localTag: toTag, remoteTag: fromTag,
			local: req.To().Address, remote: req.From().Address, transport: req.Transport(), ctype: ctype,
			pending: decision == PolicyPending, foreign: remote,
		}
		switch {
		case exp > 0:
			s.presence.addSubLocked(presentity, sub)
			s.countSubscription(directionIn)
		case remote:
			s.presence.releaseRemoteLocked(watcher, presentity, true) // a fetch: nothing to follow
		}
	}
	sub.target = contact.Address
	sub.expires = now.Add(time.Duration(exp) * time.Second)
	if exp == 0 {
		s.presence.delSubLocked(presentity, sub.id)
	}
	snapshot := *sub
	s.presence.mu.Unlock()

	res := s.response(req, 200, "OK", sip.NewHeader("Expires", strconv.Itoa(exp)))
	res.To().Params.Remove("tag")
	res.To().Params.Add("tag", toTag)
	res.AppendHeader(&sip.ContactHeader{Address: s.contactFor(req.Transport())})
	s.respond(req, tx, res)
	state := "active;expires=" + strconv.Itoa(exp)
	if snapshot.pending {
		state = "pending;expires=" + strconv.Itoa(exp)
	}
	if exp == 0 {
		state = "terminated;reason=timeout"
	}
	s.notify(presentity, &snapshot, state)
}

// subscribeAllowed applies the per-source SUBSCRIBE rate limit before any
// other work (digest checks, policy lookups): a source over its rate gets
// 503 with Retry-After (RFC 3261 §21.5.4), and the flood is logged once
// per interval, not per request.
func (s *Server) subscribeAllowed(req *sip.Request, tx sip.ServerTransaction) bool {
	src := req.Source()
	if h, _, err := net.SplitHostPort(src); err == nil {
		src = h
	}
	ok, retry, report := s.presence.limiter.allow(src, time.Now())
	if ok {
		return true
	}
	if report != nil {
		s.log.Warn("SUBSCRIBE rate limit: requests refused", "peer", report.peer, "refused", report.refused,
			"interval", rateLimitLogInterval.String())
	}
	secs := max(1, int((retry+time.Second-1)/time.Second))
	s.reply(req, tx, 503, "Service Unavailable - Too Many Subscriptions", sip.NewHeader("Retry-After", strconv.Itoa(secs)))
	return false
}

func (s *Server) maySubscribe(ctx context.Context, watcher, presentity string) (PolicyDecision, error) {
	if s.opts.PresencePolicy == nil {
		return PolicyDeny, nil
	}
	d, err := s.opts.PresencePolicy.MaySubscribe(ctx, watcher, presentity)
	if err != nil {
		return PolicyDeny, fmt.Errorf("sipside: presence policy %s -> %s: %w", watcher, presentity, err)
	}
	return d, nil
}

// Authorize records the presentity's answer to a watcher's subscription
// (RFC 3856 §6.6, RFC 8048 §4: the XMPP user's "subscribed" or
// "unsubscribed"). With allowed, every pending subscription of watcher to
// presentity becomes active and gets a NOTIFY with the current presence
// document; without, every subscription of watcher to presentity, pending
// or active, ends with NOTIFY "terminated;reason=rejected" (RFC 6665
// §4.2.2). Both are bare JIDs (user@domain). It returns how many
// subscriptions changed; later SUBSCRIBEs ask the PresencePolicy again.
func (s *Server) Authorize(ctx context.Context, presentity, watcher string, allowed bool) int {
	if ctx.Err() != nil {
		return 0
	}
	now := time.Now()
	var changed []subscription
	s.presence.mu.Lock()
	for id, sub := range s.presence.subs[presentity] {
		if sub.watcher != watcher || !sub.expires.After(now) {
			continue
		}
		switch {
		case allowed && sub.pending:
			sub.pending = false
			changed = append(changed, *sub)
		case !allowed:
			changed = append(changed, *sub)
			s.presence.delSubLocked(presentity, id)
		}
	}
	s.presence.mu.Unlock()
	for i := range changed {
		sub := &changed[i]
		state := "terminated;reason=rejected"
		if allowed {
			state = "active;expires=" + strconv.Itoa(max(1, int(time.Until(sub.expires)/time.Second)))
		} else {
			sub.pending = true // a rejected watcher is shown nothing
		}
		s.notify(presentity, sub, state)
	}
	s.log.Debug("presence authorization", "presentity", presentity, "watcher", watcher, "allowed", allowed, "subscriptions", len(changed))
	return len(changed)
}

// notifyAll sends the current state to every watcher of presentity.
func (s *Server) notifyAll(presentity string) {
	now := time.Now()
	s.presence.mu.Lock()
	var subs []subscription
	for _, sub := range s.presence.subs[presentity] {
		if sub.expires.After(now) && !sub.pending {
			subs = append(subs, *sub)
		}
	}
	s.presence.mu.Unlock()
	for i := range subs {
		left := int(time.Until(subs[i].expires) / time.Second)
		s.notify(presentity, &subs[i], "active;expires="+strconv.Itoa(max(left, 1)))
	}
}

// nextCSeq increments a subscription's CSeq under the lock.
func (s *Server) nextCSeq(presentity string, sub *subscription) uint32 {
	s.presence.mu.Lock()
	defer s.presence.mu.Unlock()
	if live := s.presence.subs[presentity][sub.id]; live != nil {
		live.cseq++
		return live.cseq
	}
	sub.cseq++
	return sub.cseq
}

// notify sends a NOTIFY with state in the subscription's dialog, after
// the ones before it (notifyLane). It copies sub and does not block.
func (s *Server) notify(presentity string, sub *subscription, state string) {
	q := &queuedNotify{presentity: presentity, sub: *sub, state: state}
	s.presence.mu.Lock()
	if lane := s.presence.notifying[sub.id]; lane != nil {
		if lane.next == nil || !strings.HasPrefix(lane.next.state, "terminated") {
			lane.next = q
		}
		s.presence.mu.Unlock()
		return
	}
	lane := &notifyLane{}
	s.presence.notifying[sub.id] = lane
	s.presence.mu.Unlock()
	// At shutdown spawn runs nothing; deactivateAll sends the last
	// NOTIFYs itself.
	s.spawn(func() {
		for q != nil {
			lane.cseq = s.sendNotify(s.serveContext(), q.presentity, &q.sub, q.state, lane.cseq)
			s.presence.mu.Lock()
			q, lane.next = lane.next, nil
			// A subscription that ended meanwhile (481, no answer,
			// unsubscribe) gets no more state; its terminating NOTIFY
			// is sent.
			if q != nil && !strings.HasPrefix(q.state, "terminated") && s.presence.subs[q.presentity][q.sub.id] == nil {
				q = nil
			}
			if q == nil {
				delete(s.presence.notifying, sub.id)
			}
			s.presence.mu.Unlock()
		}
	})
}

// sendNotify sends one NOTIFY in the subscription's dialog, bounded by
// ctx as well as ForwardTimeout, with a CSeq above after; it returns the
// CSeq it used. No answer, 481 and 4xx/6xx end the subscription (RFC
// 6665 §4.2.2).
func (s *Server) sendNotify(ctx context.Context, presentity string, sub *subscription, state string, after uint32) uint32 {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	var body []byte
	if !sub.pending {
		doc := s.presence.document(presentity, time.Now())
		if sub.ctype == pidf.ContentTypeCPIM {
			doc.Namespace = pidf.NamespaceCPIM
		}
		b, err := doc.Marshal()
		if err != nil {
			s.log.Error("presence document", "call_id", sub.callID, "method", "NOTIFY", "error", err)
			return after
		}
		body = b
	}
	seq := max(s.nextCSeq(presentity, sub), after+1)
	req := sip.NewRequest(sip.NOTIFY, sub.target)
	from := &sip.FromHeader{Address: sub.local, Params: sip.NewParams()}
	from.Params.Add("tag", sub.localTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: sub.remote, Params: sip.NewParams()}
	to.Params.Add("tag", sub.remoteTag)
	req.AppendHeader(to)
	cid := sip.CallIDHeader(sub.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.NOTIFY})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(&sip.ContactHeader{Address: s.contactFor(sub.transport)})
	if body != nil {
		// A pending or rejected watcher gets no body: nothing of the
		// presentity's state before authorization (RFC 3856 §6.6.2).
		req.AppendHeader(sip.NewHeader("Content-Type", sub.ctype))
		req.SetBody(body)
	}
	s.route(ctx, req, "", "")
	res, err := s.client.Do(ctx, req)
	// The subscription ends on no answer, 481 and the 4xx/6xx refusals
	// (RFC 6665 §4.2.2). A 5xx does not end it: it says the subscriber
	// is overloaded or hit a fault, and the next NOTIFY may fare
	// better.
	if err != nil || res.StatusCode == 481 || res.StatusCode >= 300 && (res.StatusCode < 500 || res.StatusCode >= 600) && !strings.HasPrefix(state, "terminated") {
		if err != nil {
			s.log.Debug("notify failed", "call_id", sub.callID, "method", "NOTIFY", "error", err)
			if s.serveContext().Err() != nil {
				return seq // cut short by shutdown: deactivateAll ends the subscription
			}
		}
		s.presence.mu.Lock()
		s.presence.delSubLocked(presentity, sub.id)
		s.presence.mu.Unlock()
	}
	return seq
}

// runPresence expires publications and subscriptions until ctx ends,
// sending the final NOTIFY (terminated;reason=timeout) for the latter.
func (s *Server) runPresence(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		type ended struct {
			presentity string
			sub        subscription
		}
		var gone []ended
		changed := map[string]bool{}
		s.presence.mu.Lock()
		for p, pubs := range s.presence.pubs {
			for k, pub := range pubs {
				if !pub.expires.After(now) {
					delete(pubs, k)
					changed[p] = true
				}
			}
			if len(pubs) == 0 {
				delete(s.presence.pubs, p)
			}
		}
		for p, subs := range s.presence.subs {
			for k, sub := range subs {
				if !sub.expires.After(now) {
					gone = append(gone, ended{p, *sub})
					s.presence.delSubLocked(p, k)
				}
			}
		}
		s.presence.mu.Unlock()
		s.presence.limiter.sweep(now)
		if s.presence.changes && len(changed) > 0 {
			s.presence.mu.Lock()
			for p := range changed {
				s.presence.queueLocked(presEvent{kind: evChanged, presentity: p})
			}
			s.presence.mu.Unlock()
		}
		for _, g := range gone {
			s.notify(g.presentity, &g.sub, "terminated;reason=timeout")
		}
		for p := range changed {
			s.notifyAll(p)
		}
	}
}

// subscriptionPresentity handles an in-dialog SUBSCRIBE (one with a To
// tag): it returns the presentity of its subscription and true, or
// answers 481 and returns "" and true when there is no such dialog
// (RFC 3261 §12.2.2). handleSubscribe then checks that the dialog's
// watcher is the sender. For an initial SUBSCRIBE it returns false.
func (s *Server) subscriptionPresentity(req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	if req.Method != sip.SUBSCRIBE {
		return "", false
	}
	toTag, ok := req.To().Params.Get("tag")
	if !ok || toTag == "" {
		return "", false
	}
	fromTag, _ := req.From().Params.Get("tag")
	s.presence.mu.Lock()
	p := s.presence.dialogs[callID(req)+"|"+toTag+"|"+fromTag]
	s.presence.mu.Unlock()
	if p == "" {
		s.reply(req, tx, 481, "Subscription Does Not Exist")
	}
	return p, true
}

// deactivateAll ends every inbound subscription at shutdown with NOTIFY
// "terminated;reason=deactivated", so that subscribers subscribe again
// later (RFC 6665 §4.2.2, §4.1.3): sent in parallel, bounded by two
// seconds in all, without a body. New subscriptions are refused (503)
// from then on, and no Unwatch is reported for these.
func (s *Server) deactivateAll() {
	type ended struct {
		presentity string
		sub        subscription
	}
	var all []ended
	p := s.presence
	p.mu.Lock()
	p.closed = true
	now := time.Now()
	for presentity, subs := range p.subs {
		for _, sub := range subs {
			if sub.expires.After(now) {
				all = append(all, ended{presentity, *sub})
			}
		}
	}
	clear(p.subs)
	clear(p.dialogs)
	clear(p.byWatcher)
	clear(p.remoteRefs)
	p.mu.Unlock()
	if len(all) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range all {
		e := &all[i]
		e.sub.pending = true // no body: the subscription is over
		wg.Go(func() { s.sendNotify(ctx, e.presentity, &e.sub, "terminated;reason=deactivated", 0) })
	}
	wg.Wait()
	s.log.Debug("subscriptions deactivated at shutdown", "subscriptions", len(all))
}

// domainOf returns the domain of a bare JID.
func domainOf(jid string) string {
	i := strings.LastIndexByte(jid, '@')
	return jid[i+1:]
}

// localPresentity returns the existing local user the request's
// Request-URI names; it answers 404 (500 when the store fails) and
// returns false otherwise.
func (s *Server) localPresentity(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	presentity, ok := aorOf(req.Recipient)
	if !ok {
		s.reply(req, tx, 404, "Not Found")
		return "", false
	}
	exists, err := s.userExists(ctx, presentity)
	if err != nil {
		s.log.Error("presentity lookup failed", "call_id", callID(req), "method", string(req.Method), "error", err)
		s.reply(req, tx, 500, "Server Internal Error")
		return "", false
	}
	if !exists {
		s.reply(req, tx, 404, "Not Found")
		return "", false
	}
	return presentity, true
}

// localSubscriber authenticates the sender of a PUBLISH or SUBSCRIBE as a
// user of one of our domains whose From is their own address; it answers
// 403 or the digest challenge itself and returns false otherwise.
func (s *Server) localSubscriber(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	fromHost := uriHost(req.From().Address)
	if !s.domains[fromHost] {
		s.reply(req, tx, 403, "Forbidden - Sender domain not served here")
		return "", false
	}
	sender, ok := s.requireAuth(ctx, req, tx, fromHost, false)
	if !ok {
		return "", false
	}
	if aor, ok := aorOf(req.From().Address); !ok || aor != sender {
		s.reply(req, tx, 403, "Forbidden - From does not match credentials")
		return "", false
	}
	return sender, true
}

// remotePresenceTarget is presenceTarget for a SUBSCRIBE to a presentity
// of another domain, which RemotePresence follows for local watchers:
// the sender must be an authenticated local user (peers and others get
// 403: we do not relay subscriptions between other domains).
func (s *Server) remotePresenceTarget(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (presentity, watcher string, ok bool) {
	if watcher, ok = s.localSubscriber(ctx, req, tx); !ok {
		return "", "", false
	}
	if presentity, inDialog := s.subscriptionPresentity(req, tx); inDialog {
		return presentity, watcher, presentity != ""
	}
	presentity, ok = aorOf(req.Recipient)
	if !ok || s.domains[domainOf(presentity)] {
		s.reply(req, tx, 404, "Not Found")
		return "", "", false
	}
	return presentity, watcher, true
}

// watchRemote asks RemotePresence to follow a remote presentity for a
// new subscription, holding one reference of watcher to presentity
// unless the answer is a refusal or an error.
func (s *Server) watchRemote(ctx context.Context, watcher, presentity string) (PolicyDecision, error) {
	p := s.presence
	l := p.watchLock(watcher, presentity)
	l.Lock()
	defer l.Unlock()
	p.mu.Lock()
	p.remoteRefs[remoteKey(watcher, presentity)]++
	p.mu.Unlock()
	d, err := s.opts.RemotePresence.Watch(ctx, watcher, presentity)
	if err != nil || d != PolicyAllow && d != PolicyPending {
		p.mu.Lock()
		p.releaseRemoteLocked(watcher, presentity, false)
		p.mu.Unlock()
	}
	if err != nil {
		return PolicyDeny, fmt.Errorf("sipside: remote presence %s -> %s: %w", watcher, presentity, err)
	}
	return d, nil
}
