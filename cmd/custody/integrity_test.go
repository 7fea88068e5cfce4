package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/projections/integrity"
	"github.com/custody/custody/streams"
)

// storedMsg is one message of the events stream: its subject and stored bytes.
type storedMsg struct {
	subject string
	data    []byte
}

// integrityStore is an original data directory: a simulated log, its integrity tree and
// its signed checkpoints, with the log's messages read back in sequence order.
type integrityStore struct {
	dir         string
	checkpoints string // DIR/checkpoints
	tree        string // DIR/integrity/tree.hashes
	pub         string // DIR/keys/checkpoint.pub
	every       int64  // the checkpoint cadence
	signed      int64  // the largest checkpoint size: the tail after it is unsigned
	msgs        []storedMsg
	root        string // where the copies go: outlives the subtests
	mu          sync.Mutex
	copies      map[string]string // altered copies by name, built once
}

// last is the log's last sequence.
func (s *integrityStore) last() uint64 { return uint64(len(s.msgs)) }

// newIntegrityStore publishes a simulated log (about 8.6 events per interaction) and
// catches up the integrity projector, which signs a checkpoint at every multiple of the
// cadence every.
func newIntegrityStore(t *testing.T, interactions int, every int64) *integrityStore {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "orig")
	s := &integrityStore{root: root,
		dir: dir, checkpoints: filepath.Join(dir, "checkpoints"), tree: filepath.Join(dir, "integrity", "tree.hashes"),
		pub: filepath.Join(dir, "keys", "checkpoint.pub"), every: every, copies: map[string]string{},
	}
	start := time.Now()
	in := simulate(t, "--seed", "11", "--interactions", fmt.Sprint(interactions))
	if code, _, errs := run(t, in, "publish", "--data", dir, "-"); code != 0 {
		t.Fatalf("publish: exit %d\n%s", code, tail(errs))
	}
	// Any command that reads the tree catches the integrity projector up first.
	if code, _, errs := run(t, nil, "prove", "--seq", "1", "--data", dir, "--checkpoint-every", fmt.Sprint(every)); code != 0 {
		t.Fatalf("prove (catch-up): exit %d\n%s", code, errs)
	}
	s.msgs = readLog(t, dir)
	files, err := integrity.ReadCheckpoints(s.checkpoints)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		s.signed = max(s.signed, f.Size)
	}
	if want := int64(s.last()) / every * every; s.signed != want || int64(s.last()) == s.signed || len(files) != int(want/every) {
		t.Fatalf("%d events, %d checkpoints up to %d; want one every %d up to %d and an unsigned tail", s.last(), len(files), s.signed, every, want)
	}
	t.Logf("original: %d events, checkpoints every %d up to %d, built in %s", s.last(), every, s.signed, time.Since(start).Round(time.Millisecond))
	return s
}

