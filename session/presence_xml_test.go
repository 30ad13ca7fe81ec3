package session

import (
	"bytes"
	"testing"

	"github.com/umpp/umpp/pidf"
)

func TestParsePresence(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want pidf.XMPPPresence
		from string
		ok   bool
	}{
		{"available", `<presence from="romeo@montague.example.net/orchard"/>`,
			pidf.XMPPPresence{Resource: "orchard", Available: true}, "romeo@montague.example.net/orchard", true},
		{"show status priority", `<presence xmlns="jabber:client" from="juliet@capulets.example.com/balcony" xml:lang="en"><show>dnd</show><status>Busy</status><status xml:lang="it">Occupata</status><priority>5</priority></presence>`,
			pidf.XMPPPresence{Resource: "balcony", Available: true, Show: "dnd", Status: "Busy", StatusLang: "en", Priority: 5, HasPriority: true}, "juliet@capulets.example.com/balcony", true},
		{"unavailable", `<presence type="unavailable" from="a@b/c"><status>Gone</status></presence>`,
			pidf.XMPPPresence{Resource: "c", Status: "Gone"}, "a@b/c", true},
		{"priority out of range dropped", `<presence><priority>300</priority></presence>`,
			pidf.XMPPPresence{Available: true}, "", true},
		{"other namespace children ignored", `<presence><c xmlns="http://jabber.org/protocol/caps" node="x"/><x:show xmlns:x="urn:other">away</x:show></presence>`,
			pidf.XMPPPresence{Available: true}, "", true},
		{"subscription type is not availability", `<presence type="subscribe" to="a@b"/>`, pidf.XMPPPresence{}, "", false},
		{"not presence", `<message><body>hi</body></message>`, pidf.XMPPPresence{}, "", false},
		{"DTD refused", `<!DOCTYPE presence [<!ENTITY a "b">]><presence><status>&a;</status></presence>`, pidf.XMPPPresence{}, "", false},
		{"malformed", `<presence><status>`, pidf.XMPPPresence{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, from, ok := parsePresence([]byte(tt.raw))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if got != tt.want || from != tt.from {
				t.Errorf("got %+v from %q, want %+v from %q", got, from, tt.want, tt.from)
			}
		})
	}
}

func TestPresenceStanza(t *testing.T) {
	tests := []struct {
		p    pidf.XMPPPresence
		want string
	}{
		{pidf.XMPPPresence{Available: true}, `<presence from="a@b/r" to="c@d"/>`},
		{pidf.XMPPPresence{}, `<presence from="a@b/r" to="c@d" type="unavailable"></presence>`},
		{pidf.XMPPPresence{Available: true, Show: "away", Status: "Out <back> soon & more", StatusLang: "en", Priority: -1, HasPriority: true},
			`<presence from="a@b/r" to="c@d"><show>away</show><status xml:lang="en">Out &lt;back&gt; soon &amp; more</status><priority>-1</priority></presence>`},
		{pidf.XMPPPresence{Available: true, Show: "bogus"}, `<presence from="a@b/r" to="c@d"></presence>`},
	}
	for _, tt := range tests {
		if got := string(presenceStanza("a@b/r", "c@d", tt.p)); got != tt.want {
			t.Errorf("presenceStanza(%+v)\n got %s\nwant %s", tt.p, got, tt.want)
		}
	}
}

func TestRootNameAndNamespace(t *testing.T) {
	for raw, want := range map[string]string{
		`<message to="a@b"/>`:                                "message",
		`<?xml version="1.0"?><presence/>`:                   "presence",
		`<!-- c --><iq type="get"></iq>`:                     "iq",
		`<stream:message xmlns:stream="x"></stream:message>`: "message",
		`no xml`: "",
		`<`:      "",
	} {
		if got := rootName([]byte(raw)); got != want {
			t.Errorf("rootName(%q) = %q, want %q", raw, got, want)
		}
	}
	for raw, want := range map[string]string{
		`<message to="a@b"><body>x</body></message>`: `<message xmlns="jabber:client" to="a@b"><body>x</body></message>`,
		`<message>x</message>`:                       `<message xmlns="jabber:client">x</message>`,
		`<message xmlns="jabber:server" to="a@b"/>`:  `<message xmlns="jabber:server" to="a@b"/>`,
		`<message/>`: `<message xmlns="jabber:client"/>`,
	} {
		if got := string(inClientNS([]byte(raw))); got != want {
			t.Errorf("inClientNS(%q) = %q, want %q", raw, got, want)
		}
	}
}

// FuzzParsePresence: presence from the network never panics, and what
// it reads survives writing and reading again.
func FuzzParsePresence(f *testing.F) {
	for _, s := range []string{
		`<presence from="a@b/c"><show>xa</show><status xml:lang="fr">Parti</status><priority>-5</priority></presence>`,
		`<presence type="unavailable"/>`,
		`<presence><status>&lt;&amp;</status></presence>`,
		`<message/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, _, ok := parsePresence(raw)
		_ = rootName(raw)
		_ = inClientNS(raw)
		if !ok {
			return
		}
		switch p.Show {
		case "", "away", "chat", "dnd", "xa":
		default:
			p.Show = "" // not written back
		}
		if !p.Available {
			p.Show = ""
		}
		b := presenceStanza("", "", p)
		q, _, ok := parsePresence(b)
		if !ok {
			t.Fatalf("cannot read back %s", b)
		}
		p.Resource, q.Resource = "", ""
		if bytes.ContainsRune([]byte(p.Status), 0xFFFD) || !validXMLText(p.Status) {
			return
		}
		if p.StatusLang != "" && p.Status == "" {
			p.StatusLang = ""
		}
		if q != p {
			t.Fatalf("round trip of %q:\n got %+v\nwant %+v\nvia %s", raw, q, p, b)
		}
	})
}

func validXMLText(s string) bool {
	for _, r := range s {
		if !msgXMLChar(r) {
			return false
		}
	}
	return true
}
