package main_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	copies      map[string]string // altered copies by name, built once
	root        string            // where the copies go: outlives the subtests
}

// last is the log's last sequence.
func (s *integrityStore) last() uint64 { return uint64(len(s.msgs)) }

// newIntegrityStore publishes a simulated log of about 100,000 events (10,000 in short
// mode) and catches up the integrity projector, which signs a checkpoint at every
// multiple of the cadence.
func newIntegrityStore(t *testing.T) *integrityStore {
	t.Helper()
	interactions, every := "11600", int64(10000)
	if testing.Short() {
		interactions, every = "1160", 2000
	}
	root := t.TempDir()
	dir := filepath.Join(root, "orig")
	s := &integrityStore{root: root,
		dir: dir, checkpoints: filepath.Join(dir, "checkpoints"), tree: filepath.Join(dir, "integrity", "tree.hashes"),
		pub: filepath.Join(dir, "keys", "checkpoint.pub"), every: every, copies: map[string]string{},
	}
	start := time.Now()
	in := simulate(t, "--seed", "11", "--interactions", interactions)
	if code, _, errs := run(t, in, "publish", "--data", dir, "-"); code != 0 {
		t.Fatalf("publish: exit %d\n%s", code, tail(errs))
	}
	// Any command that reads the tree catches the integrity projector up first.
	if code, _, errs := run(t, nil, "prove", "--seq", "1", "--data", dir, "--checkpoint-every", fmt.Sprint(every)); code != 0 {
		t.Fatalf("prove (catch-up): exit %d\n%s", code, errs)
	}
	s.msgs = readLog(t, dir, "")
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
func readLog(t *testing.T, dir, keyFile string) []storedMsg {
	t.Helper()
	ctx := context.Background()
	e, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: dir, KeyFile: keyFile})
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
// of the first letter of its source.
func flipByte(t *testing.T, data []byte) []byte {
	t.Helper()
	i := bytes.Index(data, []byte(`"source":"`))
	if i < 0 {
		t.Fatalf("no source in %s", data)
	}
	out := bytes.Clone(data)
	out[i+len(`"source":"`)] ^= 0x20
	return out
}

// alteredCopy builds (once) the named altered copy of the store; alter edits a clone of
// the message list.
func (s *integrityStore) alteredCopy(t *testing.T, name string, deleteSeq uint64, alter func([]storedMsg) []storedMsg) string {
	t.Helper()
	if dir, ok := s.copies[name]; ok {
		return dir
	}
	dir := filepath.Join(s.root, fmt.Sprintf("copy%d", len(s.copies)+1))
	writeCopy(t, dir, alter(append([]storedMsg(nil), s.msgs...)), deleteSeq)
	s.copies[name] = dir
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

func TestIntegrityEndToEnd(t *testing.T) {
	s := newIntegrityStore(t)
	e, last, signed := s.every, s.last(), uint64(s.signed)
	cp := func(size uint64) string {
		return fmt.Sprintf("checkpoint %d (%s): ", size, filepath.Join(s.checkpoints, fmt.Sprintf("%020d.checkpoint", size)))
	}
	between := func(from, to uint64) string { return fmt.Sprintf("first bad seq: between %d and %d\n", from, to) }
	E := uint64(e)

	t.Run("untouched", func(t *testing.T) {
		untouched := s.alteredCopy(t, "untouched", 0, func(m []storedMsg) []storedMsg { return m })
		cases := map[string][]string{
			"original":              {"verify", "--data", s.dir},
			"copy":                  s.verifyArgs(untouched, false),
			"copy without the tree": s.verifyArgs(untouched, true),
		}
		for name, args := range cases {
			t.Run(name, func(t *testing.T) {
				code, out, errs := run(t, nil, args...)
				want := fmt.Sprintf("verified: events 1 to %d are the signed ones\n", signed)
				if code != 0 || !strings.HasSuffix(out, "\nOK\n") || !strings.Contains(out, want) {
					t.Fatalf("exit %d, want 0 and %q\n%s%s", code, want, out, errs)
				}
			})
		}
	})

	// Each altered copy: the alteration, the sequence it makes bad, and the lines the
	// report must hold with the reference tree and without it.
	flip, shift, gap := 3*E+E/3+7, E+11, 2*E+500
	swapA, swapB := 4*E-3, 4*E+5
	cut := signed - E/2
	tampered := []struct {
		name       string
		deleteSeq  uint64
		alter      func([]storedMsg) []storedMsg
		withRef    []string
		withoutRef []string
	}{
		{
			name: "one byte flipped",
			alter: func(m []storedMsg) []storedMsg {
				m[flip-1].data = flipByte(t, m[flip-1].data)
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
			alter: func(m []storedMsg) []storedMsg { return append(m[:shift-1], m[shift:]...) },
			withRef: []string{
				fmt.Sprintf("reference: %d events differ, the first seq %d\n", last-shift, shift),
				"reference: the log ends 1 events before the reference tree\n",
				fmt.Sprintf("first bad seq: %d\n", shift),
			},
			withoutRef: []string{between(E+1, 2*E)},
		},
		{
			name:      "one event deleted, a gap",
			deleteSeq: gap,
			alter:     func(m []storedMsg) []storedMsg { return m },
			withRef: []string{
				fmt.Sprintf("gap: seq %d missing\n", gap),
				fmt.Sprintf("first bad seq: %d\n", gap),
			},
			withoutRef: []string{fmt.Sprintf("gap: seq %d missing\n", gap), between(2*E+1, gap)},
		},
		{
			name: "two events swapped",
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
			alter: func(m []storedMsg) []storedMsg { return m[:cut] },
			withRef: []string{
				cp(signed) + fmt.Sprintf("log shorter than the checkpoint: signs %d events, the log has %d: the tail from seq %d is missing\n", signed, cut, cut+1),
				fmt.Sprintf("first bad seq: %d\n", cut+1),
			},
			withoutRef: []string{cp(signed) + "log shorter than the checkpoint", between(signed-E+1, cut+1)},
		},
	}
	t.Run("tampered", func(t *testing.T) {
		for _, tc := range tampered {
			data := s.alteredCopy(t, tc.name, tc.deleteSeq, tc.alter)
			for _, noRef := range []bool{false, true} {
				want := tc.withRef
				name := tc.name
				if noRef {
					want, name = tc.withoutRef, name+" without the tree"
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
				})
			}
		}
	})
	_ = e
}
