package sipside

import (
	"fmt"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	type step struct {
		src  string
		at   time.Duration
		want bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"burst then refuse", []step{{"a", 0, true}, {"a", 0, true}, {"a", 0, true}, {"a", 0, false}}},
		{"refill at rate", []step{{"a", 0, true}, {"a", 0, true}, {"a", 0, true}, {"a", 0, false}, {"a", 500 * time.Millisecond, true}, {"a", 500 * time.Millisecond, false}}},
		{"sources apart", []step{{"a", 0, true}, {"a", 0, true}, {"a", 0, true}, {"a", 0, false}, {"b", 0, true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newRateLimiter(2, 3, 100, time.Second)
			for i, s := range tc.steps {
				ok, retry, _ := l.allow(s.src, t0.Add(s.at))
				if ok != s.want {
					t.Fatalf("step %d (%s at %v): allowed %v, want %v", i, s.src, s.at, ok, s.want)
				}
				if !ok && (retry <= 0 || retry > time.Second) {
					t.Fatalf("step %d: retry %v, want within (0, 1s]", i, retry)
				}
			}
		})
	}
}

func TestRateLimiterBoundedAndLogsOnce(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	l := newRateLimiter(1, 1, 10, 10*time.Second)
	for i := range 1000 {
		l.allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), t0)
	}
	if n := l.size(); n > 10 {
		t.Fatalf("%d buckets kept, want at most 10", n)
	}
	l.sweep(t0.Add(time.Minute))
	if n := l.size(); n != 0 {
		t.Fatalf("%d buckets after sweep, want 0", n)
	}
	reports := 0
	l.allow("x", t0)
	for i := range 100 {
		if _, _, r := l.allow("x", t0.Add(time.Duration(i)*time.Millisecond)); r != nil {
			reports++
		}
	}
	if reports != 1 {
		t.Fatalf("%d log reports in 100ms of refusals, want 1", reports)
	}
}
