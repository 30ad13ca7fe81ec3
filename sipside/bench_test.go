package sipside

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

const benchMessage = "MESSAGE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bench\r\nMax-Forwards: 70\r\n" +
	"From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\nCall-ID: bench-1\r\n" +
	"CSeq: 2 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"

// BenchmarkDatagramPath measures what the UDP read filter adds before
// sipgo's own parse: normalization, our header scan, a sipgo parse and
// the validator.
func BenchmarkDatagramPath(b *testing.B) {
	parser := sip.NewParser()
	data := []byte(benchMessage)
	b.ReportAllocs()
	for b.Loop() {
		norm := normalizeDatagram(data)
		raw, _ := parseRaw(norm)
		msg, err := parser.ParseSIP(norm)
		if err != nil {
			b.Fatal(err)
		}
		if rej := validate(msg.(*sip.Request), raw, 65536); rej != nil {
			b.Fatal(rej.reason)
		}
	}
}

// BenchmarkSipgoParseOnly is the baseline: sipgo's parse alone.
func BenchmarkSipgoParseOnly(b *testing.B) {
	parser := sip.NewParser()
	data := []byte(benchMessage)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parser.ParseSIP(data); err != nil {
			b.Fatal(err)
		}
	}
}
