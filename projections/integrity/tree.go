package integrity

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"golang.org/x/mod/sumdb/tlog"
)

// flushSize is how many bytes of new hashes Append buffers before writing them.
const flushSize = 1 << 20

// readSpan is how far apart (in hashes) two requested hashes may be and still be read
// from the file with one system call, and maxRead the most hashes one call reads.
const (
	readSpan = 256
	maxRead  = 1 << 16
)

// Tree is an append-only RFC 6962 Merkle tree over stored events, kept in a file of
// stored hashes (see the package documentation for the layout). Leaf i is the event of
// sequence i+1. A Tree is safe for concurrent use; one process at a time may append.
type Tree struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	readOnly bool
	n        int64  // leaves
	flushed  int64  // hashes in the file
	buf      []byte // hashes appended after the flushed ones
	leaf     leafHasher
	err      error // sticky write failure: the file no longer matches memory
}

// Open opens or creates the tree file at path for appending. A file cut short by a
// crash is recovered: the tree keeps the largest number of leaves n whose stored hashes
// (tlog.StoredHashCount(n) of them) are complete in the file, and the partial tail is
// truncated away. The last leaf's interior hashes are then recomputed; a file that
// contradicts itself there (for example zeros left by a power loss) is ErrCorrupt, and
// is rebuilt by removing it and appending the log again.
func Open(path string) (*Tree, error) {
	return open(path, false)
}

// OpenReadOnly opens an existing tree file without ever writing it, as an auditor
// opens evidence: a partial tail is ignored rather than truncated, and Append and Sync
// fail with ErrReadOnly.
func OpenReadOnly(path string) (*Tree, error) {
	return open(path, true)
}

func open(path string, readOnly bool) (*Tree, error) {
	flag := os.O_RDWR | os.O_CREATE
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open tree: %w", err)
	}
	t := &Tree{path: path, f: f, readOnly: readOnly}
	if !readOnly {
		// One appender at a time, across processes; released when the file is closed.
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			err = fmt.Errorf("%w (%v)", ErrLocked, err)
		}
	}
	if !readOnly && err == nil {
		err = syncDir(filepath.Dir(path)) // a new file's name is durable too
	}
	if err == nil {
		err = t.recover()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open tree %s: %w", path, err)
	}
	return t, nil
}

// recover sets the size from the file length, truncates a partial tail and checks the
// last record.
func (t *Tree) recover() error {
	fi, err := t.f.Stat()
	if err != nil {
		return err
	}
	count := fi.Size() / tlog.HashSize
	// The largest n with StoredHashCount(n) <= count; StoredHashCount is increasing
	// and StoredHashCount(n) >= n.
	hi := min(count, MaxSize)
	n := int64(sort.Search(int(hi)+1, func(n int) bool { return tlog.StoredHashCount(int64(n)) > count })) - 1
	t.n, t.flushed = n, tlog.StoredHashCount(n)
	if want := t.flushed * tlog.HashSize; fi.Size() != want && !t.readOnly {
		if err := t.f.Truncate(want); err != nil {
			return fmt.Errorf("truncate partial tail: %w", err)
		}
		if err := t.f.Sync(); err != nil {
			return err
		}
	}
	if n == 0 {
		return nil
	}
	return t.checkLast()
}

// checkLast recomputes the interior hashes stored with the last leaf from the leaf hash
// and its left siblings.
func (t *Tree) checkLast() error {
	i := t.n - 1
	first := tlog.StoredHashIndex(0, i)
	stored, err := t.readHashes(indexRange(first, t.flushed))
	if err != nil {
		return err
	}
	if stored[0] == (tlog.Hash{}) {
		return fmt.Errorf("leaf %d: zero hash: %w", i, ErrCorrupt)
	}
	want, err := tlog.StoredHashesForRecordHash(i, stored[0], tlog.HashReaderFunc(t.readHashes))
	if err != nil {
		return err
	}
	if len(want) != len(stored) {
		return fmt.Errorf("leaf %d: %d stored hashes, want %d: %w", i, len(stored), len(want), ErrCorrupt)
	}
	for k := range want {
		if want[k] != stored[k] {
			return fmt.Errorf("leaf %d: interior hash %d does not match its children: %w", i, k, ErrCorrupt)
		}
	}
	return nil
}

func indexRange(from, to int64) []int64 {
	idx := make([]int64, 0, to-from)
	for i := from; i < to; i++ {
		idx = append(idx, i)
	}
	return idx
}

