package projections_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/projections"
)

// manualClock is a clock the test moves.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestConformanceLease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		// Two processes: two stores on the same database.
		s1, s2 := b.mustOpen(t), b.mustOpen(t)
		clk := &manualClock{now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
		lease := func(s *projections.Store, holder string) *projections.Lease {
			l, err := s.NewLease(projections.LeaseConfig{Name: "consent", Holder: holder, TTL: 5 * time.Second, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		a, bb := lease(s1, "host-a/1/aa"), lease(s2, "host-b/2/bb")
		try := func(l *projections.Lease, takeOver bool) bool {
			t.Helper()
			ok, err := l.TryAcquire(ctx, takeOver)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !try(a, false) {
			t.Fatal("the first holder did not get a free lease")
		}
		if try(bb, false) {
			t.Fatal("a second holder took a lease that has not expired")
		}
		clk.add(4 * time.Second)
		if !try(a, false) {
			t.Fatal("the holder could not renew its lease")
		}
		clk.add(4 * time.Second) // 8 s after the first take, 4 s after the renewal
		if try(bb, false) {
			t.Fatal("a renewed lease was taken before it expired")
		}
		clk.add(2 * time.Second) // past the renewal's expiry
		if !try(bb, false) {
			t.Fatal("an expired lease was not taken over")
		}
		if try(a, false) {
			t.Fatal("the previous holder got back a lease another holds")
		}
		if !try(a, true) {
			t.Fatal("TakeOver did not take the lease")
		}
		ls, err := s1.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != 1 || ls[0].Holder != "host-a/1/aa" || ls[0].Name != "consent" {
			t.Fatalf("leases: %+v", ls)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if !try(bb, false) {
			t.Fatal("a released lease was not free")
		}
	})
}

// TestConformanceLeaseRun: Run works only while it holds the lease, stops working when
// the lease passes to another holder, and releases it when the work ends.
func TestConformanceLeaseRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s1, s2 := b.mustOpen(t), b.mustOpen(t)
		ttl := 600 * time.Millisecond
		l1, err := s1.NewLease(projections.LeaseConfig{Name: "view", Holder: "p1", TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		l2, err := s2.NewLease(projections.LeaseConfig{Name: "view", Holder: "p2", TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		working := map[string]bool{}
		overlap := false
		work := func(name string) func(context.Context) error {
			return func(ctx context.Context) error {
				mu.Lock()
				for other, on := range working {
					if on && other != name {
						overlap = true
					}
				}
				working[name] = true
				mu.Unlock()
				<-ctx.Done()
				mu.Lock()
				working[name] = false
				mu.Unlock()
				return nil
			}
		}
		c1, stop1 := context.WithCancel(ctx)
		done1 := make(chan error, 1)
		go func() { done1 <- l1.Run(c1, work("p1")) }()
		waitUntil(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return working["p1"] })
		done2 := make(chan error, 1)
		go func() { done2 <- l2.Run(ctx, work("p2")) }()
		time.Sleep(3 * ttl) // p1 renews: p2 must stand by
		mu.Lock()
		if working["p2"] {
			t.Fatal("the standby worked while the holder renewed its lease")
		}
		mu.Unlock()
		// Another process takes the lease by force (as an operator might): p1 stops.
		steal, err := s2.NewLease(projections.LeaseConfig{Name: "view", Holder: "p3", TTL: 10 * ttl})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := steal.TryAcquire(ctx, true); err != nil || !ok {
			t.Fatalf("take over: %v %v", ok, err)
		}
		select {
		case err := <-done1:
			if !errors.Is(err, projections.ErrLeaseLost) {
				t.Fatalf("the holder that lost its lease returned %v, want ErrLeaseLost", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the holder went on working after losing its lease")
		}
		stop1()
		if err := steal.Release(ctx); err != nil {
			t.Fatal(err)
		}
		// Released: the standby takes it within a poll.
		waitUntil(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return working["p2"] })
		cancel()
		if err := <-done2; err != nil {
			t.Fatalf("Run after its context ended: %v", err)
		}
		if overlap {
			t.Fatal("two holders worked at once")
		}
		// Run released the lease when it ended.
		l4, err := s1.NewLease(projections.LeaseConfig{Name: "view", Holder: "p4", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := l4.TryAcquire(context.Background(), false); err != nil || !ok {
			t.Fatalf("the lease was not released when Run ended: %v %v", ok, err)
		}
	})
}

func TestLeaseConfigValidate(t *testing.T) {
	s, err := projections.OpenSQLite(context.Background(), t.TempDir()+"/custody.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.NewLease(projections.LeaseConfig{})
	if err == nil || !containsAll(err.Error(), "Name: required", "Holder: required") {
		t.Fatalf("NewLease with no name or holder: %v", err)
	}
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
