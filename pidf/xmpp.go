package pidf

import (
	"math"
	"strings"
)

// XMPPPresence is the protocol-neutral content of one XMPP <presence/> stanza
// from one resource, as far as RFC 8048 maps it to PIDF. Only presence with
// no type (Available) or type "unavailable" (!Available) is represented.
type XMPPPresence struct {
	Resource string
	// Available is true for presence without a type, false for
	// type="unavailable".
	Available bool
	// Show is "", "away", "chat", "dnd" or "xa".
	Show       string
	Status     string
	StatusLang string
	Priority   int8
	// HasPriority is true when the stanza carried a <priority/>.
	HasPriority bool
}

// TupleIDPrefix starts every tuple id made by FromXMPP (RFC 8048 maps the
// resource to the tuple id "ID-<resource>").
const TupleIDPrefix = "ID-"

// PersonID is the id of the <dm:person> element made by FromXMPP.
const PersonID = "person"

// FromXMPP builds a PIDF document (NamespacePIDF; set Namespace to
// NamespaceCPIM for the UMPP draft's bodies) for entity from the current
// presence of each of its resources, following RFC 8048:
//
//   - one tuple per resource, id TupleIDPrefix + TupleIDFromResource-escaped
//     resource, basic open for available, closed for unavailable;
//   - the status text becomes a tuple <note> with xml:lang;
//   - a priority 0..127 becomes the contact priority p/127 (three decimals);
//     negative priorities are not mapped;
//   - an available resource's show is carried in
//     <status><show xmlns='jabber:client'>; this is an extension of ours,
//     ignored by other PIDF readers as RFC 3863 §4.1.4 requires;
//   - for SIP clients, the show of the available resource with the highest
//     priority (the first one on a tie) also becomes an RFC 4480 activity on
//     a <dm:person>: away and xa -> away, dnd -> busy; chat and no show add
//     no person element.
//
// An invalid show value is dropped. FromXMPP sets no contact URI and no
// timestamp.
func FromXMPP(entity string, ps []XMPPPresence) *Document {
	d := &Document{Namespace: NamespacePIDF, Entity: entity}
	if len(ps) > 0 {
		d.Tuples = make([]Tuple, 0, len(ps))
	}
	best := -1
	for i := range ps {
		p := &ps[i]
		t := Tuple{ID: TupleIDFromResource(p.Resource), Basic: BasicClosed}
		if p.Available {
			t.Basic = BasicOpen
			if validShow(p.Show) {
				t.Show = p.Show
			}
			if best < 0 || effPriority(p) > effPriority(&ps[best]) {
				best = i
			}
		}
		if p.Status != "" {
			t.Notes = []Note{{Lang: p.StatusLang, Text: p.Status}}
		}
		if p.HasPriority && p.Priority >= 0 {
			t.ContactPriority = roundQ(float64(p.Priority) / 127)
			t.HasContactPriority = true
		}
		d.Tuples = append(d.Tuples, t)
	}
	if best >= 0 {
		if a := activityForShow(ps[best].Show); a != "" {
			d.Person = &Person{ID: PersonID, Activities: []string{a}}
		}
	}
	return d
}

func effPriority(p *XMPPPresence) int {
	if p.HasPriority {
		return int(p.Priority)
	}
	return 0
}

func activityForShow(show string) string {
	switch show {
	case "away", "xa":
		return "away"
	case "dnd":
		return "busy"
	}
	return ""
}

// showForActivities maps RFC 4480 activities to an XMPP show: busy,
// on-the-phone and meeting -> dnd (these win over away), away -> away,
// anything else -> "".
func showForActivities(acts []string) string {
	show := ""
	for _, a := range acts {
		switch a {
		case "busy", "on-the-phone", "meeting":
			return "dnd"
		case "away":
			show = "away"
		}
	}
	return show
}

