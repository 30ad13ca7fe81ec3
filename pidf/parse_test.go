package pidf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return ts.UTC()
}

// wantDocs are the documents the testdata files must parse to.
func wantDocs(t testing.TB) map[string]*Document {
	return map[string]*Document{
		"draft-4.2-notify-open.xml": {
			Namespace: NamespaceCPIM,
			Entity:    "pres:juliet@thecapulets.example.com",
			Tuples: []Tuple{{
				ID: "balcony", Basic: BasicOpen,
				Timestamp: mustTime(t, "1597-02-14T01:00:00Z"),
			}},
		},
		"draft-4.2-notify-closed.xml": {
			Namespace: NamespaceCPIM,
			Entity:    "pres:juliet@thecapulets.example.com",
			Tuples: []Tuple{{
				ID: "balcony", Basic: BasicClosed,
				Timestamp: mustTime(t, "1597-02-14T01:20:00Z"),
			}},
		},
		"rfc3863-example.xml": {
			Namespace: NamespacePIDF,
			Entity:    "pres:someone@example.com",
			Tuples: []Tuple{{
				ID: "bs35r9", Basic: BasicOpen,
				Contact: "im:someone@mobilecarrier.net", ContactPriority: 0.8, HasContactPriority: true,
				Notes: []Note{
					{Lang: "en", Text: "Don't Disturb Please!"},
					{Lang: "fr", Text: "Ne derangez pas, s'il vous plait"},
				},
				Timestamp: mustTime(t, "2001-10-27T16:49:29Z"),
			}, {
				ID: "eg92n8", Basic: BasicOpen,
				Contact: "mailto:someone@example.com", ContactPriority: 1, HasContactPriority: true,
			}},
			Notes: []Note{{Text: "I'll be in Tokyo next week"}},
		},
		"rfc4480-example.xml": {
			Namespace: NamespacePIDF,
			Entity:    "pres:someone@example.com",
			Tuples: []Tuple{{
				ID: "bs35r9", Basic: BasicOpen,
				Contact: "im:someone@mobilecarrier.net", ContactPriority: 0.8, HasContactPriority: true,
				Notes: []Note{
					{Lang: "en", Text: "Don't Disturb Please!"},
					{Lang: "fr", Text: "Ne derangez pas, s'il vous plait"},
				},
				Timestamp: mustTime(t, "2005-10-27T16:49:29Z"),
			}, {
				ID: "ty4658", Basic: BasicOpen,
				Contact: "mailto:secretary@example.com", ContactPriority: 1, HasContactPriority: true,
			}, {
				ID: "eg92n8", Basic: BasicOpen,
				Contact: "mailto:someone@example.com", ContactPriority: 1, HasContactPriority: true,
			}},
			Notes: []Note{{Text: "I'll be in Tokyo next week"}},
			Person: &Person{
				ID:         "p1",
				Activities: []string{"away"},
				Notes:      []Note{{Text: "Far away"}, {Text: "Scoring 120"}},
			},
		},
		"baresip-publish-away.xml": {
			Namespace: NamespacePIDF,
			Entity:    "sip:alice@example.com",
			Tuples: []Tuple{{
				ID: "t4109", Basic: BasicOpen, Contact: "sip:alice@example.com",
			}},
			Person: &Person{ID: "p4159", Activities: []string{"away"}},
		},
	}
}

func TestParseTestdata(t *testing.T) {
	for name, want := range wantDocs(t) {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(readTestdata(t, name), Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
			}
			if !got.Equal(want) {
				t.Errorf("Equal reports a difference for identical documents")
			}
		})
	}
}

