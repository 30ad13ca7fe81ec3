package sdp

import (
	"fmt"
	"strings"
)

// mediaID keeps what normalize hid from pion in one m= line.
type mediaID struct {
	media, proto string
}

// sessionOrder and mediaOrder are the line orders of RFC 8866 §5 (r= and
// z= follow t=; k= is obsolete but still ordered).
const (
	sessionOrder = "vosiuepcbtrzka"
	mediaOrder   = "icbka"
)

// normalize turns the draft's SDP (and any SDP in a reasonable order) into
// text pion/sdp reads: section lines in RFC order, c= preambles moved into
// the media section they precede, t= lines inside media moved to the
// session, media types and protos replaced by placeholders (returned in
// order so Parse can restore them). Lines pion would reject for reasons
// that do not matter here (b=, k=, i=, u=, e=, p=, r=, z=) are dropped.
func normalize(b []byte) (string, []mediaID, error) {
	s := string(b)
	trimmed := strings.TrimLeft(s, "\r\n")
	if !strings.HasPrefix(trimmed, "v=") {
		return "", nil, fmt.Errorf("%w: does not start with v=", ErrNotSDP)
	}
	raw := strings.Split(trimmed, "\n")
	if len(raw) > maxLines {
		return "", nil, fmt.Errorf("%w: %d lines (limit %d)", ErrMalformed, len(raw), maxLines)
	}
	var session []string
	var sections [][]string // each starts with its m= line
	for n, l := range raw {
		l = strings.TrimRight(strings.TrimSuffix(l, "\r"), " \t") // sloppy trailing white space
		if l == "" {
			if strings.TrimSpace(strings.Join(raw[n:], "")) == "" {
				break // trailing empty lines
			}
			return "", nil, fmt.Errorf("%w: empty line %d", ErrMalformed, n+1)
		}
		if len(l) < 2 || l[1] != '=' || l[0] < 'a' || l[0] > 'z' {
			return "", nil, fmt.Errorf("%w: line %d is not <type>=<value>", ErrMalformed, n+1)
		}
		if strings.ContainsAny(l, "\r\x00") {
			return "", nil, fmt.Errorf("%w: control character in line %d", ErrMalformed, n+1)
		}
		switch {
		case l[0] == 'm':
			if len(sections) == MaxMedia {
				return "", nil, fmt.Errorf("%w: more than %d media sections", ErrMalformed, MaxMedia)
			}
			sections = append(sections, []string{l})
		case len(sections) == 0:
			session = append(session, l)
		default:
			sections[len(sections)-1] = append(sections[len(sections)-1], l)
		}
	}

	// The draft's layout: "c=" and "t=" written before each "m=" line,
	// so they end the previous media section. Move them.
	for i := range sections {
		sec := sections[i]
		end := len(sec)
		for end > 1 && (sec[end-1][0] == 'c' || sec[end-1][0] == 't') {
			end--
		}
		tail := sec[end:]
		sawAttr := false
		for _, l := range sec[1:end] {
			if l[0] == 'a' {
				sawAttr = true
			}
		}
		hasT := false
		for _, l := range tail {
			if l[0] == 't' {
				hasT = true
			}
		}
		var keep []string
		keep = append(keep, sec[:end]...)
		for _, l := range tail {
			switch {
			case l[0] == 't':
				session = append(session, l)
			case (hasT || sawAttr) && i+1 < len(sections):
				// A preamble of the next section, unless that one has
				// its own c= line.
				next := sections[i+1]
				if !hasLine(next[1:], 'c') {
					sections[i+1] = append([]string{next[0], l}, next[1:]...)
				}
			default:
				keep = append(keep, l)
			}
		}
		// t= lines in the middle of a section go to the session too.
		var out []string
		for _, l := range keep {
			if l[0] == 't' && len(out) > 0 {
				session = append(session, l)
				continue
			}
			out = append(out, l)
		}
		sections[i] = out
	}

	var w strings.Builder
	// Session: RFC order, one c=, the first t= only.
	seen := map[byte]bool{}
	for _, k := range []byte(sessionOrder) {
		for _, l := range session {
			if l[0] != k {
				continue
			}
			switch k {
			case 'v', 'o', 's', 'c', 't':
				if seen[k] {
					continue
				}
				seen[k] = true
			case 'i', 'u', 'e', 'p', 'b', 'r', 'z', 'k':
				continue
			}
			w.WriteString(l)
			w.WriteString("\r\n")
		}
	}
	for _, l := range session {
		if !strings.ContainsRune(sessionOrder, rune(l[0])) {
			return "", nil, fmt.Errorf("%w: unknown session line %q", ErrMalformed, truncate(l))
		}
	}
	if !seen['t'] {
		w.WriteString("t=0 0\r\n")
	}
	ids := make([]mediaID, 0, len(sections))
	for _, sec := range sections {
		f := strings.Fields(sec[0][2:])
		if len(f) < 3 {
			return "", nil, fmt.Errorf("%w: m= line %q", ErrMalformed, truncate(sec[0]))
		}
		ids = append(ids, mediaID{media: f[0], proto: f[2]})
		// Placeholders pion accepts; the originals come back in Parse.
		w.WriteString("m=application " + f[1] + " TCP")
		if len(f) == 3 {
			return "", nil, fmt.Errorf("%w: m= line without formats %q", ErrMalformed, truncate(sec[0]))
		}
		for _, x := range f[3:] {
			w.WriteString(" " + x)
		}
		w.WriteString("\r\n")
		seenC := false
		for _, k := range []byte(mediaOrder) {
			for _, l := range sec[1:] {
				if l[0] != k {
					continue
				}
				switch k {
				case 'c':
					if seenC {
						continue
					}
					seenC = true
				case 'i', 'b', 'k':
					continue
				}
				w.WriteString(l)
				w.WriteString("\r\n")
			}
		}
		for _, l := range sec[1:] {
			if !strings.ContainsRune(mediaOrder+"t", rune(l[0])) {
				return "", nil, fmt.Errorf("%w: unknown media line %q", ErrMalformed, truncate(l))
			}
		}
	}
	return w.String(), ids, nil
}

func hasLine(ls []string, k byte) bool {
	for _, l := range ls {
		if l[0] == k {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
