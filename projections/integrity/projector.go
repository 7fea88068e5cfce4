package integrity

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody/custody/domain"
)

// ProjectorName is the integrity projector's name (its durable consumer is named after
// it).
const ProjectorName = "integrity"

// Default checkpoint cadence: a signed checkpoint at every multiple of DefaultEvery
// events, and one of the current size when DefaultInterval has passed since the last
// and the tree has grown.
const (
	DefaultEvery    = 10000
	DefaultInterval = time.Hour
)

// ProjectorConfig configures the integrity projector. Validate runs in NewProjector.
type ProjectorConfig struct {
	// Tree is the tree file, opened for appending. Required.
	Tree *Tree
	// Origin names the log in every checkpoint. Required.
	Origin string
	// Signer signs checkpoints. Required.
	Signer note.Signer
	// Dir is the checkpoint directory. Required.
	Dir string
	// Every signs a checkpoint at each multiple of this many events. Optional; default
	// DefaultEvery.
	Every int64
	// Interval signs a checkpoint of the current size when this long has passed since
	// the last one and the tree has grown. Optional; default DefaultInterval.
	Interval time.Duration
	// Publish, if set, sends a signed checkpoint on (the log's checkpoint subject, the
	// SIEM sinks). It must be idempotent for a size: after a crash a checkpoint may be
	// published again. A failure is retried on the next batch or tick. Optional.
	Publish func(ctx context.Context, size int64, signed []byte) error
	// Now is the clock for Interval. Optional; default time.Now.
	Now func() time.Time
	// OnError, if set, hears of a Publish failure (the checkpoint stays queued).
	// Optional.
	OnError func(error)
}

func (c *ProjectorConfig) setDefaults() {
	if c.Every == 0 {
		c.Every = DefaultEvery
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every missing or invalid field.
func (c ProjectorConfig) Validate() error {
	var errs []error
	if c.Tree == nil {
		errs = append(errs, errors.New("integrity projector: Tree is required"))
	}
	if c.Origin == "" {
		errs = append(errs, errors.New("integrity projector: Origin is required"))
	}
	if c.Signer == nil {
		errs = append(errs, errors.New("integrity projector: Signer is required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("integrity projector: Dir is required"))
	}
	if c.Every < 0 {
		errs = append(errs, errors.New("integrity projector: Every must not be negative"))
	}
	if c.Interval < 0 {
		errs = append(errs, errors.New("integrity projector: Interval must not be negative"))
	}
	return errors.Join(errs...)
}

// Projector keeps the Merkle tree of the log: every stored message, valid event or not,
// is a leaf at its sequence. Its checkpoint is the tree's size. The tree is derived
// data: leaves lost in a crash before they reached stable storage are appended again
// from the log, with the same hashes, so a batch is only written (visible to readers of
// the file), and the file is synced before a checkpoint is signed over it. After each
// batch it signs the checkpoints that are due into Dir and hands them to Publish.
type Projector struct {
	cfg    ProjectorConfig
	last   int64     // size of the last checkpoint signed
	lastAt time.Time // when
	unsent []int64   // signed sizes that Publish has not taken yet
}

// NewProjector returns the integrity projector. The last checkpoint signed is the
// largest one in Dir.
func NewProjector(cfg ProjectorConfig) (*Projector, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	files, err := ReadCheckpoints(cfg.Dir)
	if err != nil {
		return nil, err
	}
	p := &Projector{cfg: cfg, lastAt: cfg.Now()}
	for _, f := range files {
		if f.Size <= cfg.Tree.Size() {
			p.last = max(p.last, f.Size)
		}
	}
	if p.last > 0 {
		p.unsent = append(p.unsent, p.last) // publishing is idempotent: offer it again
	}
	return p, nil
}

// Name implements the projector contract.
func (p *Projector) Name() string { return ProjectorName }

// Checkpoint implements the projector contract: the tree's size.
func (p *Projector) Checkpoint(context.Context) (uint64, error) {
	return uint64(p.cfg.Tree.Size()), nil
}

// Apply appends a batch's stored messages (those after the tree's size), makes them
// durable, and signs the checkpoints due.
func (p *Projector) Apply(ctx context.Context, batch []domain.Stored) error {
	for _, s := range batch {
		if int64(s.Seq) <= p.cfg.Tree.Size() {
			continue
		}
		if err := p.cfg.Tree.Append(s.Seq, s.Subject, s.Raw); err != nil {
			return err
		}
	}
	if err := p.cfg.Tree.Flush(); err != nil {
		return err
	}
	return p.sign(ctx)
}

// Tick signs a checkpoint of the current size when Interval has passed (call it when
// the log is idle).
func (p *Projector) Tick(ctx context.Context) error { return p.sign(ctx) }

// LastSigned returns the size of the last checkpoint signed.
func (p *Projector) LastSigned() int64 { return p.last }

// SignNow signs a checkpoint of the tree's current size (for example at shutdown, or
// for a report), unless the last one has that size. It returns the signed note.
func (p *Projector) SignNow(ctx context.Context) ([]byte, error) {
	size := p.cfg.Tree.Size()
	signed, err := p.signAt(size)
	if err != nil {
		return nil, err
	}
	return signed, p.publish(ctx)
}

func (p *Projector) sign(ctx context.Context) error {
	size := p.cfg.Tree.Size()
	for b := (p.last/p.cfg.Every + 1) * p.cfg.Every; b <= size; b += p.cfg.Every {
		if _, err := p.signAt(b); err != nil {
			return err
		}
	}
	if size > p.last && p.cfg.Now().Sub(p.lastAt) >= p.cfg.Interval {
		if _, err := p.signAt(size); err != nil {
			return err
		}
	}
	return p.publish(ctx)
}

// signAt signs the checkpoint of a size, writes it to Dir and queues it for Publish.
func (p *Projector) signAt(size int64) ([]byte, error) {
	if err := p.cfg.Tree.Sync(); err != nil {
		return nil, err
	}
	root, err := p.cfg.Tree.RootAt(size)
	if err != nil {
		return nil, err
	}
	signed, err := Sign(p.cfg.Origin, size, root, p.cfg.Signer)
	if err != nil {
		return nil, err
	}
	if _, err := WriteCheckpoint(p.cfg.Dir, signed); err != nil {
		return nil, err
	}
	if size > p.last {
		p.last, p.lastAt = size, p.cfg.Now()
	}
	p.unsent = append(p.unsent, size)
	return signed, nil
}

// publish offers the queued checkpoints to Publish, oldest first; what fails stays
// queued.
func (p *Projector) publish(ctx context.Context) error {
	if p.cfg.Publish == nil {
		p.unsent = p.unsent[:0]
		return nil
	}
	for len(p.unsent) > 0 {
		size := p.unsent[0]
		signed, err := readLimited(filepath.Join(p.cfg.Dir, checkpointName(size)), maxCheckpoint+1)
		if err != nil {
			return fmt.Errorf("publish checkpoint %d: %w", size, err)
		}
		if err := p.cfg.Publish(ctx, size, signed); err != nil {
			// Not fatal for the tree: the checkpoint is signed and on disk; it is
			// offered again with the next batch.
			if p.cfg.OnError != nil {
				p.cfg.OnError(fmt.Errorf("publish checkpoint %d: %w", size, err))
			}
			return nil
		}
		p.unsent = p.unsent[1:]
	}
	return nil
}
