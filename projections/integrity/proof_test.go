package integrity_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custody/custody/projections/integrity"
)

// proofFixture is a tree with signed checkpoints at random sizes.
type proofFixture struct {
	evs         []event
	tr          *integrity.Tree
	k           keys
	sizes       []int64
	checkpoints map[int64][]byte
}

func newProofFixture(t *testing.T, n int, rng *rand.Rand) proofFixture {
	f := proofFixture{evs: makeEvents(n), k: newKeys(t, "custody-test"), checkpoints: map[int64][]byte{}}
	f.tr = newTree(t, f.evs)
	for _, size := range append([]int64{1, 2, 3, 4, 8, 1024, int64(n - 1), int64(n)}, make([]int64, 56)...) {
		if size == 0 {
			size = 1 + rng.Int64N(int64(n))
		}
		if size <= int64(n) && f.checkpoints[size] == nil {
			f.checkpoints[size] = sign(t, f.tr, size, f.k)
			f.sizes = append(f.sizes, size)
		}
	}
	return f
}

// memoVerifier remembers each signature verdict, so that thousands of proofs over a few
// dozen checkpoints do not verify the same Ed25519 signature again (slow under -race).
type memoVerifier struct {
	note.Verifier
	seen map[string]bool
}

func (m memoVerifier) Verify(msg, sig []byte) bool {
	k := string(msg) + "\x00" + string(sig)
	ok, found := m.seen[k]
	if !found {
		ok = m.Verifier.Verify(msg, sig)
		m.seen[k] = ok
	}
	return ok
}

func TestInclusionProofs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	f := newProofFixture(t, 5000, rng)
	f.k.verifiers = note.VerifierList(memoVerifier{f.k.verifier, map[string]bool{}})
	proofs := 10_000
	if testing.Short() {
		proofs = 2_000
	}
	for range proofs {
		size := f.sizes[rng.IntN(len(f.sizes))]
		e := f.evs[rng.Int64N(size)]
		p, err := f.tr.ProveInclusion(e.seq, f.checkpoints[size])
		if err != nil {
			t.Fatal(err)
		}
		text, err := integrity.FormatInclusion(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := integrity.ParseInclusion(text)
		if err != nil {
			t.Fatalf("parse:\n%s\n%v", text, err)
		}
		c, err := integrity.CheckInclusion(q, f.k.verifiers)
		if err != nil {
			t.Fatalf("seq %d in %d: %v", e.seq, size, err)
		}
		if c.Size != size || q.Leaf != integrity.LeafHash(e.seq, e.subject, e.data) {
			t.Fatalf("seq %d: checkpoint %d, leaf %v", e.seq, c.Size, q.Leaf)
		}
		if !auditInclusion(q.Seq, c.Size, leafOracle(e), q.Hashes, c.Root) {
			t.Fatalf("seq %d in %d: the documented procedure rejects a good proof", e.seq, size)
		}
	}
}

func TestConsistencyProofs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := newProofFixture(t, 5000, rng)
	f.k.verifiers = note.VerifierList(memoVerifier{f.k.verifier, map[string]bool{}})
	for range 1000 {
		m, n := f.sizes[rng.IntN(len(f.sizes))], f.sizes[rng.IntN(len(f.sizes))]
		if m > n {
			m, n = n, m
		}
		p, err := f.tr.ProveConsistency(f.checkpoints[m], f.checkpoints[n])
		if err != nil {
			t.Fatal(err)
		}
		text, err := integrity.FormatConsistency(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := integrity.ParseConsistency(text)
		if err != nil {
			t.Fatalf("parse:\n%s\n%v", text, err)
		}
		old, cur, err := integrity.CheckConsistency(q, f.k.verifiers)
		if err != nil {
			t.Fatalf("%d to %d: %v", m, n, err)
		}
		if old.Size != m || cur.Size != n {
			t.Fatalf("checked %d to %d, want %d to %d", old.Size, cur.Size, m, n)
		}
		if !auditConsistency(m, n, old.Root, cur.Root, q.Hashes) {
			t.Fatalf("%d to %d: the documented procedure rejects a good proof", m, n)
		}
	}
}

