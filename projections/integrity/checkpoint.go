package integrity

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxCheckpoint bounds the size of a signed checkpoint in bytes.
const maxCheckpoint = 16 << 10

// Checkpoint is a verified, signed statement that the log of Origin had Size events
// and the Merkle root Root.
type Checkpoint struct {
	Origin   string
	Size     int64
	Root     tlog.Hash
	SignedBy []string // the keys whose signatures verified, as "name+keyhash"
	Signed   []byte   // the signed note, exactly as opened
}

// Sign returns the signed checkpoint note for the tree of size leaves and root hash of
// the log named origin (for example "custody.example.org/CUSTODY_EVENTS"). Signing with
// several keys, such as the outgoing and the incoming key of a rotation, adds one
// signature line per key.
func Sign(origin string, size int64, root tlog.Hash, signers ...note.Signer) ([]byte, error) {
	text, err := formatCheckpoint(origin, size, root)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	if len(signers) == 0 {
		return nil, errors.New("sign checkpoint: no signer")
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signers...)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint %d: %w", size, err)
	}
	return msg, nil
}

// OpenCheckpoint checks the signatures of a signed checkpoint with keys and parses it.
// At least one signature must be by a key in keys and every signature by a key in keys
// must verify; signatures by other keys are ignored. Errors: ErrMalformed for a note or
// text that does not follow the format; a *SignatureError matching ErrUnknownKey (no
// signature by a known key) or ErrBadSignature (a known key's signature fails).
func OpenCheckpoint(msg []byte, keys note.Verifiers) (Checkpoint, error) {
	if _, _, err := splitNote(msg); err != nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w", err)
	}
	n, err := note.Open(msg, keys)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			var names []string
			for _, s := range unverified.Note.UnverifiedSigs {
				names = append(names, keyID(s.Name, s.Hash))
			}
			err = &SignatureError{Keys: names, Err: ErrUnknownKey}
		case errors.As(err, &invalid):
			err = &SignatureError{Keys: []string{keyID(invalid.Name, invalid.Hash)}, Err: ErrBadSignature}
		}
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w", err)
	}
	c, err := parseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w", err)
	}
	for _, s := range n.Sigs {
		c.SignedBy = append(c.SignedBy, keyID(s.Name, s.Hash))
	}
	c.Signed = bytes.Clone(msg)
	return c, nil
}

func keyID(name string, hash uint32) string { return fmt.Sprintf("%s+%08x", name, hash) }

// formatCheckpoint returns the checkpoint text: origin, size and base64 root, each on
// its own line.
func formatCheckpoint(origin string, size int64, root tlog.Hash) ([]byte, error) {
	if !validName(origin) {
		return nil, fmt.Errorf("origin %q: %w: want non-empty UTF-8 without spaces or '+'", origin, ErrMalformed)
	}
	if size < 0 || size > MaxSize {
		return nil, fmt.Errorf("size %d: %w", size, ErrRange)
	}
	return fmt.Appendf(nil, "%s\n%d\n%s\n", origin, size, root), nil
}

// parseCheckpoint parses a checkpoint text strictly: exactly three lines, a valid
// origin, a canonical decimal size within MaxSize, a canonical base64 32-byte root.
func parseCheckpoint(text []byte) (Checkpoint, error) {
	lines := strings.Split(string(text), "\n")
	if len(lines) != 4 || lines[3] != "" {
		return Checkpoint{}, fmt.Errorf("checkpoint: %w: want 3 lines (origin, size, root)", ErrMalformed)
	}
	if !validName(lines[0]) {
		return Checkpoint{}, fmt.Errorf("checkpoint origin: %w", ErrMalformed)
	}
	size, err := parseSize(lines[1])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint size: %w", err)
	}
	root, err := parseHash(lines[2])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint root: %w", err)
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// parseSize parses a canonical decimal in [0, MaxSize].
func parseSize(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > MaxSize || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%q: %w: want a decimal from 0 to %d without leading zeros", s, ErrMalformed, int64(MaxSize))
	}
	return n, nil
}

