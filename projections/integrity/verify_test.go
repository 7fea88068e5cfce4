package integrity_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custody/custody/projections/integrity"
)

// logFixture is a log of n events, its tree, and checkpoints at every n/8 up to 7n/8
// and at 19n/20, so that the last n/20 events are not yet signed.
type logFixture struct {
	n       int
	evs     []event
	tree    string // the reference tree file
	k       keys
	sizes   []int64
	signed  []integrity.CheckpointFile
	treeObj *integrity.Tree
}

func newLogFixture(t *testing.T, n int) *logFixture {
	f := &logFixture{n: n, evs: makeEvents(n), k: newKeys(t, "custody-test")}
	f.treeObj = newTree(t, f.evs)
	f.tree = f.treeObj.Path()
	dir := t.TempDir()
	for i := 1; i <= 7; i++ {
		f.sizes = append(f.sizes, int64(n/8*i))
	}
	f.sizes = append(f.sizes, int64(n/20*19))
	for _, size := range f.sizes {
		if _, err := integrity.WriteCheckpoint(dir, sign(t, f.treeObj, size, f.k)); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if f.signed, err = integrity.ReadCheckpoints(dir); err != nil {
		t.Fatal(err)
	}
	return f
}

// replace returns the checkpoint files with the one of size replaced by content.
func (f *logFixture) replace(size int64, content []byte) []integrity.CheckpointFile {
	out := slices.Clone(f.signed)
	for i := range out {
		if out[i].Size == size {
			out[i].Signed = content
		}
	}
	return out
}

func (f *logFixture) file(size int64) string {
	for _, c := range f.signed {
		if c.Size == size {
			return c.Name
		}
	}
	return ""
}

// want is what a scenario's report must say.
type want struct {
	firstBad integrity.Range
	gaps     []integrity.Gap
	bad      map[int64]integrity.CheckpointStatus // checkpoints not OK, by size
	ok       bool
	refDiff  uint64 // with the reference: its first differing sequence
}

// scenario is a way a log, its checkpoints or its reference tree can be damaged, and
// what the report must say about it.
type scenario struct {
	name        string
	events      func([]event) []event
	checkpoints []integrity.CheckpointFile
	reference   func(t *testing.T) string // a tampered reference tree file
	withRef     want
	withoutRef  want
}

func scenarios(t *testing.T, f *logFixture) []scenario {
	n := uint64(f.n)
	s := f.sizes // s[0] = n/8, ..., s[6] = 7n/8, s[7] = 19n/20
	u := func(i int) uint64 { return uint64(s[i]) }
	// Positions of the tampering: between two checkpoints.
	flip, drop, swapA, swapB := u(1)+n/40, u(2)+n/100, u(0)+n/50, u(4)+n/50
	mismatchFrom := func(i int) map[int64]integrity.CheckpointStatus {
		m := map[int64]integrity.CheckpointStatus{}
		for _, size := range s[i:] {
			m[size] = integrity.CheckpointLogMismatch
		}
		return m
	}
	other := newKeys(t, "custody-test")
	rootMid, _ := f.treeObj.RootAt(s[3])
	wrongKey, _ := integrity.Sign(origin, s[3], rootMid, other.signer)
	wrongRootMid, _ := integrity.Sign(origin, s[3], tlog.RecordHash([]byte("forged")), f.k.signer)
	wrongRootLast, _ := integrity.Sign(origin, s[7], tlog.RecordHash([]byte("forged")), f.k.signer)
	edited := bytes.Replace(f.signed[3].Signed, []byte(rootMid.String()), []byte(tlog.RecordHash(nil).String()), 1)

	return []scenario{
		{
			name:       "untouched",
			withRef:    want{ok: true},
			withoutRef: want{ok: true},
		},
		{
			name: "one byte flipped",
			events: func(evs []event) []event {
				evs[flip-1].data = bytes.Clone(evs[flip-1].data)
				evs[flip-1].data[40] ^= 0x01
				return evs
			},
			withRef:    want{firstBad: integrity.Range{From: flip, To: flip}, refDiff: flip, bad: mismatchFrom(2)},
			withoutRef: want{firstBad: integrity.Range{From: u(1) + 1, To: u(2)}, bad: mismatchFrom(2)},
		},
		{
			name:       "one event dropped, a gap in sequences",
			events:     func(evs []event) []event { return slices.Delete(evs, int(drop-1), int(drop)) },
			withRef:    want{firstBad: integrity.Range{From: drop, To: drop}, gaps: []integrity.Gap{{drop, drop}}, refDiff: drop, bad: mismatchFrom(3)},
			withoutRef: want{firstBad: integrity.Range{From: u(2) + 1, To: drop}, gaps: []integrity.Gap{{drop, drop}}, bad: mismatchFrom(3)},
		},
		{
			name: "one event dropped, later events renumbered",
			events: func(evs []event) []event {
				evs = slices.Delete(evs, int(drop-1), int(drop))
				for i := int(drop - 1); i < len(evs); i++ {
					evs[i].seq--
				}
				return evs
			},
			withRef:    want{firstBad: integrity.Range{From: drop, To: drop}, refDiff: drop, bad: mismatchFrom(3)},
			withoutRef: want{firstBad: integrity.Range{From: u(2) + 1, To: u(3)}, bad: mismatchFrom(3)},
		},
		{
			name: "two events swapped",
			events: func(evs []event) []event {
				a, b := &evs[swapA-1], &evs[swapB-1]
				a.subject, a.data, b.subject, b.data = b.subject, b.data, a.subject, a.data
				return evs
			},
			withRef:    want{firstBad: integrity.Range{From: swapA, To: swapA}, refDiff: swapA, bad: mismatchFrom(1)},
			withoutRef: want{firstBad: integrity.Range{From: u(0) + 1, To: u(1)}, bad: mismatchFrom(1)},
		},
		{
			name:       "tail truncated before the last checkpoint",
			events:     func(evs []event) []event { return evs[:u(6)+n/50] },
			withRef:    want{firstBad: integrity.Range{From: u(6) + n/50 + 1, To: u(6) + n/50 + 1}, bad: map[int64]integrity.CheckpointStatus{s[7]: integrity.CheckpointBeyondLog}},
			withoutRef: want{firstBad: integrity.Range{From: u(6) + 1, To: u(6) + n/50 + 1}, bad: map[int64]integrity.CheckpointStatus{s[7]: integrity.CheckpointBeyondLog}},
		},
		{
			// Unsigned events can only be missed against a longer reference tree.
			name:       "tail truncated after the last checkpoint",
			events:     func(evs []event) []event { return evs[:u(7)+n/100] },
			withRef:    want{},
			withoutRef: want{ok: true},
		},
		{
			name:        "checkpoint signed with a wrong key",
			checkpoints: f.replace(s[3], wrongKey),
			withRef:     want{bad: map[int64]integrity.CheckpointStatus{s[3]: integrity.CheckpointUnknownKey}},
			withoutRef:  want{bad: map[int64]integrity.CheckpointStatus{s[3]: integrity.CheckpointUnknownKey}},
		},
		{
			name:        "checkpoint root edited after signing",
			checkpoints: f.replace(s[3], edited),
			withRef:     want{bad: map[int64]integrity.CheckpointStatus{s[3]: integrity.CheckpointBadSignature}},
			withoutRef:  want{bad: map[int64]integrity.CheckpointStatus{s[3]: integrity.CheckpointBadSignature}},
		},
		{
			name:        "checkpoint signed with a wrong root",
			checkpoints: f.replace(s[3], wrongRootMid),
			withRef:     want{bad: map[int64]integrity.CheckpointStatus{s[3]: integrity.CheckpointWrongRoot}},
			withoutRef:  want{bad: map[int64]integrity.CheckpointStatus{s[3]: integrity.CheckpointWrongRoot}},
		},
		{
			// Nothing larger contradicts the last checkpoint: the log is suspected.
			name:        "last checkpoint signed with a wrong root",
			checkpoints: f.replace(s[7], wrongRootLast),
			withRef:     want{firstBad: integrity.Range{From: u(6) + 1, To: u(7)}, bad: map[int64]integrity.CheckpointStatus{s[7]: integrity.CheckpointLogMismatch}},
			withoutRef:  want{firstBad: integrity.Range{From: u(6) + 1, To: u(7)}, bad: map[int64]integrity.CheckpointStatus{s[7]: integrity.CheckpointLogMismatch}},
		},
		{
			name:        "malformed checkpoint file",
			checkpoints: f.replace(s[5], []byte("not a checkpoint\n")),
			withRef:     want{bad: map[int64]integrity.CheckpointStatus{s[5]: integrity.CheckpointMalformed}},
			withoutRef:  want{bad: map[int64]integrity.CheckpointStatus{s[5]: integrity.CheckpointMalformed}},
		},
		{
			name:        "checkpoint file renamed",
			checkpoints: f.replace(s[5], f.signed[4].Signed),
			withRef:     want{bad: map[int64]integrity.CheckpointStatus{s[5]: integrity.CheckpointMisnamed}},
			withoutRef:  want{bad: map[int64]integrity.CheckpointStatus{s[5]: integrity.CheckpointMisnamed}},
		},
		{
			name: "event repeated",
			events: func(evs []event) []event {
				return slices.Insert(evs, int(flip), evs[flip-1])
			},
			withRef:    want{},
			withoutRef: want{},
		},
		{
			// The log is intact; the reference is not, and is trusted only below.
			name: "reference tree tampered",
			reference: func(t *testing.T) string {
				b, err := os.ReadFile(f.tree)
				if err != nil {
					t.Fatal(err)
				}
				b[tlog.StoredHashIndex(0, int64(flip-1))*tlog.HashSize] ^= 1
				path := filepath.Join(t.TempDir(), "tampered.hashes")
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			},
			withRef:    want{refDiff: flip},
			withoutRef: want{ok: true},
		},
	}
}

func TestVerifierScenarios(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 4_000
	}
	f := newLogFixture(t, n)
	for _, sc := range scenarios(t, f) {
		runScenario(t, f, sc)
	}
}