// Path returns the file name the tree was opened with.
func (t *Tree) Path() string { return t.path }

// Size returns the number of leaves, which is the last appended sequence.
func (t *Tree) Size() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Append adds the stored event of sequence seq as the next leaf. seq must be Size()+1;
// anything else is a *SequenceError (ErrSequence) and changes nothing. New hashes are
// buffered; Sync makes them durable.
func (t *Tree) Append(seq uint64, subject string, data []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(true); err != nil {
		return fmt.Errorf("append seq %d: %w", seq, err)
	}
	if want := uint64(t.n) + 1; seq != want {
		return fmt.Errorf("append: %w", &SequenceError{Want: want, Got: seq})
	}
	if err := checkLeaf(seq, subject); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	hashes, err := tlog.StoredHashesForRecordHash(t.n, t.leaf.hash(seq, subject, data), tlog.HashReaderFunc(t.readHashes))
	if err != nil {
		return fmt.Errorf("append seq %d: %w", seq, err)
	}
	for _, h := range hashes {
		t.buf = append(t.buf, h[:]...)
	}
	t.n++
	if len(t.buf) >= flushSize {
		if err := t.flush(); err != nil {
			return fmt.Errorf("append seq %d: %w", seq, err)
		}
	}
	return nil
}

func (t *Tree) usable(write bool) error {
	switch {
	case t.f == nil:
		return ErrClosed
	case write && t.readOnly:
		return ErrReadOnly
	case t.err != nil:
		return t.err
	}
	return nil
}

// flush writes the buffered hashes. A failed write leaves the file in an unknown state,
// so it makes the tree unusable until reopened (Open then recovers).
func (t *Tree) flush() error {
	if len(t.buf) == 0 {
		return nil
	}
	if _, err := t.f.WriteAt(t.buf, t.flushed*tlog.HashSize); err != nil {
		t.err = fmt.Errorf("write %s: %w", t.path, err)
		return t.err
	}
	t.flushed += int64(len(t.buf) / tlog.HashSize)
	t.buf = t.buf[:0]
	return nil
}

// Flush writes the buffered hashes to the file (readers of the file see them) without
// forcing them to stable storage.
func (t *Tree) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(true); err != nil {
		return fmt.Errorf("flush tree: %w", err)
	}
	if err := t.flush(); err != nil {
		return fmt.Errorf("flush tree: %w", err)
	}
	return nil
}

// Sync writes buffered hashes and flushes the file to stable storage. After Sync
// returns, a crash cannot lose the leaves appended before it.
func (t *Tree) Sync() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(true); err != nil {
		return fmt.Errorf("sync tree: %w", err)
	}
	if err := t.flush(); err != nil {
		return fmt.Errorf("sync tree: %w", err)
	}
	if err := t.f.Sync(); err != nil {
		t.err = fmt.Errorf("fsync %s: %w", t.path, err)
		return fmt.Errorf("sync tree: %w", t.err)
	}
	return nil
}

// Close syncs a writable tree and closes the file. Closing twice is not an error.
func (t *Tree) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil
	}
	var err error
	if !t.readOnly && t.err == nil {
		if err = t.flush(); err == nil {
			err = t.f.Sync()
		}
	}
	err = errors.Join(err, t.f.Close())
	t.f, t.buf = nil, nil
	if err != nil {
		return fmt.Errorf("close tree %s: %w", t.path, err)
	}
	return nil
}

// ReadHashes returns the stored hashes at the given indexes (tlog.StoredHashIndex),
// which makes a Tree a tlog.HashReader. Every index must be below
// tlog.StoredHashCount(Size()).
func (t *Tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(false); err != nil {
		return nil, fmt.Errorf("read hashes: %w", err)
	}
	return t.readHashes(indexes)
}

