package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections/integrity"
	"github.com/custody/custody/streams"
)

// Where the integrity projector keeps its files, under the data directory unless the
// flags say otherwise.
func (g *globals) treePath() string { return filepath.Join(g.data, "integrity", "tree.hashes") }

func (g *globals) checkpointDir() string {
	if g.checkpoints != "" {
		return g.checkpoints
	}
	return filepath.Join(g.data, "checkpoints")
}

// defaultKeyPath is where custody keeps a signing key it generated itself (demo and
// first runs without --signing-key), and its public half.
func (g *globals) defaultKeyPath() string { return filepath.Join(g.data, "keys", "checkpoint.key") }

// logOrigin names the log in checkpoints.
func (g *globals) logOrigin() string {
	if g.origin != "" {
		return g.origin
	}
	return "custody/" + streams.EventsStream
}

// signer loads the checkpoint signing key: --signing-key, or the key custody generated
// in the data directory, generated on first use when allowed.
func (g *globals) signer(generate bool) (note.Signer, error) {
	if g.signingKey != "" {
		return integrity.LoadSigner(g.signingKey)
	}
	path := g.defaultKeyPath()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if !generate {
			return nil, nil
		}
		if err := generateKey(filepath.Dir(path), "checkpoint", "custody-checkpoint"); err != nil {
			return nil, err
		}
		g.logger().Warn("generated a checkpoint signing key in the data directory; in production give --signing-key from a secret store and hand the public key to the auditors",
			"public_key", path[:len(path)-len(".key")]+".pub")
	}
	return integrity.LoadSigner(path)
}

// verifiers loads the public keys checkpoints are checked with: --verify-key (any
// number, for rotations), else the public half of custody's own key.
func (g *globals) verifiers() (note.Verifiers, error) {
	paths := g.verifyKeys
	if len(paths) == 0 {
		switch {
		case g.signingKey != "":
			return nil, fmt.Errorf("--verify-key: required with --signing-key (the public key file)")
		default:
			pub := g.defaultKeyPath()
			pub = pub[:len(pub)-len(".key")] + ".pub"
			if _, err := os.Stat(pub); err != nil {
				return nil, fmt.Errorf("--verify-key: no public key given and none in the data directory (%s)", pub)
			}
			paths = []string{pub}
		}
	}
	return integrity.LoadVerifiers(paths...)
}

// generateKey writes NAME.key (private, 0600) and NAME.pub in dir for a key named name.
func generateKey(dir, file, name string) error {
	skey, vkey, err := integrity.GenerateKey(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	priv := filepath.Join(dir, file+".key")
	f, err := os.OpenFile(priv, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("key %s: %w", priv, err)
	}
	_, err = f.WriteString(skey + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("key %s: %w", priv, err)
	}
	return os.WriteFile(filepath.Join(dir, file+".pub"), []byte(vkey+"\n"), 0o644)
}

// integrityProjector opens the tree for appending and returns the projector that keeps
// it, publishing its checkpoints to the integrity stream. It returns nil, nil when
// another process is appending to the tree (that process keeps it current).
func (s *session) integrityProjector(g *globals) (*integrity.Projector, func(), error) {
	if err := os.MkdirAll(filepath.Dir(g.treePath()), 0o700); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(g.checkpointDir(), 0o755); err != nil {
		return nil, nil, err
	}
	tree, err := integrity.Open(g.treePath())
	if errors.Is(err, integrity.ErrLocked) {
		return nil, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	signer, err := g.signer(true)
	if err != nil {
		tree.Close()
		return nil, nil, err
	}
	p, err := integrity.NewProjector(integrity.ProjectorConfig{
		Tree: tree, Origin: g.logOrigin(), Signer: signer, Dir: g.checkpointDir(),
		Every: g.checkpointEvery, Interval: g.checkpointInterval,
		Publish: func(ctx context.Context, size int64, signed []byte) error {
			// A checkpoint.signed event: its id derives from the checkpoint, so a
			// re-publication after a crash is a duplicate.
			e, err := domain.CheckpointEvent(string(signed), time.Now())
			if err != nil {
				return err
			}
			o, err := streams.NewOutgoing(e)
			if err != nil {
				return err
			}
			r := s.pub.Publish(ctx, o)
			if r.Status == streams.Stored || r.Status == streams.Duplicate {
				return nil
			}
			return r.Err
		},
		OnError: func(err error) { g.logger().Warn("integrity", "err", err) },
	})
	if err != nil {
		tree.Close()
		return nil, nil, err
	}
	return p, func() { tree.Close() }, nil
}

// catchUpIntegrity brings the tree up to the log's last sequence (or to until, when
// set), unless another process keeps it, in which case it waits for that process.
func (s *session) catchUpIntegrity(ctx context.Context, g *globals, until uint64) error {
	p, done, err := s.integrityProjector(g)
	if err != nil {
		return err
	}
	defer done()
	if p == nil {
		return s.waitForTree(ctx, g, until)
	}
	c := streams.NewConsumer(s.js, p, streams.ConsumerConfig{Ephemeral: true, Raw: true, Batch: 5000, Until: until})
	if err := c.CatchUp(ctx); err != nil {
		return fmt.Errorf("integrity: %w", err)
	}
	return p.Tick(ctx)
}

// waitForTree waits until the process appending to the tree has reached until (or the
// log's last sequence when until is 0).
func (s *session) waitForTree(ctx context.Context, g *globals, until uint64) error {
	if until == 0 {
		log, err := streams.OpenLog(ctx, s.js)
		if err != nil {
			return err
		}
		if until, err = log.LastSeq(ctx); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		t, err := integrity.OpenReadOnly(g.treePath())
		if err != nil {
			return err
		}
		size := t.Size()
		t.Close()
		if uint64(size) >= until {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the integrity tree is at %d of %d: the process keeping it has not caught up", size, until)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