// parseHash parses a canonical standard-base64 SHA-256 hash.
func parseHash(s string) (tlog.Hash, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize || base64.StdEncoding.EncodeToString(b) != s {
		return tlog.Hash{}, fmt.Errorf("hash %q: %w: want 44 characters of base64", s, ErrMalformed)
	}
	return tlog.Hash(b), nil
}

// validName reports whether s can be a key name or an origin: non-empty UTF-8 without
// Unicode spaces or '+', the rule of golang.org/x/mod/sumdb/note.
func validName(s string) bool {
	return s != "" && utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsSpace) < 0 && !strings.Contains(s, "+") &&
		strings.IndexFunc(s, unicode.IsControl) < 0
}

// splitNote checks the syntax of a signed note, as note.Open does, and returns its text
// (with its final newline) and its signature lines, so that a malformed note is told
// apart from one with bad signatures.
func splitNote(msg []byte) (text []byte, sigs []string, err error) {
	if len(msg) > maxCheckpoint {
		return nil, nil, fmt.Errorf("note of %d bytes: %w (limit %d)", len(msg), ErrMalformed, maxCheckpoint)
	}
	if !utf8.Valid(msg) {
		return nil, nil, fmt.Errorf("note: %w: not UTF-8", ErrMalformed)
	}
	for _, c := range msg {
		if c < 0x20 && c != '\n' {
			return nil, nil, fmt.Errorf("note: %w: control character", ErrMalformed)
		}
	}
	split := bytes.LastIndex(msg, []byte("\n\n"))
	if split < 0 {
		return nil, nil, fmt.Errorf("note: %w: no blank line before the signatures", ErrMalformed)
	}
	text, block := msg[:split+1], msg[split+2:]
	if len(block) == 0 || block[len(block)-1] != '\n' {
		return nil, nil, fmt.Errorf("note: %w: no signature lines", ErrMalformed)
	}
	for line := range strings.Lines(string(block)) {
		line = strings.TrimSuffix(line, "\n")
		rest, ok := strings.CutPrefix(line, "— ")
		name, b64, _ := strings.Cut(rest, " ")
		sig, err := base64.StdEncoding.DecodeString(b64)
		if !ok || !validName(name) || err != nil || len(sig) < 5 {
			return nil, nil, fmt.Errorf("note: %w: bad signature line", ErrMalformed)
		}
		sigs = append(sigs, line)
	}
	if len(sigs) > 100 {
		return nil, nil, fmt.Errorf("note: %w: over 100 signatures", ErrMalformed)
	}
	return text, sigs, nil
}

// GenerateKey returns a new Ed25519 key pair for name in the note key formats: skey
// "PRIVATE+KEY+name+keyhash+base64" is secret, vkey "name+keyhash+base64" is given to
// everyone who checks checkpoints.
func GenerateKey(name string) (skey, vkey string, err error) {
	if !validName(name) {
		return "", "", fmt.Errorf("generate key %q: %w: want non-empty UTF-8 without spaces or '+'", name, ErrMalformed)
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("generate key %s: %w", name, err)
	}
	return skey, vkey, nil
}

// LoadSigner reads a private signer key (as made by GenerateKey) from the file at path,
// ignoring surrounding whitespace. Errors name the file, never the key.
func LoadSigner(path string) (note.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	skey := strings.TrimSpace(string(b))
	if !strings.HasPrefix(skey, "PRIVATE+KEY+") {
		return nil, fmt.Errorf("load signer %s: %w: not a private key (want PRIVATE+KEY+name+keyhash+key)", path, ErrMalformed)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("load signer %s: %w: %v", path, ErrMalformed, err)
	}
	return s, nil
}

// LoadVerifier reads one public verifier key (name+keyhash+key) from the file at path,
// ignoring surrounding whitespace.
func LoadVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load verifier: %w", err)
	}
	v, err := newVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("load verifier %s: %w", path, err)
	}
	return v, nil
}

