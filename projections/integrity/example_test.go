package integrity_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody/custody/projections/integrity"
)

// An auditor checks, offline, that one event is in the log a signed checkpoint covers.
func ExampleCheckInclusion() {
	dir, err := os.MkdirTemp("", "integrity-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The integrity projector appends every stored event and signs a checkpoint.
	tree, err := integrity.Open(filepath.Join(dir, "tree.hashes"))
	if err != nil {
		log.Fatal(err)
	}
	defer tree.Close()
	subject := "custody.event.phi.accessed"
	event := func(seq uint64) []byte { return fmt.Appendf(nil, `{"id":"event-%d"}`, seq) }
	for seq := uint64(1); seq <= 8; seq++ {
		if err := tree.Append(seq, subject, event(seq)); err != nil {
			log.Fatal(err)
		}
	}
	skey, vkey, err := integrity.GenerateKey("custody.example")
	if err != nil {
		log.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	root, _ := tree.Root()
	checkpoint, err := integrity.Sign("custody.example/CUSTODY_EVENTS", tree.Size(), root, signer)
	if err != nil {
		log.Fatal(err)
	}
	proof, err := tree.ProveInclusion(3, checkpoint)
	if err != nil {
		log.Fatal(err)
	}
	text, _ := integrity.FormatInclusion(proof)

	// The auditor has the proof text, the event and the public key.
	p, err := integrity.ParseInclusion(text)
	if err != nil {
		log.Fatal(err)
	}
	verifier, _ := note.NewVerifier(vkey)
	c, err := integrity.CheckInclusion(p, note.VerifierList(verifier))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("origin:", c.Origin)
	fmt.Println("tree size:", c.Size)
	fmt.Println("event matches the proof:", p.Leaf == integrity.LeafHash(3, subject, event(3)))
	fmt.Println("altered event matches:", p.Leaf == integrity.LeafHash(3, subject, []byte(`{"id":"event-4"}`)))

	// One flipped bit anywhere in the proof and it no longer verifies.
	p.Hashes[0][0] ^= 1
	_, err = integrity.CheckInclusion(p, note.VerifierList(verifier))
	fmt.Println("tampered proof:", err)
	// Output:
	// origin: custody.example/CUSTODY_EVENTS
	// tree size: 8
	// event matches the proof: true
	// altered event matches: false
	// tampered proof: check inclusion of seq 3 in size 8: proof does not verify
}
