package integrity_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custody/custody/projections/integrity"
)

func TestCheckpointRoundTrip(t *testing.T) {
	k := newKeys(t, "custody-test")
	tr := newTree(t, makeEvents(300))
	msg := sign(t, tr, 257, k)
	root, _ := tr.RootAt(257)
	text := origin + "\n257\n" + root.String() + "\n\n— custody-test "
	if !strings.HasPrefix(string(msg), text) {
		t.Fatalf("signed checkpoint:\n%s", msg)
	}
	c, err := integrity.OpenCheckpoint(msg, k.verifiers)
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin != origin || c.Size != 257 || c.Root != root || !bytes.Equal(c.Signed, msg) {
		t.Fatalf("opened %+v", c)
	}
	parts := strings.SplitN(k.vkey, "+", 3)
	if want := []string{parts[0] + "+" + parts[1]}; !slices.Equal(c.SignedBy, want) {
		t.Fatalf("signed by %v, want %v", c.SignedBy, want)
	}
}

func TestOpenCheckpointErrors(t *testing.T) {
	k := newKeys(t, "custody-test")
	other := newKeys(t, "custody-test") // same name, another key
	root := tlog.RecordHash([]byte("root"))
	good, err := integrity.Sign(origin, 10, root, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	signText := func(text string) []byte {
		msg, err := note.Sign(&note.Note{Text: text}, k.signer)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	flipSig := func(msg []byte) []byte {
		lines := strings.Split(string(msg), "\n")
		sigLine := lines[len(lines)-2]
		i := strings.LastIndex(sigLine, " ")
		sig, _ := base64.StdEncoding.DecodeString(sigLine[i+1:])
		sig[10] ^= 1
		lines[len(lines)-2] = sigLine[:i+1] + base64.StdEncoding.EncodeToString(sig)
		return []byte(strings.Join(lines, "\n"))
	}
	byOther, _ := integrity.Sign(origin, 10, root, other.signer)
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"unknown key", byOther, integrity.ErrUnknownKey},
		{"flipped signature bit", flipSig(good), integrity.ErrBadSignature},
		{"size edited after signing", bytes.Replace(good, []byte("\n10\n"), []byte("\n11\n"), 1), integrity.ErrBadSignature},
		{"root edited after signing", bytes.Replace(good, []byte(root.String()), []byte(tlog.RecordHash(nil).String()), 1), integrity.ErrBadSignature},
		{"no signature", []byte(origin + "\n10\n" + root.String() + "\n"), integrity.ErrMalformed},
		{"empty", nil, integrity.ErrMalformed},
		{"control character", bytes.Replace(good, []byte("\n10\n"), []byte("\n1\t0\n"), 1), integrity.ErrMalformed},
		{"garbage signature line", append(bytes.Clone(good), "signed by me\n"...), integrity.ErrMalformed},
		{"extension line", signText(origin + "\n10\n" + root.String() + "\nextra\n"), integrity.ErrMalformed},
		{"go.sum tree note", signText("go.sum database tree\n10\n" + root.String() + "\n"), integrity.ErrMalformed},
		{"leading zero", signText(origin + "\n010\n" + root.String() + "\n"), integrity.ErrMalformed},
		{"negative size", signText(origin + "\n-1\n" + root.String() + "\n"), integrity.ErrMalformed},
		{"size past MaxSize", signText(origin + "\n281474976710657\n" + root.String() + "\n"), integrity.ErrMalformed},
		{"short root", signText(origin + "\n10\nAAAA\n"), integrity.ErrMalformed},
		{"root not base64", signText(origin + "\n10\n" + strings.Repeat("!", 44) + "\n"), integrity.ErrMalformed},
		{"origin with space", signText("custody test\n10\n" + root.String() + "\n"), integrity.ErrMalformed},
		{"too long", append(bytes.Repeat([]byte("x"), 20000), good...), integrity.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := integrity.OpenCheckpoint(tt.msg, k.verifiers)
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenCheckpoint = %v, want %v", err, tt.want)
			}
			var se *integrity.SignatureError
			isSig := errors.As(err, &se)
			if isSig == (tt.want == integrity.ErrMalformed) || isSig == errors.Is(err, integrity.ErrMalformed) {
				t.Fatalf("%v: a signature problem must be a SignatureError and never ErrMalformed", err)
			}
		})
	}
}

func TestSignRefusesBadInput(t *testing.T) {
	k := newKeys(t, "custody-test")
	tests := []struct {
		name   string
		origin string
		size   int64
	}{
		{"empty origin", "", 1},
		{"origin with newline", "a\nb", 1},
		{"origin with plus", "a+b", 1},
		{"negative size", origin, -1},
		{"size past MaxSize", origin, integrity.MaxSize + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := integrity.Sign(tt.origin, tt.size, tlog.Hash{}, k.signer); err == nil {
				t.Fatal("Sign accepted it")
			}
		})
	}
	if _, err := integrity.Sign(origin, 1, tlog.Hash{}); err == nil {
		t.Fatal("Sign without signers")
	}
	if _, _, err := integrity.GenerateKey("bad name"); !errors.Is(err, integrity.ErrMalformed) {
		t.Fatalf("GenerateKey with a space: %v", err)
	}
}

