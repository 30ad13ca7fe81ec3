package sipside

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/store"
)

// Digest authentication of RFC 3261 §22 with the RFC 8760 algorithms:
// challenges offer SHA-256 first, then MD5, both with qop=auth. Nonces
// are stateless (timestamp, random, MAC under the server secret); the
// highest nonce-count seen per nonce is kept so a replayed Authorization
// is refused.

// authOutcome classifies one authentication attempt.
type authOutcome int

const (
	authOK      authOutcome = iota
	authMissing             // no credentials for our realm: challenge
	authStale               // a valid but expired nonce: challenge with stale=true
	authFailed              // wrong password, unknown user, replay: challenge again, counted
	authBlocked             // too many failures from this source: 403
	authBad                 // malformed credentials: 400
)

type ncEntry struct {
	nc      uint64
	expires time.Time
}

type failWindow struct {
	start time.Time
	n     int
}

type authenticator struct {
	algs     []string
	secret   []byte
	lifetime time.Duration
	maxFail  int
	window   time.Duration
	now      func() time.Time

	mu       sync.Mutex
	seen     map[string]ncEntry     // nonce -> highest nc accepted
	failures map[string]*failWindow // source IP -> failures in window
}

// maxNonceEntries bounds the replay table; past it new nonces are still
// accepted once but a full table is swept first.
const maxNonceEntries = 1 << 20

func newAuthenticator(algs []string, secret []byte, lifetime time.Duration, maxFail int, window time.Duration) *authenticator {
	return &authenticator{
		algs: algs, secret: secret, lifetime: lifetime, maxFail: maxFail, window: window, now: time.Now,
		seen: make(map[string]ncEntry), failures: make(map[string]*failWindow),
	}
}

// run sweeps expired replay and failure entries until ctx ends.
func (a *authenticator) run(ctx context.Context) {
	t := time.NewTicker(a.lifetime / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.sweep()
		}
	}
}

func (a *authenticator) sweep() {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, e := range a.seen {
		if now.After(e.expires) {
			delete(a.seen, k)
		}
	}
	for k, f := range a.failures {
		if now.Sub(f.start) > a.window {
			delete(a.failures, k)
		}
	}
}

// nonce returns a new nonce for realm: hex(time | random | MAC).
func (a *authenticator) nonce(realm string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(a.now().UnixNano()))
	_, _ = rand.Read(b[8:])
	return hex.EncodeToString(b[:]) + hex.EncodeToString(a.mac(b[:], realm))
}

func (a *authenticator) mac(b []byte, realm string) []byte {
	m := hmac.New(sha256.New, a.secret)
	m.Write(b)
	m.Write([]byte(realm))
	return m.Sum(nil)[:16]
}

// checkNonce reports whether a nonce is ours for realm, and whether it
// has expired.
func (a *authenticator) checkNonce(n, realm string) (valid, expired bool) {
	raw, err := hex.DecodeString(n)
	if err != nil || len(raw) != 32 {
		return false, false
	}
	if !hmac.Equal(raw[16:], a.mac(raw[:16], realm)) {
		return false, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8])))
	age := a.now().Sub(issued)
	return true, age > a.lifetime || age < -time.Minute
}

// challenges returns one challenge per configured algorithm, in order of
// preference (RFC 8760 §2.4: SHA-256 before MD5 by default).
func (a *authenticator) challenges(realm string, stale bool) []string {
	extra := ""
	if stale {
		extra = ", stale=true"
	}
	out := make([]string, 0, 2)
	for _, alg := range a.algs {
		out = append(out, fmt.Sprintf(`Digest realm="%s", nonce="%s", qop="auth", algorithm=%s%s`,
			realm, a.nonce(realm), alg, extra))
	}
	return out
}

// blocked reports whether src has used up its failures.
func (a *authenticator) blocked(src string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failures[src]
	return f != nil && a.now().Sub(f.start) <= a.window && f.n >= a.maxFail
}

func (a *authenticator) fail(src string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	f := a.failures[src]
	if f == nil || now.Sub(f.start) > a.window {
		f = &failWindow{start: now}
		a.failures[src] = f
	}
	f.n++
}

// credentials are the parsed parameters of one Authorization value.
type credentials struct {
	username, realm, nonce, uri, response, algorithm, qop, nc, cnonce string
}

// parseDigest reads a "Digest k=v, k="v"" value (RFC 3261 §25.1
// credentials, RFC 7616 §3.4 parameters).
func parseDigest(v string) (map[string]string, error) {
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return nil, fmt.Errorf("digest: scheme %q is not Digest", scheme)
	}
	params := make(map[string]string)
	rest = strings.TrimSpace(rest)
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, errors.New("digest: parameter without '='")
		}
		name := strings.ToLower(strings.TrimSpace(rest[:eq]))
		if !isToken(name) {
			return nil, fmt.Errorf("digest: bad parameter name %q", name)
		}
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			closed := false
			for ; i < len(rest); i++ {
				c := rest[i]
				if c == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
					continue
				}
				if c == '"' {
					closed = true
					break
				}
				b.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("digest: unterminated quoted string")
			}
			val = b.String()
			rest = rest[i+1:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val = strings.TrimSpace(rest[:end])
			if !isToken(val) {
				return nil, fmt.Errorf("digest: parameter %q: value is neither a token nor quoted", name)
			}
			rest = rest[end:]
		}
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("digest: duplicate parameter %q", name)
		}
		params[name] = val
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return nil, errors.New("digest: expected ','")
		}
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	return params, nil
}

