package sipside

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func addTortureSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(tortureDir, "*.dat"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
}

// FuzzRawMessage drives everything our datagram path does with network
// bytes before a handler: normalization, our fallback parser, the
// stateless response it builds, and the validator on what sipgo parses.
func FuzzRawMessage(f *testing.F) {
	addTortureSeeds(f)
	f.Add([]byte("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n"))
	f.Add([]byte("X y z\nv: a/b/c d\n f: x\n\n"))
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, b []byte) {
		norm := normalizeDatagram(b)
		if again := normalizeDatagram(norm); !bytes.Equal(again, norm) {
			t.Fatalf("normalization is not idempotent:\n%q\n%q", norm, again)
		}
		raw, err := parseRaw(norm)
		if err != nil {
			return
		}
		if code, reason, ok := rejectStatus(raw); ok {
			res := rawResponse(raw, code, reason, "t1", "127.0.0.1", "umppd")
			if !bytes.HasPrefix(res, []byte("SIP/2.0 ")) || !bytes.HasSuffix(res, []byte("\r\n\r\n")) {
				t.Fatalf("response framing: %q", res)
			}
			for _, line := range strings.Split(strings.TrimSuffix(string(res), "\r\n\r\n"), "\r\n") {
				if strings.ContainsAny(line, "\r\n") {
					t.Fatalf("response line carries a line break: %q", line)
				}
			}
		}
		msg, err := parser.ParseSIP(norm)
		if err != nil {
			return
		}
		if req, ok := msg.(*sip.Request); ok {
			_ = validate(req, raw, 65536)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	f.Add(`Digest username="alice", realm="example.com", nonce="abc", uri="sip:example.com", response="00", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="x"`)
	f.Add(`Digest a="\"q\\"", b=c`)
	f.Add(`NoOneKnowsThisScheme opaque-data=here`)
	f.Fuzz(func(t *testing.T, v string) {
		p, err := parseDigest(v)
		if err != nil {
			return
		}
		// What we read, written back quoted, reads the same.
		var b strings.Builder
		b.WriteString("Digest ")
		first := true
		for k, val := range p {
			if !first {
				b.WriteString(", ")
			}
			first = false
			b.WriteString(k + `="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(val) + `"`)
		}
		if len(p) == 0 {
			return
		}
		p2, err := parseDigest(b.String())
		if err != nil {
			t.Fatalf("re-reading %q: %v", b.String(), err)
		}
		for k, val := range p {
			if p2[k] != val {
				t.Fatalf("%s: %q became %q", k, val, p2[k])
			}
		}
	})
}

func FuzzParseCPIM(f *testing.F) {
	f.Add([]byte("From: Alice <im:alice@example.com>\r\nTo: <im:bob@example.com>\r\nDateTime: 2026-11-24T04:00:00Z\r\n\r\nContent-Type: text/plain\r\n\r\nhi"))
	f.Add([]byte("NS: MyFeatures <mid:MessageFeatures@id.foo.com>\nMyFeatures.VitalMessageOption: Confirmation-requested\n\nContent-type: text/xml\n\n<x/>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCPIM(b)
		if err != nil {
			return
		}
		if c.ContentType == "" {
			t.Fatal("parsed without a Content-Type")
		}
		if !bytes.HasSuffix(b, c.Content) {
			t.Fatal("content is not the end of the body")
		}
		_ = cpimAddress(c.From)
	})
}

func FuzzParseContact(f *testing.F) {
	f.Add("<sip:alice@127.0.0.1:5060;transport=tcp>;expires=60;q=0.5")
	f.Add("sip:+19725552222@gw1.example.net;unknownparam")
	f.Add(`"A" <sip:user@example.com?Route=%3Csip:sip.example.com%3E>`)
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseContact(v)
		if err != nil {
			return
		}
		if c.uri == "" || c.expires < -1 {
			t.Fatalf("parsed %q into %+v", v, c)
		}
	})
}
