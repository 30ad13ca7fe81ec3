package sipside

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Subscription-State values (RFC 6665 §8.2.3) and the reasons of
// §4.1.3 a subscriber acts on.
const (
	StateActive     = "active"
	StatePending    = "pending"
	StateTerminated = "terminated"

	ReasonDeactivated = "deactivated"
	ReasonProbation   = "probation"
	ReasonRejected    = "rejected"
	ReasonTimeout     = "timeout"
	ReasonGiveUp      = "giveup"
	ReasonNoResource  = "noresource"
	ReasonInvariant   = "invariant"
)

// maxSubStateLen bounds a Subscription-State value we read.
const maxSubStateLen = 1024

// SubState is a parsed Subscription-State header field value.
type SubState struct {
	State      string        // "active", "pending", "terminated" or an extension, lower case
	Reason     string        // lower case; "" when absent
	Expires    time.Duration // 0 when absent
	RetryAfter time.Duration // 0 when absent
	HasRetry   bool          // retry-after was present
}

// ErrBadSubState is wrapped by ParseSubState's errors.
var ErrBadSubState = errors.New("malformed Subscription-State")

// ParseSubState reads a Subscription-State value (RFC 6665 §8.4):
// substate-value *( SEMI subexp-params ). Unknown parameters are ignored;
// expires and retry-after must be decimal seconds.
func ParseSubState(v string) (SubState, error) {
	if len(v) > maxSubStateLen {
		return SubState{}, fmt.Errorf("%w: %d bytes", ErrBadSubState, len(v))
	}
	parts := strings.Split(v, ";")
	st := SubState{State: strings.ToLower(strings.TrimSpace(parts[0]))}
	if !isToken(st.State) {
		return SubState{}, fmt.Errorf("%w: state %q", ErrBadSubState, st.State)
	}
	for _, p := range parts[1:] {
		name, val, _ := strings.Cut(p, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		val = strings.TrimSpace(val)
		if !isToken(name) {
			return SubState{}, fmt.Errorf("%w: parameter %q", ErrBadSubState, name)
		}
		switch name {
		case "reason":
			st.Reason = strings.ToLower(val)
		case "expires", "retry-after":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return SubState{}, fmt.Errorf("%w: %s=%q", ErrBadSubState, name, val)
			}
			d := time.Duration(n) * time.Second
			if name == "expires" {
				st.Expires = d
			} else {
				st.RetryAfter, st.HasRetry = d, true
			}
		}
	}
	return st, nil
}

// String formats the value as a header field value.
func (st SubState) String() string {
	var b strings.Builder
	b.WriteString(st.State)
	if st.Reason != "" {
		b.WriteString(";reason=" + st.Reason)
	}
	if st.Expires > 0 {
		b.WriteString(";expires=" + strconv.Itoa(int(st.Expires/time.Second)))
	}
	if st.HasRetry {
		b.WriteString(";retry-after=" + strconv.Itoa(int(st.RetryAfter/time.Second)))
	}
	return b.String()
}
