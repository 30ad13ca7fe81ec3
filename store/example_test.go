package store_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"mellium.im/sasl"

	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/store/sqlite"
)

// An account is created from a password once; afterwards only the
// derived credentials exist.
func ExampleDeriveCredentials() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "umpp-example")
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "umpp.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	c, err := store.DeriveCredentials("juliet", "capulet.example", "wherefore art thou")
	if err != nil {
		fmt.Println(err)
		return
	}
	err = db.CreateUser(ctx, store.User{JID: "juliet@capulet.example", Credentials: c})
	fmt.Println("created:", err == nil)

	u, _ := db.User(ctx, "juliet@capulet.example")
	fmt.Println("PLAIN right password:", u.Credentials.VerifyPassword("wherefore art thou"))
	fmt.Println("PLAIN wrong password:", u.Credentials.VerifyPassword("wherefore"))
	// Output:
	// created: true
	// PLAIN right password: true
	// PLAIN wrong password: false
}

// The XMPP host feeds mellium's SCRAM server from the store.
func ExampleCredentials_SCRAMLookup() {
	c, _ := store.DeriveCredentials("juliet", "capulet.example", "wherefore art thou")
	lookup := func(username, _ []byte, mech string) ([]byte, []byte, int64, error) {
		if string(username) != "juliet" { // in umppd: db.User(ctx, username+"@"+domain)
			return nil, nil, 0, sasl.ErrAuthn
		}
		salt, salted, iter, ok := c.SCRAMLookup(mech)
		if !ok {
			return nil, nil, 0, sasl.ErrAuthn
		}
		return salt, salted, iter, nil
	}
	server := sasl.NewServer(sasl.ScramSha256, nil, sasl.SaltedCredentials(lookup))
	client := sasl.NewClient(sasl.ScramSha256, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte("juliet"), []byte("wherefore art thou"), nil
	}))
	_, first, _ := client.Step(nil)
	_, challenge, _ := server.Step(first)
	_, final, _ := client.Step(challenge)
	more, _, err := server.Step(final)
	fmt.Println("authenticated:", err == nil && !more)
	// Output:
	// authenticated: true
}

// The SIP registrar checks a digest response (RFC 7616 §3.4.1, qop=auth)
// with the stored HA1, never the password.
func ExampleCredentials_HA1() {
	c, _ := store.DeriveCredentials("romeo", "montague.example", "parting is such sweet sorrow")
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }

	// What the SIP client sent in its Authorization header:
	nonce, nc, cnonce, method, uri := "dcd98b7102dd2f0e", "00000001", "0a4f113b", "REGISTER", "sip:montague.example"
	clientHA1 := h("romeo:montague.example:parting is such sweet sorrow")
	response := h(clientHA1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + h(method+":"+uri))

	ha1, ok := c.HA1("MD5")
	expected := h(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + h(method+":"+uri))
	fmt.Println(ok, expected == response)
	// Output:
	// true true
}
