package dialback_test

import (
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/umpp/umpp/xmppside/dialback"
	"mellium.im/xmlstream"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    dialback.Element
		wantErr error
	}{
		{
			name: "result request (XEP-0220 example 3)",
			in:   `<db:result from='sender.tld' to='target.tld'>37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643</db:result>`,
			want: dialback.Element{Kind: dialback.Result, From: "sender.tld", To: "target.tld",
				Key: "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"},
		},
		{
			name: "verify request",
			in:   `<db:verify from='target.tld' id='417GAF25' to='sender.tld'>37c69b1c</db:verify>`,
			want: dialback.Element{Kind: dialback.Verify, From: "target.tld", To: "sender.tld", ID: "417GAF25", Key: "37c69b1c"},
		},
		{
			name: "prefix-free verify answer",
			in:   `<verify xmlns='jabber:server:dialback' from='sender.tld' id='417GAF25' to='target.tld' type='valid'/>`,
			want: dialback.Element{Kind: dialback.Verify, From: "sender.tld", To: "target.tld", ID: "417GAF25", Type: dialback.TypeValid},
		},
		{
			name: "result invalid",
			in:   `<db:result from='target.tld' to='sender.tld' type='invalid'/>`,
			want: dialback.Element{Kind: dialback.Result, From: "target.tld", To: "sender.tld", Type: dialback.TypeInvalid},
		},
		{
			name: "result error in the stream's default namespace (XEP-0220 example)",
			in: `<db:result from='target.tld' to='sender.tld' type='error'><error type='cancel'>` +
				`<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>`,
			want: dialback.Element{Kind: dialback.Result, From: "target.tld", To: "sender.tld", Type: dialback.TypeError,
				Err: &dialback.Error{Type: "cancel", Condition: dialback.ConditionItemNotFound}},
		},
		{
			name: "result error with text, error in the dialback namespace (Prosody)",
			in: `<db:result from='target.tld' to='sender.tld' type='error'><db:error type='wait'>` +
				`<remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
				`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>too slow</text></db:error></db:result>`,
			want: dialback.Element{Kind: dialback.Result, From: "target.tld", To: "sender.tld", Type: dialback.TypeError,
				Err: &dialback.Error{Type: "wait", Condition: dialback.ConditionRemoteServerTimeout, Text: "too slow"}},
		},
		{
			name: "error without condition",
			in:   `<db:result from='target.tld' to='sender.tld' type='error'/>`,
			want: dialback.Element{Kind: dialback.Result, From: "target.tld", To: "sender.tld", Type: dialback.TypeError,
				Err: &dialback.Error{Type: "cancel", Condition: dialback.ConditionUndefined}},
		},
		{
			name: "key with surrounding white space, unknown child skipped",
			in:   "<db:result from='sender.tld' to='target.tld'>\n abc <x xmlns='urn:example'><y/></x></db:result>",
			want: dialback.Element{Kind: dialback.Result, From: "sender.tld", To: "target.tld", Key: "abc"},
		},
		{name: "missing to", in: `<db:result from='sender.tld'>abc</db:result>`, wantErr: dialback.ErrImproperAddressing},
		{name: "missing from", in: `<db:verify to='sender.tld' id='1'>abc</db:verify>`, wantErr: dialback.ErrImproperAddressing},
		{name: "from is a user JID", in: `<db:result from='user@sender.tld' to='target.tld'>abc</db:result>`, wantErr: dialback.ErrInvalidFrom},
		{name: "to with resource", in: `<db:result from='sender.tld' to='target.tld/r'>abc</db:result>`, wantErr: dialback.ErrMalformed},
		{name: "request without key", in: `<db:result from='sender.tld' to='target.tld'>  </db:result>`, wantErr: dialback.ErrMalformed},
		{name: "verify without id", in: `<db:verify from='a.tld' to='b.tld'>abc</db:verify>`, wantErr: dialback.ErrMalformed},
		{name: "unknown type", in: `<db:result from='a.tld' to='b.tld' type='maybe'/>`, wantErr: dialback.ErrMalformed},
		{name: "key too long", in: `<db:result from='a.tld' to='b.tld'>` + strings.Repeat("a", dialback.MaxKeyLen+1) + `</db:result>`, wantErr: dialback.ErrMalformed},
		{name: "too deep", in: `<db:result from='a.tld' to='b.tld'>k<a><a><a><a><a/></a></a></a></a></db:result>`, wantErr: dialback.ErrMalformed},
		{name: "not dialback", in: `<message from='a.tld' to='b.tld'/>`, wantErr: dialback.ErrNotDialback},
		{name: "unknown dialback element", in: `<db:other from='a.tld' to='b.tld'/>`, wantErr: dialback.ErrNotDialback},
		{name: "truncated", in: `<db:result from='a.tld' to='b.tld'>abc`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dialback.Parse([]byte(tc.in))
			if tc.wantErr != nil || tc.want.Kind == 0 {
				if err == nil {
					t.Fatalf("Parse succeeded with %+v, want an error", got)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("Parse error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse = %+v (err %+v), want %+v (err %+v)", got, got.Err, tc.want, tc.want.Err)
			}
		})
	}
}

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		in   dialback.Element
		want string
	}{
		{
			name: "result request",
			in:   dialback.Element{Kind: dialback.Result, From: "a.tld", To: "b.tld", Key: "k1"},
			want: `<result xmlns="jabber:server:dialback" from="a.tld" to="b.tld">k1</result>`,
		},
		{
			name: "verify answer",
			in:   dialback.Element{Kind: dialback.Verify, From: "a.tld", To: "b.tld", ID: "i1", Type: dialback.TypeInvalid},
			want: `<verify xmlns="jabber:server:dialback" from="a.tld" to="b.tld" id="i1" type="invalid"></verify>`,
		},
		{
			name: "error answer",
			in: dialback.Element{Kind: dialback.Result, From: "b.tld", To: "a.tld", Type: dialback.TypeError,
				Err: dialback.NewError(dialback.ConditionRemoteServerTimeout, "slow")},
			want: `<result xmlns="jabber:server:dialback" from="b.tld" to="a.tld" type="error"><error type="wait">` +
				`<remote-server-timeout xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></remote-server-timeout>` +
				`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">slow</text></error></result>`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.in.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("Marshal =\n%s\nwant\n%s", b, tc.want)
			}
			back, err := dialback.Parse(b)
			if err != nil {
				t.Fatalf("Parse(Marshal): %v", err)
			}
			if !reflect.DeepEqual(back, tc.in) {
				t.Errorf("round trip = %+v, want %+v", back, tc.in)
			}
		})
	}
}