// TestVerifierLargeLog runs the main scenarios on a log of 100,000 events.
func TestVerifierLargeLog(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	f := newLogFixture(t, n)
	for _, sc := range scenarios(t, f) {
		if sc.name == "untouched" || sc.name == "one byte flipped" || sc.name == "one event dropped, later events renumbered" {
			runScenario(t, f, sc)
		}
	}
}

func runScenario(t *testing.T, f *logFixture, sc scenario) {
	for _, withRef := range []bool{true, false} {
		name := sc.name + map[bool]string{true: ", with reference", false: ", without reference"}[withRef]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			evs := slices.Clone(f.evs)
			if sc.events != nil {
				evs = sc.events(evs)
			}
			cfg := integrity.VerifierConfig{Keys: f.k.verifiers, Origin: origin, Checkpoints: f.signed}
			if sc.checkpoints != nil {
				cfg.Checkpoints = sc.checkpoints
			}
			w := sc.withoutRef
			if withRef {
				w = sc.withRef
				path := f.tree
				if sc.reference != nil {
					path = sc.reference(t)
				}
				ref, err := integrity.OpenReadOnly(path)
				if err != nil {
					t.Fatal(err)
				}
				defer ref.Close()
				cfg.Reference = ref
			}
			v, err := integrity.NewVerifier(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				v.Add(e.seq, e.subject, e.data)
			}
			r := v.Result()
			checkReport(t, f, &r, w, withRef)
		})
	}
}

