package sipside

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/store"
)

// Binding is one registered contact of an address-of-record (RFC 3261
// §10.2.1).
type Binding struct {
	AOR     string    // bare JID "user@domain"
	Contact string    // the contact URI as registered
	Expires time.Time // absolute expiry
	CallID  string
	CSeq    uint32
	Q       string // q parameter as given, "" if none
	// Source and Transport are where the REGISTER came from, for
	// reaching a contact behind NAT later.
	Source    string
	Transport string
}

// ErrTooManyBindings is returned by Registrations.Update when a user
// would exceed the per-user bound.
var ErrTooManyBindings = errors.New("sipside: too many bindings")

// ErrOutOfOrder is returned by an update function for a REGISTER whose
// Call-ID/CSeq is not newer than the stored binding's (§10.3 step 7).
var ErrOutOfOrder = errors.New("sipside: out-of-order REGISTER")

// Registrations keeps the registrar's bindings. Implementations must make
// Update atomic per AOR; the in-memory one is NewMemoryRegistrations, a
// shared store can replace it.
type Registrations interface {
	// Bindings returns the AOR's unexpired bindings.
	Bindings(ctx context.Context, aor string) ([]Binding, error)
	// Update replaces the AOR's unexpired bindings with what fn returns
	// from them, atomically; fn's error aborts the update and is returned.
	Update(ctx context.Context, aor string, fn func(current []Binding) ([]Binding, error)) ([]Binding, error)
	// Run removes expired bindings until ctx ends.
	Run(ctx context.Context)
}

const regShards = 32

// MemoryRegistrations is a sharded in-memory Registrations.
type MemoryRegistrations struct {
	maxPerAOR int
	now       func() time.Time
	shards    [regShards]struct {
		mu sync.Mutex
		m  map[string][]Binding
	}
}

// NewMemoryRegistrations returns an empty table allowing maxPerAOR
// contacts per user (default 16 when <= 0).
func NewMemoryRegistrations(maxPerAOR int) *MemoryRegistrations {
	if maxPerAOR <= 0 {
		maxPerAOR = 16
	}
	r := &MemoryRegistrations{maxPerAOR: maxPerAOR, now: time.Now}
	for i := range r.shards {
		r.shards[i].m = make(map[string][]Binding)
	}
	return r
}

func (r *MemoryRegistrations) shard(aor string) int {
	h := fnv.New32a()
	h.Write([]byte(aor))
	return int(h.Sum32() % regShards)
}

func live(bs []Binding, now time.Time) []Binding {
	out := make([]Binding, 0, len(bs))
	for _, b := range bs {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out
}

// Bindings implements Registrations.
func (r *MemoryRegistrations) Bindings(_ context.Context, aor string) ([]Binding, error) {
	sh := &r.shards[r.shard(aor)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return live(sh.m[aor], r.now()), nil
}

// Update implements Registrations.
func (r *MemoryRegistrations) Update(_ context.Context, aor string, fn func([]Binding) ([]Binding, error)) ([]Binding, error) {
	sh := &r.shards[r.shard(aor)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := r.now()
	next, err := fn(live(sh.m[aor], now))
	if err != nil {
		return nil, err
	}
	next = live(next, now)
	if len(next) > r.maxPerAOR {
		return nil, fmt.Errorf("registrations: %s has %d contacts, at most %d: %w", aor, len(next), r.maxPerAOR, ErrTooManyBindings)
	}
	if len(next) == 0 {
		delete(sh.m, aor)
	} else {
		sh.m[aor] = next
	}
	return append([]Binding(nil), next...), nil
}

// Run implements Registrations: a sweeper every 30 seconds.
func (r *MemoryRegistrations) Run(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sweep()
		}
	}
}

func (r *MemoryRegistrations) sweep() {
	now := r.now()
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for aor, bs := range sh.m {
			if l := live(bs, now); len(l) == 0 {
				delete(sh.m, aor)
			} else if len(l) != len(bs) {
				sh.m[aor] = l
			}
		}
		sh.mu.Unlock()
	}
}

