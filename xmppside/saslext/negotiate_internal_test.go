package saslext

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

type bufIO struct {
	*xml.Decoder
	*xml.Encoder
}

func TestNegotiate(t *testing.T) {
	const sasl = ` xmlns='urn:ietf:params:xml:ns:xmpp-sasl'`
	ok := func(authzid string) (string, error) {
		if authzid != "" && authzid != "a.example" {
			return ConditionInvalidAuthzid, errors.New("other domain")
		}
		return "", nil
	}
	tests := []struct {
		name     string
		in       string
		wantCond string
		wantOut  string
		wantErr  bool
	}{
		{"authzid is the domain", `<auth` + sasl + ` mechanism='EXTERNAL'>YS5leGFtcGxl</auth>`, "",
			`<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"></success>`, false},
		{"empty authzid", `<auth` + sasl + ` mechanism='EXTERNAL'>=</auth>`, "",
			`<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"></success>`, false},
		{"no initial response", `<auth` + sasl + ` mechanism='EXTERNAL'/><response` + sasl + `>YS5leGFtcGxl</response>`, "",
			`<challenge xmlns="urn:ietf:params:xml:ns:xmpp-sasl">=</challenge><success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"></success>`, false},
		{"abort after challenge", `<auth` + sasl + ` mechanism='EXTERNAL'/><abort` + sasl + `/>`, ConditionAborted,
			`<challenge xmlns="urn:ietf:params:xml:ns:xmpp-sasl">=</challenge><failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><aborted xmlns="urn:ietf:params:xml:ns:xmpp-sasl"></aborted></failure>`, false},
		{"other domain", `<auth` + sasl + ` mechanism='EXTERNAL'>Yi5leGFtcGxl</auth>`, ConditionInvalidAuthzid,
			`<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><invalid-authzid xmlns="urn:ietf:params:xml:ns:xmpp-sasl"></invalid-authzid></failure>`, false},
		{"bad base64", `<auth` + sasl + ` mechanism='EXTERNAL'>!!!</auth>`, ConditionIncorrectEncoding,
			`<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><incorrect-encoding xmlns="urn:ietf:params:xml:ns:xmpp-sasl"></incorrect-encoding></failure>`, false},
		{"other mechanism", `<auth` + sasl + ` mechanism='PLAIN'>AGEAYg==</auth>`, ConditionInvalidMechanism,
			`<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><invalid-mechanism xmlns="urn:ietf:params:xml:ns:xmpp-sasl"></invalid-mechanism></failure>`, false},
		{"abort", `<abort` + sasl + `/>`, ConditionAborted,
			`<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><aborted xmlns="urn:ietf:params:xml:ns:xmpp-sasl"></aborted></failure>`, false},
		{"not SASL", `<message xmlns='jabber:server'/>`, "", "", true},
		{"truncated", `<auth` + sasl + ` mechanism='EXTERNAL'>YS5`, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			s := bufIO{xml.NewDecoder(strings.NewReader(tc.in)), xml.NewEncoder(&out)}
			cond, err := negotiate(s, ok)
			if (err != nil) != tc.wantErr {
				t.Fatalf("negotiate error = %v, want error %v", err, tc.wantErr)
			}
			if cond != tc.wantCond {
				t.Errorf("condition = %q, want %q", cond, tc.wantCond)
			}
			if out.String() != tc.wantOut {
				t.Errorf("sent\n%s\nwant\n%s", out.String(), tc.wantOut)
			}
		})
	}
}

func TestAuthzid(t *testing.T) {
	tests := []struct {
		payload, from string
		want          string
		decodeErr     error
		checkErr      error
	}{
		{payload: "=", from: "a.example", want: ""},
		{payload: "", from: "a.example", want: ""},
		{payload: "YS5leGFtcGxl", from: "a.example", want: "a.example"},
		{payload: "QS5FeGFtcGxl", from: "a.example", want: "A.Example"}, // same domain after preparation
		{payload: "Yi5leGFtcGxl", from: "a.example", want: "b.example", checkErr: ErrInvalidAuthzid},
		{payload: "dXNlckBhLmV4YW1wbGU=", from: "a.example", want: "user@a.example", checkErr: ErrInvalidAuthzid},
		{payload: "=", from: "", checkErr: ErrInvalidAuthzid},
		{payload: "=", from: "user@a.example", checkErr: ErrInvalidAuthzid},
		{payload: "YS5leGFtcGxl=", decodeErr: ErrIncorrectEncoding},
		{payload: "*", decodeErr: ErrIncorrectEncoding},
		{payload: "AA==", decodeErr: ErrInvalidAuthzid}, // NUL
		{payload: "/w==", decodeErr: ErrInvalidAuthzid}, // not UTF-8
	}
	for _, tc := range tests {
		got, err := DecodeAuthzid([]byte(tc.payload))
		if tc.decodeErr != nil {
			if !errors.Is(err, tc.decodeErr) {
				t.Errorf("DecodeAuthzid(%q) error %v, want %v", tc.payload, err, tc.decodeErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("DecodeAuthzid(%q) = %q, %v; want %q", tc.payload, got, err, tc.want)
			continue
		}
		err = CheckAuthzid(got, tc.from)
		if tc.checkErr == nil && err != nil || tc.checkErr != nil && !errors.Is(err, tc.checkErr) {
			t.Errorf("CheckAuthzid(%q, %q) = %v, want %v", got, tc.from, err, tc.checkErr)
		}
		if tc.checkErr == nil && got != "" {
			if back, _ := DecodeAuthzid(EncodeAuthzid(got)); back != got {
				t.Errorf("EncodeAuthzid round trip %q -> %q", got, back)
			}
		}
	}
}

func FuzzDecodeAuthzid(f *testing.F) {
	for _, s := range []string{"=", "", "YS5leGFtcGxl", "AA==", "!!"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		a, err := DecodeAuthzid(payload)
		if err != nil {
			return
		}
		if a == "" {
			return
		}
		back, err := DecodeAuthzid(EncodeAuthzid(a))
		if err != nil || back != a {
			t.Fatalf("round trip of %q: %q, %v", a, back, err)
		}
	})
}

func FuzzNegotiate(f *testing.F) {
	f.Add(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>YS5leGFtcGxl</auth>`)
	f.Add(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'/><response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>`)
	f.Fuzz(func(t *testing.T, in string) {
		var out strings.Builder
		s := bufIO{xml.NewDecoder(strings.NewReader(in)), xml.NewEncoder(&out)}
		accepted := ""
		cond, err := negotiate(s, func(authzid string) (string, error) {
			if authzid != "" && authzid != "a.example" {
				return ConditionInvalidAuthzid, nil
			}
			accepted = "yes"
			return "", nil
		})
		if err == nil && cond == "" && accepted == "" {
			t.Fatalf("success without the check approving: %q", in)
		}
		if cond == "" && err == nil && !strings.HasSuffix(out.String(), `<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"></success>`) {
			t.Fatalf("success without <success/>: %q -> %q", in, out.String())
		}
	})
}