// Old checkpoints stay verifiable after a rotation, with the old public key kept.
func TestKeyRotation(t *testing.T) {
	old, cur := newKeys(t, "custody-2025"), newKeys(t, "custody-2026")
	tr := newTree(t, makeEvents(20))
	before := sign(t, tr, 10, old)
	after := sign(t, tr, 20, cur)
	root, _ := tr.RootAt(15)
	both, err := integrity.Sign(origin, 15, root, old.signer, cur.signer)
	if err != nil {
		t.Fatal(err)
	}
	rotated := note.VerifierList(old.verifier, cur.verifier)
	for _, msg := range [][]byte{before, both, after} {
		if _, err := integrity.OpenCheckpoint(msg, rotated); err != nil {
			t.Fatalf("with both keys: %v", err)
		}
	}
	if _, err := integrity.OpenCheckpoint(before, cur.verifiers); !errors.Is(err, integrity.ErrUnknownKey) {
		t.Fatalf("old checkpoint with only the new key: %v", err)
	}
	if c, err := integrity.OpenCheckpoint(both, cur.verifiers); err != nil || len(c.SignedBy) != 1 {
		t.Fatalf("doubly signed checkpoint with only the new key: %v %v", c.SignedBy, err)
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, err := integrity.GenerateKey("custody-test")
	if err != nil {
		t.Fatal(err)
	}
	_, vkey2, _ := integrity.GenerateKey("custody-next")
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	skeyPath := write("signer.key", "\n  "+skey+"\r\n")
	vkeyPath := write("verifier.pub", vkey+"\n")
	listPath := write("verifiers.pub", "# custody keys\n"+vkey+"\n\n"+vkey2+"\n")
	damaged := skey[:len(skey)-4] + "AAAA"

	s, err := integrity.LoadSigner(skeyPath)
	if err != nil {
		t.Fatal(err)
	}
	v, err := integrity.LoadVerifier(vkeyPath)
	if err != nil {
		t.Fatal(err)
	}
	list, err := integrity.LoadVerifiers(listPath)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := integrity.Sign(origin, 0, tlog.Hash{}, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, vs := range []note.Verifiers{note.VerifierList(v), list} {
		if _, err := integrity.OpenCheckpoint(msg, vs); err != nil {
			t.Fatalf("loaded keys do not verify: %v", err)
		}
	}

	tests := []struct {
		name string
		load func() error
		file string
	}{
		{"missing signer", func() error { _, err := integrity.LoadSigner(filepath.Join(dir, "none.key")); return err }, "none.key"},
		{"public key as signer", func() error { _, err := integrity.LoadSigner(vkeyPath); return err }, "verifier.pub"},
		{"damaged signer", func() error { _, err := integrity.LoadSigner(write("damaged.key", damaged)); return err }, "damaged.key"},
		{"private key as verifier", func() error { _, err := integrity.LoadVerifier(skeyPath); return err }, "signer.key"},
		{"two keys as one verifier", func() error { _, err := integrity.LoadVerifier(listPath); return err }, "verifiers.pub"},
		{"bad line in a list", func() error { _, err := integrity.LoadVerifiers(write("bad.pub", vkey+"\nnot a key\n")); return err }, "bad.pub:2"},
		{"empty list", func() error { _, err := integrity.LoadVerifiers(write("empty.pub", "# none\n")); return err }, "empty.pub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.load()
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %q does not name the file %s", err, tt.file)
			}
			for _, secret := range []string{skey[strings.LastIndex(skey, "+")+1:], damaged[strings.LastIndex(damaged, "+")+1:]} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows the private key", err)
				}
			}
		})
	}
}

func TestCheckpointDirectory(t *testing.T) {
	k := newKeys(t, "custody-test")
	tr := newTree(t, makeEvents(1000))
	dir := t.TempDir()
	sizes := []int64{1000, 7, 0, 120}
	for _, size := range sizes {
		path, err := integrity.WriteCheckpoint(dir, sign(t, tr, size, k))
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, integrityName(size)); path != want {
			t.Fatalf("path %s, want %s", path, want)
		}
	}
	// Writing the same checkpoint again is a no-op; another one of a size is refused.
	again := sign(t, tr, 7, k)
	if _, err := integrity.WriteCheckpoint(dir, again); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	root, _ := tr.RootAt(8)
	forged, _ := integrity.Sign(origin, 7, root, k.signer)
	if _, err := integrity.WriteCheckpoint(dir, forged); !errors.Is(err, integrity.ErrExists) {
		t.Fatalf("a different checkpoint of size 7: %v", err)
	}
	if _, err := integrity.WriteCheckpoint(dir, []byte("junk")); !errors.Is(err, integrity.ErrMalformed) {
		t.Fatalf("junk: %v", err)
	}
	for _, junk := range []string{"notes.txt", ".checkpoint-123.tmp", "12.checkpoint"} {
		os.WriteFile(filepath.Join(dir, junk), []byte("x"), 0o600)
	}

	files, err := integrity.ReadCheckpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, f := range files {
		got = append(got, f.Size)
		c, err := integrity.OpenCheckpoint(f.Signed, k.verifiers)
		if err != nil || c.Size != f.Size || filepath.Base(f.Name) != integrityName(f.Size) {
			t.Fatalf("%s: %+v %v", f.Name, c, err)
		}
	}
	if !slices.Equal(got, []int64{0, 7, 120, 1000}) {
		t.Fatalf("sizes %v", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4+3 {
		t.Fatalf("%d files: a temporary file was left behind", len(entries))
	}
}

func integrityName(size int64) string { return fmt.Sprintf("%020d.checkpoint", size) }