// readLog reads every message of the events stream of a data directory, in order.
func readLog(t *testing.T, dir string) []storedMsg {
	t.Helper()
	ctx := context.Background()
	e, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	log, err := streams.OpenLog(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []storedMsg
	err = log.ReplayRaw(ctx, streams.ReplayFrom{}, func(seq uint64, subject string, _ time.Time, data []byte) error {
		if seq != uint64(len(msgs))+1 {
			return fmt.Errorf("seq %d after %d", seq, len(msgs))
		}
		msgs = append(msgs, storedMsg{subject: subject, data: bytes.Clone(data)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// writeCopy writes msgs as the events stream of a new data directory, as an attacker
// with write access to the store would: through the JetStream API, with custody's
// stream settings except that, when deleteSeq is set, the stream allows deletes and
// deleteSeq is deleted afterwards (a gap).
func writeCopy(t *testing.T, dir string, msgs []storedMsg, deleteSeq uint64) {
	t.Helper()
	ctx := context.Background()
	e, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := streams.LogConfig{}.Configs()[0]
	cfg.DenyDelete = deleteSeq == 0
	stream, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := streams.NewPublisher(nc, streams.PublisherConfig{AtomicBatch: streams.MaxAtomicBatch})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]streams.Outgoing, len(msgs))
	for i, m := range msgs {
		out[i] = streams.Outgoing{ID: fmt.Sprintf("copy-%d", i+1), Subject: m.subject, Data: m.data}
	}
	for i, r := range pub.PublishAll(ctx, out) {
		if r.Status != streams.Stored || r.Seq != uint64(i)+1 {
			t.Fatalf("copy: message %d: %s at seq %d: %v", i+1, r.Status, r.Seq, r.Err)
		}
	}
	if deleteSeq > 0 {
		if err := stream.DeleteMsg(ctx, deleteSeq); err != nil {
			t.Fatal(err)
		}
	}
}

// flipByte returns data with one byte changed so that it stays a valid event: the case
// of the first letter of its source (the last byte when it has none).
func flipByte(data []byte) []byte {
	out := bytes.Clone(data)
	i := len(out) - 1
	if j := bytes.Index(out, []byte(`"source":"`)); j >= 0 {
		i = j + len(`"source":"`)
	}
	out[i] ^= 0x20
	return out
}

// alteredCopy builds (once) the named altered copy of the store; alter edits a clone of
// the message list. Copies of different names may be built at the same time.
func (s *integrityStore) alteredCopy(t *testing.T, name string, deleteSeq uint64, alter func([]storedMsg) []storedMsg) string {
	t.Helper()
	s.mu.Lock()
	dir, built := s.copies[name]
	if !built {
		dir = filepath.Join(s.root, fmt.Sprintf("copy%d", len(s.copies)+1))
		s.copies[name] = dir
	}
	s.mu.Unlock()
	if built {
		return dir
	}
	start := time.Now()
	writeCopy(t, dir, alter(append([]storedMsg(nil), s.msgs...)), deleteSeq)
	t.Logf("copy %q written in %s", name, time.Since(start).Round(time.Millisecond))
	return dir
}

// verifyArgs checks data against the original's checkpoints, key and (unless noRef)
// tree.
func (s *integrityStore) verifyArgs(data string, noRef bool) []string {
	args := []string{"verify", "--data", data, "--checkpoints", s.checkpoints, "--verify-key", s.pub}
	if noRef {
		return append(args, "--no-reference")
	}
	return append(args, "--tree", s.tree)
}

// TestIntegrityEndToEnd alters copies of a 100,000-event log (10,000 in short mode)
// and checks that verify names the first bad sequence or the bad checkpoint, and that
// proofs printed by prove verify offline and fail once tampered with.
func TestIntegrityEndToEnd(t *testing.T) {
	interactions, every := 11600, int64(10000)
	if testing.Short() {
		interactions, every = 1160, 2000
	}
	s := newIntegrityStore(t, interactions, every)
	E, last, signed := uint64(s.every), s.last(), uint64(s.signed)
	cp := func(size uint64) string {
		return fmt.Sprintf("checkpoint %d (%s): ", size, filepath.Join(s.checkpoints, fmt.Sprintf("%020d.checkpoint", size)))
	}
	between := func(from, to uint64) string { return fmt.Sprintf("first bad seq: between %d and %d\n", from, to) }

	t.Run("untouched", func(t *testing.T) {
		untouched := s.alteredCopy(t, "untouched", 0, func(m []storedMsg) []storedMsg { return m })
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"original", []string{"verify", "--data", s.dir}},
			{"copy", s.verifyArgs(untouched, false)},
			{"copy without the tree", s.verifyArgs(untouched, true)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out, errs := run(t, nil, tc.args...)
				want := fmt.Sprintf("verified: events 1 to %d are the signed ones\n", signed)
				if code != 0 || !strings.HasSuffix(out, "\nOK\n") || !strings.Contains(out, want) {
					t.Fatalf("exit %d, want 0 and %q\n%s%s", code, want, out, errs)
				}
			})
		}
	})

	// Each altered copy: the alteration, the first sequence it makes bad, and the lines
	// the report must hold with the reference tree (which names that sequence) and
	// without it (which bounds it between two checkpoints).
	flip, shift, gap := 3*E+E/3+7, E+11, 2*E+500
	swapA, swapB := 4*E-3, 4*E+5
	cut := signed - E/2
	tampered := []struct {
		name       string
		deleteSeq  uint64
		alter      func([]storedMsg) []storedMsg
		bad        uint64
		withRef    []string
		withoutRef []string
	}{
		{
			name: "one byte flipped",
			bad:  flip,
			alter: func(m []storedMsg) []storedMsg {
				m[flip-1].data = flipByte(m[flip-1].data)
				return m
			},
			withRef: []string{
				fmt.Sprintf("reference: 1 events differ, the first seq %d\n", flip),
				cp(4*E) + "log does not reproduce the root",
				fmt.Sprintf("first bad seq: %d\n", flip),
			},
			withoutRef: []string{cp(4*E) + "log does not reproduce the root", between(3*E+1, 4*E)},
		},
		{
			name:  "one event dropped, the rest moved down",
			bad:   shift,
			alter: func(m []storedMsg) []storedMsg { return append(m[:shift-1], m[shift:]...) },
			withRef: []string{
				fmt.Sprintf("reference: %d events differ, the first seq %d\n", last-shift, shift),
				fmt.Sprintf("reference: the log ends 1 events before the reference tree (seqs %d to %d missing)\n", last, last),
				fmt.Sprintf("first bad seq: %d\n", shift),
			},
			withoutRef: []string{between(E+1, 2*E)},
		},
		{
			name:      "one event deleted, a gap",
			deleteSeq: gap,
			bad:       gap,
			alter:     func(m []storedMsg) []storedMsg { return m },
			withRef: []string{
				fmt.Sprintf("gap: seq %d missing\n", gap),
				fmt.Sprintf("first bad seq: %d\n", gap),
			},
			withoutRef: []string{fmt.Sprintf("gap: seq %d missing\n", gap), between(2*E+1, gap)},
		},
		{
			name: "two events swapped",
			bad:  swapA,
			alter: func(m []storedMsg) []storedMsg {
				m[swapA-1], m[swapB-1] = m[swapB-1], m[swapA-1]
				return m
			},
			withRef: []string{
				fmt.Sprintf("reference: 2 events differ, the first seq %d\n", swapA),
				fmt.Sprintf("first bad seq: %d\n", swapA),
			},
			withoutRef: []string{between(3*E+1, 4*E)},
		},
		{
			name:  "tail truncated below the last checkpoint",
			bad:   cut + 1,
			alter: func(m []storedMsg) []storedMsg { return m[:cut] },
			withRef: []string{
				cp(signed) + fmt.Sprintf("log shorter than the checkpoint: signs %d events, the log has %d: the tail from seq %d is missing\n", signed, cut, cut+1),
				fmt.Sprintf("first bad seq: %d\n", cut+1),
			},
			withoutRef: []string{cp(signed) + "log shorter than the checkpoint", between(signed-E+1, cut+1)},
		},
	}
	// The copies are written and verified two at a time: writing waits on the disk.
	t.Run("tampered", func(t *testing.T) {
		for _, tc := range tampered {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				data := s.alteredCopy(t, tc.name, tc.deleteSeq, tc.alter)
				for _, noRef := range []bool{false, true} {
					want, name := tc.withRef, "with the tree"
					if noRef {
						want, name = tc.withoutRef, "without the tree"
					}
					t.Run(name, func(t *testing.T) {
						code, out, errs := run(t, nil, s.verifyArgs(data, noRef)...)
						if code != 1 || !strings.HasSuffix(out, "NOT OK\n") {
							t.Fatalf("exit %d, want 1 and NOT OK\n%s%s", code, out, errs)
						}
						for _, w := range want {
							if !strings.Contains(out, w) {
								t.Errorf("output lacks %q\n%s", w, out)
							}
						}
						from, to := firstBad(t, out)
						if from > tc.bad || to < tc.bad || !noRef && from != to {
							t.Errorf("first bad seq %d to %d, want exactly %d with the tree, a range holding it without\n%s", from, to, tc.bad, out)
						}
					})
				}
			})
		}
	})

	// Removing the unsigned tail is seen only against the reference tree, which is
	// longer than the log; the checkpoints alone cannot see it (docs: "Limits").
	t.Run("unsigned tail removed", func(t *testing.T) {
		data := s.alteredCopy(t, "unsigned tail removed", 0, func(m []storedMsg) []storedMsg { return m[:signed] })
		code, out, errs := run(t, nil, s.verifyArgs(data, false)...)
		want := fmt.Sprintf("reference: the log ends %d events before the reference tree (seqs %d to %d missing)\n", last-signed, signed+1, last)
		if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprintf("last seq %d\n", signed)) {
			t.Fatalf("exit %d, want 1 and %q\n%s%s", code, want, out, errs)
		}
		if code, out, _ := run(t, nil, s.verifyArgs(data, true)...); code != 0 || !strings.HasSuffix(out, "\nOK\n") {
			t.Fatalf("without the tree: exit %d, want 0 (nothing signed is missing)\n%s", code, out)
		}
	})

	t.Run("checkpoint signed with a wrong key", func(t *testing.T) {
		keys := filepath.Join(s.root, "other-key")
		if code, out, errs := run(t, nil, "keygen", "--name", "other", "--out", keys); code != 0 {
			t.Fatalf("keygen: exit %d\n%s%s", code, out, errs)
		}
		signer, err := integrity.LoadSigner(filepath.Join(keys, "other.key"))
		if err != nil {
			t.Fatal(err)
		}
		tree, err := integrity.OpenReadOnly(s.tree)
		if err != nil {
			t.Fatal(err)
		}
		size := int64(E + 1234)
		root, err := tree.RootAt(size) // the right root: only the key is wrong
		tree.Close()
		if err != nil {
			t.Fatal(err)
		}
		forged, err := integrity.Sign("custody/"+streams.EventsStream, size, root, signer)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(s.root, "checkpoints-forged")
		if err := os.CopyFS(dir, os.DirFS(s.checkpoints)); err != nil {
			t.Fatal(err)
		}
		path, err := integrity.WriteCheckpoint(dir, forged)
		if err != nil {
			t.Fatal(err)
		}
		code, out, errs := run(t, nil, "verify", "--data", s.dir, "--checkpoints", dir)
		want := fmt.Sprintf("checkpoint %d (%s): not signed by a known key", size, path)
		if code != 1 || !strings.Contains(out, want) || strings.Contains(out, "first bad seq") || strings.Count(out, "checkpoint ") != 1 {
			t.Fatalf("exit %d, want 1 and only %q\n%s%s", code, want, out, errs)
		}
		// Trusting the other key as well (a key rotation), the checkpoint verifies.
		code, out, _ = run(t, nil, "verify", "--data", s.dir, "--checkpoints", dir, "--verify-key", s.pub, "--verify-key", filepath.Join(keys, "other.pub"))
		if code != 0 || !strings.HasSuffix(out, "\nOK\n") {
			t.Fatalf("with both keys: exit %d, want 0\n%s", code, out)
		}
	})

	// From here on, prove signs checkpoints of sizes that are no multiple of the cadence
	// when asked for them: the tail is no longer unsigned.
	cadence := []string{"--data", s.dir, "--checkpoint-every", fmt.Sprint(E)}
	t.Run("prove", func(t *testing.T) {
		r := mathrand.New(mathrand.NewPCG(11, 11))
		var cases [][]string
		for range 4 {
			cases = append(cases, []string{"--seq", fmt.Sprint(1 + r.Uint64N(signed))})
		}
		for range 2 {
			m := 1 + r.Uint64N(signed/E-1)
			n := m + 1 + r.Uint64N(signed/E-m)
			cases = append(cases, []string{"--consistency", fmt.Sprintf("%d,%d", m*E, n*E)})
		}
		// Sizes no checkpoint has yet: signed on demand.
		cases = append(cases, []string{"--seq", fmt.Sprint(last)}, []string{"--consistency", fmt.Sprintf("%d,%d", E+77, last)})
		for i, args := range cases {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, proof, errs := run(t, nil, append(append([]string{"prove"}, args...), cadence...)...)
				if code != 0 {
					t.Fatalf("prove: exit %d\n%s", code, errs)
				}
				file := filepath.Join(t.TempDir(), fmt.Sprintf("proof%d", i))
				check := func(text string) (int, string) {
					if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
					code, out, errs := run(t, nil, "verify-proof", file, "--verify-key", s.pub)
					return code, out + errs
				}
				want := []string{"OK: the event of sequence " + args[1] + " "}
				if m, n, ok := strings.Cut(args[1], ","); ok {
					want = []string{" of " + m + " events (root ", " is a prefix of its " + n + " events "}
				}
				if code, out := check(proof); code != 0 || !containsAll(out, want...) {
					t.Fatalf("verify-proof: exit %d, want 0 and %q\n%s", code, want, out)
				}
				if args[0] == "--seq" {
					// The proof commits to the stored event: its leaf is the one an
					// auditor computes from the event's sequence, subject and bytes.
					p, err := integrity.ParseInclusion([]byte(proof))
					if err != nil {
						t.Fatal(err)
					}
					m := s.msgs[p.Seq-1]
					if p.Leaf != integrity.LeafHash(p.Seq, m.subject, m.data) {
						t.Fatalf("the proof's leaf is not the leaf of the event stored at %d", p.Seq)
					}
				}
				tampered := flipHash(t, proof)
				if code, out := check(tampered); code != 1 || !strings.HasPrefix(out, "NOT OK: ") {
					t.Fatalf("verify-proof of a tampered proof: exit %d, want 1 and NOT OK\n%s", code, out)
				}
			})
		}
	})
}