// registerRealm picks the digest realm for a REGISTER: the To domain when
// we serve it, else the Request-URI's, else our first domain.
func (s *Server) realmFor(u sip.Uri, fallback sip.Uri) string {
	if h := strings.ToLower(uriHost(u)); s.domains[h] {
		return h
	}
	if h := strings.ToLower(uriHost(fallback)); s.domains[h] {
		return h
	}
	return strings.ToLower(s.opts.Domains[0])
}

// handleRegister is the registrar of RFC 3261 §10.3.
func (s *Server) handleRegister(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) {
	to := req.To()
	// RFC 4475 §3.3.4: the AOR must be a SIP or SIPS URI.
	if !isSIPScheme(to.Address.Scheme) {
		s.reply(req, tx, 400, "Bad Request - To must be a SIP URI")
		return
	}
	// Step 3: authenticate.
	realm := s.realmFor(to.Address, req.Recipient)
	jid, ok := s.requireAuth(ctx, req, tx, realm, false)
	if !ok {
		return
	}
	// Step 4/6: the AOR must be ours and the authenticated user's.
	aor, ok := aorOf(to.Address)
	if !ok || !s.domains[strings.ToLower(to.Address.Host)] {
		s.reply(req, tx, 404, "Not Found")
		return
	}
	if aor != jid {
		s.log.Warn("register for another user refused", "user", jid, "aor", aor, "call_id", callID(req), "peer", req.Source())
		s.reply(req, tx, 403, "Forbidden")
		return
	}

	// Step 5/7: Contacts.
	var expiresHdr = -1
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			s.reply(req, tx, 400, "Bad Request - Expires")
			return
		}
		expiresHdr = int(min(n, 1<<31))
	}
	contacts := req.GetHeaders("Contact")
	type change struct {
		uri     string
		expires int // seconds; 0 removes
		q       string
	}
	var changes []change
	wildcard := false
	for _, h := range contacts {
		for _, v := range splitComma(h.Value()) {
			if strings.TrimSpace(v) == "*" {
				wildcard = true
				continue
			}
			c, err := parseContact(v)
			if err != nil {
				s.reply(req, tx, 400, "Bad Request - Contact")
				return
			}
			exp := expiresHdr
			if c.expires >= 0 {
				exp = c.expires
			}
			if exp < 0 {
				exp = int(s.opts.DefaultExpires / time.Second)
			}
			changes = append(changes, change{uri: c.uri, expires: exp, q: c.q})
		}
	}
	if wildcard && (len(changes) > 0 || expiresHdr != 0) {
		s.reply(req, tx, 400, "Bad Request - Contact: * needs Expires: 0 and no other contact")
		return
	}
	minExp := int(s.opts.MinExpires / time.Second)
	maxExp := int(s.opts.MaxExpires / time.Second)
	for i, c := range changes {
		if c.expires > 0 && c.expires < minExp {
			s.reply(req, tx, 423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(minExp)))
			return
		}
		if c.expires > maxExp {
			changes[i].expires = maxExp
		}
	}
	callIDv := callID(req)
	cseq := req.CSeq().SeqNo
	now := time.Now()
	current, err := s.regs.Update(ctx, aor, func(cur []Binding) ([]Binding, error) {
		if wildcard {
			for _, b := range cur {
				if b.CallID == callIDv && cseq <= b.CSeq {
					return nil, ErrOutOfOrder
				}
			}
			return nil, nil
		}
		next := append([]Binding(nil), cur...)
		for _, c := range changes {
			idx := -1
			for i, b := range next {
				if sameContact(b.Contact, c.uri) {
					idx = i
					break
				}
			}
			if idx >= 0 && next[idx].CallID == callIDv && cseq <= next[idx].CSeq {
				return nil, ErrOutOfOrder
			}
			if c.expires == 0 {
				if idx >= 0 {
					next = append(next[:idx], next[idx+1:]...)
				}
				continue
			}
			b := Binding{AOR: aor, Contact: c.uri, Expires: now.Add(time.Duration(c.expires) * time.Second),
				CallID: callIDv, CSeq: cseq, Q: c.q, Source: req.Source(), Transport: req.Transport()}
			if idx >= 0 {
				next[idx] = b
			} else {
				next = append(next, b)
			}
		}
		return next, nil
	})
	switch {
	case errors.Is(err, ErrOutOfOrder):
		s.reply(req, tx, 500, "Server Internal Error - Out of order REGISTER", sip.NewHeader("Retry-After", "1"))
		return
	case errors.Is(err, ErrTooManyBindings):
		s.reply(req, tx, 403, "Forbidden - Too Many Contacts")
		return
	case err != nil:
		s.log.Error("registrations update failed", "call_id", callIDv, "user", aor, "error", err)
		s.reply(req, tx, 500, "Server Internal Error")
		return
	}
	// Step 8: 200 with every current binding.
	res := s.response(req, 200, "OK")
	sort.Slice(current, func(i, j int) bool { return current[i].Contact < current[j].Contact })
	for _, b := range current {
		left := int(time.Until(b.Expires).Round(time.Second) / time.Second)
		v := "<" + b.Contact + ">;expires=" + strconv.Itoa(max(left, 1))
		if b.Q != "" {
			v += ";q=" + b.Q
		}
		res.AppendHeader(sip.NewHeader("Contact", v))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(timeRFC1123GMT)))
	s.respond(req, tx, res)
}

