package session

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/umpp/umpp/addressing"
)

func msgTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "message", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

func mustJID(t testing.TB, s string) addressing.Address {
	t.Helper()
	a, err := addressing.ParseJID(s)
	if err != nil {
		t.Fatalf("ParseJID(%q): %v", s, err)
	}
	return a
}

func TestParseXMPPMessageTestdata(t *testing.T) {
	tests := []struct {
		file string
		want Message
	}{
		{"xep0085-composing.xml", Message{
			From: mustJID(t, "bernardo@shakespeare.lit/pda"), To: mustJID(t, "francisco@shakespeare.lit/elsinore"),
			Type: MessageChat, ID: "ws4bs7q5", ChatState: ChatComposing,
		}},
		{"xep0085-active-body.xml", Message{
			From: mustJID(t, "bernardo@shakespeare.lit/pda"), To: mustJID(t, "francisco@shakespeare.lit/elsinore"),
			Type: MessageChat, ID: "7nbf3dz1", Body: "Who's there?", ChatState: ChatActive,
		}},
		{"xep0184-request.xml", Message{
			From: mustJID(t, "northumberland@shakespeare.lit/westminster"), To: mustJID(t, "kingrichard@royalty.england.lit/throne"),
			Type: MessageNormal, ID: "richard2-4.1.247", Body: "My lord, dispatch; read o'er these articles.", ReceiptRequest: true,
		}},
		{"xep0184-received.xml", Message{
			From: mustJID(t, "kingrichard@royalty.england.lit/throne"), To: mustJID(t, "northumberland@shakespeare.lit/westminster"),
			Type: MessageNormal, ID: "bi29sg183b4v", ReceiptFor: "richard2-4.1.247",
		}},
		{"rfc6121-thread.xml", Message{
			From: mustJID(t, "juliet@example.com/balcony"), To: mustJID(t, "romeo@example.net"),
			Type: MessageChat, ID: "ktx72v49", Lang: "en", Subject: "I implore you!",
			Body: "Art thou not Romeo, and a Montague?", Thread: "e0ffe42b28561960c6b12b944a092794b9683a38",
		}},
		{"rfc6121-multilang.xml", Message{
			From: mustJID(t, "juliet@example.com/balcony"), To: mustJID(t, "romeo@example.net"),
			Type: MessageChat, ID: "z94nb37h", Lang: "en", Body: "Wherefore art thou, Romeo?",
			Extra: []string{`<body xml:lang="de">Wo bist du, Romeo?</body>`},
		}},
		{"xhtml-im-extra.xml", Message{
			From: mustJID(t, "juliet@example.com/balcony"), To: mustJID(t, "romeo@example.net/orchard"),
			Type: MessageChat, ID: "h1", Body: "Wherefore art thou, Romeo?",
			Extra: []string{
				`<html xmlns="http://jabber.org/protocol/xhtml-im"><body xmlns="http://www.w3.org/1999/xhtml"><p style="font-weight:bold">Wherefore  art thou, Romeo?</p></body></html>`,
				`<delay xmlns="urn:xmpp:delay" from="capulet.lit" stamp="2002-09-10T23:08:25Z">Offline Storage</delay>`,
			},
		}},
		{"delay-plain.xml", Message{
			From: mustJID(t, "romeo@montague.net/orchard"), To: mustJID(t, "juliet@capulet.com"),
			Type: MessageChat, Body: "O blessed, blessed night!",
			Stamp: time.Date(2002, 9, 11, 6, 41, 7, 123e6, time.UTC),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseXMPPMessage(msgTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("ParseXMPPMessage: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
			again, err := ParseXMPPMessage(got.XMPP(NSJabberClient))
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, got.XMPP(NSJabberClient))
			}
			if !reflect.DeepEqual(again, got) {
				t.Errorf("round trip changed the message:\n got %#v\nwant %#v", again, got)
			}
		})
	}
}

