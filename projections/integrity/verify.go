package integrity

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxListed bounds each list of sequences a Report keeps; counters hold the totals.
const maxListed = 100

// refChunk is how many reference leaf hashes the Verifier reads at once.
const refChunk = 4096

// VerifierConfig says what a Verifier checks the log against.
type VerifierConfig struct {
	// Keys verifies checkpoint signatures; include retired keys. Required.
	Keys note.Verifiers
	// Origin every checkpoint must name. Optional: when empty, the origin most
	// checkpoints name is expected of all.
	Origin string
	// Checkpoints to check, for example from ReadCheckpoints, in any order. Optional,
	// but without them nothing is authenticated: only gaps are found.
	Checkpoints []CheckpointFile
	// Reference is the integrity projector's tree, opened with OpenReadOnly. Optional:
	// with it, the first changed event is found exactly rather than bounded between two
	// checkpoints. It is trusted only up to the largest checkpoint whose signed root it
	// reproduces.
	Reference *Tree
}

// Validate reports a missing required field.
func (c VerifierConfig) Validate() error {
	if c.Keys == nil {
		return errors.New("verifier config: Keys is required")
	}
	return nil
}

// CheckpointStatus is the verdict on one checkpoint file.
type CheckpointStatus int

// Checkpoint verdicts. The list is append-only.
const (
	// CheckpointOK: the signature verifies and the log reproduces the signed root.
	CheckpointOK CheckpointStatus = iota
	// CheckpointMalformed: the file does not follow the checkpoint format.
	CheckpointMalformed
	// CheckpointUnknownKey: no signature by any of the given keys.
	CheckpointUnknownKey
	// CheckpointBadSignature: a signature by a known key fails.
	CheckpointBadSignature
	// CheckpointWrongOrigin: signed for another log.
	CheckpointWrongOrigin
	// CheckpointMisnamed: the size in the file name is not the signed size.
	CheckpointMisnamed
	// CheckpointWrongRoot: validly signed, but its root is contradicted by a larger
	// checkpoint that the log or the authenticated reference reproduces: the
	// checkpoint itself is wrong (a signing fault, or a signing key misused).
	CheckpointWrongRoot
	// CheckpointLogMismatch: the log does not reproduce the signed root, and nothing
	// larger contradicts the checkpoint: events at or below its size were changed.
	CheckpointLogMismatch
	// CheckpointBeyondLog: it signs more events than the log has: the tail is missing.
	CheckpointBeyondLog
)

var statusNames = [...]string{
	CheckpointOK:           "ok",
	CheckpointMalformed:    "malformed",
	CheckpointUnknownKey:   "not signed by a known key",
	CheckpointBadSignature: "bad signature",
	CheckpointWrongOrigin:  "wrong origin",
	CheckpointMisnamed:     "file name does not match the signed size",
	CheckpointWrongRoot:    "wrong root",
	CheckpointLogMismatch:  "log does not reproduce the root",
	CheckpointBeyondLog:    "log shorter than the checkpoint",
}

func (s CheckpointStatus) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("CheckpointStatus(%d)", int(s))
}

// CheckpointResult is the verdict on one checkpoint file.
type CheckpointResult struct {
	File     string // CheckpointFile.Name
	Size     int64  // the signed size; the size in the file name if unreadable or misnamed
	Status   CheckpointStatus
	Detail   string   // why, in words
	SignedBy []string // verified keys, as "name+keyhash"
	Err      error    // for the unreadable ones, the error of OpenCheckpoint
}

// Gap is a run of missing sequences, From to To inclusive.
type Gap struct{ From, To uint64 }

// Range bounds the first bad sequence: it is at least From and at most To. From == To
// is an exact answer; From == 0 means no bad sequence was found.
type Range struct{ From, To uint64 }

// Exact reports whether the range names one sequence.
func (r Range) Exact() bool { return r.From != 0 && r.From == r.To }

func (r Range) String() string {
	switch {
	case r.From == 0:
		return "none"
	case r.Exact():
		return fmt.Sprint(r.From)
	}
	return fmt.Sprintf("between %d and %d", r.From, r.To)
}