const timeRFC1123GMT = "Mon, 02 Jan 2006 15:04:05 GMT"

// contactValue is one parsed Contact value.
type contactValue struct {
	uri     string
	expires int // -1 when absent
	q       string
}

// parseContact reads one Contact value: name-addr or addr-spec with
// header parameters (RFC 3261 §20.10).
func parseContact(v string) (contactValue, error) {
	c := contactValue{expires: -1}
	v = strings.TrimSpace(v)
	var params string
	if lt := strings.IndexByte(v, '<'); lt >= 0 {
		gt := strings.IndexByte(v[lt:], '>')
		if gt < 0 {
			return c, errors.New("contact: unterminated <")
		}
		c.uri = strings.TrimSpace(v[lt+1 : lt+gt])
		params = v[lt+gt+1:]
	} else {
		c.uri, params, _ = strings.Cut(v, ";")
		c.uri = strings.TrimSpace(c.uri)
		if params != "" {
			params = ";" + params
		}
	}
	if c.uri == "" {
		return c, errors.New("contact: empty URI")
	}
	var u sip.Uri
	if err := sip.ParseUri(c.uri, &u); err != nil {
		return c, fmt.Errorf("contact %q: %w", c.uri, err)
	}
	for _, p := range strings.Split(params, ";") {
		name, val, _ := strings.Cut(p, "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "expires":
			n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 32)
			if err != nil {
				return c, fmt.Errorf("contact expires %q: %w", val, err)
			}
			c.expires = int(min(n, 1<<31))
		case "q":
			c.q = strings.TrimSpace(val)
		}
	}
	return c, nil
}

// sameContact compares contact URIs: scheme, user, host and port
// (RFC 3261 §19.1.4 lets parameters differ in ways we do not weigh here).
func sameContact(a, b string) bool {
	if a == b {
		return true
	}
	var ua, ub sip.Uri
	if sip.ParseUri(a, &ua) != nil || sip.ParseUri(b, &ub) != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && ua.User == ub.User &&
		strings.EqualFold(ua.Host, ub.Host) && ua.Port == ub.Port
}

// userExists looks up a bare JID in the store.
func (s *Server) userExists(ctx context.Context, jid string) (bool, error) {
	_, err := s.opts.Users.User(ctx, jid)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sipside: user %s: %w", jid, err)
	}
	return true, nil
}