func TestMessageXMPP(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		ns   string
		want string
	}{
		{"empty", Message{}, "", `<message></message>`},
		{"all fields", Message{
			From: mustJID(t, "romeo@montague.example.net/orchard"), To: mustJID(t, "juliet@capulets.example.com"),
			Type: MessageChat, ID: "m1", Thread: "t1", Lang: "en", Subject: "s", Body: "a < b & \"c\"\r\n",
			ChatState: ChatActive, ReceiptRequest: true, ReceiptFor: "m0",
			Stamp: time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC), Extra: []string{`<x xmlns="urn:x"/>`},
		}, NSJabberServer,
			`<message xmlns="jabber:server" from="romeo@montague.example.net/orchard" to="juliet@capulets.example.com" type="chat" id="m1" xml:lang="en">` +
				`<subject>s</subject><body>a &lt; b &amp; "c"&#xD;` + "\n" + `</body><thread>t1</thread>` +
				`<active xmlns="http://jabber.org/protocol/chatstates"/><request xmlns="urn:xmpp:receipts"/>` +
				`<received xmlns="urn:xmpp:receipts" id="m0"/><delay xmlns="urn:xmpp:delay" stamp="2026-11-24T05:00:00Z"/>` +
				`<x xmlns="urn:x"/></message>`},
		{"normal type omitted, attr escaping", Message{Type: MessageNormal, ID: "a\"b\n<"}, NSJabberClient,
			`<message xmlns="jabber:client" id="a&quot;b&#xA;&lt;"></message>`},
		{"invalid characters replaced", Message{Body: "nul\x00 bad\xff esc\x1b"}, NSJabberClient,
			"<message xmlns=\"jabber:client\"><body>nul\uFFFD bad\uFFFD esc\uFFFD</body></message>"},
		{"unknown chat state not written", Message{ChatState: "typing"}, NSJabberClient,
			`<message xmlns="jabber:client"></message>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.m.XMPP(tt.ns)); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestParseXMPPMessageCases(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Message
	}{
		{"unknown type is normal", `<message xmlns="jabber:client" type="bogus"/>`, Message{Type: MessageNormal}},
		{"prefixed stanza", `<c:message xmlns:c="jabber:client" type="headline"><c:body>hi</c:body></c:message>`,
			Message{Type: MessageHeadline, Body: "hi"}},
		{"empty body dropped, next taken", `<message xmlns="jabber:client"><body/><body>x</body></message>`,
			Message{Type: MessageNormal, Body: "x"}},
		{"duplicate body kept in Extra", `<message xmlns="jabber:client"><body>x</body><body>y</body></message>`,
			Message{Type: MessageNormal, Body: "x", Extra: []string{"<body>y</body>"}}},
		{"body in message language", `<message xmlns="jabber:client" xml:lang="fr"><body xml:lang="FR">oui</body></message>`,
			Message{Type: MessageNormal, Lang: "fr", Body: "oui"}},
		{"body text with child ignored", `<message xmlns="jabber:client"><body>a<b>x</b>c</body></message>`,
			Message{Type: MessageNormal, Body: "ac"}},
		{"entities and CDATA", `<message xmlns="jabber:client"><body>&lt;&amp;&#x41;<![CDATA[<&>]]></body></message>`,
			Message{Type: MessageNormal, Body: "<&A<&>"}},
		{"thread trimmed", `<message xmlns="jabber:client"><thread> t </thread></message>`,
			Message{Type: MessageNormal, Thread: "t"}},
		{"first chat state wins", `<message xmlns="jabber:client"><paused xmlns="http://jabber.org/protocol/chatstates"/><gone xmlns="http://jabber.org/protocol/chatstates"/></message>`,
			Message{Type: MessageNormal, ChatState: ChatPaused}},
		{"old receipt without id", `<message xmlns="jabber:client" id="r1"><received xmlns="urn:xmpp:receipts"/></message>`,
			Message{Type: MessageNormal, ID: "r1", ReceiptFor: "r1"}},
		{"error stanza kept in Extra", `<message xmlns="jabber:server" type="error" id="e"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
			Message{Type: MessageError, ID: "e", Extra: []string{`<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></item-not-found></error>`}}},
		{"namespaced attribute in Extra", `<message xmlns="jabber:client" xmlns:a="urn:a"><x xmlns="urn:x" a:k="v" xml:lang="en"/></message>`,
			Message{Type: MessageNormal, Extra: []string{`<x xmlns="urn:x" xmlns:ns0="urn:a" ns0:k="v" xml:lang="en"></x>`}}},
		{"forwarded and explicit stanza namespace keep their xmlns", `<message xmlns="jabber:client"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client"><body>x</body></message></forwarded><y xmlns="jabber:client"/></message>`,
			Message{Type: MessageNormal, Extra: []string{`<forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client"><body>x</body></message></forwarded>`, `<y xmlns="jabber:client"></y>`}}},
		{"prefixed root, unqualified child", `<c:message xmlns:c="jabber:client"><body>x</body></c:message>`,
			Message{Type: MessageNormal, Extra: []string{`<body xmlns="">x</body>`}}},
		{"no-namespace child", `<message xmlns="jabber:client"><x xmlns=""/></message>`,
			Message{Type: MessageNormal, Extra: []string{`<x xmlns=""></x>`}}},
		{"delay from far past stays Extra", `<message xmlns="jabber:client"><delay xmlns="urn:xmpp:delay" stamp="0000-01-01T00:00:00+01:00"/></message>`,
			Message{Type: MessageNormal, Extra: []string{`<delay xmlns="urn:xmpp:delay" stamp="0000-01-01T00:00:00+01:00"></delay>`}}},
		{"BOM-less declaration and comment", `<?xml version="1.0" encoding="UTF-8"?><!-- c --><message xmlns="jabber:client"><body>x</body></message>`,
			Message{Type: MessageNormal, Body: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseXMPPMessage([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseXMPPMessage: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
			again, err := ParseXMPPMessage(got.XMPP(NSJabberServer))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip: %v\n got %#v\nwant %#v", err, again, got)
			}
		})
	}
}

