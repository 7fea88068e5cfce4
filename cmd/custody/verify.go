package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections/integrity"
	"github.com/custody/custody/streams"
)

func verifyCmd(g *globals) *cobra.Command {
	var from uint64
	var tree string
	var noRef bool
	cmd := &cobra.Command{
		Use:   "verify [--data DIR | --nats URL] [--checkpoints DIR] [--from SEQ]",
		Short: "Replay the log, recompute its Merkle tree and check every signed checkpoint",
		Long: `Replays the events stream, recomputes its RFC 6962 Merkle tree from the stored bytes
and checks every signed checkpoint (the checkpoint directory and the CUSTODY_INTEGRITY
stream) against it: the signature with --verify-key, the root at its size. With the
integrity projector's tree file as a reference (default DATA/integrity/tree.hashes; first
authenticated against the checkpoints) it names the exact first sequence whose content
differs. It reports sequence gaps, a log shorter than a signed checkpoint or than the
reference tree, and checkpoints whose signature or root does not match.
Exit status 0 only when everything verifies, 1 when something does not, 2 on errors.
--from SEQ starts reading the log at SEQ; the leaves before it come from the reference.
A progress bar is shown when stderr is a terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			keys, err := g.verifiers()
			if err != nil {
				return err
			}
			sess, err := g.connect(ctx, connectOpts{readOnly: true})
			if err != nil {
				return err
			}
			defer sess.close()
			if tree == "" && !noRef {
				if _, err := os.Stat(g.treePath()); err == nil {
					tree = g.treePath()
				}
			}
			rep, err := sess.verify(ctx, verifyRequest{keys: keys, dir: g.checkpointDir(), tree: tree, from: from, origin: g.origin},
				progressFor(g.stderr))
			if err != nil {
				return err
			}
			fmt.Fprint(g.stdout, rep.String())
			if !rep.OK() {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "read the log from this sequence (needs the reference tree)")
	cmd.Flags().StringVar(&tree, "tree", "", "reference tree file (default DATA/integrity/tree.hashes when present)")
	cmd.Flags().BoolVar(&noRef, "no-reference", false, "verify against the signed checkpoints only")
	return cmd
}

type verifyRequest struct {
	keys   note.Verifiers
	dir    string
	tree   string
	from   uint64
	origin string
}

// verify runs the verification of the log against the checkpoints and the reference.
func (s *session) verify(ctx context.Context, req verifyRequest, progress func(applied, last uint64)) (integrity.Report, error) {
	files, err := s.allCheckpoints(ctx, req.dir)
	if err != nil {
		return integrity.Report{}, err
	}
	cfg := integrity.VerifierConfig{Keys: req.keys, Origin: req.origin, Checkpoints: files}
	if req.tree != "" {
		ref, err := integrity.OpenReadOnly(req.tree)
		if err != nil {
			return integrity.Report{}, err
		}
		defer ref.Close()
		cfg.Reference = ref
	}
	v, err := integrity.NewVerifier(cfg)
	if err != nil {
		return integrity.Report{}, err
	}
	if req.from > 1 {
		if err := v.StartAt(req.from); err != nil {
			return integrity.Report{}, fmt.Errorf("--from: %w", err)
		}
	}
	log, err := streams.OpenLog(ctx, s.js)
	if err != nil {
		return integrity.Report{}, err
	}
	last, err := log.LastSeq(ctx)
	if err != nil {
		return integrity.Report{}, err
	}
	err = log.ReplayRaw(ctx, streams.ReplayFrom{Seq: req.from}, func(seq uint64, subject string, _ time.Time, data []byte) error {
		v.Add(seq, subject, data)
		if progress != nil && seq%1000 == 0 {
			progress(seq, last)
		}
		return nil
	})
	if err != nil {
		return integrity.Report{}, fmt.Errorf("replay: %w", err)
	}
	return v.Result(), nil
}

// allCheckpoints reads the checkpoint directory and the integrity stream. A checkpoint
// found in both with the same bytes is checked once; different bytes are both checked.
func (s *session) allCheckpoints(ctx context.Context, dir string) ([]integrity.CheckpointFile, error) {
	var files []integrity.CheckpointFile
	if _, err := os.Stat(dir); err == nil {
		if files, err = integrity.ReadCheckpoints(dir); err != nil {
			return nil, err
		}
	}
	stream, err := s.js.Stream(ctx, streams.IntegrityStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return files, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, f := range files {
		seen[string(f.Signed)] = true
	}
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		signed := m.Data
		if e, err := domain.Parse(m.Data); err == nil { // a checkpoint.signed event
			if c, ok := e.Data.(*domain.CheckpointSigned); ok {
				signed = []byte(c.Note)
			}
		} // else a bare note, or something else: the verifier says what it is
		if seen[string(signed)] {
			continue
		}
		seen[string(signed)] = true
		files = append(files, integrity.CheckpointFile{Name: fmt.Sprintf("%s sequence %d", streams.IntegrityStream, seq), Size: noteSize(signed), Signed: signed})
	}
	return files, nil
}

// noteSize reads the size line of a checkpoint note (0 when there is none); the
// verifier checks it against the signed content.
func noteSize(signed []byte) int64 {
	lines := bytes.SplitN(signed, []byte("\n"), 3)
	if len(lines) < 3 {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(lines[1])), 10, 64)
	return n
}

// checkpointAt returns the signed checkpoint of a tree size: the one in the checkpoint
// directory, or, when this process holds the signing key, one it signs now from the tree
// (and stores in the directory).
func (g *globals) checkpointAt(tree *integrity.Tree, size int64) ([]byte, error) {
	files, err := integrity.ReadCheckpoints(g.checkpointDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, f := range files {
		if f.Size == size {
			return f.Signed, nil
		}
	}
	signer, err := g.signer(false)
	if err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, fmt.Errorf("no signed checkpoint of size %d in %s, and no signing key to sign one", size, g.checkpointDir())
	}
	root, err := tree.RootAt(size)
	if err != nil {
		return nil, err
	}
	signed, err := integrity.Sign(g.logOrigin(), size, root, signer)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(g.checkpointDir(), 0o755); err != nil {
		return nil, err
	}
	if _, err := integrity.WriteCheckpoint(g.checkpointDir(), signed); err != nil {
		return nil, err
	}
	return signed, nil
}

// openTree brings the tree up to the log (or waits for the process keeping it) and opens
// it read-only.
func (s *session) openTree(ctx context.Context, g *globals, until uint64) (*integrity.Tree, error) {
	if err := s.catchUpIntegrity(ctx, g, until); err != nil {
		return nil, err
	}
	return integrity.OpenReadOnly(g.treePath())
}

func proveCmd(g *globals) *cobra.Command {
	var seq uint64
	var consistency []int64
	var size int64
	cmd := &cobra.Command{
		Use:   "prove (--seq N [--size S] | --consistency M,N)",
		Short: "Print an inclusion or a consistency proof against signed checkpoints",
		Long: `--seq N prints the inclusion proof of the event stored at sequence N in the tree of a
signed checkpoint: the smallest one that covers N, or the one of --size S.
--consistency M,N prints the proof that the tree of size M is a prefix of the tree of
size N. Missing checkpoints of those sizes are signed when this process has the signing
key. Proofs are text; check them offline with custody verify-proof or by the procedure
in docs/INTEGRITY.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if (seq == 0) == (len(consistency) == 0) {
				return fmt.Errorf("give exactly one of --seq N and --consistency M,N")
			}
			if len(consistency) != 0 && (len(consistency) != 2 || consistency[0] < 1 || consistency[0] > consistency[1]) {
				return fmt.Errorf("--consistency M,N: two sizes with 1 <= M <= N")
			}
			sess, err := g.connect(ctx, connectOpts{})
			if err != nil {
				return err
			}
			defer sess.close()
			tree, err := sess.openTree(ctx, g, 0)
			if err != nil {
				return err
			}
			defer tree.Close()
			var out []byte
			if seq > 0 {
				if size == 0 {
					size = coveringSize(g, int64(seq), tree.Size())
				}
				if int64(seq) > size || size > tree.Size() {
					return fmt.Errorf("--seq %d: the tree has %d events; --size must be at least the sequence and at most that", seq, tree.Size())
				}
				cp, err := g.checkpointAt(tree, size)
				if err != nil {
					return err
				}
				p, err := tree.ProveInclusion(seq, cp)
				if err != nil {
					return err
				}
				out, err = integrity.FormatInclusion(p)
				if err != nil {
					return err
				}
			} else {
				if consistency[1] > tree.Size() {
					return fmt.Errorf("--consistency: the tree has %d events", tree.Size())
				}
				oldCP, err := g.checkpointAt(tree, consistency[0])
				if err != nil {
					return err
				}
				newCP, err := g.checkpointAt(tree, consistency[1])
				if err != nil {
					return err
				}
				p, err := tree.ProveConsistency(oldCP, newCP)
				if err != nil {
					return err
				}
				out, err = integrity.FormatConsistency(p)
				if err != nil {
					return err
				}
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().Uint64Var(&seq, "seq", 0, "the sequence of the event to prove")
	cmd.Flags().Int64Var(&size, "size", 0, "the checkpoint size to prove it against (default: the smallest signed one that covers it, else the tree's size)")
	cmd.Flags().Int64SliceVar(&consistency, "consistency", nil, "two tree sizes M,N")
	return cmd
}

// coveringSize is the size of the smallest signed checkpoint at least seq, or the
// tree's size when none is.
func coveringSize(g *globals, seq, treeSize int64) int64 {
	files, _ := integrity.ReadCheckpoints(g.checkpointDir())
	for _, f := range files {
		if f.Size >= seq && f.Size <= treeSize {
			return f.Size
		}
	}
	return treeSize
}

func verifyProofCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify-proof FILE",
		Short: "Check an inclusion or consistency proof offline (no log needed)",
		Long: `Checks a proof printed by custody prove: the checkpoints' signatures with --verify-key,
then the hashes up to the signed root. Needs nothing but the proof and the public key.
Exit status 0 when it verifies, 1 when it does not.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := g.verifiers()
			if err != nil {
				return err
			}
			text, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			switch {
			case bytes.HasPrefix(text, []byte("custody inclusion proof")):
				p, err := integrity.ParseInclusion(text)
				if err != nil {
					return err
				}
				c, err := integrity.CheckInclusion(p, keys)
				if err != nil {
					fmt.Fprintf(g.stdout, "NOT OK: %v\n", err)
					return exitError{1}
				}
				fmt.Fprintf(g.stdout, "OK: the event of sequence %d (leaf %s) is in the log %s of %d events, root %s, signed by %s\n",
					p.Seq, p.Leaf, c.Origin, c.Size, c.Root, strings.Join(c.SignedBy, ", "))
			case bytes.HasPrefix(text, []byte("custody consistency proof")):
				p, err := integrity.ParseConsistency(text)
				if err != nil {
					return err
				}
				o, n, err := integrity.CheckConsistency(p, keys)
				if err != nil {
					fmt.Fprintf(g.stdout, "NOT OK: %v\n", err)
					return exitError{1}
				}
				fmt.Fprintf(g.stdout, "OK: the log %s of %d events (root %s) is a prefix of its %d events (root %s)\n",
					o.Origin, o.Size, o.Root, n.Size, n.Root)
			default:
				return fmt.Errorf("%s: not a custody proof (its first line names neither an inclusion nor a consistency proof)", args[0])
			}
			return nil
		},
	}
}

func keygenCmd(g *globals) *cobra.Command {
	var name, out string
	cmd := &cobra.Command{
		Use:   "keygen --name NAME [--out DIR]",
		Short: "Generate a checkpoint signing key pair (NAME.key private, NAME.pub public)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return fmt.Errorf("--name: required (letters, digits, dots, dashes; it appears in every signature)")
			}
			if err := generateKey(out, name, name); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s/%s.key (keep it secret) and %s/%s.pub (give it to the auditors)\n", out, name, out, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "key name")
	cmd.Flags().StringVar(&out, "out", ".", "directory to write the key files to")
	return cmd
}