func checkReport(t *testing.T, f *logFixture, r *integrity.Report, w want, withRef bool) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("report:\n%s", r)
		}
	}()
	if r.OK() != w.ok {
		t.Errorf("OK() = %v, want %v", r.OK(), w.ok)
	}
	if r.FirstBad != w.firstBad {
		t.Errorf("first bad seq %v, want %v", r.FirstBad, w.firstBad)
	}
	if !slices.Equal(r.Gaps, w.gaps) {
		t.Errorf("gaps %v, want %v", r.Gaps, w.gaps)
	}
	for _, c := range r.Checkpoints {
		want, listed := w.bad[c.Size]
		if !listed {
			want = integrity.CheckpointOK
		}
		if c.Status != want {
			t.Errorf("checkpoint %d: %v (%s), want %v", c.Size, c.Status, c.Detail, want)
		}
		if c.File != f.file(c.Size) && c.Status != integrity.CheckpointMisnamed {
			t.Errorf("checkpoint %d named %s", c.Size, c.File)
		}
		if c.Status != integrity.CheckpointOK && !strings.Contains(r.String(), fmt.Sprintf("checkpoint %d (%s)", c.Size, c.File)) {
			t.Errorf("the report text does not name checkpoint %d by size and file", c.Size)
		}
	}
	if withRef && r.Reference.FirstDiff != w.refDiff {
		t.Errorf("reference first diff %d, want %d", r.Reference.FirstDiff, w.refDiff)
	}
	if !withRef && r.Reference != nil {
		t.Error("a reference result without a reference")
	}
	if r.FirstBad.From != 0 && !strings.Contains(r.String(), "first bad seq: "+r.FirstBad.String()) {
		t.Error("the report text does not give the first bad sequence")
	}
}

