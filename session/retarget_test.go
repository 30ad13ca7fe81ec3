package session

import (
	"slices"
	"testing"
)

func TestRetarget(t *testing.T) {
	const from, to, thread = "romeo@montague.example.net/orchard", "juliet@capulets.example.com/balcony", "T1"
	tests := []struct {
		name, raw, want string
	}{
		{"adds thread", `<message to="juliet@capulets.example.com" type="chat" id="a"><body>hi</body></message>`,
			`<message type="chat" id="a" from="` + from + `" to="` + to + `"><body>hi</body><thread>T1</thread></message>`},
		{"replaces thread", `<message xmlns="jabber:client" from="romeo@montague.example.net/orchard" to="juliet@capulets.example.com"><thread parent="p">old</thread><body>x</body></message>`,
			`<message xmlns="jabber:client" from="` + from + `" to="` + to + `"><thread>T1</thread><body>x</body></message>`},
		{"nested thread is not the thread", `<message to='x@y'><x xmlns="urn:ext"><thread>inner</thread></x></message>`,
			`<message from="` + from + `" to="` + to + `"><x xmlns="urn:ext"><thread>inner</thread></x><thread>T1</thread></message>`},
		{"self-closing message", `<message to="x@y"/>`, `<message from="` + from + `" to="` + to + `"><thread>T1</thread></message>`},
		{"CDATA with markup", `<message to="x@y"><body><![CDATA[</message><thread>]]></body></message>`,
			`<message from="` + from + `" to="` + to + `"><body><![CDATA[</message><thread>]]></body><thread>T1</thread></message>`},
		{"attribute with >", `<message to="x@y" id="a>b"><body>x</body></message>`,
			`<message id="a>b" from="` + from + `" to="` + to + `"><body>x</body><thread>T1</thread></message>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := retarget([]byte(tt.raw), from, to, thread)
			if !ok || string(got) != tt.want {
				t.Errorf("retarget = %v\n got %s\nwant %s", ok, got, tt.want)
			}
		})
	}
	for _, raw := range []string{
		`<presence/>`, `<message`, `<message to="x@y"><body>x</body>`, `<message to="x@y"><!-- c --></message>`,
		`<messagex/>`, `<message to=x@y></message>`, `<message to="x@y"><body>x</message>`,
	} {
		if got, ok := retarget([]byte(raw), from, to, thread); ok {
			t.Errorf("retarget(%q) = %s, want the slow path", raw, got)
		}
	}
}

// FuzzRetarget: the fast path agrees with parsing and serializing.
func FuzzRetarget(f *testing.F) {
	for _, s := range []string{
		`<message xmlns="jabber:client" to="juliet@capulets.example.com" type="chat" id="a"><body>hi &amp; bye</body><thread>x</thread><request xmlns="urn:xmpp:receipts"/></message>`,
		`<message to="a@b"><subject>s</subject><body xml:lang="fr">b</body></message>`,
		`<message to="a@b"/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		const from, to, thread = "romeo@montague.example.net/orchard", "juliet@capulets.example.com/balcony", "T1"
		out, ok := retarget(raw, from, to, thread)
		if !ok {
			return
		}
		want, err := ParseXMPPMessage(inClientNS(raw))
		if err != nil {
			return // not a message the XMPP host would hand over
		}
		got, err := ParseXMPPMessage(inClientNS(out))
		if err != nil {
			t.Fatalf("fast path wrote what does not parse: %v\n in %q\nout %q", err, raw, out)
		}
		if got.From.String() != from || got.To.String() != to || got.Thread != thread {
			t.Fatalf("from %s to %s thread %q\nout %q", got.From, got.To, got.Thread, out)
		}
		if got.Body != want.Body || got.Subject != want.Subject || got.Type != want.Type || got.ID != want.ID ||
			got.ChatState != want.ChatState || got.ReceiptRequest != want.ReceiptRequest || !slices.Equal(got.Extra, want.Extra) {
			t.Fatalf("content changed:\n in %q\nout %q\n got %+v\nwant %+v", raw, out, got, want)
		}
	})
}
