package integrity

import (
	"errors"
	"fmt"
)

// Error kinds of this package, checked with errors.Is. The list is append-only: a kind
// keeps its meaning once callers depend on it.
var (
	// ErrSequence: an event's sequence is not the next one (a gap or a repeat).
	ErrSequence = errors.New("sequence out of order")
	// ErrRange: a sequence or tree size outside the tree, or beyond MaxSize.
	ErrRange = errors.New("out of range")
	// ErrCorrupt: the tree file's last record contradicts itself; rebuild it from the log.
	ErrCorrupt = errors.New("tree file corrupt")
	// ErrReadOnly: Append or Sync on a tree opened with OpenReadOnly.
	ErrReadOnly = errors.New("tree is read-only")
	// ErrClosed: use of a closed tree.
	ErrClosed = errors.New("tree is closed")
	// ErrMalformed: a checkpoint, proof or key that does not follow its format.
	ErrMalformed = errors.New("malformed")
	// ErrUnknownKey: a well-formed checkpoint with no signature by any of the given keys.
	ErrUnknownKey = errors.New("no signature by a known key")
	// ErrBadSignature: a signature by a known key that does not verify.
	ErrBadSignature = errors.New("invalid signature")
	// ErrProof: a well-formed, correctly signed proof whose hashes do not lead to the root.
	ErrProof = errors.New("proof does not verify")
	// ErrRootMismatch: a checkpoint's root is not the tree's root at that size.
	ErrRootMismatch = errors.New("checkpoint root does not match the tree")
	// ErrExists: a different checkpoint of the same size is already in the directory.
	ErrExists = errors.New("a different checkpoint of this size exists")
	// ErrLocked: another process has the tree file open for appending.
	ErrLocked = errors.New("tree file is in use by another process")
)

// SequenceError reports an event offered out of order. It matches ErrSequence.
type SequenceError struct {
	Want uint64 // the sequence that was expected
	Got  uint64 // the sequence that was offered
}

func (e *SequenceError) Error() string {
	switch {
	case e.Got > e.Want:
		return fmt.Sprintf("seq %d: want %d, a gap of %d", e.Got, e.Want, e.Got-e.Want)
	default:
		return fmt.Sprintf("seq %d: want %d, a repeat", e.Got, e.Want)
	}
}

// Unwrap returns ErrSequence.
func (e *SequenceError) Unwrap() error { return ErrSequence }

// SignatureError reports a checkpoint whose signatures could not be verified. It matches
// ErrUnknownKey (no signature by a known key) or ErrBadSignature (a known key's signature
// is wrong), never ErrMalformed.
type SignatureError struct {
	// Keys names the signatures concerned as "name+keyhash" (public key ids, never keys):
	// the unknown ones for ErrUnknownKey, the failing one for ErrBadSignature.
	Keys []string
	Err  error // ErrUnknownKey or ErrBadSignature
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("%v %v", e.Err, e.Keys)
}

// Unwrap returns ErrUnknownKey or ErrBadSignature.
func (e *SignatureError) Unwrap() error { return e.Err }