// LoadVerifiers reads public verifier keys from files holding one key per line (blank
// lines and lines starting with '#' are skipped) and returns them as one set. Keep
// retired keys in it: checkpoints signed before a key rotation verify only with the key
// that signed them.
func LoadVerifiers(paths ...string) (note.Verifiers, error) {
	var list []note.Verifier
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("load verifiers: %w", err)
		}
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			vkey := strings.TrimSpace(sc.Text())
			if vkey == "" || strings.HasPrefix(vkey, "#") {
				continue
			}
			v, err := newVerifier(vkey)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("load verifiers %s:%d: %w", path, line, err)
			}
			list = append(list, v)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("load verifiers %s: %w", path, err)
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("load verifiers %v: %w: no keys", paths, ErrMalformed)
	}
	return note.VerifierList(list...), nil
}

func newVerifier(vkey string) (note.Verifier, error) {
	if strings.HasPrefix(vkey, "PRIVATE+") {
		return nil, fmt.Errorf("%w: a private key where a public verifier key belongs", ErrMalformed)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (want name+keyhash+key)", ErrMalformed, err)
	}
	return v, nil
}

// CheckpointFile is a signed checkpoint as stored in a checkpoint directory, not yet
// verified.
type CheckpointFile struct {
	Name   string // the file's path
	Size   int64  // the size its name claims
	Signed []byte // its content
}

// checkpointName is the file name of the checkpoint of a size.
func checkpointName(size int64) string { return fmt.Sprintf("%020d.checkpoint", size) }

// WriteCheckpoint stores a signed checkpoint in dir as <size, 20 digits>.checkpoint,
// durably and atomically: it writes and syncs a temporary file, links it to its name
// (which never replaces an existing file), removes the temporary name and syncs dir.
// Writing the same checkpoint again is a no-op; a different one of the same size is
// ErrExists. It checks the note's syntax, not its signatures. It returns the path.
func WriteCheckpoint(dir string, signed []byte) (string, error) {
	text, _, err := splitNote(signed)
	if err != nil {
		return "", fmt.Errorf("write checkpoint: %w", err)
	}
	c, err := parseCheckpoint(text)
	if err != nil {
		return "", fmt.Errorf("write checkpoint: %w", err)
	}
	name := filepath.Join(dir, checkpointName(c.Size))
	if same, err := sameContent(name, signed); err != nil {
		return "", err
	} else if same {
		return name, nil
	}
	tmp, err := os.CreateTemp(dir, ".checkpoint-*.tmp")
	if err != nil {
		return "", fmt.Errorf("write checkpoint %d: %w", c.Size, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(signed)
	if err == nil {
		err = tmp.Chmod(0o644) // checkpoints are public
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write checkpoint %d: %w", c.Size, err)
	}
	if err := os.Link(tmp.Name(), name); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("write checkpoint %d: %w", c.Size, err)
		}
		// Written meanwhile by another process: fine if it is the same checkpoint.
		if _, err := sameContent(name, signed); err != nil {
			return "", err
		}
		return name, nil
	}
	if err := syncDir(dir); err != nil {
		return "", fmt.Errorf("write checkpoint %d: %w", c.Size, err)
	}
	return name, nil
}

// sameContent reports whether the file at name holds exactly want; a missing file is
// false, a different one ErrExists.
func sameContent(name string, want []byte) (bool, error) {
	got, err := os.ReadFile(name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("write checkpoint: %w", err)
	case !bytes.Equal(got, want):
		return false, fmt.Errorf("write checkpoint %s: %w", name, ErrExists)
	}
	return true, nil
}

// ReadCheckpoints returns the checkpoint files of dir (names of 20 digits followed by
// ".checkpoint"), sorted by size. Other files are ignored. Content is not checked here.
func ReadCheckpoints(dir string) ([]CheckpointFile, error) {
	entries, err := os.ReadDir(dir) // sorted by name, which is by size
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	var out []CheckpointFile
	for _, e := range entries {
		digits, ok := strings.CutSuffix(e.Name(), ".checkpoint")
		if !ok || len(digits) != 20 || strings.Trim(digits, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		size, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			continue
		}
		path := filepath.Join(dir, e.Name())
		signed, err := readLimited(path, maxCheckpoint+1)
		if err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", err)
		}
		out = append(out, CheckpointFile{Name: path, Size: size, Signed: signed})
	}
	return out, nil
}

// readLimited reads at most limit bytes of a file: enough to tell that it is too long.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