// ToXMPP maps a presence document to one XMPPPresence per tuple:
//
//   - Resource: the tuple id without TupleIDPrefix, unescaped as made by
//     TupleIDFromResource; a tuple id without the prefix is used as is;
//   - Available: basic is open (closed and unknown become unavailable);
//   - Show (available tuples only): the carried jabber:client show; when no
//     tuple of the document carries one, the <dm:person> activities decide:
//     busy, on-the-phone or meeting -> dnd, else away -> away, else none
//     (a document from another UMPP server thus maps back exactly, and one
//     from a SIP client gets its person's state on every open tuple);
//   - Status: the tuple's first note, else the person's, else the
//     document's;
//   - Priority: round(contact priority * 127).
func ToXMPP(d *Document) []XMPPPresence {
	if d == nil || len(d.Tuples) == 0 {
		return nil
	}
	carried := false
	for i := range d.Tuples {
		if d.Tuples[i].Show != "" {
			carried = true
			break
		}
	}
	personShow := ""
	var fallback []Note
	if d.Person != nil {
		if !carried {
			personShow = showForActivities(d.Person.Activities)
		}
		fallback = d.Person.Notes
	}
	if len(fallback) == 0 {
		fallback = d.Notes
	}
	out := make([]XMPPPresence, 0, len(d.Tuples))
	for i := range d.Tuples {
		t := &d.Tuples[i]
		p := XMPPPresence{Resource: ResourceFromTupleID(t.ID), Available: t.Basic == BasicOpen}
		if p.Available {
			p.Show = t.Show
			if !carried {
				p.Show = personShow
			}
		}
		notes := t.Notes
		if len(notes) == 0 {
			notes = fallback
		}
		if len(notes) > 0 {
			p.Status, p.StatusLang = notes[0].Text, notes[0].Lang
		}
		if t.HasContactPriority && t.ContactPriority >= 0 && t.ContactPriority <= 1 {
			p.Priority = int8(math.Round(t.ContactPriority * 127))
			p.HasPriority = true
		}
		out = append(out, p)
	}
	return out
}

const hexDigits = "0123456789ABCDEF"

// TupleIDFromResource returns TupleIDPrefix followed by the resource with
// every byte outside [A-Za-z0-9.-] written as "_XX" (upper-case hex), which
// makes a valid XML ID that ResourceFromTupleID reverses exactly.
func TupleIDFromResource(res string) string {
	var sb strings.Builder
	sb.Grow(len(TupleIDPrefix) + len(res))
	sb.WriteString(TupleIDPrefix)
	for i := 0; i < len(res); i++ {
		c := res[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('_')
		sb.WriteByte(hexDigits[c>>4])
		sb.WriteByte(hexDigits[c&0xF])
	}
	return sb.String()
}

// ResourceFromTupleID reverses TupleIDFromResource. An id without
// TupleIDPrefix is used unchanged (a SIP client's tuple id names its
// device); an id whose escapes are invalid, or decode to invalid UTF-8 or a
// control character, is used without the prefix but otherwise unchanged. In
// every case invalid UTF-8 and control characters, which no XMPP resource
// may contain, become U+FFFD, so that the result maps back to itself.
func ResourceFromTupleID(id string) string {
	rest, ok := strings.CutPrefix(id, TupleIDPrefix)
	if !ok || !strings.Contains(rest, "_") {
		return cleanResource(rest)
	}
	b := make([]byte, 0, len(rest))
	for i := 0; i < len(rest); i++ {
		if rest[i] != '_' {
			b = append(b, rest[i])
			continue
		}
		if i+2 >= len(rest) {
			return cleanResource(rest)
		}
		hi, ok1 := unhex(rest[i+1])
		lo, ok2 := unhex(rest[i+2])
		if !ok1 || !ok2 {
			return cleanResource(rest)
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	if s := string(b); cleanResource(s) == s {
		return s
	}
	return cleanResource(rest)
}

// cleanResource replaces invalid UTF-8 and control characters with U+FFFD.
func cleanResource(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7F && r <= 0x9F {
			return '\uFFFD'
		}
		return r
	}, s)
}

// unhex decodes one upper-case hex digit (the only form
// TupleIDFromResource writes, so the mapping stays one-to-one).
func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