func flipBit(hashes []tlog.Hash, i int) []tlog.Hash {
	out := append([]tlog.Hash(nil), hashes...)
	out[i][7] ^= 0x10
	return out
}

func TestTamperedInclusionProofsFail(t *testing.T) {
	f := newProofFixture(t, 1000, rand.New(rand.NewPCG(5, 6)))
	good, err := f.tr.ProveInclusion(300, f.checkpoints[1000])
	if err != nil {
		t.Fatal(err)
	}
	wrongRoot, err := integrity.Sign(origin, 1000, tlog.RecordHash([]byte("x")), f.k.signer)
	if err != nil {
		t.Fatal(err)
	}
	other := newKeys(t, "custody-test")
	tests := []struct {
		name   string
		tamper func(p *integrity.Inclusion)
		want   error
	}{
		{"flipped bit in the first hash", func(p *integrity.Inclusion) { p.Hashes = flipBit(p.Hashes, 0) }, integrity.ErrProof},
		{"flipped bit in the last hash", func(p *integrity.Inclusion) { p.Hashes = flipBit(p.Hashes, len(p.Hashes)-1) }, integrity.ErrProof},
		{"flipped bit in the leaf", func(p *integrity.Inclusion) { p.Leaf[0] ^= 1 }, integrity.ErrProof},
		{"wrong seq", func(p *integrity.Inclusion) { p.Seq = 301 }, integrity.ErrProof},
		{"seq past the size", func(p *integrity.Inclusion) { p.Seq = 1001 }, integrity.ErrProof},
		{"missing hash", func(p *integrity.Inclusion) { p.Hashes = p.Hashes[1:] }, integrity.ErrProof},
		{"extra hash", func(p *integrity.Inclusion) { p.Hashes = append(p.Hashes, p.Hashes[0]) }, integrity.ErrProof},
		{"checkpoint of another size", func(p *integrity.Inclusion) { p.Checkpoint = f.checkpoints[999] }, integrity.ErrProof},
		{"size edited in the checkpoint", func(p *integrity.Inclusion) {
			p.Checkpoint = bytes.Replace(p.Checkpoint, []byte("\n1000\n"), []byte("\n999\n"), 1)
		}, integrity.ErrBadSignature},
		{"validly signed wrong root", func(p *integrity.Inclusion) { p.Checkpoint = wrongRoot }, integrity.ErrProof},
		{"signed by an unknown key", func(p *integrity.Inclusion) {
			root, _ := f.tr.RootAt(1000)
			p.Checkpoint, _ = integrity.Sign(origin, 1000, root, other.signer)
		}, integrity.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			p.Hashes = append(tlog.RecordProof(nil), good.Hashes...)
			tt.tamper(&p)
			if text, err := integrity.FormatInclusion(p); err == nil {
				if q, err := integrity.ParseInclusion(text); err == nil {
					p = q
				}
			}
			_, err := integrity.CheckInclusion(p, f.k.verifiers)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckInclusion = %v, want %v", err, tt.want)
			}
			if c, _ := integrity.OpenCheckpoint(p.Checkpoint, f.k.verifiers); c.Size > 0 && p.Seq <= uint64(c.Size) &&
				auditInclusion(p.Seq, c.Size, p.Leaf, p.Hashes, c.Root) {
				t.Fatal("the documented procedure accepts a tampered proof")
			}
		})
	}
}

