package pidf

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Marshal writes the document as UTF-8 XML in d.Namespace (NamespacePIDF when
// empty), with an XML declaration and one element per line below the root.
// The output is built directly in a byte slice (no tree), because a server
// marshals one body per presence change per watcher.
//
// Element order follows the RFC 3863 schema: tuples, document notes, then
// <dm:person>; inside a tuple: status (basic, then the jabber:client show),
// contact, notes, timestamp. Characters that XML 1.0 cannot carry are
// replaced with U+FFFD; a carriage return is written as &#xD; so that it
// survives parsing.
func (d *Document) Marshal() ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	ns := d.Namespace
	if ns == "" {
		ns = NamespacePIDF
	}
	b := make([]byte, 0, d.sizeHint())
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<presence xmlns="`...)
	b = append(b, ns...)
	b = append(b, '"')
	if d.Person != nil {
		b = append(b, ` xmlns:dm="`+NamespaceDataModel+`"`...)
		if len(d.Person.Activities) > 0 {
			b = append(b, ` xmlns:rpid="`+NamespaceRPID+`"`...)
		}
	}
	b = append(b, ` entity="`...)
	b = appendEscaped(b, d.Entity, true)
	b = append(b, "\">\n"...)
	for i := range d.Tuples {
		b = appendTuple(b, &d.Tuples[i])
	}
	for _, n := range d.Notes {
		b = appendNoteXML(b, "note", n)
		b = append(b, '\n')
	}
	if p := d.Person; p != nil {
		b = append(b, "<dm:person"...)
		if p.ID != "" {
			b = append(b, ` id="`...)
			b = appendEscaped(b, p.ID, true)
			b = append(b, '"')
		}
		b = append(b, '>')
		if len(p.Activities) > 0 {
			b = append(b, "<rpid:activities>"...)
			for _, a := range p.Activities {
				b = append(b, "<rpid:"...)
				b = append(b, a...)
				b = append(b, "/>"...)
			}
			b = append(b, "</rpid:activities>"...)
		}
		for _, n := range p.Notes {
			b = appendNoteXML(b, "dm:note", n)
		}
		b = append(b, "</dm:person>\n"...)
	}
	b = append(b, "</presence>\n"...)
	return b, nil
}

func (d *Document) validate() error {
	switch d.Namespace {
	case "", NamespacePIDF, NamespaceCPIM:
	default:
		return fmt.Errorf("pidf: marshal: unknown namespace %q", d.Namespace)
	}
	if d.Entity == "" {
		return fmt.Errorf("pidf: marshal: empty entity")
	}
	for i := range d.Tuples {
		t := &d.Tuples[i]
		switch t.Basic {
		case "", BasicOpen, BasicClosed:
		default:
			return fmt.Errorf("pidf: marshal: tuple %q: basic %q is neither open nor closed", t.ID, t.Basic)
		}
		if t.Show != "" && !validShow(t.Show) {
			return fmt.Errorf("pidf: marshal: tuple %q: invalid show %q", t.ID, t.Show)
		}
		if t.HasContactPriority && !(t.ContactPriority >= 0 && t.ContactPriority <= 1) {
			return fmt.Errorf("pidf: marshal: tuple %q: contact priority %v outside [0,1]", t.ID, t.ContactPriority)
		}
		if y := t.Timestamp.UTC().Year(); !t.Timestamp.IsZero() && (y < 0 || y > 9999) {
			return fmt.Errorf("pidf: marshal: tuple %q: timestamp year %d not representable", t.ID, y)
		}
	}
	if d.Person != nil {
		for _, a := range d.Person.Activities {
			if !isNCName(a) {
				return fmt.Errorf("pidf: marshal: activity %q is not an XML name", a)
			}
		}
	}
	return nil
}

func (d *Document) sizeHint() int {
	n := 160 + len(d.Entity)
	for i := range d.Tuples {
		t := &d.Tuples[i]
		n += 160 + len(t.ID) + len(t.Contact)
		for _, no := range t.Notes {
			n += 32 + len(no.Text) + len(no.Lang)
		}
	}
	for _, no := range d.Notes {
		n += 32 + len(no.Text) + len(no.Lang)
	}
	if d.Person != nil {
		n += 200
		for _, a := range d.Person.Activities {
			n += 9 + len(a)
		}
		for _, no := range d.Person.Notes {
			n += 32 + len(no.Text) + len(no.Lang)
		}
	}
	return n
}

func appendTuple(b []byte, t *Tuple) []byte {
	b = append(b, `<tuple id="`...)
	b = appendEscaped(b, t.ID, true)
	b = append(b, `">`...)
	if t.Basic == "" && t.Show == "" {
		b = append(b, "<status/>"...)
	} else {
		b = append(b, "<status>"...)
		if t.Basic != "" {
			b = append(b, "<basic>"...)
			b = append(b, t.Basic...)
			b = append(b, "</basic>"...)
		}
		if t.Show != "" {
			b = append(b, `<show xmlns="`+NamespaceJabberClient+`">`...)
			b = append(b, t.Show...)
			b = append(b, "</show>"...)
		}
		b = append(b, "</status>"...)
	}
	if t.Contact != "" || t.HasContactPriority {
		b = append(b, "<contact"...)
		if t.HasContactPriority {
			b = append(b, ` priority="`...)
			b = strconv.AppendFloat(b, roundQ(t.ContactPriority), 'f', -1, 64)
			b = append(b, '"')
		}
		b = append(b, '>')
		b = appendEscaped(b, t.Contact, false)
		b = append(b, "</contact>"...)
	}
	for _, n := range t.Notes {
		b = appendNoteXML(b, "note", n)
	}
	if !t.Timestamp.IsZero() {
		b = append(b, "<timestamp>"...)
		b = t.Timestamp.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, "</timestamp>"...)
	}
	return append(b, "</tuple>\n"...)
}

func appendNoteXML(b []byte, tag string, n Note) []byte {
	b = append(b, '<')
	b = append(b, tag...)
	if n.Lang != "" {
		b = append(b, ` xml:lang="`...)
		b = appendEscaped(b, n.Lang, true)
		b = append(b, '"')
	}
	b = append(b, '>')
	b = appendEscaped(b, n.Text, false)
	b = append(b, "</"...)
	b = append(b, tag...)
	return append(b, '>')
}

// appendEscaped appends s as XML character data, or as an attribute value
// between double quotes when attr is set.
func appendEscaped(b []byte, s string, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == '&':
			esc = "&amp;"
		case r == '<':
			esc = "&lt;"
		case r == '>':
			esc = "&gt;"
		case r == '"' && attr:
			esc = "&quot;"
		case r == '\r':
			esc = "&#xD;"
		case r == '\n' && attr:
			esc = "&#xA;"
		case r == '\t' && attr:
			esc = "&#x9;"
		case r == utf8.RuneError && w == 1, !isXMLChar(r):
			esc = "\uFFFD"
		default:
			i += w
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		i += w
		last = i
	}
	return append(b, s[last:]...)
}

// isXMLChar reports whether r is in the XML 1.0 Char production.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= utf8.MaxRune
}
