package sipside

import (
	"math"
	"sync"
	"time"
)

// rateLimiter is a token bucket per source (an IP address), with bounded
// memory: at most maxSources buckets are kept; full buckets are dropped by
// sweep, and when the table is still full an arbitrary bucket is evicted
// (which only ever gives that source a fresh burst).
type rateLimiter struct {
	rate       float64 // tokens per second
	burst      float64
	maxSources int
	logEvery   time.Duration

	mu      sync.Mutex
	buckets map[string]*tokenBucket
	// Refusals since the last log line, so that a flood is logged once
	// per logEvery, not once per request.
	refused  int
	lastPeer string
	lastLog  time.Time
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst, maxSources int, logEvery time.Duration) *rateLimiter {
	return &rateLimiter{
		rate: rate, burst: float64(burst), maxSources: maxSources, logEvery: logEvery,
		buckets: make(map[string]*tokenBucket),
	}
}

// limitReport is what allow asks its caller to log: the number of
// refusals in the interval that just ended and the last source refused.
type limitReport struct {
	refused int
	peer    string
}

// allow takes a token for src. When there is none, it returns false and
// how long until there will be one. report is non-nil at most once per
// logEvery, when refusals happened.
func (l *rateLimiter) allow(src string, now time.Time) (ok bool, retry time.Duration, report *limitReport) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[src]
	if b == nil {
		if len(l.buckets) >= l.maxSources {
			l.sweepLocked(now)
		}
		if len(l.buckets) >= l.maxSources {
			for k := range l.buckets {
				delete(l.buckets, k)
				break
			}
		}
		b = &tokenBucket{tokens: l.burst, last: now}
		l.buckets[src] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0, nil
	}
	l.refused++
	l.lastPeer = src
	if now.Sub(l.lastLog) >= l.logEvery {
		report = &limitReport{refused: l.refused, peer: src}
		l.refused, l.lastLog = 0, now
	}
	retry = time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, retry, report
}

// sweep drops the buckets that have refilled: they hold nothing a fresh
// bucket would not.
func (l *rateLimiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
}

func (l *rateLimiter) sweepLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
