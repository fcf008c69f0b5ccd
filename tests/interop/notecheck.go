// notecheck: an independent signed-note implementation for the interoperability tests,
// built on Go's golang.org/x/mod/sumdb/note (Debian: golang-golang-x-mod-dev).
//
// Build (GOPATH mode, with Debian's copy of x/mod):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o notecheck tests/interop/notecheck.go
//
// Usage:
//
//	notecheck verify VKEY FILE   open the signed note in FILE with the verifier key; print its text
//	notecheck sign SKEY FILE     sign the text in FILE with the signer key; print the signed note
//	notecheck keygen NAME        print a fresh signer key and verifier key, one a line
package main

import (
	"crypto/rand"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: notecheck verify VKEY FILE | sign SKEY FILE | keygen NAME")
	}
	switch os.Args[1] {
	case "verify":
		verifier, err := note.NewVerifier(os.Args[2])
		if err != nil {
			fail("bad verifier key: %v", err)
		}
		data, err := os.ReadFile(os.Args[3])
		if err != nil {
			fail("%v", err)
		}
		opened, err := note.Open(data, note.VerifierList(verifier))
		if err != nil {
			fail("does not verify: %v", err)
		}
		fmt.Fprintf(os.Stderr, "verified by %d key(s); %d other signature(s) ignored\n", len(opened.Sigs), len(opened.UnverifiedSigs))
		fmt.Print(opened.Text)
	case "sign":
		signer, err := note.NewSigner(os.Args[2])
		if err != nil {
			fail("bad signer key: %v", err)
		}
		text, err := os.ReadFile(os.Args[3])
		if err != nil {
			fail("%v", err)
		}
		signed, err := note.Sign(&note.Note{Text: string(text)}, signer)
		if err != nil {
			fail("cannot sign: %v", err)
		}
		os.Stdout.Write(signed)
	case "keygen":
		skey, vkey, err := note.GenerateKey(rand.Reader, os.Args[2])
		if err != nil {
			fail("%v", err)
		}
		fmt.Println(skey)
		fmt.Println(vkey)
	default:
		fail("unknown command %q", os.Args[1])
	}
}
