package integrity_test

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custody/custody/projections/integrity"
)

const origin = "custody.test/CUSTODY_EVENTS"

// event is a stored event of the test logs.
type event struct {
	seq     uint64
	subject string
	data    []byte
}

var subjects = []string{
	"custody.event.phi.accessed",
	"custody.event.consent.captured",
	"custody.event.interaction.started",
	"custody.event.recording.redacted",
}

// makeEvent returns a deterministic event of about 250 bytes for seq.
func makeEvent(seq uint64) event {
	data := fmt.Appendf(nil, `{"specversion":"1.0","id":"0193f1a2-7c4e-7b3a-9d2e-%012d","source":"genesys/us-east-1",`+
		`"type":"%s","subject":"interaction/%08d","time":"2026-03-08T00:00:00Z","data":{"actor":"agent-%d","n":%d}}`,
		seq, subjects[seq%4], seq/7, seq%97, seq)
	return event{seq: seq, subject: subjects[seq%4], data: data}
}

func makeEvents(n int) []event {
	evs := make([]event, n)
	for i := range evs {
		evs[i] = makeEvent(uint64(i + 1))
	}
	return evs
}

// newTree appends events to a new tree file and returns it, synced.
func newTree(t testing.TB, evs []event) *integrity.Tree {
	t.Helper()
	tr, err := integrity.Open(filepath.Join(t.TempDir(), "tree.hashes"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	for _, e := range evs {
		if err := tr.Append(e.seq, e.subject, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Sync(); err != nil {
		t.Fatal(err)
	}
	return tr
}

// keys is a signing key pair of the tests.
type keys struct {
	signer    note.Signer
	verifier  note.Verifier
	verifiers note.Verifiers
	vkey      string
}

func newKeys(t testing.TB, name string) keys {
	t.Helper()
	skey, vkey, err := integrity.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return keys{signer: s, verifier: v, verifiers: note.VerifierList(v), vkey: vkey}
}

// sign returns the signed checkpoint of the tree at size.
func sign(t testing.TB, tr *integrity.Tree, size int64, k keys) []byte {
	t.Helper()
	root, err := tr.RootAt(size)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := integrity.Sign(origin, size, root, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// The oracles below use crypto/sha256 only, following the package documentation, as an
// auditor would.

func leafOracle(e event) [32]byte {
	b := []byte("\x00custody-leaf/v1\n")
	for i := 7; i >= 0; i-- {
		b = append(b, byte(e.seq>>(8*i)))
	}
	n := len(e.subject)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	b = append(b, e.subject...)
	return sha256.Sum256(append(b, e.data...))
}

func nodeOracle(l, r [32]byte) [32]byte {
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// mthOracle is RFC 6962's MTH, by its recursive definition.
func mthOracle(leaves [][32]byte) [32]byte {
	switch n := len(leaves); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		return nodeOracle(mthOracle(leaves[:k]), mthOracle(leaves[k:]))
	}
}

// auditInclusion is step 4 and 5 of "Checking offline" (RFC 9162, 2.1.3.2).
func auditInclusion(seq uint64, size int64, leaf [32]byte, proof []tlog.Hash, root [32]byte) bool {
	if seq == 0 || size < 1 || seq > uint64(size) {
		return false
	}
	fn, sn, r := seq-1, uint64(size-1), leaf
	for _, p := range proof {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = nodeOracle(p, r)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			r = nodeOracle(r, p)
		}
		fn, sn = fn>>1, sn>>1
	}
	return sn == 0 && r == root
}

// auditConsistency is steps 1 to 5 of the consistency check (RFC 9162, 2.1.4.2).
func auditConsistency(m, n int64, r1, r2 [32]byte, proof []tlog.Hash) bool {
	switch {
	case m < 1 || m > n:
		return false
	case m == n:
		return len(proof) == 0 && r1 == r2
	case len(proof) == 0:
		return false
	}
	c := make([][32]byte, 0, len(proof)+1)
	if m&(m-1) == 0 {
		c = append(c, r1)
	}
	for _, h := range proof {
		c = append(c, h)
	}
	fn, sn := uint64(m-1), uint64(n-1)
	for fn&1 == 1 {
		fn, sn = fn>>1, sn>>1
	}
	fr, sr := c[0], c[0]
	for _, h := range c[1:] {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			fr, sr = nodeOracle(h, fr), nodeOracle(h, sr)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			sr = nodeOracle(sr, h)
		}
		fn, sn = fn>>1, sn>>1
	}
	return fr == r1 && sr == r2 && sn == 0
}
