package integrity

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"

	"golang.org/x/mod/sumdb/tlog"
)

// LeafPrefix starts every leaf encoding; it names the format and its version.
const LeafPrefix = "custody-leaf/v1\n"

// MaxSize is the largest tree size, and so the largest sequence, this package handles
// (2^48, far beyond any log it will see). Bounding sizes keeps every proof short and
// every size computation exact.
const MaxSize = 1 << 48

// MaxSubject is the longest subject a leaf can encode, in bytes.
const MaxSubject = math.MaxUint32

// AppendLeaf appends the leaf encoding of a stored event to dst and returns the result:
//
//	"custody-leaf/v1\n" || uint64 seq || uint32 len(subject) || subject || data
//
// with both integers big-endian. The encoding is injective: the fixed-size length
// separates the subject from the data, and the data runs to the end.
func AppendLeaf(dst []byte, seq uint64, subject string, data []byte) []byte {
	dst = append(dst, LeafPrefix...)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(subject)))
	dst = append(dst, subject...)
	return append(dst, data...)
}

// LeafHash returns the RFC 6962 leaf hash of a stored event,
// tlog.RecordHash(AppendLeaf(nil, seq, subject, data)), that is
// SHA-256(0x00 || encoding). It does not check its arguments: Tree.Append and
// Verifier.Add refuse a sequence of 0 or above MaxSize and a subject over MaxSubject.
func LeafHash(seq uint64, subject string, data []byte) tlog.Hash {
	var l leafHasher
	return l.hash(seq, subject, data)
}

// leafHasher hashes leaves into a reused buffer, so that appending does not allocate.
type leafHasher struct{ buf []byte }

func (l *leafHasher) hash(seq uint64, subject string, data []byte) tlog.Hash {
	l.buf = AppendLeaf(append(l.buf[:0], 0x00), seq, subject, data)
	h := tlog.Hash(sha256.Sum256(l.buf))
	if cap(l.buf) > 1<<20 {
		l.buf = nil // do not keep one huge event's buffer alive
	}
	return h
}

// checkLeaf reports why an event cannot be a leaf, if it cannot.
func checkLeaf(seq uint64, subject string) error {
	if seq == 0 || seq > MaxSize {
		return fmt.Errorf("seq %d: %w (1 to %d)", seq, ErrRange, uint64(MaxSize))
	}
	if uint64(len(subject)) > MaxSubject {
		return fmt.Errorf("seq %d: subject of %d bytes: %w", seq, len(subject), ErrRange)
	}
	return nil
}
