package pidf

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMarshalGolden(t *testing.T) {
	tests := []struct {
		name string
		doc  *Document
		want string
	}{
		{
			name: "draft open NOTIFY in cpim-pidf",
			doc: &Document{Namespace: NamespaceCPIM, Entity: "pres:juliet@thecapulets.example.com",
				Tuples: []Tuple{{ID: "balcony", Basic: BasicOpen, Timestamp: time.Date(1597, 2, 14, 1, 0, 0, 0, time.UTC)}}},
			want: `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:cpim-pidf" entity="pres:juliet@thecapulets.example.com">
<tuple id="balcony"><status><basic>open</basic></status><timestamp>1597-02-14T01:00:00Z</timestamp></tuple>
</presence>
`,
		},
		{
			name: "XMPP-origin document with show, note, priority and person",
			doc:  FromXMPP("pres:romeo@montague.example.net", []XMPPPresence{{Resource: "orchard", Available: true, Show: "dnd", Status: "In the orchard", StatusLang: "en", Priority: 64, HasPriority: true}}),
			want: `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="pres:romeo@montague.example.net">
<tuple id="ID-orchard"><status><basic>open</basic><show xmlns="jabber:client">dnd</show></status><contact priority="0.504"></contact><note xml:lang="en">In the orchard</note></tuple>
<dm:person id="person"><rpid:activities><rpid:busy/></rpid:activities></dm:person>
</presence>
`,
		},
		{
			name: "escaping, empty status, document and person notes",
			doc: &Document{Entity: `sip:"a"&b@example.com`,
				Tuples: []Tuple{{ID: "t<1>", Contact: "sip:x@y;a=<b>", Notes: []Note{{Lang: `e"n`, Text: "a<b>&c\r\n\td\x00"}}}},
				Notes:  []Note{{Text: "doc"}},
				Person: &Person{Notes: []Note{{Lang: "fr", Text: "là"}}}},
			want: `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:&quot;a&quot;&amp;b@example.com">
<tuple id="t&lt;1&gt;"><status/><contact>sip:x@y;a=&lt;b&gt;</contact><note xml:lang="e&quot;n">a&lt;b&gt;&amp;c&#xD;` + "\n\t" + `d` + "\uFFFD" + `</note></tuple>
<note>doc</note>
<dm:person><dm:note xml:lang="fr">là</dm:note></dm:person>
</presence>
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.doc.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Marshal =\n%s\nwant\n%s", got, tt.want)
			}
			if _, err := Parse(got, Limits{}); err != nil {
				t.Errorf("own output does not parse: %v", err)
			}
		})
	}
}

// TestRoundTrip checks Parse(Marshal(d)) == d for every testdata document,
// written in both namespaces.
func TestRoundTrip(t *testing.T) {
	for name, want := range wantDocs(t) {
		for _, ns := range []string{NamespacePIDF, NamespaceCPIM} {
			t.Run(name+"/"+ContentType(ns), func(t *testing.T) {
				d, err := Parse(readTestdata(t, name), Limits{})
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				d.Namespace = ns
				out, err := d.Marshal()
				if err != nil {
					t.Fatalf("Marshal: %v", err)
				}
				if !strings.Contains(string(out), `<presence xmlns="`+ns+`"`) {
					t.Errorf("output not in namespace %s:\n%s", ns, out)
				}
				back, err := Parse(out, Limits{})
				if err != nil {
					t.Fatalf("Parse(Marshal): %v\n%s", err, out)
				}
				w := *want
				w.Namespace = ns
				if !reflect.DeepEqual(back, &w) {
					t.Errorf("round trip =\n%+v\nwant\n%+v\nvia\n%s", back, &w, out)
				}
			})
		}
	}
}

func TestRoundTripEscapes(t *testing.T) {
	d := &Document{Namespace: NamespaceCPIM, Entity: "sip:a\tb\nc\"d'e&f<g>@x",
		Tuples: []Tuple{{ID: "i\nd", Basic: BasicClosed, Contact: "c&<>",
			ContactPriority: 0.25, HasContactPriority: true,
			Notes:     []Note{{Lang: "x\ry", Text: "one\r\ntwo\rthree ]]> four"}},
			Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))}}}
	out, err := d.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := Parse(out, Limits{})
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, out)
	}
	if !back.Equal(d) {
		t.Errorf("round trip =\n%+v\nwant\n%+v\nvia\n%s", back, d, out)
	}
}

func TestMarshalErrors(t *testing.T) {
	ok := func() *Document {
		return &Document{Entity: "sip:a@b", Tuples: []Tuple{{ID: "t", Basic: BasicOpen}}, Person: &Person{Activities: []string{"away"}}}
	}
	tests := []struct {
		name   string
		mutate func(d *Document)
		want   string
	}{
		{"unknown namespace", func(d *Document) { d.Namespace = NamespaceRPID }, "unknown namespace"},
		{"empty entity", func(d *Document) { d.Entity = "" }, "empty entity"},
		{"bad basic", func(d *Document) { d.Tuples[0].Basic = "Open" }, "basic"},
		{"bad show", func(d *Document) { d.Tuples[0].Show = "busy" }, "invalid show"},
		{"priority above 1", func(d *Document) { d.Tuples[0].ContactPriority, d.Tuples[0].HasContactPriority = 1.5, true }, "priority"},
		{"priority NaN", func(d *Document) { d.Tuples[0].ContactPriority, d.Tuples[0].HasContactPriority = math.NaN(), true }, "priority"},
		{"activity not a name", func(d *Document) { d.Person.Activities = []string{"on the phone"} }, "activity"},
		{"activity with prefix", func(d *Document) { d.Person.Activities = []string{"x:y"} }, "activity"},
		{"year 10000", func(d *Document) { d.Tuples[0].Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "year"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok()
			if _, err := d.Marshal(); err != nil {
				t.Fatalf("baseline Marshal: %v", err)
			}
			tt.mutate(d)
			out, err := d.Marshal()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "pidf: marshal: ") {
				t.Errorf("Marshal error = %v, want one mentioning %q (output %s)", err, tt.want, out)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	base := func() *Document {
		return &Document{Namespace: NamespacePIDF, Entity: "sip:a@b",
			Tuples: []Tuple{{ID: "t", Basic: BasicOpen, Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
			Person: &Person{ID: "p", Activities: []string{"away"}}}
	}
	tests := []struct {
		name   string
		mutate func(d *Document)
		equal  bool
	}{
		{"identical", func(*Document) {}, true},
		{"same instant other zone", func(d *Document) { d.Tuples[0].Timestamp = d.Tuples[0].Timestamp.In(time.FixedZone("x", 7200)) }, true},
		{"empty vs nil notes", func(d *Document) { d.Notes = []Note{} }, true},
		{"priority ignored when absent", func(d *Document) { d.Tuples[0].ContactPriority = 0.5 }, true},
		{"namespace", func(d *Document) { d.Namespace = NamespaceCPIM }, false},
		{"basic", func(d *Document) { d.Tuples[0].Basic = BasicClosed }, false},
		{"show", func(d *Document) { d.Tuples[0].Show = "xa" }, false},
		{"activity", func(d *Document) { d.Person.Activities[0] = "busy" }, false},
		{"no person", func(d *Document) { d.Person = nil }, false},
		{"note lang", func(d *Document) { d.Notes = []Note{{Lang: "en", Text: "x"}} }, false},
		{"priority", func(d *Document) { d.Tuples[0].HasContactPriority = true }, false},
		{"extra tuple", func(d *Document) { d.Tuples = append(d.Tuples, Tuple{ID: "u"}) }, false},
	}
	for _, tt := range tests {
		d := base()
		tt.mutate(d)
		if got := base().Equal(d); got != tt.equal {
			t.Errorf("%s: Equal = %v, want %v", tt.name, got, tt.equal)
		}
		if got := d.Equal(base()); got != tt.equal {
			t.Errorf("%s: reversed Equal = %v, want %v", tt.name, got, tt.equal)
		}
	}
	var nilDoc *Document
	if !nilDoc.Equal(nil) || nilDoc.Equal(base()) || base().Equal(nil) {
		t.Errorf("nil documents compare wrongly")
	}
	if nilDoc.Available() {
		t.Errorf("nil document is available")
	}
}
