package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File string // the file as named to Load or Parse
	Line int    // 1-based; 0 when the problem has no line (a missing key)
	Key  string // dotted key, e.g. "sip.listen" or "peer.domain"; "" for syntax errors
	Msg  string
}

// String formats the problem as "FILE:LINE: key: what is wrong", leaving
// out the line when it is 0 and the key when it is "".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a configuration, in line order
// (problems without a line last). Load and Parse return it as their error.
type Problems []Problem

// Error prints one problem per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
