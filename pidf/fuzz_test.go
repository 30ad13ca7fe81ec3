package pidf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// addSeeds adds every testdata document and a few hostile snippets.
func addSeeds(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil {
		f.Fatalf("glob testdata: %v", err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatalf("read seed: %v", err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		pidfHead + `<tuple id="ID-a_20b"><status><basic>open</basic><show xmlns="jabber:client">xa</show></status><contact priority="0.5">x</contact><note xml:lang="en">hi</note><timestamp>2026-01-01T00:00:00.123+01:00</timestamp></tuple></presence>`,
		`<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" entity="e"><dm:person><r:activities><r:note>n</r:note><r:busy/></r:activities><dm:note>m</dm:note></dm:person></presence>`,
		`<presence xmlns="urn:ietf:params:xml:ns:cpim-pidf" entity="e"><note>&amp;&#x41;<![CDATA[<]]></note></presence>`,
	} {
		f.Add([]byte(s))
	}
}

var sentinels = []error{ErrTooLarge, ErrTooDeep, ErrDTD, ErrNotPIDF, ErrMalformed}

// FuzzParse: Parse never panics, every error wraps one sentinel, and a parsed
// document survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b, Limits{})
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 || d != nil {
				t.Fatalf("error %v wraps %d sentinels (doc %v)", err, n, d)
			}
			return
		}
		out, err := d.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed document: %v\ndoc %+v", err, d)
		}
		// Escaping can grow the output beyond the input limit.
		back, err := Parse(out, Limits{MaxBytes: 8 * len(out)})
		if err != nil {
			t.Fatalf("Parse(Marshal(d)): %v\n%s", err, out)
		}
		if !back.Equal(d) {
			t.Fatalf("round trip changed the document:\n%+v\n%+v\nvia\n%s", d, back, out)
		}
		if d.Available() != back.Available() {
			t.Fatalf("Available changed")
		}
	})
}

// FuzzMapping: ToXMPP of any parsed document does not panic, and the
// XMPP-origin document FromXMPP(ToXMPP(d)) is a fixed point from the first
// round on, also after going over the wire.
func FuzzMapping(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b, Limits{})
		if err != nil {
			return
		}
		x1 := ToXMPP(d)
		if len(x1) != len(d.Tuples) {
			t.Fatalf("ToXMPP gave %d presences for %d tuples", len(x1), len(d.Tuples))
		}
		for i, p := range x1 {
			if p.Available != (d.Tuples[i].Basic == BasicOpen) {
				t.Fatalf("presence %d availability %v for basic %q", i, p.Available, d.Tuples[i].Basic)
			}
			if p.Show != "" && (!validShow(p.Show) || !p.Available) {
				t.Fatalf("presence %d has show %q (available %v)", i, p.Show, p.Available)
			}
		}
		d1 := FromXMPP(d.Entity, x1)
		d2 := FromXMPP(d.Entity, ToXMPP(d1))
		if !d1.Equal(d2) {
			t.Fatalf("second round differs:\n%+v\n%+v", d1, d2)
		}
		out, err := d1.Marshal()
		if err != nil {
			t.Fatalf("Marshal(FromXMPP): %v", err)
		}
		back, err := Parse(out, Limits{MaxBytes: 8 * len(out)})
		if err != nil {
			t.Fatalf("Parse(Marshal(FromXMPP)): %v\n%s", err, out)
		}
		if d3 := FromXMPP(d.Entity, ToXMPP(back)); !d1.Equal(d3) {
			t.Fatalf("over the wire differs:\n%+v\n%+v\nvia\n%s", d1, d3, out)
		}
	})
}

// FuzzFromXMPP feeds arbitrary XMPP presence (status texts and resources come
// from the network too) through FromXMPP, Marshal, Parse and ToXMPP: the
// body must always be valid, what can be mapped must arrive unchanged, and a
// second trip must change nothing.
func FuzzFromXMPP(f *testing.F) {
	f.Add("orchard", true, "away", "Walking", "en", int8(5), true, "phone", false, "dnd", "Gone", int8(-1), true)
	f.Add("Gajim 1.9/Linux", true, "xa", " <b>&amp;\r\n", "x\"y", int8(127), true, "", true, "chat", "", int8(0), false)
	f.Add("\x00\xff_", true, "bogus", "\x01\xfe", "\t", int8(-128), true, "手机", true, "", "é", int8(64), true)
	f.Fuzz(func(t *testing.T, r1 string, a1 bool, s1, st1, l1 string, p1 int8, hp1 bool,
		r2 string, a2 bool, s2, st2 string, p2 int8, hp2 bool) {
		in := []XMPPPresence{
			{Resource: r1, Available: a1, Show: s1, Status: st1, StatusLang: l1, Priority: p1, HasPriority: hp1},
			{Resource: r2, Available: a2, Show: s2, Status: st2, Priority: p2, HasPriority: hp2},
		}
		trip := func(ps []XMPPPresence) []XMPPPresence {
			d := FromXMPP("pres:romeo@montague.example.net", ps)
			b, err := d.Marshal()
			if err != nil {
				t.Fatalf("Marshal(FromXMPP(%+v)): %v", ps, err)
			}
			back, err := Parse(b, Limits{MaxBytes: 1 << 20})
			if err != nil {
				t.Fatalf("Parse(Marshal(FromXMPP(%+v))): %v\n%s", ps, err, b)
			}
			return ToXMPP(back)
		}
		x1 := trip(in)
		if len(x1) != len(in) {
			t.Fatalf("got %d presences, want %d", len(x1), len(in))
		}
		for i, p := range x1 {
			w := in[i]
			if p.Available != w.Available {
				t.Errorf("%d: Available %v, want %v", i, p.Available, w.Available)
			}
			if wantShow := w.Show; w.Available && validShow(wantShow) && p.Show != wantShow {
				t.Errorf("%d: Show %q, want %q", i, p.Show, wantShow)
			}
			if mapped := w.HasPriority && w.Priority >= 0; p.HasPriority != mapped || mapped && p.Priority != w.Priority {
				t.Errorf("%d: priority %d/%v from %d/%v", i, p.Priority, p.HasPriority, w.Priority, w.HasPriority)
			}
			if cleanString(w.Resource) && p.Resource != w.Resource {
				t.Errorf("%d: Resource %q, want %q", i, p.Resource, w.Resource)
			}
			if s := strings.TrimSpace(w.Status); cleanString(w.Status) && p.Status != s {
				t.Errorf("%d: Status %q, want %q", i, p.Status, s)
			}
		}
		if x2 := trip(x1); !reflect.DeepEqual(x1, x2) {
			t.Errorf("second trip changed presence:\n%+v\n%+v", x1, x2)
		}
	})
}

// cleanString reports whether s is valid UTF-8 without control characters
// (C0, DEL, C1) or U+FFFE/U+FFFF: XML carries it unchanged and it is a
// possible XMPP resource.
func cleanString(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7F && r <= 0x9F || r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}
