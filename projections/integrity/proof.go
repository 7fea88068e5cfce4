package integrity

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Header lines of the proof formats.
const (
	inclusionHeader   = "custody inclusion proof v1"
	consistencyHeader = "custody consistency proof v1"
)

// maxProofHashes bounds the hashes of a proof: at most 48 for an inclusion proof and 96
// for a consistency proof in trees of up to MaxSize leaves.
const maxProofHashes = 128

// Inclusion proves that the event of sequence Seq, whose leaf hash is Leaf, is in the
// tree a signed checkpoint commits to. It holds no event content.
type Inclusion struct {
	Seq        uint64
	Leaf       tlog.Hash        // LeafHash(seq, subject, data) of the event
	Hashes     tlog.RecordProof // the RFC 6962 audit path, deepest sibling first
	Checkpoint []byte           // the signed checkpoint
}

// Consistency proves that the tree of the Old checkpoint is a prefix of the tree of the
// New one: no event signed for earlier was changed or removed later.
type Consistency struct {
	Hashes   tlog.TreeProof // the RFC 6962 consistency proof
	Old, New []byte         // the signed checkpoints, Old the smaller
}

// ProveInclusion returns the inclusion proof of the event of sequence seq in the tree
// that the signed checkpoint names. The checkpoint's root must be this tree's root at
// its size (ErrRootMismatch otherwise); its signatures are not checked here.
func (t *Tree) ProveInclusion(seq uint64, checkpoint []byte) (Inclusion, error) {
	c, err := t.matchCheckpoint(checkpoint)
	if err != nil {
		return Inclusion{}, fmt.Errorf("prove inclusion of seq %d: %w", seq, err)
	}
	hashes, err := t.InclusionProof(seq, c.Size)
	if err != nil {
		return Inclusion{}, fmt.Errorf("prove inclusion: %w", err)
	}
	leaf, err := t.LeafHash(seq)
	if err != nil {
		return Inclusion{}, fmt.Errorf("prove inclusion: %w", err)
	}
	return Inclusion{Seq: seq, Leaf: leaf, Hashes: hashes, Checkpoint: bytes.Clone(checkpoint)}, nil
}

// ProveConsistency returns the consistency proof between two signed checkpoints of this
// tree, old no larger than new. Both roots must be this tree's (ErrRootMismatch
// otherwise).
func (t *Tree) ProveConsistency(old, new []byte) (Consistency, error) {
	o, err := t.matchCheckpoint(old)
	if err != nil {
		return Consistency{}, fmt.Errorf("prove consistency: old: %w", err)
	}
	n, err := t.matchCheckpoint(new)
	if err != nil {
		return Consistency{}, fmt.Errorf("prove consistency: new: %w", err)
	}
	hashes, err := t.ConsistencyProof(o.Size, n.Size)
	if err != nil {
		return Consistency{}, fmt.Errorf("prove consistency: %w", err)
	}
	return Consistency{Hashes: hashes, Old: bytes.Clone(old), New: bytes.Clone(new)}, nil
}

// matchCheckpoint parses a signed checkpoint without checking signatures and checks its
// root against the tree.
func (t *Tree) matchCheckpoint(signed []byte) (Checkpoint, error) {
	text, _, err := splitNote(signed)
	if err != nil {
		return Checkpoint{}, err
	}
	c, err := parseCheckpoint(text)
	if err != nil {
		return Checkpoint{}, err
	}
	root, err := t.RootAt(c.Size)
	if err != nil {
		return Checkpoint{}, err
	}
	if root != c.Root {
		return Checkpoint{}, fmt.Errorf("checkpoint %d: %w", c.Size, ErrRootMismatch)
	}
	return c, nil
}

