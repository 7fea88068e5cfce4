package streams

import (
	"context"
	"fmt"
)

// Park implements Parker: every projector of the fanout that has not passed seq parks
// it. A projector that cannot park halts the fanout with ErrUndecodable.
func (f *Fanout) Park(ctx context.Context, seq uint64, subject, reason string) error {
	for _, p := range f.projs {
		cp, err := p.Checkpoint(ctx)
		if err != nil {
			return err
		}
		if cp >= seq {
			continue
		}
		pk, ok := p.(Parker)
		if !ok {
			return fmt.Errorf("%s: sequence %d: %w: %s", p.Name(), seq, ErrUndecodable, reason)
		}
		if err := pk.Park(ctx, seq, subject, reason); err != nil {
			return err
		}
	}
	return nil
}
