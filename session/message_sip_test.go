package session

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/umpp/umpp/addressing"
)

// parseSIPFile reads a SIP MESSAGE from testdata into a SIPMessage, as the
// SIP adapter would (compact header forms included; the body is everything
// after the blank line).
func parseSIPFile(t testing.TB, name string) SIPMessage {
	t.Helper()
	b := msgTestdata(t, name)
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("%s: no blank line", name)
	}
	uri := func(v string) addressing.Address {
		if lt := strings.IndexByte(v, '<'); lt >= 0 {
			v = v[lt+1 : strings.IndexByte(v, '>')]
		} else if i := strings.Index(v, ";tag="); i >= 0 {
			v = v[:i]
		}
		a, _, err := addressing.Parse(v)
		if err != nil {
			t.Fatalf("%s: address %q: %v", name, v, err)
		}
		return a
	}
	var s SIPMessage
	for _, l := range strings.Split(string(head), "\r\n")[1:] {
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "from", "f":
			s.From = uri(v)
		case "to", "t":
			s.To = uri(v)
		case "call-id", "i":
			s.CallID = v
		case "content-type", "c":
			s.ContentType = v
		case "content-language":
			s.ContentLanguage = v
		case "subject", "s":
			s.Subject = v
		}
	}
	s.Body = body
	return s
}

