package integrity_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custody/custody/projections/integrity"
)

func TestTreeRootsMatchOracle(t *testing.T) {
	evs := makeEvents(133)
	tr := newTree(t, evs)
	leaves := make([][32]byte, len(evs))
	for i, e := range evs {
		leaves[i] = leafOracle(e)
	}
	for size := int64(0); size <= int64(len(evs)); size++ {
		got, err := tr.RootAt(size)
		if err != nil {
			t.Fatal(err)
		}
		if want := mthOracle(leaves[:size]); got != want {
			t.Fatalf("root at %d: %v, want %x", size, got, want)
		}
	}
	root, err := tr.Root()
	if err != nil || root != mthOracle(leaves) {
		t.Fatalf("Root %v %v", root, err)
	}
	for i, e := range evs {
		h, err := tr.LeafHash(e.seq)
		if err != nil || h != leaves[i] {
			t.Fatalf("LeafHash(%d) %v %v", e.seq, h, err)
		}
	}
	if fi, err := os.Stat(tr.Path()); err != nil || fi.Size() != tlog.StoredHashCount(133)*tlog.HashSize {
		t.Fatalf("file size %v %v, want %d stored hashes", fi.Size(), err, tlog.StoredHashCount(133))
	}
}

func TestTreeAppendRefusesOutOfOrder(t *testing.T) {
	tr := newTree(t, makeEvents(5))
	tests := []struct {
		name string
		seq  uint64
		want string
	}{
		{"zero", 0, "append: seq 0: want 6, a repeat"},
		{"repeat", 5, "append: seq 5: want 6, a repeat"},
		{"gap", 8, "append: seq 8: want 6, a gap of 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tr.Append(tt.seq, "s", nil)
			var se *integrity.SequenceError
			if !errors.Is(err, integrity.ErrSequence) || !errors.As(err, &se) || se.Want != 6 || se.Got != tt.seq {
				t.Fatalf("Append(%d) = %v, want a SequenceError", tt.seq, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if tr.Size() != 5 {
				t.Fatalf("size %d after a refused append", tr.Size())
			}
		})
	}
	if err := tr.Append(6, "s", nil); err != nil {
		t.Fatalf("the next sequence after refusals: %v", err)
	}
}

func TestTreeReopenContinues(t *testing.T) {
	evs := makeEvents(1000)
	path := filepath.Join(t.TempDir(), "tree.hashes")
	tr, err := integrity.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs[:600] {
		if err := tr.Append(e.seq, e.subject, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Append(601, "s", nil); !errors.Is(err, integrity.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	tr, err = integrity.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.Size() != 600 {
		t.Fatalf("reopened size %d", tr.Size())
	}
	for _, e := range evs[600:] {
		if err := tr.Append(e.seq, e.subject, e.data); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := tr.Root()
	want, _ := newTree(t, evs).Root()
	if got != want {
		t.Fatal("a reopened tree's root differs from a tree built in one go")
	}
}

// cutTree writes a tree of n events and cuts its file to keep bytes.
func cutTree(t *testing.T, n int, keep func(size int64) int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tree.hashes")
	tr, err := integrity.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range makeEvents(n) {
		if err := tr.Append(e.seq, e.subject, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, keep(fi.Size())); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenRecoversPartialTail(t *testing.T) {
	// 64 leaves: leaf 63 ends with 6 interior hashes (63 = 0b111111).
	tests := []struct {
		name string
		keep func(size int64) int64
		want int64
	}{
		{"complete", func(s int64) int64 { return s }, 64},
		{"half a hash", func(s int64) int64 { return s - 16 }, 63},
		{"interior hashes of the last leaf", func(s int64) int64 { return s - 3*tlog.HashSize }, 63},
		{"only the last leaf hash", func(s int64) int64 { return tlog.StoredHashCount(63)*tlog.HashSize + tlog.HashSize }, 63},
		{"many leaves", func(s int64) int64 { return tlog.StoredHashCount(40)*tlog.HashSize + 5 }, 40},
		{"less than one hash", func(s int64) int64 { return 31 }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := cutTree(t, 64, tt.keep)
			tr, err := integrity.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if tr.Size() != tt.want {
				t.Fatalf("recovered size %d, want %d", tr.Size(), tt.want)
			}
			if fi, _ := os.Stat(path); fi.Size() != tlog.StoredHashCount(tt.want)*tlog.HashSize {
				t.Fatalf("file of %d bytes after recovery", fi.Size())
			}
			// Appending resumes where the file ends and gives the right root.
			evs := makeEvents(70)
			for _, e := range evs[tt.want:] {
				if err := tr.Append(e.seq, e.subject, e.data); err != nil {
					t.Fatal(err)
				}
			}
			got, _ := tr.Root()
			want, _ := newTree(t, evs).Root()
			if got != want {
				t.Fatal("root after recovery differs")
			}
		})
	}
}

func TestOpenRefusesCorruptTail(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		damage func(b []byte) // the file's content
	}{
		{"zeros after a power loss", 64, func(b []byte) { clear(b[len(b)-7*tlog.HashSize:]) }},
		{"zero leaf hash without interior hashes", 65, func(b []byte) { clear(b[len(b)-tlog.HashSize:]) }},
		{"flipped interior hash", 64, func(b []byte) { b[len(b)-1] ^= 1 }},
		{"flipped last leaf hash", 64, func(b []byte) { b[len(b)-7*tlog.HashSize] ^= 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := cutTree(t, tt.n, func(s int64) int64 { return s })
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(b)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := integrity.Open(path); !errors.Is(err, integrity.ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestOpenReadOnly(t *testing.T) {
	path := cutTree(t, 10, func(s int64) int64 { return s - 5 })
	tr, err := integrity.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.Size() != 9 {
		t.Fatalf("size %d", tr.Size())
	}
	if fi, _ := os.Stat(path); fi.Size() != tlog.StoredHashCount(10)*tlog.HashSize-5 {
		t.Fatal("OpenReadOnly changed the file")
	}
	if err := tr.Append(10, "s", nil); !errors.Is(err, integrity.ErrReadOnly) {
		t.Fatalf("Append = %v, want ErrReadOnly", err)
	}
	if err := tr.Sync(); !errors.Is(err, integrity.ErrReadOnly) {
		t.Fatalf("Sync = %v, want ErrReadOnly", err)
	}
	if _, err := integrity.OpenReadOnly(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReadOnly of a missing file: %v", err)
	}
}

func TestTreeRanges(t *testing.T) {
	tr := newTree(t, makeEvents(10))
	tests := []struct {
		name string
		call func() error
	}{
		{"leaf 0", func() error { _, err := tr.LeafHash(0); return err }},
		{"leaf past the end", func() error { _, err := tr.LeafHash(11); return err }},
		{"root past the end", func() error { _, err := tr.RootAt(11); return err }},
		{"negative root", func() error { _, err := tr.RootAt(-1); return err }},
		{"inclusion seq past size", func() error { _, err := tr.InclusionProof(6, 5); return err }},
		{"inclusion size past the end", func() error { _, err := tr.InclusionProof(1, 11); return err }},
		{"inclusion seq 0", func() error { _, err := tr.InclusionProof(0, 5); return err }},
		{"consistency m > n", func() error { _, err := tr.ConsistencyProof(6, 5); return err }},
		{"consistency from 0", func() error { _, err := tr.ConsistencyProof(0, 5); return err }},
		{"consistency past the end", func() error { _, err := tr.ConsistencyProof(5, 11); return err }},
		{"read hash past the end", func() error { _, err := tr.ReadHashes([]int64{tlog.StoredHashCount(10)}); return err }},
		{"append far past the end", func() error { return tr.Append(integrity.MaxSize+1, "s", nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, integrity.ErrRange) && !errors.Is(err, integrity.ErrSequence) {
				t.Fatalf("got %v, want ErrRange", err)
			}
		})
	}
}
