package pidf

import (
	"strconv"
	"testing"
	"time"

	"github.com/beevik/etree"
)

func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"draft-4.2-notify-open.xml", "baresip-publish-away.xml", "rfc4480-example.xml"} {
		in := readTestdata(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := Parse(in, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchDocs are typical outgoing NOTIFY bodies.
func benchDocs() map[string]*Document {
	return map[string]*Document{
		"draft-open": {Namespace: NamespaceCPIM, Entity: "pres:juliet@thecapulets.example.com",
			Tuples: []Tuple{{ID: "balcony", Basic: BasicOpen, Timestamp: time.Date(1597, 2, 14, 1, 0, 0, 0, time.UTC)}}},
		"xmpp-3-resources": FromXMPP("pres:romeo@montague.example.net", []XMPPPresence{
			{Resource: "orchard", Available: true, Show: "away", Status: "Under the balcony", StatusLang: "en", Priority: 5, HasPriority: true},
			{Resource: "phone", Available: true, Show: "dnd", Priority: 1, HasPriority: true},
			{Resource: "desk", Status: "Gone & back later"},
		}),
	}
}

func BenchmarkMarshal(b *testing.B) {
	for name, d := range benchDocs() {
		b.Run(name+"/bytes", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/etree", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := marshalEtree(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMarshalEtreeAgrees keeps the benchmark's etree writer honest: it must
// produce a document that parses to the same thing as Marshal's.
func TestMarshalEtreeAgrees(t *testing.T) {
	for name, d := range benchDocs() {
		out, err := marshalEtree(d)
		if err != nil {
			t.Fatalf("%s: marshalEtree: %v", name, err)
		}
		back, err := Parse(out, Limits{})
		if err != nil {
			t.Fatalf("%s: Parse(marshalEtree): %v\n%s", name, err, out)
		}
		if !back.Equal(d) {
			t.Errorf("%s: etree output parses to %+v, want %+v", name, back, d)
		}
	}
}

// marshalEtree is the tree-building alternative to Marshal, kept only to
// measure it against the byte builder.
func marshalEtree(d *Document) ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("presence")
	ns := d.Namespace
	if ns == "" {
		ns = NamespacePIDF
	}
	root.CreateAttr("xmlns", ns)
	if d.Person != nil {
		root.CreateAttr("xmlns:dm", NamespaceDataModel)
		root.CreateAttr("xmlns:rpid", NamespaceRPID)
	}
	root.CreateAttr("entity", d.Entity)
	note := func(parent *etree.Element, tag string, n Note) {
		e := parent.CreateElement(tag)
		if n.Lang != "" {
			e.CreateAttr("xml:lang", n.Lang)
		}
		e.SetText(n.Text)
	}
	for _, t := range d.Tuples {
		te := root.CreateElement("tuple")
		te.CreateAttr("id", t.ID)
		st := te.CreateElement("status")
		if t.Basic != "" {
			st.CreateElement("basic").SetText(t.Basic)
		}
		if t.Show != "" {
			sh := st.CreateElement("show")
			sh.CreateAttr("xmlns", NamespaceJabberClient)
			sh.SetText(t.Show)
		}
		if t.Contact != "" || t.HasContactPriority {
			c := te.CreateElement("contact")
			if t.HasContactPriority {
				c.CreateAttr("priority", strconv.FormatFloat(roundQ(t.ContactPriority), 'f', -1, 64))
			}
			c.SetText(t.Contact)
		}
		for _, n := range t.Notes {
			note(te, "note", n)
		}
		if !t.Timestamp.IsZero() {
			te.CreateElement("timestamp").SetText(t.Timestamp.UTC().Format(time.RFC3339Nano))
		}
	}
	for _, n := range d.Notes {
		note(root, "note", n)
	}
	if p := d.Person; p != nil {
		pe := root.CreateElement("dm:person")
		if p.ID != "" {
			pe.CreateAttr("id", p.ID)
		}
		if len(p.Activities) > 0 {
			ae := pe.CreateElement("rpid:activities")
			for _, a := range p.Activities {
				ae.CreateElement("rpid:" + a)
			}
		}
		for _, n := range p.Notes {
			note(pe, "dm:note", n)
		}
	}
	return doc.WriteToBytes()
}
