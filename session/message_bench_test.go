package session

import "testing"

// These run for every bridged message.

func BenchmarkParseXMPPMessage(b *testing.B) {
	for _, name := range []string{"rfc6121-thread.xml", "xhtml-im-extra.xml"} {
		raw := msgTestdata(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := ParseXMPPMessage(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMessageXMPP(b *testing.B) {
	m, err := ParseXMPPMessage(msgTestdata(b, "xhtml-im-extra.xml"))
	if err != nil {
		b.Fatal(err)
	}
	m.Thread, m.ChatState, m.ReceiptRequest = "e0ffe42b28561960c6b12b944a092794b9683a38", ChatActive, true
	b.ReportAllocs()
	for b.Loop() {
		_ = m.XMPP(NSJabberServer)
	}
}

func BenchmarkFromSIPMessage(b *testing.B) {
	req := parseSIPFile(b, "rfc3862-cpim.sip")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromSIPMessage(req); err != nil {
			b.Fatal(err)
		}
	}
}