// authenticate checks the request's credentials for realm in the header
// named hdr ("Authorization" or "Proxy-Authorization"). It returns the
// authenticated bare JID on authOK.
func (a *authenticator) authenticate(ctx context.Context, users store.Users, req *sip.Request, hdr, realm string) (string, authOutcome, error) {
	src, _, err := net.SplitHostPort(req.Source())
	if err != nil {
		src = req.Source()
	}
	if a.blocked(src) {
		return "", authBlocked, nil
	}
	var c *credentials
	for _, h := range req.GetHeaders(hdr) {
		p, err := parseDigest(h.Value())
		if err != nil {
			continue // another scheme (RFC 4475 §3.3.7) or garbage: ignore
		}
		if !strings.EqualFold(p["realm"], realm) {
			continue
		}
		c = &credentials{username: p["username"], realm: p["realm"], nonce: p["nonce"], uri: p["uri"],
			response: p["response"], algorithm: p["algorithm"], qop: p["qop"], nc: p["nc"], cnonce: p["cnonce"]}
		break
	}
	if c == nil {
		return "", authMissing, nil
	}
	if c.username == "" || c.nonce == "" || c.uri == "" || c.response == "" {
		return "", authBad, nil
	}
	valid, expired := a.checkNonce(c.nonce, realm)
	if !valid {
		return "", authMissing, nil // not our nonce (say, from before a restart): challenge afresh
	}
	if expired {
		return "", authStale, nil
	}
	var newHash func() hash.Hash
	alg := strings.ToUpper(c.algorithm)
	if alg == "" {
		alg = "MD5"
	}
	if !contains(a.algs, alg) {
		return "", authMissing, nil // not an algorithm we offered
	}
	switch alg {
	case "MD5":
		newHash = md5.New
	case "SHA-256":
		newHash = sha256.New
	}
	if !strings.EqualFold(c.qop, "auth") || c.cnonce == "" {
		a.fail(src)
		return "", authFailed, nil
	}
	nc, err := strconv.ParseUint(c.nc, 16, 64)
	if err != nil || nc == 0 {
		return "", authBad, nil
	}
	jid, ok := digestJID(c.username, realm)
	if !ok {
		a.fail(src)
		return "", authFailed, nil
	}
	u, err := users.User(ctx, jid)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			a.fail(src)
			return jid, authFailed, nil
		}
		return "", authFailed, fmt.Errorf("sipside: authenticate %s: %w", jid, err)
	}
	ha1, ok := u.Credentials.HA1(c.algorithm)
	if !ok {
		a.fail(src)
		return jid, authFailed, nil
	}
	h := func(s string) string {
		m := newHash()
		m.Write([]byte(s))
		return hex.EncodeToString(m.Sum(nil))
	}
	ha2 := h(string(req.Method) + ":" + c.uri)
	want := h(ha1 + ":" + c.nonce + ":" + c.nc + ":" + c.cnonce + ":" + c.qop + ":" + ha2)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(c.response)), []byte(want)) != 1 {
		a.fail(src)
		return jid, authFailed, nil
	}
	// Replay protection: the nonce-count must grow.
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.seen[c.nonce]; ok && nc <= e.nc {
		return jid, authStale, nil
	}
	if len(a.seen) >= maxNonceEntries {
		now := a.now()
		for k, e := range a.seen {
			if now.After(e.expires) {
				delete(a.seen, k)
			}
		}
	}
	a.seen[c.nonce] = ncEntry{nc: nc, expires: a.now().Add(a.lifetime + time.Minute)}
	return jid, authOK, nil
}

// requireAuth authenticates req for realm and, unless it succeeds,
// answers it (401 or 407 with fresh challenges, 403, 400). proxy selects
// Proxy-Authenticate/407 (RFC 3261 §22.3) over WWW-Authenticate/401.
func (s *Server) requireAuth(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, realm string, proxy bool) (string, bool) {
	hdr, chal, code, reason := "Authorization", "WWW-Authenticate", 401, "Unauthorized"
	if proxy {
		hdr, chal, code, reason = "Proxy-Authorization", "Proxy-Authenticate", 407, "Proxy Authentication Required"
	}
	jid, outcome, err := s.auth.authenticate(ctx, s.opts.Users, req, hdr, realm)
	if err != nil {
		s.log.Error("authentication lookup failed", "call_id", callID(req), "method", string(req.Method), "peer", req.Source(), "error", err)
		s.reply(req, tx, 500, "Server Internal Error")
		return "", false
	}
	switch outcome {
	case authOK:
		return jid, true
	case authBlocked:
		s.log.Warn("authentication refused: too many failures", "peer", req.Source(), "call_id", callID(req), "method", string(req.Method))
		s.reply(req, tx, 403, "Forbidden")
		return "", false
	case authBad:
		s.reply(req, tx, 400, "Bad Request - Malformed Credentials")
		return "", false
	case authFailed:
		s.log.Warn("authentication failed", "user", jid, "peer", req.Source(), "call_id", callID(req), "method", string(req.Method))
	}
	res := s.response(req, code, reason)
	for _, c := range s.auth.challenges(realm, outcome == authStale) {
		res.AppendHeader(sip.NewHeader(chal, c))
	}
	s.respond(req, tx, res)
	return "", false
}
