package pidf

import (
	"reflect"
	"testing"
)

const romeo = "pres:romeo@montague.example.net"

func TestFromXMPP(t *testing.T) {
	tests := []struct {
		name string
		in   []XMPPPresence
		want *Document
	}{
		{
			name: "no resources",
			in:   nil,
			want: &Document{Namespace: NamespacePIDF, Entity: romeo},
		},
		{
			name: "available, nothing else",
			in:   []XMPPPresence{{Resource: "orchard", Available: true}},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{{ID: "ID-orchard", Basic: BasicOpen}}},
		},
		{
			name: "away with status, lang and priority",
			in:   []XMPPPresence{{Resource: "orchard", Available: true, Show: "away", Status: "Walking", StatusLang: "en", Priority: 5, HasPriority: true}},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{{ID: "ID-orchard", Basic: BasicOpen, Show: "away",
					Notes: []Note{{Lang: "en", Text: "Walking"}}, ContactPriority: 0.039, HasContactPriority: true}},
				Person: &Person{ID: PersonID, Activities: []string{"away"}}},
		},
		{
			name: "xa is away for SIP",
			in:   []XMPPPresence{{Resource: "r", Available: true, Show: "xa"}},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{{ID: "ID-r", Basic: BasicOpen, Show: "xa"}},
				Person: &Person{ID: PersonID, Activities: []string{"away"}}},
		},
		{
			name: "dnd is busy for SIP",
			in:   []XMPPPresence{{Resource: "r", Available: true, Show: "dnd"}},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{{ID: "ID-r", Basic: BasicOpen, Show: "dnd"}},
				Person: &Person{ID: PersonID, Activities: []string{"busy"}}},
		},
		{
			name: "chat has no activity",
			in:   []XMPPPresence{{Resource: "r", Available: true, Show: "chat"}},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{{ID: "ID-r", Basic: BasicOpen, Show: "chat"}}},
		},
		{
			name: "invalid show dropped",
			in:   []XMPPPresence{{Resource: "r", Available: true, Show: "sleepy"}},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{{ID: "ID-r", Basic: BasicOpen}}},
		},
		{
			name: "unavailable keeps status, drops show",
			in:   []XMPPPresence{{Resource: "r", Show: "away", Status: "Gone", StatusLang: "it"}},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{{ID: "ID-r", Basic: BasicClosed, Notes: []Note{{Lang: "it", Text: "Gone"}}}}},
		},
		{
			name: "priority bounds, negative not mapped",
			in: []XMPPPresence{
				{Resource: "a", Available: true, Priority: 0, HasPriority: true},
				{Resource: "b", Available: true, Priority: 127, HasPriority: true},
				{Resource: "c", Available: true, Priority: -1, HasPriority: true},
				{Resource: "d", Available: true, Priority: -128, HasPriority: true},
			},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{
					{ID: "ID-a", Basic: BasicOpen, HasContactPriority: true},
					{ID: "ID-b", Basic: BasicOpen, ContactPriority: 1, HasContactPriority: true},
					{ID: "ID-c", Basic: BasicOpen},
					{ID: "ID-d", Basic: BasicOpen},
				}},
		},
		{
			name: "person follows the highest-priority available resource",
			in: []XMPPPresence{
				{Resource: "desk", Available: true, Show: "dnd", Priority: 1, HasPriority: true},
				{Resource: "phone", Available: true, Show: "away", Priority: 5, HasPriority: true},
				{Resource: "old", Available: false, Show: "dnd", Priority: 100, HasPriority: true},
			},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{
					{ID: "ID-desk", Basic: BasicOpen, Show: "dnd", ContactPriority: 0.008, HasContactPriority: true},
					{ID: "ID-phone", Basic: BasicOpen, Show: "away", ContactPriority: 0.039, HasContactPriority: true},
					{ID: "ID-old", Basic: BasicClosed, ContactPriority: 0.787, HasContactPriority: true},
				},
				Person: &Person{ID: PersonID, Activities: []string{"away"}}},
		},
		{
			name: "first resource wins a priority tie",
			in: []XMPPPresence{
				{Resource: "a", Available: true},
				{Resource: "b", Available: true, Show: "dnd"},
			},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{{ID: "ID-a", Basic: BasicOpen}, {ID: "ID-b", Basic: BasicOpen, Show: "dnd"}}},
		},
		{
			name: "resource escaped into an XML ID",
			in:   []XMPPPresence{{Resource: "phone 1/ü_x", Available: true}},
			want: &Document{Namespace: NamespacePIDF, Entity: romeo,
				Tuples: []Tuple{{ID: "ID-phone_201_2F_C3_BC_5Fx", Basic: BasicOpen}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromXMPP(romeo, tt.in)
			if !got.Equal(tt.want) {
				t.Errorf("FromXMPP =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestToXMPP(t *testing.T) {
	open := func(id string) Tuple { return Tuple{ID: id, Basic: BasicOpen} }
	doc := func(p *Person, notes []Note, ts ...Tuple) *Document {
		return &Document{Namespace: NamespacePIDF, Entity: romeo, Tuples: ts, Notes: notes, Person: p}
	}
	acts := func(a ...string) *Person { return &Person{ID: "p", Activities: a} }
	tests := []struct {
		name string
		in   *Document
		want []XMPPPresence
	}{
		{"nil document", nil, nil},
		{"no tuples", doc(acts("away"), nil), nil},
		{"open tuple", doc(nil, nil, open("t")), []XMPPPresence{{Resource: "t", Available: true}}},
		{"closed and unknown basic are unavailable", doc(acts("busy"), nil, Tuple{ID: "a", Basic: BasicClosed}, Tuple{ID: "b"}),
			[]XMPPPresence{{Resource: "a"}, {Resource: "b"}}},
		{"busy", doc(acts("busy"), nil, open("t")), []XMPPPresence{{Resource: "t", Available: true, Show: "dnd"}}},
		{"on-the-phone", doc(acts("on-the-phone"), nil, open("t")), []XMPPPresence{{Resource: "t", Available: true, Show: "dnd"}}},
		{"meeting", doc(acts("meeting"), nil, open("t")), []XMPPPresence{{Resource: "t", Available: true, Show: "dnd"}}},
		{"away", doc(acts("away"), nil, open("t")), []XMPPPresence{{Resource: "t", Available: true, Show: "away"}}},
		{"busy wins over away", doc(acts("away", "busy"), nil, open("t")), []XMPPPresence{{Resource: "t", Available: true, Show: "dnd"}}},
		{"other activities show nothing", doc(acts("vacation", "meal", "juggling"), nil, open("t")), []XMPPPresence{{Resource: "t", Available: true}}},
		{"carried show wins over person", doc(acts("busy"), nil, Tuple{ID: "a", Basic: BasicOpen, Show: "chat"}, open("b")),
			[]XMPPPresence{{Resource: "a", Available: true, Show: "chat"}, {Resource: "b", Available: true}}},
		{"carried show ignored on closed tuple", doc(nil, nil, Tuple{ID: "a", Basic: BasicClosed, Show: "xa"}),
			[]XMPPPresence{{Resource: "a"}}},
		{"status from tuple, then person, then document",
			doc(&Person{Notes: []Note{{Lang: "de", Text: "Mittag"}}}, []Note{{Text: "doc"}},
				Tuple{ID: "a", Basic: BasicOpen, Notes: []Note{{Lang: "en", Text: "mine"}, {Lang: "fr", Text: "le mien"}}}, open("b")),
			[]XMPPPresence{{Resource: "a", Available: true, Status: "mine", StatusLang: "en"}, {Resource: "b", Available: true, Status: "Mittag", StatusLang: "de"}}},
		{"status from document", doc(nil, []Note{{Lang: "en", Text: "doc"}}, open("b")),
			[]XMPPPresence{{Resource: "b", Available: true, Status: "doc", StatusLang: "en"}}},
		{"priorities", doc(nil, nil,
			Tuple{ID: "a", Basic: BasicOpen, ContactPriority: 0.5, HasContactPriority: true},
			Tuple{ID: "b", Basic: BasicOpen, ContactPriority: 0, HasContactPriority: true},
			Tuple{ID: "c", Basic: BasicOpen, ContactPriority: 1, HasContactPriority: true},
			Tuple{ID: "d", Basic: BasicOpen, ContactPriority: 7, HasContactPriority: true}),
			[]XMPPPresence{{Resource: "a", Available: true, Priority: 64, HasPriority: true}, {Resource: "b", Available: true, HasPriority: true},
				{Resource: "c", Available: true, Priority: 127, HasPriority: true}, {Resource: "d", Available: true}}},
		{"resources from tuple ids", doc(nil, nil, open("ID-phone_201_2F_C3_BC_5Fx"), open("ID-bad_zz"), open("ID-ctl_00"), open("ID-short_4"), open("ID-"), open(""), open("balc\x7fny"), open("ID-\xff_41")),
			[]XMPPPresence{{Resource: "phone 1/ü_x", Available: true}, {Resource: "bad_zz", Available: true}, {Resource: "ctl_00", Available: true},
				{Resource: "short_4", Available: true}, {Resource: "", Available: true}, {Resource: "", Available: true},
				{Resource: "balc\uFFFDny", Available: true}, {Resource: "\uFFFD_41", Available: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ToXMPP(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ToXMPP =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestXMPPOverTheWire sends XMPP presence through FromXMPP, Marshal, Parse
// and ToXMPP, in both namespaces, and checks the XMPP side sees what was sent.
func TestXMPPOverTheWire(t *testing.T) {
	tests := []struct {
		name string
		in   []XMPPPresence
		want []XMPPPresence // nil: same as in
	}{
		{name: "each show", in: []XMPPPresence{
			{Resource: "a", Available: true},
			{Resource: "b", Available: true, Show: "away"},
			{Resource: "c", Available: true, Show: "chat"},
			{Resource: "d", Available: true, Show: "dnd"},
			{Resource: "e", Available: true, Show: "xa"},
		}},
		{name: "status with language and markup", in: []XMPPPresence{
			{Resource: "balcony", Available: true, Status: "Wherefore art thou <Romeo> & why?", StatusLang: "en", Priority: 42, HasPriority: true},
		}},
		{name: "unavailable with status", in: []XMPPPresence{
			{Resource: "balcony", Status: "Asleep", Priority: 0, HasPriority: true},
		}},
		{name: "every priority survives", in: func() []XMPPPresence {
			var ps []XMPPPresence
			for p := 0; p <= 127; p++ {
				ps = append(ps, XMPPPresence{Resource: string(rune('A'+p%26)) + string(rune('a'+p/26)), Available: true, Priority: int8(p), HasPriority: true})
			}
			return ps
		}()},
		{name: "odd resources", in: []XMPPPresence{
			{Resource: "Gajim 1.9/Linux", Available: true},
			{Resource: "手机", Available: true},
			{Resource: "", Available: true},
		}},
		{
			name: "lossy parts: negative priority, show when unavailable, invalid show, padded status",
			in: []XMPPPresence{
				{Resource: "a", Available: true, Priority: -5, HasPriority: true},
				{Resource: "b", Show: "dnd"},
				{Resource: "c", Available: true, Show: "bogus"},
				{Resource: "d", Available: true, Status: "  hi  "},
			},
			want: []XMPPPresence{
				{Resource: "a", Available: true},
				{Resource: "b"},
				{Resource: "c", Available: true},
				{Resource: "d", Available: true, Status: "hi"},
			},
		},
	}
	for _, tt := range tests {
		for _, ns := range []string{NamespacePIDF, NamespaceCPIM} {
			t.Run(tt.name+"/"+ContentType(ns), func(t *testing.T) {
				d := FromXMPP(romeo, tt.in)
				d.Namespace = ns
				b, err := d.Marshal()
				if err != nil {
					t.Fatalf("Marshal: %v", err)
				}
				back, err := Parse(b, Limits{})
				if err != nil {
					t.Fatalf("Parse: %v\n%s", err, b)
				}
				want := tt.want
				if want == nil {
					want = tt.in
				}
				if got := ToXMPP(back); !reflect.DeepEqual(got, want) {
					t.Errorf("ToXMPP(Parse(Marshal(FromXMPP))) =\n%+v\nwant\n%+v\nbody:\n%s", got, want, b)
				}
				if back.Available() != d.Available() {
					t.Errorf("Available changed over the wire")
				}
			})
		}
	}
}

func TestTupleIDIsXMLName(t *testing.T) {
	tests := []struct{ resource, id, back string }{
		{"", "ID-", ""},
		{"a", "ID-a", "a"},
		{"phone 1", "ID-phone_201", "phone 1"},
		{"手机", "ID-_E6_89_8B_E6_9C_BA", "手机"},
		{"a_b", "ID-a_5Fb", "a_b"},
		{"-._", "ID--._5F", "-._"},
		// Control characters and invalid UTF-8 are not valid resources: the
		// escaped form is handed back instead of a broken resource.
		{"\x00\xff", "ID-_00_FF", "_00_FF"},
	}
	for _, tt := range tests {
		id := TupleIDFromResource(tt.resource)
		if id != tt.id || !isNCName(id) {
			t.Errorf("TupleIDFromResource(%q) = %q, want NCName %q", tt.resource, id, tt.id)
		}
		if got := ResourceFromTupleID(id); got != tt.back {
			t.Errorf("ResourceFromTupleID(%q) = %q, want %q", id, got, tt.back)
		}
	}
}