// CheckInclusion verifies an inclusion proof offline: the checkpoint's signature with
// keys (as OpenCheckpoint), then that Hashes lead from Leaf at index Seq-1 to the
// checkpoint's root (tlog.CheckRecord). It returns the checkpoint. The caller compares
// Leaf with LeafHash of the event it holds, and the checkpoint's Origin with the log it
// expects. A proof that does not lead to the root is ErrProof.
func CheckInclusion(p Inclusion, keys note.Verifiers) (Checkpoint, error) {
	c, err := OpenCheckpoint(p.Checkpoint, keys)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("check inclusion of seq %d: %w", p.Seq, err)
	}
	if p.Seq == 0 || p.Seq > uint64(c.Size) {
		return Checkpoint{}, fmt.Errorf("check inclusion of seq %d: not in a tree of size %d: %w", p.Seq, c.Size, ErrProof)
	}
	if err := tlog.CheckRecord(p.Hashes, c.Size, c.Root, int64(p.Seq-1), p.Leaf); err != nil {
		return Checkpoint{}, fmt.Errorf("check inclusion of seq %d in size %d: %w", p.Seq, c.Size, ErrProof)
	}
	return c, nil
}

// CheckConsistency verifies a consistency proof offline: both checkpoints' signatures
// with keys, the same origin, old size <= new size, then that Hashes connect the two
// roots (tlog.CheckTree). A proof that does not is ErrProof.
func CheckConsistency(p Consistency, keys note.Verifiers) (old, new Checkpoint, err error) {
	if old, err = OpenCheckpoint(p.Old, keys); err != nil {
		return Checkpoint{}, Checkpoint{}, fmt.Errorf("check consistency: old: %w", err)
	}
	if new, err = OpenCheckpoint(p.New, keys); err != nil {
		return Checkpoint{}, Checkpoint{}, fmt.Errorf("check consistency: new: %w", err)
	}
	fail := func(why string) (Checkpoint, Checkpoint, error) {
		return Checkpoint{}, Checkpoint{}, fmt.Errorf("check consistency from %d to %d: %s: %w", old.Size, new.Size, why, ErrProof)
	}
	switch {
	case old.Origin != new.Origin:
		return fail(fmt.Sprintf("origins %q and %q differ", old.Origin, new.Origin))
	case old.Size > new.Size:
		return fail("old checkpoint is larger")
	case old.Size == 0:
		// The empty tree is a prefix of every tree; its root is SHA-256 of nothing.
		if empty, _ := tlog.TreeHash(0, nil); old.Root != empty || len(p.Hashes) != 0 {
			return fail("bad proof from the empty tree")
		}
		return old, new, nil
	}
	if err := tlog.CheckTree(p.Hashes, new.Size, new.Root, old.Size, old.Root); err != nil {
		return fail("hashes do not connect the roots")
	}
	return old, new, nil
}

