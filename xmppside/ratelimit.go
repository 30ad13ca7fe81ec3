package xmppside

import (
	"sync"
	"time"
)

// authLimiter throttles failed logins per remote IP with a token bucket:
// burst failures are free, then one more per interval. Its memory is
// bounded: when it tracks max addresses, full buckets are forgotten, and
// if that is not enough the oldest half is.
type authLimiter struct {
	burst    float64
	interval time.Duration
	max      int

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newAuthLimiter(burst int, interval time.Duration, max int) *authLimiter {
	return &authLimiter{burst: float64(burst), interval: interval, max: max, m: make(map[string]*bucket)}
}

func (l *authLimiter) refill(b *bucket, now time.Time) {
	b.tokens += float64(now.Sub(b.last)) / float64(l.interval)
	if b.tokens > l.burst {
		b.tokens = l.burst
	}
	b.last = now
}

// allowed reports whether ip may try to log in now.
func (l *authLimiter) allowed(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[ip]
	if !ok {
		return true
	}
	l.refill(b, now)
	return b.tokens >= 1
}

// fail records a failed login from ip.
func (l *authLimiter) fail(ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[ip]
	if !ok {
		if len(l.m) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[ip] = b
	}
	l.refill(b, now)
	b.tokens--
	if b.tokens < 0 {
		b.tokens = 0
	}
}

func (l *authLimiter) evict(now time.Time) {
	var oldest []string
	for ip, b := range l.m {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.m, ip)
		}
	}
	if len(l.m) < l.max {
		return
	}
	// Still full: drop every bucket older than the median age.
	var total time.Duration
	for _, b := range l.m {
		total += now.Sub(b.last)
	}
	avg := total / time.Duration(len(l.m))
	for ip, b := range l.m {
		if now.Sub(b.last) >= avg {
			oldest = append(oldest, ip)
		}
	}
	for _, ip := range oldest {
		delete(l.m, ip)
	}
}

// size returns how many addresses are tracked.
func (l *authLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
