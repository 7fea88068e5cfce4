package domain

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxCheckpointNote is the largest signed note a checkpoint.signed carries, in bytes.
const MaxCheckpointNote = 16 << 10

// CheckpointSource is the source of the checkpoint.signed events CheckpointEvent builds.
const CheckpointSource = "custody/integrity"

// CheckpointSigned is the data of checkpoint.signed: a signed checkpoint of custody's
// Merkle log (docs/INTEGRITY.md), sent to the SIEM/GRC sinks as a copy off the box.
// Note is the signed note exactly as the checkpoint file holds it; Origin, TreeSize and
// RootHash repeat its first three lines so that a receiver can index them without
// parsing the note, and Parse rejects an event in which they differ from the note.
// The signature is not checked here (the domain holds no keys): verify the note with
// the log's public key (custody verify, or the procedure of projections/integrity).
type CheckpointSigned struct {
	// Origin is the log's name, e.g. custody/CUSTODY_EVENTS: non-empty, without spaces,
	// control characters or '+'.
	Origin string `json:"origin"`
	// TreeSize is the number of events the checkpoint covers (sequences 1 to TreeSize).
	TreeSize int64 `json:"treeSize"`
	// RootHash is the tree's root: standard base64, with padding, of 32 bytes (44
	// characters).
	RootHash string `json:"rootHash"`
	// Note is the complete signed note: the three lines, an empty line and one or more
	// signature lines, each line ending in a newline; at most MaxCheckpointNote bytes.
	Note string `json:"note"`
}

func (*CheckpointSigned) EventType() Type { return CheckpointSignedType }

// CheckpointEventID is the deterministic id of the checkpoint.signed of a checkpoint: a
// version 8 UUID from the SHA-256 of its origin, size and root, so that publishing the
// same checkpoint again is a duplicate.
func CheckpointEventID(origin string, size int64, root string) string {
	return DeterministicID("checkpoint", origin, strconv.FormatInt(size, 10), root)
}

// NewCheckpointSigned reads a signed checkpoint note (the text of a checkpoint file)
// into the data of a checkpoint.signed, checked by the rules Parse applies. It does not
// verify the signatures. Problems are reported as by Parse, in a *ValidationError
// naming data.note.
func NewCheckpointSigned(note string) (*CheckpointSigned, error) {
	p := &parser{}
	lines, ok := p.checkpointNote("data.note", note)
	if !ok {
		return nil, &ValidationError{Problems: p.problems}
	}
	size, _ := strconv.ParseInt(lines[1], 10, 64)
	return &CheckpointSigned{Origin: lines[0], TreeSize: size, RootHash: lines[2], Note: note}, nil
}

// CheckpointEvent builds the checkpoint.signed event of a signed note: id
// CheckpointEventID, source CheckpointSource, subject the tree size in decimal, time
// signedAt (in UTC), datacontenttype application/json. The event is returned as Parse
// reads it back from its canonical form.
func CheckpointEvent(note string, signedAt time.Time) (Event, error) {
	d, err := NewCheckpointSigned(note)
	if err != nil {
		return Event{}, err
	}
	e := Event{
		ID:              CheckpointEventID(d.Origin, d.TreeSize, d.RootHash),
		Source:          CheckpointSource,
		Type:            CheckpointSignedType,
		Time:            signedAt.UTC(),
		Subject:         strconv.FormatInt(d.TreeSize, 10),
		DataContentType: ContentType,
		Data:            d,
	}
	b, err := e.MarshalJSON()
	if err != nil {
		return Event{}, err
	}
	return Parse(b)
}

