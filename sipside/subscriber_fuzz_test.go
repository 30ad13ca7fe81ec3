package sipside

import (
	"errors"
	"testing"
)

// FuzzParseSubState: ParseSubState never panics, fails only with
// ErrBadSubState, and what it accepts survives a round trip.
func FuzzParseSubState(f *testing.F) {
	for _, s := range []string{
		"active;expires=600", "pending", "terminated;reason=deactivated",
		"terminated;reason=probation;retry-after=30", "terminated;reason=rejected;x=y;flag",
		"active;expires=", ";", "a;b=c=d", "active ; expires = 5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		st, err := ParseSubState(v)
		if err != nil {
			if !errors.Is(err, ErrBadSubState) {
				t.Fatalf("error %v does not wrap ErrBadSubState", err)
			}
			return
		}
		again, err := ParseSubState(st.String())
		if err != nil {
			t.Fatalf("%q parsed to %+v whose String %q does not parse: %v", v, st, st.String(), err)
		}
		if again.State != st.State || again.Expires != st.Expires || again.RetryAfter != st.RetryAfter || again.HasRetry != st.HasRetry {
			t.Fatalf("round trip %q: %+v != %+v", v, again, st)
		}
	})
}