func TestFromSIPMessageTestdata(t *testing.T) {
	tests := []struct {
		file string
		want Message
	}{
		// RFC 7572 §5: Call-ID -> thread, GRUU -> resource.
		{"rfc7572-message.sip", Message{
			From: mustJID(t, "romeo@example.net/dr4hcr0st3lup4c"), To: mustJID(t, "juliet@example.com"),
			Type: MessageChat, Thread: "5A37A65D-304B-470A-B718-3F3E6770ACAF", Lang: "en", Subject: "Hi",
			Body: "Art thou not Romeo, and a Montague?",
		}},
		// RFC 3994 §7: active -> composing.
		{"rfc3994-active.sip", Message{
			From: mustJID(t, "alice@example.com"), To: mustJID(t, "bob@example.com"),
			Type: MessageChat, Thread: "asd88asd77a@1.2.3.4", ChatState: ChatComposing,
		}},
		// RFC 3994 §7: idle -> paused.
		{"rfc3994-idle.sip", Message{
			From: mustJID(t, "alice@example.com"), To: mustJID(t, "bob@example.com"),
			Type: MessageChat, Thread: "asd88asd77a@1.2.3.4", ChatState: ChatPaused,
		}},
		// RFC 3862 §6 in a MESSAGE: CPIM headers and inner text/plain.
		{"rfc3862-cpim.sip", Message{
			From: mustJID(t, "piglet@100akerwood.com"), To: mustJID(t, "eeyore@100akerwood.com"),
			Type: MessageChat, Thread: "cpim-3862-example@gw.100akerwood.com",
			Subject: "the weather will be fine today", Body: "Here is the text of my message.",
			Stamp: time.Date(2000, 12, 13, 21, 40, 0, 0, time.UTC),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := FromSIPMessage(parseSIPFile(t, tt.file))
			if err != nil {
				t.Fatalf("FromSIPMessage: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// TestSIPToXMPPWire shows the stanza the bridge sends for RFC 7572's
// MESSAGE (written from its §5 example).
func TestSIPToXMPPWire(t *testing.T) {
	m, err := FromSIPMessage(parseSIPFile(t, "rfc7572-message.sip"))
	if err != nil {
		t.Fatal(err)
	}
	want := `<message xmlns="jabber:server" from="romeo@example.net/dr4hcr0st3lup4c" to="juliet@example.com" type="chat" xml:lang="en">` +
		`<subject>Hi</subject><body>Art thou not Romeo, and a Montague?</body><thread>5A37A65D-304B-470A-B718-3F3E6770ACAF</thread></message>`
	if got := string(m.XMPP(NSJabberServer)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestFromSIPMessageCases(t *testing.T) {
	romeo, juliet := mustJID(t, "romeo@montague.example.net"), mustJID(t, "juliet@capulets.example.com")
	cpim := func(head, inner string) []byte {
		return []byte(strings.ReplaceAll(head+"\n\n"+inner, "\n", "\r\n"))
	}
	tests := []struct {
		name    string
		req     SIPMessage
		want    Message
		wantErr error
	}{
		{"CRLF made LF, charset upper case, language list", SIPMessage{From: romeo, To: juliet, CallID: "c1",
			ContentType: `text/plain; charset="UTF-8"`, ContentLanguage: "fr, en", Body: []byte("a\r\nb")},
			Message{From: romeo, To: juliet, Type: MessageChat, Thread: "c1", Lang: "fr", Body: "a\nb"}, nil},
		{"lone CR and CR CR LF", SIPMessage{ContentType: "text/plain", Body: []byte("a\rb\r\r\nc")},
			Message{Type: MessageChat, Body: "a\nb\n\nc"}, nil},
		{"bad language ignored", SIPMessage{ContentType: "text/plain", ContentLanguage: "<x>", Body: []byte("a")},
			Message{Type: MessageChat, Body: "a"}, nil},
		{"CPIM adds GRUU, inner language and lang subject", SIPMessage{From: romeo, To: juliet, ContentType: "Message/CPIM",
			Body: cpim("From: <sip:romeo@montague.example.net;gr=orchard>\nTo: <im:juliet@capulets.example.com>\nSubject: hi\nSubject:;lang=fr salut",
				"Content-Type: text/plain\nContent-Language: fr\n\nbonjour")},
			Message{From: mustJID(t, "romeo@montague.example.net/orchard"), To: juliet, Type: MessageChat, Lang: "fr",
				Subject: "salut", Body: "bonjour"}, nil},
		{"CPIM fills a missing SIP identity", SIPMessage{ContentType: "message/cpim",
			Body: cpim("From: Romeo <im:romeo@montague.example.net>", "Content-Type: application/im-iscomposing+xml\n\n"+
				`<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>`)},
			Message{From: romeo, Type: MessageChat, ChatState: ChatComposing}, nil},
		{"CPIM From spoof", SIPMessage{From: romeo, ContentType: "message/cpim",
			Body: cpim("From: <im:tybalt@capulets.example.com>", "Content-Type: text/plain\n\nx")}, Message{}, ErrIdentityMismatch},
		{"CPIM in CPIM", SIPMessage{ContentType: "message/cpim",
			Body: cpim("From: <im:a@b.example>", "Content-Type: message/cpim\n\nx")}, Message{}, ErrUnsupportedContentType},
		{"CPIM bad header", SIPMessage{ContentType: "message/cpim",
			Body: cpim("From <im:a@b.example>", "Content-Type: text/plain\n\nx")}, Message{}, ErrMalformedMessage},
		{"CPIM bad DateTime", SIPMessage{ContentType: "message/cpim",
			Body: cpim("DateTime: yesterday", "Content-Type: text/plain\n\nx")}, Message{}, ErrMalformedMessage},
		{"CPIM bad address", SIPMessage{ContentType: "message/cpim",
			Body: cpim("To: <im:nobody", "Content-Type: text/plain\n\nx")}, Message{}, ErrMalformedMessage},
		{"CPIM without inner Content-Type", SIPMessage{ContentType: "message/cpim",
			Body: cpim("From: <im:a@b.example>", "Content-ID: <x@y>\n\nx")}, Message{}, ErrMalformedMessage},
		{"CPIM truncated", SIPMessage{ContentType: "message/cpim", Body: []byte("From: <im:a@b.example>\r\n")}, Message{}, ErrMalformedMessage},
		{"html", SIPMessage{ContentType: "text/html", Body: []byte("<p>x</p>")}, Message{}, ErrUnsupportedContentType},
		{"latin-1", SIPMessage{ContentType: "text/plain;charset=iso-8859-1", Body: []byte("caf\xe9")}, Message{}, ErrUnsupportedContentType},
		{"invalid UTF-8", SIPMessage{ContentType: "text/plain", Body: []byte("caf\xe9")}, Message{}, ErrMalformedMessage},
		{"no content type", SIPMessage{Body: []byte("x")}, Message{}, ErrMalformedMessage},
		{"bad content type", SIPMessage{ContentType: "text/", Body: []byte("x")}, Message{}, ErrMalformedMessage},
		{"huge", SIPMessage{ContentType: "text/plain", Body: bytes.Repeat([]byte("a"), MaxMessageBytes+1)}, Message{}, ErrMessageTooLarge},
		{"bad iscomposing", SIPMessage{ContentType: ContentTypeIsComposing, Body: []byte(`<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>typing</state></isComposing>`)}, Message{}, ErrMalformedMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromSIPMessage(tt.req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "session: sip message") {
					t.Errorf("error %q lacks context", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromSIPMessage: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestMessageSIP(t *testing.T) {
	romeo, juliet := mustJID(t, "romeo@montague.example.net/orchard"), mustJID(t, "juliet@capulets.example.com")
	base := Message{From: romeo, To: juliet, Type: MessageChat, Thread: "e0ffe42b28561960c6b12b944a092794b9683a38", Lang: "en"}
	with := func(f func(*Message)) Message { m := base; f(&m); return m }
	active, _ := IsComposingFor(ChatComposing)
	idle, _ := IsComposingFor(ChatPaused)
	tests := []struct {
		name string
		m    Message
		opt  SIPOptions
		want SIPMessage
	}{
		{"body", with(func(m *Message) { m.Body = "Art thou not Romeo?"; m.ChatState = ChatActive; m.ReceiptRequest = true }), SIPOptions{},
			SIPMessage{From: romeo, To: juliet, CallID: base.Thread, ContentType: ContentTypeText, ContentLanguage: "en", Body: []byte("Art thou not Romeo?")}},
		{"composing alone", with(func(m *Message) { m.ChatState = ChatComposing }), SIPOptions{},
			SIPMessage{From: romeo, To: juliet, CallID: base.Thread, ContentType: ContentTypeIsComposing, ContentLanguage: "en", Body: active.Marshal()}},
		{"gone alone", with(func(m *Message) { m.ChatState = ChatGone }), SIPOptions{},
			SIPMessage{From: romeo, To: juliet, CallID: base.Thread, ContentType: ContentTypeIsComposing, ContentLanguage: "en", Body: idle.Marshal()}},
		{"receipt alone: nothing", with(func(m *Message) { m.ReceiptFor = "x" }), SIPOptions{},
			SIPMessage{From: romeo, To: juliet, CallID: base.Thread, ContentLanguage: "en"}},
		{"error: nothing", with(func(m *Message) { m.Type = MessageError; m.Body = "x" }), SIPOptions{},
			SIPMessage{From: romeo, To: juliet, CallID: base.Thread, ContentLanguage: "en"}},
		{"thread not a Call-ID, subject injection", with(func(m *Message) { m.Thread = "a b"; m.Subject = "hi\r\nVia: evil"; m.Body = "x" }), SIPOptions{},
			SIPMessage{From: romeo, To: juliet, ContentType: ContentTypeText, ContentLanguage: "en", Subject: "hi  Via: evil", Body: []byte("x")}},
		{"cpim", with(func(m *Message) {
			m.Body = "x"
			m.Subject = "s\nTo: <im:evil@x.example>"
			m.Stamp = time.Date(2026, 11, 24, 5, 0, 0, 5e8, time.UTC)
		}), SIPOptions{CPIM: true},
			SIPMessage{From: romeo, To: juliet, CallID: base.Thread, ContentType: ContentTypeCPIM, ContentLanguage: "en", Subject: "s To: <im:evil@x.example>",
				Body: []byte("From: <sip:romeo@montague.example.net;gr=orchard>\r\nTo: <im:juliet@capulets.example.com>\r\nDateTime: 2026-11-24T05:00:00.5Z\r\n" +
					"Subject: s To: <im:evil@x.example>\r\n\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Language: en\r\n\r\nx")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.SIPWith(tt.opt)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v\nbody:\n%s", got, tt.want, got.Body)
			}
		})
	}
}

// TestSIPRoundTrip: what SIP carries survives SIP -> Message -> SIP and
// Message -> SIP -> Message, with and without CPIM.
func TestSIPRoundTrip(t *testing.T) {
	romeo, juliet := mustJID(t, "romeo@montague.example.net/orchard"), mustJID(t, "juliet@capulets.example.com")
	msgs := []Message{
		{From: romeo, To: juliet, Type: MessageChat, Thread: "abc@host", Lang: "en", Subject: "s", Body: "line1\nline2 ✓"},
		{From: romeo, To: juliet, Type: MessageChat, Thread: "t", ChatState: ChatComposing},
		{From: romeo, To: juliet, Type: MessageChat, Thread: "t", ChatState: ChatPaused},
		{From: romeo, To: juliet, Type: MessageChat, Thread: "t", Body: "x", Stamp: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
	}
	for _, cp := range []bool{false, true} {
		for _, m := range msgs {
			if !cp && !m.Stamp.IsZero() {
				continue // only CPIM carries DateTime
			}
			got, err := FromSIPMessage(m.SIPWith(SIPOptions{CPIM: cp}))
			if err != nil {
				t.Fatalf("cpim=%v %#v: %v", cp, m, err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("cpim=%v:\n got %#v\nwant %#v", cp, got, m)
			}
		}
	}
	req := parseSIPFile(t, "rfc7572-message.sip")
	m, err := FromSIPMessage(req)
	if err != nil {
		t.Fatal(err)
	}
	back := m.SIP()
	if back.CallID != req.CallID || back.From != req.From || back.To != req.To || string(back.Body) != string(req.Body) ||
		back.Subject != req.Subject || back.ContentLanguage != req.ContentLanguage {
		t.Errorf("SIP round trip: got %#v\nfrom %#v", back, req)
	}
}

func TestSIPStatusForMessageError(t *testing.T) {
	for _, tt := range []struct {
		req  SIPMessage
		want int
	}{
		{SIPMessage{ContentType: "text/plain", Body: []byte("x")}, 200},
		{SIPMessage{ContentType: "image/png", Body: []byte("x")}, 415},
		{SIPMessage{ContentType: "text/plain", Body: make([]byte, MaxMessageBytes+1)}, 413},
		{SIPMessage{From: mustJID(t, "a@b.example"), ContentType: "message/cpim", Body: []byte("From: <im:c@b.example>\r\n\r\nContent-Type: text/plain\r\n\r\nx")}, 403},
		{SIPMessage{ContentType: "text/plain", Body: []byte("\xff")}, 400},
	} {
		_, err := FromSIPMessage(tt.req)
		if got := SIPStatusForMessageError(err); got != tt.want {
			t.Errorf("%q: status %d, want %d (err %v)", tt.req.ContentType, got, tt.want, err)
		}
	}
}
