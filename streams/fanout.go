package streams

import (
	"context"

	"github.com/custody/custody/domain"
)

// Fanout drives several projectors from one read of the log (a rebuild of every view
// replays the log once). Its checkpoint is the smallest of theirs; each projector skips
// what it has already applied.
type Fanout struct {
	name  string
	projs []Projector
}

// NewFanout combines projectors under a name.
func NewFanout(name string, projs ...Projector) *Fanout { return &Fanout{name: name, projs: projs} }

// Name implements Projector.
func (f *Fanout) Name() string { return f.name }

// Checkpoint implements Projector: the smallest checkpoint.
func (f *Fanout) Checkpoint(ctx context.Context) (uint64, error) {
	var low uint64
	for i, p := range f.projs {
		cp, err := p.Checkpoint(ctx)
		if err != nil {
			return 0, err
		}
		if i == 0 || cp < low {
			low = cp
		}
	}
	return low, nil
}

// Apply implements Projector: every projector gets the batch.
func (f *Fanout) Apply(ctx context.Context, batch []domain.Stored) error {
	for _, p := range f.projs {
		if err := p.Apply(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}