// readHashes serves hashes from the buffer or the file, one read per run of nearby
// indexes. t.mu is held.
func (t *Tree) readHashes(indexes []int64) ([]tlog.Hash, error) {
	total := t.flushed + int64(len(t.buf)/tlog.HashSize)
	out := make([]tlog.Hash, len(indexes))
	var span []byte
	for i := 0; i < len(indexes); {
		x := indexes[i]
		if x < 0 || x >= total {
			return nil, fmt.Errorf("read hash %d of %d: %w", x, total, ErrRange)
		}
		if x >= t.flushed {
			copy(out[i][:], t.buf[(x-t.flushed)*tlog.HashSize:])
			i++
			continue
		}
		// A run of increasing indexes, each near the previous one, in the file.
		j, last := i+1, x
		for j < len(indexes) && indexes[j] > last && indexes[j] < t.flushed && indexes[j]-last <= readSpan && indexes[j]-x < maxRead {
			last = indexes[j]
			j++
		}
		size := int(last-x+1) * tlog.HashSize
		if cap(span) < size {
			span = make([]byte, size)
		}
		span = span[:size]
		if _, err := t.f.ReadAt(span, x*tlog.HashSize); err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("file shorter than its tree: %w", ErrCorrupt)
			}
			return nil, fmt.Errorf("read %s: %w", t.path, err)
		}
		for k := i; k < j; k++ {
			copy(out[k][:], span[(indexes[k]-x)*tlog.HashSize:])
		}
		i = j
	}
	return out, nil
}

// LeafHash returns the stored leaf hash of sequence seq.
func (t *Tree) LeafHash(seq uint64) (tlog.Hash, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(false); err != nil {
		return tlog.Hash{}, fmt.Errorf("leaf hash %d: %w", seq, err)
	}
	if seq == 0 || seq > uint64(t.n) {
		return tlog.Hash{}, fmt.Errorf("leaf hash %d of tree size %d: %w", seq, t.n, ErrRange)
	}
	h, err := t.readHashes([]int64{tlog.StoredHashIndex(0, int64(seq-1))})
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("leaf hash %d: %w", seq, err)
	}
	return h[0], nil
}

// leafHashes returns the stored leaf hashes of leaves [from, to).
func (t *Tree) leafHashes(from, to int64) ([]tlog.Hash, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(false); err != nil {
		return nil, err
	}
	if from < 0 || to > t.n || from > to {
		return nil, fmt.Errorf("leaves %d to %d of tree size %d: %w", from, to, t.n, ErrRange)
	}
	idx := make([]int64, 0, to-from)
	for i := from; i < to; i++ {
		idx = append(idx, tlog.StoredHashIndex(0, i))
	}
	return t.readHashes(idx)
}

// Root returns the tree's root hash at its current size.
func (t *Tree) Root() (tlog.Hash, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rootAt(t.n)
}

// RootAt returns the root hash the tree had when it held size leaves.
func (t *Tree) RootAt(size int64) (tlog.Hash, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rootAt(size)
}

func (t *Tree) rootAt(size int64) (tlog.Hash, error) {
	if err := t.usable(false); err != nil {
		return tlog.Hash{}, fmt.Errorf("root at %d: %w", size, err)
	}
	if size < 0 || size > t.n {
		return tlog.Hash{}, fmt.Errorf("root at %d of tree size %d: %w", size, t.n, ErrRange)
	}
	h, err := tlog.TreeHash(size, tlog.HashReaderFunc(t.readHashes))
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("root at %d: %w", size, err)
	}
	return h, nil
}

// InclusionProof returns the RFC 6962 audit path proving that the leaf of sequence seq
// is in the tree of size leaves: 1 <= seq <= size <= Size().
func (t *Tree) InclusionProof(seq uint64, size int64) (tlog.RecordProof, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(false); err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	if size < 1 || size > t.n || seq == 0 || seq > uint64(size) {
		return nil, fmt.Errorf("inclusion proof of seq %d in size %d of tree size %d: %w", seq, size, t.n, ErrRange)
	}
	p, err := tlog.ProveRecord(size, int64(seq-1), tlog.HashReaderFunc(t.readHashes))
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of seq %d in size %d: %w", seq, size, err)
	}
	return p, nil
}

// ConsistencyProof returns the RFC 6962 consistency proof that the tree of size m is a
// prefix of the tree of size n: 1 <= m <= n <= Size().
func (t *Tree) ConsistencyProof(m, n int64) (tlog.TreeProof, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(false); err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	if m < 1 || m > n || n > t.n {
		return nil, fmt.Errorf("consistency proof from %d to %d of tree size %d: %w", m, n, t.n, ErrRange)
	}
	p, err := tlog.ProveTree(n, m, tlog.HashReaderFunc(t.readHashes))
	if err != nil {
		return nil, fmt.Errorf("consistency proof from %d to %d: %w", m, n, err)
	}
	return p, nil
}

var _ tlog.HashReader = (*Tree)(nil)
