package session

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/umpp/umpp/addressing"
)

func addMessageSeeds(f *testing.F, ext string) {
	names, err := filepath.Glob(filepath.Join("testdata", "message", "*."+ext))
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
}

var messageSentinels = []error{ErrMalformedMessage, ErrMessageTooLarge, ErrUnsupportedContentType, ErrIdentityMismatch, addressing.ErrMalformed, addressing.ErrUnsupportedScheme}

func wrapsSentinel(err error) bool {
	for _, s := range messageSentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzParseXMPPMessage: no panic, every error wraps a sentinel, and a parsed
// message survives XMPP and ParseXMPPMessage unchanged in both namespaces.
func FuzzParseXMPPMessage(f *testing.F) {
	addMessageSeeds(f, "xml")
	for _, s := range []string{
		`<message xmlns="jabber:client" xmlns:a="urn:a"><x xmlns="urn:x" a:k="v"><y xmlns="jabber:client">t&amp;</y></x></message>`,
		`<message xmlns="jabber:server" type="error"><error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">xmpp:a@b</gone></error></message>`,
		`<message xmlns="jabber:server"><x xmlns="jabber:client"><y xmlns="jabber:server"/></x><error><text xmlns="jabber:client"/></error></message>`,
		`<c:message xmlns:c="jabber:client" xmlns="urn:x"><body>x</body><c:body>y</c:body></c:message>`,
		`<message xmlns="jabber:client" id="r"><received xmlns="urn:xmpp:receipts"/><body/><body xml:lang="x">&#xD;</body></message>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseXMPPMessage(b)
		if err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		for _, ns := range []string{NSJabberClient, NSJabberServer} {
			out := m.XMPP(ns)
			again, err := ParseXMPPMessage(out)
			if err != nil {
				t.Fatalf("re-parse of %s: %v", out, err)
			}
			if !reflect.DeepEqual(again, m) {
				t.Fatalf("round trip changed the message:\n got %#v\nwant %#v\nvia %s", again, m, out)
			}
		}
		// Whatever XMPP can carry, SIP can take without panicking, and
		// what SIPWith writes FromSIPMessage reads back.
		for _, cp := range []bool{false, true} {
			s := m.SIPWith(SIPOptions{CPIM: cp})
			if s.ContentType == "" {
				continue
			}
			if _, err := FromSIPMessage(s); err != nil {
				t.Fatalf("FromSIPMessage(SIPWith(cpim=%v)): %v\n%#v", cp, err, s)
			}
		}
	})
}

// FuzzFromSIPMessage: no panic on any body and content type; errors wrap a
// sentinel; an accepted message goes back to SIP and is read again equal.
func FuzzFromSIPMessage(f *testing.F) {
	for _, n := range []string{"rfc7572-message.sip", "rfc3994-active.sip", "rfc3994-idle.sip", "rfc3862-cpim.sip"} {
		s := parseSIPFile(f, n)
		f.Add(s.ContentType, s.ContentLanguage, s.CallID, s.Body)
	}
	f.Add("message/cpim", "", "x", []byte("From: <sip:a@b.example;gr=r>\nDateTime: 2026-01-01T00:00:00.5+01:00\n\nContent-Type: application/im-iscomposing+xml\n\n<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>idle</state></isComposing>"))
	f.Fuzz(func(t *testing.T, ct, lang, callID string, body []byte) {
		req := SIPMessage{ContentType: ct, ContentLanguage: lang, CallID: callID, Body: body}
		m, err := FromSIPMessage(req)
		if err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		_ = m.XMPP(NSJabberClient)
		for _, cp := range []bool{false, true} {
			s := m.SIPWith(SIPOptions{CPIM: cp})
			if s.ContentType == "" {
				continue
			}
			again, err := FromSIPMessage(s)
			if err != nil {
				t.Fatalf("FromSIPMessage(SIPWith(cpim=%v)): %v\n%#v", cp, err, s)
			}
			if sipCallID(m.Thread) && again.Thread != m.Thread {
				t.Fatalf("thread %q came back as %q", m.Thread, again.Thread)
			}
			if again.Body != m.Body || again.ChatState != m.ChatState {
				t.Fatalf("cpim=%v: got %#v, want %#v", cp, again, m)
			}
		}
	})
}

// FuzzIsComposing: no panic; a parsed document survives Marshal.
func FuzzIsComposing(f *testing.F) {
	for _, n := range []string{"rfc3994-active.sip", "rfc3994-idle.sip"} {
		f.Add(parseSIPFile(f, n).Body)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseIsComposing(b)
		if err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		again, err := ParseIsComposing(c.Marshal())
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip: %v\n got %#v\nwant %#v\nvia %s", err, again, c, c.Marshal())
		}
	})
}
