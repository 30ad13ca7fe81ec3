package session

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCPIM(t *testing.T) {
	req := parseSIPFile(t, "rfc3862-cpim.sip")
	c, err := ParseCPIM(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	from, err := c.From()
	if err != nil || from.String() != "piglet@100akerwood.com" {
		t.Errorf("From = %v, %v", from, err)
	}
	to, err := c.To()
	if err != nil || to.String() != "eeyore@100akerwood.com" {
		t.Errorf("To = %v, %v", to, err)
	}
	dt, err := c.DateTime()
	if err != nil || !dt.Equal(time.Date(2000, 12, 13, 13, 40, 0, 0, time.FixedZone("", -8*3600))) {
		t.Errorf("DateTime = %v, %v", dt, err)
	}
	for lang, want := range map[string]string{"": "the weather will be fine today", "en": "the weather will be fine today", "fr": "beau temps prevu pour aujourd'hui"} {
		if s, ok := c.Subject(lang); !ok || s != want {
			t.Errorf("Subject(%q) = %q, %v", lang, s, ok)
		}
	}
	if v, ok := c.Get("myfeatures.vitalmessageoption"); !ok || v != "Confirmation-requested" {
		t.Errorf("namespaced header = %q, %v", v, ok)
	}
	if c.ContentType() != "text/plain" || string(c.Content) != "Here is the text of my message." {
		t.Errorf("content %q %q", c.ContentType(), c.Content)
	}
	// Marshal and parse again: same headers and content.
	again, err := ParseCPIM(c.Marshal())
	if err != nil || !reflect.DeepEqual(again, c) {
		t.Errorf("round trip: %v\n got %#v\nwant %#v", err, again, c)
	}
}

func TestParseCPIMErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"no blank line", "From: <im:a@b.example>\r\n", ErrMalformedMessage},
		{"no MIME blank line", "From: <im:a@b.example>\r\n\r\nContent-Type: text/plain\r\n", ErrMalformedMessage},
		{"folded header", "Subject: a\r\n  b\r\n\r\nContent-Type: text/plain\r\n\r\nx", ErrMalformedMessage},
		{"space in name", "Sub ject: a\r\n\r\nContent-Type: text/plain\r\n\r\nx", ErrMalformedMessage},
		{"empty name part", "a..b: a\r\n\r\nContent-Type: text/plain\r\n\r\nx", ErrMalformedMessage},
		{"bare CR in value", "Subject: a\rb\r\n\r\nContent-Type: text/plain\r\n\r\nx", ErrMalformedMessage},
		{"too many headers", strings.Repeat("X: y\r\n", maxCPIMHeaders+1) + "\r\nContent-Type: text/plain\r\n\r\nx", ErrMalformedMessage},
		{"huge", strings.Repeat("x", MaxMessageBytes+1), ErrMessageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCPIM([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCPIMMarshalNoInjection(t *testing.T) {
	c := CPIM{
		Headers:     []CPIMHeader{{"Subject", "a\r\nTo: <im:evil@x.example>\r\n\r\nContent-Type: text/html"}},
		MIMEHeaders: []CPIMHeader{{"Content-Type", "text/plain"}},
		Content:     []byte("x"),
	}
	b := c.Marshal()
	got, err := ParseCPIM(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Headers) != 1 || got.ContentType() != "text/plain" || !bytes.Equal(got.Content, []byte("x")) {
		t.Errorf("header injected: %q", b)
	}
}