// ReferenceResult is what the comparison with the reference tree found.
type ReferenceResult struct {
	File string
	Size int64 // leaves in the reference tree
	// Authenticated is the largest checkpoint size whose signed root the reference
	// reproduces; the reference's first Authenticated leaves are the signed ones.
	Authenticated int64
	// Contradicted lists valid checkpoints whose signed root the reference does not
	// reproduce at their size.
	Contradicted []int64
	// Inconsistent is the first checkpoint size at which the file's stored root is not
	// the root of its leaf hashes (0: none): the file contradicts itself.
	Inconsistent int64
	// FirstDiff is the first sequence whose event differs from the reference leaf
	// (0: none); Diffs counts the differing leaves.
	FirstDiff uint64
	Diffs     int64
	Err       error // reading the reference failed; the comparison is incomplete
}

// Report is the outcome of a verification.
type Report struct {
	Events  int64  // events passed to Add
	Leaves  int64  // events in the recomputed tree (out-of-order and invalid ones are not)
	LastSeq uint64 // the last sequence added to the tree
	// FromReference counts the leaves taken from the reference tree by StartAt instead
	// of recomputed from the log.
	FromReference int64
	// Verified is the largest checkpoint size the log reproduces: events 1 to Verified
	// are exactly the signed ones.
	Verified int64
	// Gaps are runs of sequences missing from the log (first maxListed of GapCount).
	Gaps     []Gap
	GapCount int64
	// OutOfOrder are sequences that came at or below an earlier one, and were left out
	// of the tree (first maxListed of OutOfOrderCount).
	OutOfOrder      []uint64
	OutOfOrderCount int64
	// Invalid are events that cannot be leaves (sequence 0 or above MaxSize, subject
	// too long), left out of the tree (first maxListed of InvalidCount).
	Invalid      []uint64
	InvalidCount int64
	// Checkpoints has one verdict per checkpoint file, by size.
	Checkpoints []CheckpointResult
	// Reference is nil without a reference tree.
	Reference *ReferenceResult
	// FirstBad bounds the first sequence that is missing or differs from what was signed.
	// With an authenticated reference it is exact; without, a root mismatch at
	// checkpoint size S bounds it to the range after the last checkpoint the log
	// reproduces, up to S.
	FirstBad Range
}

// OK reports whether nothing is wrong: no gaps or out-of-order events, every checkpoint
// verified and reproduced, and no disagreement with the reference tree. A log with no
// checkpoints is OK only in the sense that nothing could be checked.
func (r *Report) OK() bool {
	if r.GapCount != 0 || r.OutOfOrderCount != 0 || r.InvalidCount != 0 || r.FirstBad.From != 0 {
		return false
	}
	for _, c := range r.Checkpoints {
		if c.Status != CheckpointOK {
			return false
		}
	}
	if ref := r.Reference; ref != nil {
		if ref.Err != nil || len(ref.Contradicted) != 0 || ref.Inconsistent != 0 || ref.FirstDiff != 0 || ref.Size > r.Leaves {
			return false
		}
	}
	return true
}

// String renders the report for a person, one finding per line.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log: %d events, %d in the tree, last seq %d\n", r.Events, r.Leaves, r.LastSeq)
	if r.FromReference > 0 {
		fmt.Fprintf(&b, "from reference: events 1 to %d were not read from the log; their leaves are the reference tree's\n", r.FromReference)
	}
	if r.Verified > 0 {
		fmt.Fprintf(&b, "verified: events 1 to %d are the signed ones\n", r.Verified)
	} else {
		b.WriteString("verified: no signed checkpoint is reproduced by the log\n")
	}
	for _, g := range r.Gaps {
		if g.From == g.To {
			fmt.Fprintf(&b, "gap: seq %d missing\n", g.From)
		} else {
			fmt.Fprintf(&b, "gap: seqs %d to %d missing\n", g.From, g.To)
		}
	}
	if n := r.GapCount - int64(len(r.Gaps)); n > 0 {
		fmt.Fprintf(&b, "gap: %d more\n", n)
	}
	if r.OutOfOrderCount > 0 {
		fmt.Fprintf(&b, "out of order: %d events, first seqs %v\n", r.OutOfOrderCount, r.OutOfOrder)
	}
	if r.InvalidCount > 0 {
		fmt.Fprintf(&b, "invalid: %d events, first seqs %v\n", r.InvalidCount, r.Invalid)
	}
	for _, c := range r.Checkpoints {
		if c.Status != CheckpointOK {
			fmt.Fprintf(&b, "checkpoint %d (%s): %s: %s\n", c.Size, c.File, c.Status, c.Detail)
		}
	}
	if ref := r.Reference; ref != nil {
		fmt.Fprintf(&b, "reference %s: %d leaves, authenticated up to %d\n", ref.File, ref.Size, ref.Authenticated)
		if ref.Err != nil {
			fmt.Fprintf(&b, "reference: read failed: %v\n", ref.Err)
		}
		if ref.Inconsistent != 0 {
			fmt.Fprintf(&b, "reference: the file's stored root at %d is not the root of its leaves\n", ref.Inconsistent)
		}
		if len(ref.Contradicted) > 0 {
			fmt.Fprintf(&b, "reference: does not reproduce the signed roots at sizes %v\n", ref.Contradicted)
		}
		if ref.FirstDiff != 0 {
			fmt.Fprintf(&b, "reference: %d events differ, the first seq %d\n", ref.Diffs, ref.FirstDiff)
		}
		if ref.Size > r.Leaves {
			fmt.Fprintf(&b, "reference: the log ends %d events before the reference tree (seqs %d to %d missing)\n", ref.Size-r.Leaves, r.LastSeq+1, ref.Size)
		}
	}
	if r.FirstBad.From != 0 {
		fmt.Fprintf(&b, "first bad seq: %s\n", r.FirstBad)
	}
	if r.OK() {
		b.WriteString("OK\n")
	} else {
		b.WriteString("NOT OK\n")
	}
	return b.String()
}

