package dialback_test

import (
	"bufio"
	"bytes"
	"os"
	"testing"

	"github.com/umpp/umpp/xmppside/dialback"
)

// TestProsodyWire decodes the dialback elements Prosody 0.12.3 sent in an
// interop run and checks that our requests are answered by them.
func TestProsodyWire(t *testing.T) {
	b, err := os.ReadFile("testdata/prosody-0.12.3.xml")
	if err != nil {
		t.Fatal(err)
	}
	var els []dialback.Element
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("<db:")) {
			continue
		}
		e, err := dialback.Parse(line)
		if err != nil {
			t.Fatalf("Parse(%s): %v", line, err)
		}
		els = append(els, e)
	}
	if len(els) != 4 {
		t.Fatalf("decoded %d elements, want 4", len(els))
	}
	want := []struct {
		kind dialback.Kind
		typ  dialback.Type
	}{
		{dialback.Result, dialback.TypeRequest},
		{dialback.Verify, dialback.TypeValid},
		{dialback.Verify, dialback.TypeRequest},
		{dialback.Result, dialback.TypeValid},
	}
	for i, w := range want {
		if els[i].Kind != w.kind || els[i].Type != w.typ || els[i].From != "p.example" || els[i].To != "u.example" {
			t.Errorf("element %d = %+v, want db:%s type %q from p.example to u.example", i, els[i], w.kind, w.typ)
		}
	}
	// What we sent, answered by Prosody's elements 1 and 3.
	ourVerify := dialback.Element{Kind: dialback.Verify, From: "u.example", To: "p.example", ID: "7DMGNXS24SBHO4JTQUOELUUXUA", Key: els[0].Key}
	if !els[1].Answers(ourVerify) {
		t.Errorf("Prosody's db:verify answer does not answer our request")
	}
	ourResult := dialback.Element{Kind: dialback.Result, From: "u.example", To: "p.example", Key: els[3].Key}
	if !els[3].Answers(ourResult) {
		t.Errorf("Prosody's db:result answer (with an id) does not answer our request")
	}
	// And Prosody's verify request is answered by our Authority.
	auth := &dialback.Authority{Secret: []byte("interop secret of u.example......"), Hosts: func(d string) bool { return d == "u.example" }}
	if got := auth.Answer(els[2]); got.Type != dialback.TypeValid || !got.Answers(els[2]) {
		t.Errorf("Authority answer to Prosody's db:verify = %+v, want valid", got)
	}
}