// FormatInclusion returns the text form of an inclusion proof (see the package
// documentation).
func FormatInclusion(p Inclusion) ([]byte, error) {
	if p.Seq == 0 || p.Seq > MaxSize || len(p.Hashes) > maxProofHashes || len(p.Checkpoint) == 0 {
		return nil, fmt.Errorf("format inclusion proof of seq %d: %w", p.Seq, ErrMalformed)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nseq %d\nleaf %s\n", inclusionHeader, p.Seq, p.Leaf)
	writeHashes(&b, p.Hashes)
	fmt.Fprintf(&b, "checkpoint %d\n", len(p.Checkpoint))
	b.Write(p.Checkpoint)
	return b.Bytes(), nil
}

// ParseInclusion parses the text form of an inclusion proof strictly. It does not
// verify it; CheckInclusion does.
func ParseInclusion(text []byte) (Inclusion, error) {
	r := proofReader{rest: text}
	var p Inclusion
	r.header(inclusionHeader)
	p.Seq = uint64(r.number("seq"))
	p.Leaf = r.hash("leaf")
	p.Hashes = r.hashes()
	p.Checkpoint = r.checkpoint("checkpoint")
	r.end()
	if r.err == nil && p.Seq == 0 {
		r.err = fmt.Errorf("seq 0: %w", ErrMalformed)
	}
	if r.err != nil {
		return Inclusion{}, fmt.Errorf("parse inclusion proof: %w", r.err)
	}
	return p, nil
}

// FormatConsistency returns the text form of a consistency proof (see the package
// documentation).
func FormatConsistency(p Consistency) ([]byte, error) {
	if len(p.Hashes) > maxProofHashes || len(p.Old) == 0 || len(p.New) == 0 {
		return nil, fmt.Errorf("format consistency proof: %w", ErrMalformed)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n", consistencyHeader)
	writeHashes(&b, p.Hashes)
	fmt.Fprintf(&b, "old checkpoint %d\n", len(p.Old))
	b.Write(p.Old)
	fmt.Fprintf(&b, "new checkpoint %d\n", len(p.New))
	b.Write(p.New)
	return b.Bytes(), nil
}

// ParseConsistency parses the text form of a consistency proof strictly. It does not
// verify it; CheckConsistency does.
func ParseConsistency(text []byte) (Consistency, error) {
	r := proofReader{rest: text}
	var p Consistency
	r.header(consistencyHeader)
	p.Hashes = r.hashes()
	p.Old = r.checkpoint("old checkpoint")
	p.New = r.checkpoint("new checkpoint")
	r.end()
	if r.err != nil {
		return Consistency{}, fmt.Errorf("parse consistency proof: %w", r.err)
	}
	return p, nil
}

func writeHashes(b *bytes.Buffer, hashes []tlog.Hash) {
	fmt.Fprintf(b, "hashes %d\n", len(hashes))
	for _, h := range hashes {
		fmt.Fprintf(b, "%s\n", h)
	}
}

// proofReader reads a proof's lines; the first error stops it.
type proofReader struct {
	rest []byte
	line int
	err  error
}

func (r *proofReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("line %d: %s: %w", r.line, fmt.Sprintf(format, args...), ErrMalformed)
	}
}

func (r *proofReader) next() string {
	if r.err != nil {
		return ""
	}
	r.line++
	i := bytes.IndexByte(r.rest, '\n')
	if i < 0 {
		r.fail("missing line")
		return ""
	}
	s := string(r.rest[:i])
	r.rest = r.rest[i+1:]
	return s
}

func (r *proofReader) header(want string) {
	if len(r.rest) > 64<<10 {
		r.fail("proof over 64 KiB")
	}
	if got := r.next(); r.err == nil && got != want {
		r.fail("want %q", want)
	}
}

// number reads "<key> <decimal>".
func (r *proofReader) number(key string) int64 {
	s, ok := strings.CutPrefix(r.next(), key+" ")
	if r.err != nil {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if !ok || err != nil || n < 0 || n > MaxSize || strconv.FormatInt(n, 10) != s {
		r.fail("want %q and a canonical decimal", key)
		return 0
	}
	return n
}

// hash reads "<key> <base64>".
func (r *proofReader) hash(key string) tlog.Hash {
	s, ok := strings.CutPrefix(r.next(), key+" ")
	if r.err != nil {
		return tlog.Hash{}
	}
	h, err := parseHash(s)
	if !ok || err != nil {
		r.fail("want %q and a base64 hash", key)
	}
	return h
}

// hashes reads "hashes <n>" and n lines of base64.
func (r *proofReader) hashes() []tlog.Hash {
	n := r.number("hashes")
	if r.err == nil && n > maxProofHashes {
		r.fail("%d hashes, over %d", n, maxProofHashes)
	}
	out := make([]tlog.Hash, 0, min(n, maxProofHashes))
	for range n {
		s := r.next()
		if r.err != nil {
			return nil
		}
		h, err := parseHash(s)
		if err != nil {
			r.fail("want a base64 hash")
			return nil
		}
		out = append(out, h)
	}
	return out
}

// checkpoint reads "<key> <bytes>" and that many bytes.
func (r *proofReader) checkpoint(key string) []byte {
	n := r.number(key)
	if r.err != nil {
		return nil
	}
	if n == 0 || n > maxCheckpoint || n > int64(len(r.rest)) {
		r.fail("checkpoint of %d bytes, %d left", n, len(r.rest))
		return nil
	}
	c := bytes.Clone(r.rest[:n])
	r.rest = r.rest[n:]
	r.line += bytes.Count(c, []byte("\n"))
	return c
}

func (r *proofReader) end() {
	if r.err == nil && len(r.rest) != 0 {
		r.fail("%d bytes after the proof", len(r.rest))
	}
}
