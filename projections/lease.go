package projections

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A lease decides which of several processes sharing a store applies a projector: the
// holder writes its name and an expiry into the leases table and renews it while it
// works; another process takes the lease only once it has expired. The lease is an
// efficiency, not the guarantee: two processes that both believe they hold it (a paused
// holder whose lease expired) cannot apply an event twice, because every batch reads the
// checkpoint under the projector's lock in the transaction that writes it (fencing).
// See docs/adr/0009-ha-projectors.md.

// LeaseConfig configures a Lease. Name and Holder are required.
type LeaseConfig struct {
	// Name is what the lease is for, e.g. a projector's name. Required.
	Name string
	// Holder names this process; two live processes never share a holder name.
	// Required.
	Holder string
	// TTL is how long the lease lasts without renewal: the longest a dead holder keeps
	// others waiting. Optional; default 5 s.
	TTL time.Duration
	// Poll is how often a process that does not hold the lease tries to take it.
	// Optional; default TTL/5.
	Poll time.Duration
	// TakeOver takes the lease at once whoever holds it: for a process that knows it is
	// the only one (it holds the data directory's lock). Optional.
	TakeOver bool
	// Now is the clock. Optional; default time.Now. Processes sharing a store need
	// clocks within a small fraction of TTL of each other.
	Now func() time.Time
	// OnChange, if set, is told when this process takes or loses the lease.
	OnChange func(held bool)
}

func (c *LeaseConfig) setDefaults() {
	if c.TTL == 0 {
		c.TTL = 5 * time.Second
	}
	if c.Poll == 0 {
		c.Poll = c.TTL / 5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.OnChange == nil {
		c.OnChange = func(bool) {}
	}
}

// Validate reports a configuration that cannot work.
func (c *LeaseConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("lease: Name: required"))
	}
	if c.Holder == "" {
		errs = append(errs, errors.New("lease: Holder: required"))
	}
	if c.TTL < 0 || c.Poll < 0 {
		errs = append(errs, errors.New("lease: TTL and Poll: must not be negative"))
	}
	return errors.Join(errs...)
}

// Lease is one named lease on a store.
type Lease struct {
	s   *Store
	cfg LeaseConfig
}

// NewLease returns a lease on the store.
func (s *Store) NewLease(cfg LeaseConfig) (*Lease, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Lease{s: s, cfg: cfg}, nil
}

const qLease = `INSERT INTO leases (name, holder, expires_at, since) VALUES (?, ?, ?, ?)
	ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
		since = CASE WHEN leases.holder = excluded.holder THEN leases.since ELSE excluded.since END
	WHERE leases.holder = excluded.holder OR leases.expires_at < ? OR ?`

// TryAcquire takes or renews the lease; it reports whether this holder has it until
// now + TTL.
func (l *Lease) TryAcquire(ctx context.Context, takeOver bool) (bool, error) {
	now := l.cfg.Now()
	res, err := l.s.db.ExecContext(ctx, l.s.q(qLease), l.cfg.Name, l.cfg.Holder, dbTime(now.Add(l.cfg.TTL)), dbTime(now), dbTime(now), takeOver)
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", l.cfg.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", l.cfg.Name, err)
	}
	return n == 1, nil
}

// Release gives the lease up if this holder has it, so another process can take it at
// once.
func (l *Lease) Release(ctx context.Context) error {
	_, err := l.s.db.ExecContext(ctx, l.s.q(`DELETE FROM leases WHERE name = ? AND holder = ?`), l.cfg.Name, l.cfg.Holder)
	if err != nil {
		return fmt.Errorf("lease %s: release: %w", l.cfg.Name, err)
	}
	return nil
}

// Run waits until it holds the lease, then runs fn with a context that ends when the
// lease is lost (not renewed before it expires) or ctx ends. It renews the lease every
// TTL/3 while fn runs. When fn returns, the lease is released and Run returns fn's
// error; when the lease is lost, Run returns ErrLeaseLost after fn has returned. It
// returns nil when ctx ends.
func (l *Lease) Run(ctx context.Context, fn func(ctx context.Context) error) error {
	takeOver := l.cfg.TakeOver
	for {
		held, err := l.TryAcquire(ctx, takeOver)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil && held {
			break
		}
		takeOver = false
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.cfg.Poll):
		}
	}
	l.cfg.OnChange(true)
	defer l.cfg.OnChange(false)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := make(chan struct{})
	done := make(chan struct{})
	go func() { // renew; give up working before the lease could pass to another
		defer close(done)
		valid := l.cfg.Now().Add(l.cfg.TTL)
		t := time.NewTicker(l.cfg.TTL / 3)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			attempt := l.cfg.Now()
			held, err := l.TryAcquire(wctx, false)
			switch {
			case err == nil && held:
				valid = attempt.Add(l.cfg.TTL)
			case err == nil && !held, l.cfg.Now().After(valid.Add(-l.cfg.TTL / 3)):
				if wctx.Err() == nil {
					close(lost)
					cancel()
				}
				return
			}
		}
	}()
	err := fn(wctx)
	cancel()
	<-done
	select {
	case <-lost:
		return ErrLeaseLost
	default:
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	_ = l.Release(rctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// ErrLeaseLost is returned by Lease.Run when the lease could not be renewed in time.
var ErrLeaseLost = errors.New("lease lost")

// LeaseInfo is one lease as stored.
type LeaseInfo struct {
	Name, Holder     string
	Since, ExpiresAt time.Time
}

// Leases lists the leases, by name.
func (s *Store) Leases(ctx context.Context) ([]LeaseInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, holder, since, expires_at FROM leases ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("leases: %w", err)
	}
	defer rows.Close()
	var out []LeaseInfo
	for rows.Next() {
		var li LeaseInfo
		var since, exp string
		if err := rows.Scan(&li.Name, &li.Holder, &since, &exp); err != nil {
			return nil, err
		}
		li.Since, _ = parseDBTime(since)
		li.ExpiresAt, _ = parseDBTime(exp)
		out = append(out, li)
	}
	return out, rows.Err()
}