// Rules of checkpoint.signed, named in rejections.
const (
	ruleCheckpointOrigin = "must be the log's origin: non-empty, without spaces, control characters or '+'"
	ruleCheckpointSize   = "must be an integer of at least 0"
	ruleCheckpointRoot   = "must be standard base64 with padding (44 characters) of a 32-byte hash"
	ruleNoteTooLong      = "must be at most 16384 bytes"
	ruleNoteFormat       = "must be a signed checkpoint in UTF-8: three lines (origin, tree size, root hash), an empty line and one or more signature lines \"— <key name> <base64 of key hash and signature>\", each line ending in a newline; key names non-empty without spaces or '+'"
	ruleNoteOrigin       = "must have the log's origin on its first line: non-empty, without spaces, control characters or '+'"
	ruleNoteSize         = "must have the tree size on its second line: a decimal integer of at least 0 without sign or leading zeros"
	ruleNoteRoot         = "must have the root hash on its third line: standard base64 with padding (44 characters) of a 32-byte hash"
	ruleNoteEnvelope     = "must begin with data.origin, data.treeSize and data.rootHash, one a line: the event must say what the signed text says"
)

// decodeCheckpoint reads the data of a checkpoint.signed.
func decodeCheckpoint(d *object) *CheckpointSigned {
	p := d.p
	v := &CheckpointSigned{}
	origin, okOrigin := d.str("origin", true)
	if okOrigin && !isOrigin(origin) {
		p.fail(d.path("origin"), ruleCheckpointOrigin)
		okOrigin = false
	}
	v.Origin = origin
	size, okSize := d.integer("treeSize", true)
	if okSize && size < 0 {
		p.fail(d.path("treeSize"), ruleCheckpointSize)
		okSize = false
	}
	v.TreeSize = size
	// The root and the note are not scanned for raw identifiers as a whole: they hold
	// hashes and signatures in base64, not text. The note's origin and key names are.
	root, okRoot := d.unscanned("rootHash", true)
	if okRoot && !isRootHash(root) {
		p.fail(d.path("rootHash"), ruleCheckpointRoot)
		okRoot = false
	}
	v.RootHash = root
	if note, ok := d.unscanned("note", true); ok {
		v.Note = note
		lines, ok := p.checkpointNote(d.path("note"), note)
		if ok && (okOrigin && lines[0] != origin || okSize && lines[1] != strconv.FormatInt(size, 10) || okRoot && lines[2] != root) {
			p.fail(d.path("note"), ruleNoteEnvelope)
		}
	}
	return v
}

// checkpointNote checks a signed checkpoint note and returns its three text lines; ok
// is false when a problem was reported.
func (p *parser) checkpointNote(field, note string) (lines [3]string, ok bool) {
	if len(note) > MaxCheckpointNote {
		p.fail(field, ruleNoteTooLong)
		return lines, false
	}
	text, sigs, found := strings.Cut(note, "\n\n")
	if !found || !utf8.ValidString(note) || sigs == "" || !strings.HasSuffix(sigs, "\n") {
		p.fail(field, ruleNoteFormat)
		return lines, false
	}
	tl := strings.Split(text, "\n")
	if len(tl) != 3 {
		p.fail(field, ruleNoteFormat)
		return lines, false
	}
	for _, sig := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		name, ok := signatureLine(sig)
		if !ok {
			p.fail(field, ruleNoteFormat)
			return lines, false
		}
		p.scan(field, name)
	}
	ok = true
	if !isOrigin(tl[0]) {
		p.fail(field, ruleNoteOrigin)
		ok = false
	} else {
		p.scan(field, tl[0])
	}
	if n, err := strconv.ParseInt(tl[1], 10, 64); err != nil || n < 0 || strconv.FormatInt(n, 10) != tl[1] {
		p.fail(field, ruleNoteSize)
		ok = false
	}
	if !isRootHash(tl[2]) {
		p.fail(field, ruleNoteRoot)
		ok = false
	}
	copy(lines[:], tl)
	return lines, ok
}

// signatureLine checks one signature line of a note, "— name base64", and returns the
// key name. The base64 must decode to more than the 4-byte key hash.
func signatureLine(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, "— ")
	if !ok {
		return "", false
	}
	name, sig, ok := strings.Cut(rest, " ")
	if !ok || !isOrigin(name) {
		return "", false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(b) <= 4 {
		return "", false
	}
	return name, true
}

// isOrigin reports whether s may name a log or a key in a signed note: non-empty, no
// white space, control characters or '+'.
func isOrigin(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == '+' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// isRootHash reports whether s is standard base64, with padding, of 32 bytes.
func isRootHash(s string) bool {
	if len(s) != 44 {
		return false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 32
}