// Verifier recomputes the Merkle tree of a log from its stored events and checks it
// against signed checkpoints and, optionally, a reference tree. Give it every stored
// event in sequence order with Add, then call Result. It is not safe for concurrent use.
type Verifier struct {
	cfg     VerifierConfig
	results []CheckpointResult
	valid   []*checkpointState // by size
	next    int                // the first of valid not yet reached by the log

	leaf   leafHasher
	tree   frontier // the recomputed tree
	report Report

	ref      *Tree
	refBuf   []tlog.Hash
	refStart int64 // position of refBuf[0]
}

type checkpointState struct {
	result   int // index in results
	c        Checkpoint
	logRoot  tlog.Hash
	reached  bool // the log reached its size
	logMatch bool
	refMatch bool // the reference reproduces its root
}

// frontier holds the complete subtrees of a tree being built from its leaves, largest
// first: enough to compute its root, in O(log n) memory.
type frontier []node

type node struct {
	h     tlog.Hash
	level int
}

// NewVerifier opens and checks every checkpoint, and authenticates the reference tree
// against them.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, ref: cfg.Reference}
	var opened []*checkpointState
	origins := map[string]int{}
	for _, f := range cfg.Checkpoints {
		r := CheckpointResult{File: f.Name, Size: f.Size}
		c, err := OpenCheckpoint(f.Signed, cfg.Keys)
		switch {
		case err == nil:
			r.Size, r.SignedBy = c.Size, c.SignedBy
			opened = append(opened, &checkpointState{result: len(v.results), c: c})
			origins[c.Origin]++
		case errors.Is(err, ErrUnknownKey):
			r.Status, r.Err, r.Detail = CheckpointUnknownKey, err, err.Error()
		case errors.Is(err, ErrBadSignature):
			r.Status, r.Err, r.Detail = CheckpointBadSignature, err, err.Error()
		case errors.Is(err, ErrMalformed):
			r.Status, r.Err, r.Detail = CheckpointMalformed, err, err.Error()
		default:
			return nil, fmt.Errorf("new verifier: checkpoint %s: %w", f.Name, err)
		}
		v.results = append(v.results, r)
	}
	origin := cfg.Origin
	if origin == "" {
		for o, n := range origins {
			if n > origins[origin] || n == origins[origin] && o < origin {
				origin = o
			}
		}
	}
	for _, s := range opened {
		r := &v.results[s.result]
		switch {
		case s.c.Origin != origin:
			r.Status, r.Detail = CheckpointWrongOrigin, fmt.Sprintf("origin %q, want %q", s.c.Origin, origin)
		case s.c.Size != cfg.Checkpoints[s.result].Size:
			r.Size = cfg.Checkpoints[s.result].Size
			r.Status, r.Detail = CheckpointMisnamed, fmt.Sprintf("signs size %d, named %d", s.c.Size, r.Size)
		default:
			v.valid = append(v.valid, s)
		}
	}
	slices.SortStableFunc(v.valid, func(a, b *checkpointState) int { return cmp.Compare(a.c.Size, b.c.Size) })
	if v.ref != nil {
		if err := v.authenticate(); err != nil {
			return nil, fmt.Errorf("new verifier: reference %s: %w", v.ref.Path(), err)
		}
	}
	v.reach()
	return v, nil
}

