package addressing

import (
	"errors"
	"strings"
	"testing"
)

// mustParse parses s or fails the test.
func mustParse(t testing.TB, s string) Address {
	t.Helper()
	a, _, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return a
}

// checkErr fails the test unless err wraps want and its message contains
// each of the fragments (the parts of the input a user would look for).
func checkErr(t testing.TB, what string, err, want error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, want)
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: error %q does not wrap %q", what, err, want)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "addressing: ") {
		t.Errorf("%s: error %q lacks the package prefix", what, msg)
	}
	for _, f := range fragments {
		if !strings.Contains(msg, f) {
			t.Errorf("%s: error %q does not mention %q", what, msg, f)
		}
	}
}