func TestParseXMPPMessageHostile(t *testing.T) {
	deep := strings.Repeat("<x>", MaxMessageDepth) + strings.Repeat("</x>", MaxMessageDepth)
	huge := `<message xmlns="jabber:client"><body>` + strings.Repeat("a", MaxMessageBytes) + `</body></message>`
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"billion laughs", msgTestdata(t, "billion-laughs.xml"), ErrMessageDTD},
		{"internal subset", []byte(`<!DOCTYPE message [<!ENTITY e SYSTEM "file:///etc/passwd">]><message xmlns="jabber:client"><body>&e;</body></message>`), ErrMessageDTD},
		{"undeclared entity", []byte(`<message xmlns="jabber:client"><body>&e;</body></message>`), ErrMalformedMessage},
		{"too large", []byte(huge), ErrMessageTooLarge},
		{"too deep", []byte(`<message xmlns="jabber:client">` + deep + `</message>`), ErrMessageTooDeep},
		{"not a message", []byte(`<presence xmlns="jabber:client"/>`), ErrNotMessage},
		{"wrong namespace", []byte(`<message xmlns="urn:x"/>`), ErrNotMessage},
		{"no namespace", []byte(`<message/>`), ErrNotMessage},
		{"unbound prefix", []byte(`<message xmlns="jabber:client"><p:x/></message>`), ErrMalformedMessage},
		{"unbound attribute prefix", []byte(`<message xmlns="jabber:client" p:a="1"/>`), ErrMalformedMessage},
		{"mismatched tags", []byte(`<message xmlns="jabber:client"><body></bodyx></message>`), ErrMalformedMessage},
		{"unclosed", []byte(`<message xmlns="jabber:client"><body>x</body>`), ErrMalformedMessage},
		{"two roots", []byte(`<message xmlns="jabber:client"/><message xmlns="jabber:client"/>`), ErrMalformedMessage},
		{"trailing text", []byte(`<message xmlns="jabber:client"/>junk`), ErrMalformedMessage},
		{"latin-1", []byte(`<?xml version="1.0" encoding="ISO-8859-1"?><message xmlns="jabber:client"/>`), ErrMalformedMessage},
		{"empty", nil, ErrMalformedMessage},
		{"bad from", []byte(`<message xmlns="jabber:client" from="@@"/>`), addressing.ErrMalformed},
		{"duplicate attribute", []byte(`<message xmlns="jabber:client" id="a" id="b"/>`), ErrMalformedMessage},
		{"NUL char ref", []byte(`<message xmlns="jabber:client"><body>&#0;</body></message>`), ErrMalformedMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseXMPPMessage(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "session: xmpp message: ") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
}

func TestXMPPStableAcrossNamespaces(t *testing.T) {
	// A child in the stanza namespace follows the namespace it is written in.
	m, err := ParseXMPPMessage([]byte(`<message xmlns="jabber:server" xml:lang="en"><body xml:lang="de">x</body></message>`))
	if err != nil {
		t.Fatal(err)
	}
	out := m.XMPP(NSJabberClient)
	if !bytes.Contains(out, []byte(`<body xml:lang="de">x</body>`)) || bytes.Contains(out, []byte("jabber:server")) {
		t.Errorf("XMPP(jabber:client) = %s", out)
	}
}