// authenticate recomputes the reference tree from its leaf hashes and compares its root
// at each checkpoint size with the signed root: a match proves every reference leaf up to
// that size. (Comparing the file's stored roots alone would not: a stored root covers
// leaf hashes that an altered file could contradict.) A stored root that differs from
// the one recomputed from the leaves means the file contradicts itself.
func (v *Verifier) authenticate() error {
	ref := &ReferenceResult{File: v.ref.Path(), Size: v.ref.Size()}
	v.report.Reference = ref
	var f frontier
	next := 0
	check := func(size int64) error {
		for ; next < len(v.valid) && v.valid[next].c.Size == size; next++ {
			s := v.valid[next]
			s.refMatch = f.root() == s.c.Root
			if s.refMatch {
				ref.Authenticated = max(ref.Authenticated, size)
			} else {
				ref.Contradicted = append(ref.Contradicted, size)
			}
			stored, err := v.ref.RootAt(size)
			if err != nil {
				return err
			}
			if stored != f.root() && ref.Inconsistent == 0 {
				ref.Inconsistent = size
			}
		}
		return nil
	}
	if err := check(0); err != nil {
		return err
	}
	for from := int64(0); from < ref.Size; from += refChunk {
		hashes, err := v.ref.leafHashes(from, min(from+refChunk, ref.Size))
		if err != nil {
			return err
		}
		for i, h := range hashes {
			f.push(h)
			if err := check(from + int64(i) + 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// StartAt begins the verification of the log at seq: the leaves before it are taken
// from the reference tree, which NewVerifier authenticated against the checkpoints,
// instead of recomputed from the log. Call it before the first Add.
func (v *Verifier) StartAt(seq uint64) error {
	n := int64(seq) - 1
	switch {
	case v.ref == nil:
		return fmt.Errorf("start at seq %d: a reference tree is required", seq)
	case v.report.Events > 0 || v.report.Leaves > 0:
		return fmt.Errorf("start at seq %d: events were added already", seq)
	case n < 0 || n > v.ref.Size():
		return fmt.Errorf("start at seq %d: the reference tree has %d leaves: %w", seq, v.ref.Size(), ErrRange)
	}
	for from := int64(0); from < n; from += refChunk {
		hashes, err := v.ref.leafHashes(from, min(from+refChunk, n))
		if err != nil {
			return fmt.Errorf("start at seq %d: %w", seq, err)
		}
		for _, h := range hashes {
			v.tree.push(h)
			v.report.Leaves++
			v.reach()
		}
	}
	v.report.LastSeq, v.report.FromReference = uint64(n), n
	return nil
}

// Add gives the Verifier the next stored event of the log. A gap, a repeat or an event
// out of order is recorded in the report, never returned: verification goes on.
func (v *Verifier) Add(seq uint64, subject string, data []byte) {
	r := &v.report
	r.Events++
	if checkLeaf(seq, subject) != nil {
		r.InvalidCount++
		if len(r.Invalid) < maxListed {
			r.Invalid = append(r.Invalid, seq)
		}
		return
	}
	want := r.LastSeq + 1
	switch {
	case seq < want:
		r.OutOfOrderCount++
		if len(r.OutOfOrder) < maxListed {
			r.OutOfOrder = append(r.OutOfOrder, seq)
		}
		return
	case seq > want:
		r.GapCount++
		if len(r.Gaps) < maxListed {
			r.Gaps = append(r.Gaps, Gap{From: want, To: seq - 1})
		}
	}
	r.LastSeq = seq
	h := v.leaf.hash(seq, subject, data)
	v.compareReference(r.Leaves, h)
	v.tree.push(h)
	r.Leaves++
	v.reach()
}

// compareReference compares the leaf at position pos with the reference tree's.
func (v *Verifier) compareReference(pos int64, h tlog.Hash) {
	ref := v.report.Reference
	if ref == nil || ref.Err != nil || pos >= ref.Size {
		return
	}
	if pos < v.refStart || pos >= v.refStart+int64(len(v.refBuf)) {
		hashes, err := v.ref.leafHashes(pos, min(pos+refChunk, ref.Size))
		if err != nil {
			ref.Err = err
			return
		}
		v.refBuf, v.refStart = hashes, pos
	}
	if v.refBuf[pos-v.refStart] != h {
		ref.Diffs++
		if ref.FirstDiff == 0 {
			ref.FirstDiff = uint64(pos) + 1
		}
	}
}

// push appends a leaf hash, merging equal-sized subtrees.
func (f *frontier) push(h tlog.Hash) {
	*f = append(*f, node{h: h})
	for n := len(*f); n >= 2 && (*f)[n-2].level == (*f)[n-1].level; n-- {
		l, r := (*f)[n-2], (*f)[n-1]
		*f = append((*f)[:n-2], node{h: tlog.NodeHash(l.h, r.h), level: l.level + 1})
	}
}

// root is the tree's root: the complete subtrees folded from the right, as RFC 6962
// defines it.
func (f frontier) root() tlog.Hash {
	if len(f) == 0 {
		h, _ := tlog.TreeHash(0, nil)
		return h
	}
	h := f[len(f)-1].h
	for i := len(f) - 2; i >= 0; i-- {
		h = tlog.NodeHash(f[i].h, h)
	}
	return h
}

// reach checks the checkpoints of the tree's current size.
func (v *Verifier) reach() {
	for v.next < len(v.valid) && v.valid[v.next].c.Size <= v.report.Leaves {
		s := v.valid[v.next]
		s.reached = true
		s.logRoot = v.tree.root()
		s.logMatch = s.logRoot == s.c.Root
		v.next++
	}
}

// Result returns the report on the events added so far. It can be called again after
// more events are added.
func (v *Verifier) Result() Report {
	r := v.report // a copy; lists are cloned where they are appended to later
	r.Gaps, r.OutOfOrder, r.Invalid = slices.Clone(r.Gaps), slices.Clone(r.OutOfOrder), slices.Clone(r.Invalid)
	if v.report.Reference != nil {
		ref := *v.report.Reference
		r.Reference = &ref
	}
	r.Checkpoints = slices.Clone(v.results)

	const none = ^uint64(0)
	upper := none // the least sequence known to be bad
	bad := func(seq uint64) { upper = min(upper, seq) }
	if len(r.Gaps) > 0 {
		bad(r.Gaps[0].From)
	}
	if ref := r.Reference; ref != nil && ref.FirstDiff != 0 && ref.FirstDiff <= uint64(ref.Authenticated) {
		bad(ref.FirstDiff)
	}
	for _, s := range v.valid {
		res := &r.Checkpoints[s.result]
		switch {
		case !s.reached:
			res.Status = CheckpointBeyondLog
			res.Detail = fmt.Sprintf("signs %d events, the log has %d: the tail from seq %d is missing", s.c.Size, r.Leaves, r.Leaves+1)
			bad(uint64(r.Leaves) + 1)
		case s.logMatch:
			res.Status, res.Detail = CheckpointOK, ""
			r.Verified = max(r.Verified, s.c.Size)
		case s.refMatch:
			res.Status = CheckpointLogMismatch
			res.Detail = fmt.Sprintf("the log's root at %d is %s, signed %s; the reference tree reproduces the signed root", s.c.Size, s.logRoot, s.c.Root)
			bad(uint64(s.c.Size))
		default:
			if by := v.contradictedBy(s); by != nil {
				res.Status = CheckpointWrongRoot
				res.Detail = fmt.Sprintf("signed root %s; the larger checkpoint %d (%s), which the log or the reference reproduces, contradicts it", s.c.Root, by.c.Size, r.Checkpoints[by.result].File)
				continue
			}
			res.Status = CheckpointLogMismatch
			res.Detail = fmt.Sprintf("the log's root at %d is %s, signed %s: an event at or below seq %d differs", s.c.Size, s.logRoot, s.c.Root, s.c.Size)
			bad(uint64(s.c.Size))
		}
	}
	if upper == none {
		return r
	}
	// The first bad sequence is after the longest prefix known good.
	var good uint64
	for _, s := range v.valid {
		if s.reached && s.logMatch && uint64(s.c.Size) < upper {
			good = max(good, uint64(s.c.Size))
		}
	}
	if ref := r.Reference; ref != nil && ref.Err == nil {
		clean := uint64(min(ref.Authenticated, r.Leaves))
		if ref.FirstDiff != 0 {
			clean = min(clean, ref.FirstDiff-1)
		}
		good = max(good, min(clean, upper-1))
	}
	r.FirstBad = Range{From: good + 1, To: upper}
	return r
}

// contradictedBy returns another valid checkpoint at least as large as s whose root the
// log or the reference reproduces, if there is one.
func (v *Verifier) contradictedBy(s *checkpointState) *checkpointState {
	for _, o := range v.valid {
		if o != s && o.c.Size >= s.c.Size && (o.reached && o.logMatch || o.refMatch) {
			return o
		}
	}
	return nil
}