func TestVerifierSmallCases(t *testing.T) {
	evs := makeEvents(64)
	tr := newTree(t, evs)
	k := newKeys(t, "custody-test")
	root, _ := tr.RootAt(64)
	elsewhere, _ := integrity.Sign("custody.test/OTHER", 64, root, k.signer)
	files := []integrity.CheckpointFile{
		{Name: "a", Size: 32, Signed: sign(t, tr, 32, k)},
		{Name: "b", Size: 64, Signed: elsewhere},
		{Name: "c", Size: 0, Signed: sign(t, tr, 0, k)},
	}
	v, err := integrity.NewVerifier(integrity.VerifierConfig{Keys: k.verifiers, Origin: origin, Checkpoints: files})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs[:10] {
		v.Add(e.seq, e.subject, e.data)
	}
	v.Add(0, "s", nil)                       // invalid
	v.Add(5, evs[4].subject, evs[4].data)    // out of order
	v.Add(14, evs[13].subject, evs[13].data) // a gap of 11 to 13
	for _, e := range evs[14:] {
		v.Add(e.seq, e.subject, e.data)
	}
	r := v.Result()
	if r.OK() || r.Events != 64-3+2 || r.Leaves != 61 || r.LastSeq != 64 {
		t.Fatalf("report:\n%s", &r)
	}
	if !slices.Equal(r.Gaps, []integrity.Gap{{11, 13}}) || !slices.Equal(r.OutOfOrder, []uint64{5}) || !slices.Equal(r.Invalid, []uint64{0}) {
		t.Fatalf("gaps %v, out of order %v, invalid %v", r.Gaps, r.OutOfOrder, r.Invalid)
	}
	statuses := map[string]integrity.CheckpointStatus{}
	for _, c := range r.Checkpoints {
		statuses[c.File] = c.Status
	}
	want := map[string]integrity.CheckpointStatus{"a": integrity.CheckpointLogMismatch, "b": integrity.CheckpointWrongOrigin, "c": integrity.CheckpointOK}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("checkpoints %v, want %v", statuses, want)
	}
	if r.FirstBad != (integrity.Range{From: 1, To: 11}) {
		t.Fatalf("first bad %v", r.FirstBad)
	}
	for _, s := range []string{"gap: seqs 11 to 13 missing", "out of order: 1 events", "invalid: 1 events", "wrong origin", "first bad seq: between 1 and 11", "NOT OK"} {
		if !strings.Contains(r.String(), s) {
			t.Errorf("report text lacks %q:\n%s", s, &r)
		}
	}

	if _, err := integrity.NewVerifier(integrity.VerifierConfig{}); err == nil {
		t.Fatal("NewVerifier without keys")
	}
}