func TestFeature(t *testing.T) {
	var b strings.Builder
	enc := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(enc, dialback.Feature()); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `<dialback xmlns="urn:xmpp:features:dialback"><errors xmlns="urn:xmpp:features:dialback"></errors></dialback>`
	if b.String() != want {
		t.Errorf("Feature = %s, want %s", b.String(), want)
	}
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>`, true},
		{`<dialback xmlns='urn:xmpp:features:dialback'/>`, false},
	} {
		d := xml.NewDecoder(strings.NewReader(tc.in))
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		info, err := dialback.DecodeFeature(d, tok.(xml.StartElement))
		if err != nil {
			t.Fatalf("DecodeFeature(%s): %v", tc.in, err)
		}
		if info.Errors != tc.want {
			t.Errorf("DecodeFeature(%s).Errors = %v, want %v", tc.in, info.Errors, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<db:result from='sender.tld' to='target.tld'>37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643</db:result>`,
		`<db:verify from='target.tld' id='417GAF25' to='sender.tld'>37c69b1c</db:verify>`,
		`<db:result from='target.tld' to='sender.tld' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x</text></error></db:result>`,
		`<verify xmlns='jabber:server:dialback' from='a' to='b' id='1' type='valid'/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := dialback.Parse(b)
		if err != nil {
			return
		}
		// Whatever we accept we can write back, and read again the same.
		if e.Kind != dialback.Result && e.Kind != dialback.Verify {
			t.Fatalf("accepted element of kind %v", e.Kind)
		}
		if e.Type == dialback.TypeError && e.Err == nil {
			t.Fatalf("error answer without Err")
		}
		if len(e.Key) > dialback.MaxKeyLen {
			t.Fatalf("accepted key of %d bytes", len(e.Key))
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", e, err)
		}
		back, err := dialback.Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(%+v)) = %v\n%s", e, err, out)
		}
		if e.Err != nil && back.Err != nil && e.Err.Text != back.Err.Text {
			// Text survives the round trip except for white space only
			// differences the decoder cannot see; compare the rest.
			back.Err.Text = e.Err.Text
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("round trip changed %+v into %+v\n%s", e, back, out)
		}
	})
}

func FuzzDecodeFeature(f *testing.F) {
	f.Add([]byte(`<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := xml.NewDecoder(strings.NewReader(string(b)))
		tok, err := d.Token()
		if err != nil {
			return
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			return
		}
		_, _ = dialback.DecodeFeature(d, start)
	})
}