// TestVerifyReport produces a report, then checks it against the log it was computed
// from, against copies of the log altered below and above its position, and edited.
func TestVerifyReport(t *testing.T) {
	interactions, every := 1160, int64(2000)
	if testing.Short() {
		interactions, every = 580, 1000
	}
	s := newIntegrityStore(t, interactions, every)
	pos := 3*uint64(every) + 123
	below, dropped, above := uint64(every)+7, 2*uint64(every)+5, pos+100
	code, report, errs := run(t, nil, "report", "access-audit", "--format", "json", "--as-of-seq", fmt.Sprint(pos),
		"--data", s.dir, "--checkpoint-every", fmt.Sprint(every))
	if code != 0 || !strings.Contains(report, fmt.Sprintf(`"logPosition": %d,`, pos)) {
		t.Fatalf("report: exit %d, want 0 at log position %d\n%s", code, pos, tail(report+errs))
	}
	file := filepath.Join(s.root, "report.json")
	edited := filepath.Join(s.root, "edited.json")
	i := strings.Index(report, `"agentId": "`) + len(`"agentId": "`)
	if i < len(`"agentId": "`) || report[i] == 'x' {
		t.Fatalf("no agent id to edit in the report\n%s", tail(report))
	}
	if err := os.WriteFile(file, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(edited, []byte(report[:i]+"x"+report[i+1:]), 0o644); err != nil {
		t.Fatal(err)
	}
	flipAt := func(seq uint64) func([]storedMsg) []storedMsg {
		return func(m []storedMsg) []storedMsg {
			m[seq-1].data = flipByte(m[seq-1].data)
			return m
		}
	}
	for _, tc := range []struct {
		name, file string
		data       func(*testing.T) string
		code       int
		want       []string
	}{
		{"unaltered", file, func(*testing.T) string { return s.dir }, 0,
			[]string{"ok       body: ", "ok       log: ", "ok       checkpoint: ", "ok       content: ", "\nOK\n"}},
		{"body edited", edited, func(*testing.T) string { return s.dir }, 1,
			[]string{"FAILED   body: ", "ok       log: ", "\nNOT OK\n"}},
		{"one byte flipped below the position", file, func(t *testing.T) string { return s.alteredCopy(t, "below", 0, flipAt(below)) }, 1,
			[]string{"ok       body: ", "FAILED   log: ", "\nNOT OK\n"}},
		{"one event dropped below the position", file, func(t *testing.T) string {
			return s.alteredCopy(t, "dropped", 0, func(m []storedMsg) []storedMsg { return append(m[:dropped-1], m[dropped:]...) })
		}, 1, []string{"FAILED   log: ", "\nNOT OK\n"}},
		{"one byte flipped above the position", file, func(t *testing.T) string { return s.alteredCopy(t, "above", 0, flipAt(above)) }, 0,
			[]string{"ok       log: ", "ok       content: ", "\nOK\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(t, nil, "verify-report", tc.file, "--data", tc.data(t), "--verify-key", s.pub)
			if code != tc.code || !containsAll(out, tc.want...) {
				t.Fatalf("exit %d, want %d and %q\n%s%s", code, tc.code, tc.want, out, errs)
			}
		})
	}
}

var firstBadLine = regexp.MustCompile(`(?m)^first bad seq: (?:(\d+)|between (\d+) and (\d+))$`)

// firstBad reads the bounds of the first bad sequence from verify's output.
func firstBad(t *testing.T, out string) (from, to uint64) {
	t.Helper()
	m := firstBadLine.FindStringSubmatch(out)
	switch {
	case m == nil:
		t.Fatalf("no first bad seq in\n%s", out)
	case m[1] != "":
		fmt.Sscan(m[1], &from)
		to = from
	default:
		fmt.Sscan(m[2], &from)
		fmt.Sscan(m[3], &to)
	}
	return from, to
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// flipHash changes one character of the first hash of a proof's audit path to another
// base64 digit, so that the proof still parses but no longer verifies.
func flipHash(t *testing.T, proof string) string {
	t.Helper()
	lines := strings.SplitAfter(proof, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "hashes ") && l != "hashes 0\n" {
			h := []byte(lines[i+1])
			if h[0] == 'A' {
				h[0] = 'B'
			} else {
				h[0] = 'A'
			}
			lines[i+1] = string(h)
			return strings.Join(lines, "")
		}
	}
	t.Fatalf("proof without hashes:\n%s", proof)
	return ""
}

// TestEncryptionAtRest plants an interaction id in events published with and without an
// encryption key and searches the bytes of the store for it.
func TestEncryptionAtRest(t *testing.T) {
	planted := "int-planted-" + randomHex(t, 12)
	var lines []string
	for i, ev := range []struct{ typ, data string }{
		{"interaction.started", `{"channel":"voice","direction":"inbound"}`},
		{"phi.accessed", `{"agentId":"agent-7","action":"handled"}`},
		{"interaction.ended", `{"disposition":"resolved"}`},
	} {
		lines = append(lines, fmt.Sprintf(`{"specversion":"1.0","id":"%s","source":"genesys-cloud/org-3f1c","type":"%s","time":"2026-03-08T06:0%d:00Z","subject":"%s","data":%s}`,
			uuid.Must(uuid.NewV7()), ev.typ, i, planted, ev.data))
	}
	in := append(simulate(t, "--seed", "3", "--interactions", "50"), strings.Join(lines, "\n")+"\n"...)
	key := filepath.Join(t.TempDir(), "store.key")
	if err := os.WriteFile(key, []byte(randomHex(t, 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	stores := map[bool]string{}
	for _, encrypted := range []bool{true, false} {
		name := map[bool]string{true: "encrypted", false: "plain"}[encrypted]
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root, name)
			stores[encrypted] = dir
			var keyArgs []string
			if encrypted {
				keyArgs = []string{"--encryption-key", key}
			}
			code, _, errs := run(t, in, append([]string{"publish", "--data", dir, "-"}, keyArgs...)...)
			if p, _, _ := lastLine(t, errs); code != 0 || p < len(lines) {
				t.Fatalf("publish: exit %d\n%s", code, tail(errs))
			}
			// The log's files hold the planted id only when they are not encrypted.
			if files, found := filesHolding(t, filepath.Join(dir, "jetstream"), planted); found == encrypted {
				t.Fatalf("found in the log's files: %v (%v), want %v", found, files, !encrypted)
			}
			// The store reads back with its key.
			code, out, errs := run(t, nil, append([]string{"replay", "--data", dir, "--interaction", planted, "--format", "jsonl"}, keyArgs...)...)
			if code != 0 || strings.Count(out, planted) != len(lines) {
				t.Fatalf("replay: exit %d\n%s%s", code, out, errs)
			}
			if _, found := filesHolding(t, filepath.Join(dir, "jetstream"), planted); found != !encrypted {
				t.Fatalf("after the replay, found in the log's files: %v, want %v", found, !encrypted)
			}
		})
	}
	dir := stores[true]
	if dir == "" {
		t.Skip("the encrypted store was not built")
	}
	wrong := filepath.Join(root, "wrong.key")
	if err := os.WriteFile(wrong, []byte(randomHex(t, 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"with its key", []string{"--encryption-key", key}, ""},
		{"without the key", nil, "encryption key: the store in " + dir + " is encrypted; give its key file"},
		{"with another key", []string{"--encryption-key", wrong}, "encryption key: the key in " + wrong + " is not the key the store in " + dir + " was encrypted with"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(t, nil, append([]string{"replay", "--data", dir, "--interaction", planted}, tc.args...)...)
			if tc.want == "" {
				if code != 0 || !strings.Contains(out, "interaction.ended") {
					t.Fatalf("exit %d, want 0 and the interaction's events\n%s%s", code, out, errs)
				}
				return
			}
			if code != 2 || !strings.Contains(errs, tc.want) || out != "" {
				t.Fatalf("exit %d, want 2 and %q\n%s%s", code, tc.want, out, errs)
			}
		})
	}
}

// randomHex returns n random bytes in hexadecimal.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// filesHolding returns the files under dir whose bytes contain s.
func filesHolding(t *testing.T, dir, s string) ([]string, bool) {
	t.Helper()
	var files []string
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if bytes.Contains(b, []byte(s)) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no files under %s", dir)
	}
	return files, len(files) > 0
}