func TestTamperedConsistencyProofsFail(t *testing.T) {
	f := newProofFixture(t, 1000, rand.New(rand.NewPCG(7, 8)))
	good, err := f.tr.ProveConsistency(f.checkpoints[3], f.checkpoints[1000])
	if err != nil {
		t.Fatal(err)
	}
	wrongRoot, _ := integrity.Sign(origin, 1000, tlog.RecordHash([]byte("x")), f.k.signer)
	root, _ := f.tr.RootAt(1000)
	otherOrigin, _ := integrity.Sign("custody.test/OTHER", 1000, root, f.k.signer)
	tests := []struct {
		name   string
		tamper func(p *integrity.Consistency)
		want   error
	}{
		{"flipped bit in a hash", func(p *integrity.Consistency) { p.Hashes = flipBit(p.Hashes, 1) }, integrity.ErrProof},
		{"flipped bit in the last hash", func(p *integrity.Consistency) { p.Hashes = flipBit(p.Hashes, len(p.Hashes)-1) }, integrity.ErrProof},
		{"wrong old size", func(p *integrity.Consistency) { p.Old = f.checkpoints[4] }, integrity.ErrProof},
		{"wrong new size", func(p *integrity.Consistency) { p.New = f.checkpoints[999] }, integrity.ErrProof},
		{"validly signed wrong new root", func(p *integrity.Consistency) { p.New = wrongRoot }, integrity.ErrProof},
		{"old and new swapped", func(p *integrity.Consistency) { p.Old, p.New = p.New, p.Old }, integrity.ErrProof},
		{"another log", func(p *integrity.Consistency) { p.New = otherOrigin }, integrity.ErrProof},
		{"missing hash", func(p *integrity.Consistency) { p.Hashes = p.Hashes[:len(p.Hashes)-1] }, integrity.ErrProof},
		{"root edited in the old checkpoint", func(p *integrity.Consistency) {
			p.Old = bytes.Replace(p.Old, []byte("\n3\n"), []byte("\n2\n"), 1)
		}, integrity.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			p.Hashes = append(tlog.TreeProof(nil), good.Hashes...)
			tt.tamper(&p)
			_, _, err := integrity.CheckConsistency(p, f.k.verifiers)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckConsistency = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseProofsRejectMalformed(t *testing.T) {
	f := newProofFixture(t, 100, rand.New(rand.NewPCG(9, 10)))
	p, _ := f.tr.ProveInclusion(42, f.checkpoints[100])
	inc, _ := integrity.FormatInclusion(p)
	c, _ := f.tr.ProveConsistency(f.checkpoints[8], f.checkpoints[100])
	cons, _ := integrity.FormatConsistency(c)
	edit := func(text []byte, old, new string) []byte {
		if !bytes.Contains(text, []byte(old)) {
			t.Fatalf("%q not in\n%s", old, text)
		}
		return bytes.Replace(text, []byte(old), []byte(new), 1)
	}
	lines := strings.Split(string(inc), "\n")
	tests := []struct {
		name        string
		text        []byte
		consistency bool
	}{
		{"other header", edit(inc, "inclusion proof v1", "inclusion proof v2"), false},
		{"seq 0", edit(inc, "seq 42\n", "seq 0\n"), false},
		{"seq with leading zero", edit(inc, "seq 42\n", "seq 042\n"), false},
		{"no leaf line", edit(inc, "leaf ", "leef "), false},
		{"short hash", edit(inc, lines[4]+"\n", lines[4][:20]+"\n"), false},
		{"hash count too high", edit(inc, "hashes 7\n", "hashes 8\n"), false},
		{"hash count too low", edit(inc, "hashes 7\n", "hashes 6\n"), false},
		{"hash count huge", edit(inc, "hashes 7\n", "hashes 99999999\n"), false},
		{"checkpoint length too long", edit(inc, "checkpoint ", "checkpoint 1"), false},
		{"trailing bytes", append(bytes.Clone(inc), '\n'), false},
		{"truncated", inc[:len(inc)-10], false},
		{"empty", nil, false},
		{"consistency as inclusion", cons, false},
		{"inclusion as consistency", inc, true},
		{"no new checkpoint", cons[:bytes.Index(cons, []byte("new checkpoint"))], true},
		{"checkpoints unlabeled", edit(cons, "old checkpoint", "checkpoint"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.consistency {
				_, err = integrity.ParseConsistency(tt.text)
			} else {
				_, err = integrity.ParseInclusion(tt.text)
			}
			if !errors.Is(err, integrity.ErrMalformed) {
				t.Fatalf("parse = %v, want ErrMalformed", err)
			}
		})
	}
}