// TestParseToXMPPTestdata checks what an XMPP contact sees for each body.
func TestParseToXMPPTestdata(t *testing.T) {
	tests := []struct {
		file      string
		available bool
		want      []XMPPPresence
	}{
		{"draft-4.2-notify-open.xml", true, []XMPPPresence{{Resource: "balcony", Available: true}}},
		{"draft-4.2-notify-closed.xml", false, []XMPPPresence{{Resource: "balcony"}}},
		{"baresip-publish-away.xml", true, []XMPPPresence{{Resource: "t4109", Available: true, Show: "away"}}},
		{"rfc3863-example.xml", true, []XMPPPresence{
			{Resource: "bs35r9", Available: true, Status: "Don't Disturb Please!", StatusLang: "en", Priority: 102, HasPriority: true},
			{Resource: "eg92n8", Available: true, Status: "I'll be in Tokyo next week", Priority: 127, HasPriority: true},
		}},
		{"rfc4480-example.xml", true, []XMPPPresence{
			{Resource: "bs35r9", Available: true, Show: "away", Status: "Don't Disturb Please!", StatusLang: "en", Priority: 102, HasPriority: true},
			{Resource: "ty4658", Available: true, Show: "away", Status: "Far away", Priority: 127, HasPriority: true},
			{Resource: "eg92n8", Available: true, Show: "away", Status: "Far away", Priority: 127, HasPriority: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d, err := Parse(readTestdata(t, tt.file), Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := d.Available(); got != tt.available {
				t.Errorf("Available() = %v, want %v", got, tt.available)
			}
			if got := ToXMPP(d); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ToXMPP =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

const pidfHead = `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@example.com">`

func TestParseLenient(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Document
	}{
		{
			name: "BOM, comments, PIs, CDATA and whitespace",
			in: "\xEF\xBB\xBF<?xml version='1.0' encoding='utf-8'?>\n<!-- hi -->\n" + pidfHead +
				`<?app x?><tuple id="t"><status><basic> open </basic></status>` +
				`<note><![CDATA[a <b> & c]]><!-- x --> d</note></tuple></presence>` + "\n\n",
			want: &Document{Namespace: NamespacePIDF, Entity: "sip:a@example.com",
				Tuples: []Tuple{{ID: "t", Basic: BasicOpen, Notes: []Note{{Text: "a <b> & c d"}}}}},
		},
		{
			name: "prefixed PIDF namespace",
			in:   `<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" entity=" pres:x@y "><p:tuple id="a"><p:status><p:basic>closed</p:basic></p:status></p:tuple></p:presence>`,
			want: &Document{Namespace: NamespacePIDF, Entity: "pres:x@y",
				Tuples: []Tuple{{ID: "a", Basic: BasicClosed}}},
		},
		{
			name: "unknown extensions, foreign-namespace tuples and bad values ignored",
			in: pidfHead + `<x:wrap xmlns:x="urn:x"><tuple id="hidden"/></x:wrap>` +
				`<tuple xmlns="urn:other" id="other"/>` +
				`<tuple id="t"><status><basic>OPEN</basic><x:y xmlns:x="urn:x"/></status>` +
				`<contact priority="1.5">sip:c@d</contact><contact>sip:second@d</contact>` +
				`<timestamp>yesterday</timestamp><note/><note>  </note></tuple>` +
				`<tuple id="u"><contact priority="0x1p-2"/><status><basic>open</basic></status><status><basic>closed</basic></status></tuple>` +
				`<tuple id="v"><contact priority=" 0.12345 ">sip:v@d</contact></tuple></presence>`,
			want: &Document{Namespace: NamespacePIDF, Entity: "sip:a@example.com",
				Tuples: []Tuple{
					{ID: "t", Contact: "sip:c@d"},
					{ID: "u", Basic: BasicOpen},
					{ID: "v", Contact: "sip:v@d", ContactPriority: 0.123, HasContactPriority: true},
				}},
		},
		{
			name: "timestamp with offset is kept in UTC",
			in:   pidfHead + `<tuple id="t"><timestamp>2024-05-01T12:00:00.5+02:00</timestamp></tuple></presence>`,
			want: &Document{Namespace: NamespacePIDF, Entity: "sip:a@example.com",
				Tuples: []Tuple{{ID: "t", Timestamp: mustTime(t, "2024-05-01T10:00:00.5Z")}}},
		},
		{
			name: "show carried in jabber:client, invalid show dropped",
			in: pidfHead + `<tuple id="a"><status><basic>open</basic><show xmlns="jabber:client"> dnd </show></status></tuple>` +
				`<tuple id="b"><status><basic>open</basic><show xmlns="jabber:client">sleepy</show></status></tuple>` +
				`<tuple id="c"><status><basic>open</basic><show>away</show></status></tuple></presence>`,
			want: &Document{Namespace: NamespacePIDF, Entity: "sip:a@example.com",
				Tuples: []Tuple{{ID: "a", Basic: BasicOpen, Show: "dnd"}, {ID: "b", Basic: BasicOpen}, {ID: "c", Basic: BasicOpen}}},
		},
		{
			name: "only the first person, unknown activities kept by name",
			in: `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" xmlns:e="urn:example" entity="sip:a@example.com">` +
				`<dm:person id="p1"><r:activities><r:on-the-phone/><e:juggling/><r:other>knitting</r:other></r:activities>` +
				`<dm:note xml:lang="de">Telefoniere</dm:note><r:activities><r:meal/></r:activities></dm:person>` +
				`<dm:person id="p2"><r:activities><r:sleeping/></r:activities></dm:person></presence>`,
			want: &Document{Namespace: NamespacePIDF, Entity: "sip:a@example.com",
				Person: &Person{ID: "p1", Activities: []string{"on-the-phone", "juggling", "other", "meal"},
					Notes: []Note{{Lang: "de", Text: "Telefoniere"}}}},
		},
		{
			name: "depth exactly at the limit",
			in:   pidfHead + strings.Repeat("<x>", 31) + strings.Repeat("</x>", 31) + `</presence>`,
			want: &Document{Namespace: NamespacePIDF, Entity: "sip:a@example.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tooBig := pidfHead + `<note>` + strings.Repeat("a", DefaultMaxBytes) + `</note></presence>`
	tests := []struct {
		name string
		in   string
		lim  Limits
		want error
	}{
		{"billion laughs", string(readTestdata(t, "billion-laughs.xml")), Limits{}, ErrDTD},
		{"external entity", `<?xml version="1.0"?><!DOCTYPE presence SYSTEM "file:///etc/passwd">` + pidfHead + `</presence>`, Limits{}, ErrDTD},
		{"DOCTYPE without subset", `<!DOCTYPE presence>` + pidfHead + `</presence>`, Limits{}, ErrDTD},
		{"undeclared entity", pidfHead + `<note>&lol;</note></presence>`, Limits{}, ErrMalformed},
		{"undeclared entity in attribute", `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="&x;"/>`, Limits{}, ErrMalformed},
		{"too large by default", tooBig, Limits{}, ErrTooLarge},
		{"too large by limit", pidfHead + `</presence>`, Limits{MaxBytes: 20}, ErrTooLarge},
		{"too deep by default", pidfHead + strings.Repeat("<x>", 32) + strings.Repeat("</x>", 32) + `</presence>`, Limits{}, ErrTooDeep},
		{"too deep by limit", pidfHead + `<tuple id="t"><status/></tuple></presence>`, Limits{MaxDepth: 2}, ErrTooDeep},
		{"deep and unclosed", pidfHead + strings.Repeat("<x>", 10000), Limits{}, ErrTooDeep},
		{"empty", ``, Limits{}, ErrMalformed},
		{"whitespace only", " \n\t ", Limits{}, ErrMalformed},
		{"declaration only", `<?xml version="1.0"?>`, Limits{}, ErrMalformed},
		{"truncated", pidfHead + `<tuple id="t"><status>`, Limits{}, ErrMalformed},
		{"mismatched tags", pidfHead + `<tuple></status></presence>`, Limits{}, ErrMalformed},
		{"two roots", pidfHead + `</presence>` + pidfHead + `</presence>`, Limits{}, ErrMalformed},
		{"text after root", pidfHead + `</presence>junk`, Limits{}, ErrMalformed},
		{"latin-1 declared", `<?xml version="1.0" encoding="ISO-8859-1"?>` + pidfHead + `</presence>`, Limits{}, ErrMalformed},
		{"invalid UTF-8", pidfHead + "<note>\xff\xfe</note></presence>", Limits{}, ErrMalformed},
		{"control character reference", pidfHead + "<note>&#1;</note></presence>", Limits{}, ErrMalformed},
		{"missing entity", `<presence xmlns="urn:ietf:params:xml:ns:pidf"/>`, Limits{}, ErrMalformed},
		{"blank entity", `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity=" "/>`, Limits{}, ErrMalformed},
		{"entity in another namespace", `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:x" x:entity="sip:a@b"/>`, Limits{}, ErrMalformed},
		{"XMPP presence", `<presence xmlns="jabber:client" from="a@b"/>`, Limits{}, ErrNotPIDF},
		{"no namespace", `<presence entity="sip:a@b"/>`, Limits{}, ErrNotPIDF},
		{"RPID namespace root", `<presence xmlns="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@b"/>`, Limits{}, ErrNotPIDF},
		{"other root", `<tuple xmlns="urn:ietf:params:xml:ns:pidf" id="t"/>`, Limits{}, ErrNotPIDF},
		{"watcherinfo", `<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full"/>`, Limits{}, ErrNotPIDF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.in), tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v (doc %+v)", err, tt.want, d)
			}
			if d != nil {
				t.Errorf("Parse returned a document with an error: %+v", d)
			}
			for _, other := range []error{ErrTooLarge, ErrTooDeep, ErrDTD, ErrNotPIDF, ErrMalformed} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %v also matches %v", err, other)
				}
			}
			if !strings.HasPrefix(err.Error(), "pidf: parse: ") {
				t.Errorf("error %q lacks the package context", err)
			}
		})
	}
}

// TestEntityBombIsCheap makes sure the bomb is refused before any
// expansion: refusing a bomb grown to near the size limit must allocate about
// as little as parsing a plain document (expanding &lol9; alone would take
// 3 GB). Memory, unlike time, does not depend on the machine's load.
func TestEntityBombIsCheap(t *testing.T) {
	bomb := readTestdata(t, "billion-laughs.xml")
	big := bytes.Replace(bomb, []byte("]>"), append(bytes.Repeat([]byte(` <!ENTITY pad "&lol9;&lol9;">`+"\n"), 1500), "]>"...), 1)
	if len(big) > DefaultMaxBytes {
		t.Fatalf("test bomb is %d bytes, over the limit", len(big))
	}
	var err error
	allocated := func(in []byte) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = Parse(in, Limits{})
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	n := allocated(big)
	t.Logf("refusing a %d-byte bomb allocated %d bytes", len(big), n)
	if !errors.Is(err, ErrDTD) || n > 1<<20 {
		t.Errorf("refusing a %d-byte bomb: error %v, %d bytes allocated; want ErrDTD and under 1 MiB", len(big), err, n)
	}
	if n := allocated(bomb); !errors.Is(err, ErrDTD) || n > 64<<10 {
		t.Errorf("refusing the plain bomb: error %v, %d bytes allocated; want ErrDTD and under 64 KiB", err, n)
	}
}

func TestContentTypes(t *testing.T) {
	tests := []struct {
		ct     string
		wantNS string
		wantOK bool
	}{
		{"application/pidf+xml", NamespacePIDF, true},
		{"Application/PIDF+XML; charset=UTF-8", NamespacePIDF, true},
		{" application/cpim-pidf+xml ", NamespaceCPIM, true},
		{"application/cpim-pidf+xml;q=1", NamespaceCPIM, true},
		{"application/xpidf+xml", "", false},
		{"application/pidf-diff+xml", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		ns, ok := NamespaceForContentType(tt.ct)
		if ns != tt.wantNS || ok != tt.wantOK {
			t.Errorf("NamespaceForContentType(%q) = %q, %v; want %q, %v", tt.ct, ns, ok, tt.wantNS, tt.wantOK)
		}
		if ok {
			back, _ := NamespaceForContentType(ContentType(ns))
			if back != ns {
				t.Errorf("ContentType(%q) = %q does not map back", ns, ContentType(ns))
			}
		}
	}
	for ns, want := range map[string]string{
		NamespacePIDF: "application/pidf+xml", NamespaceCPIM: "application/cpim-pidf+xml",
		"": "application/pidf+xml", NamespaceRPID: "",
	} {
		if got := ContentType(ns); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", ns, got, want)
		}
	}
}
