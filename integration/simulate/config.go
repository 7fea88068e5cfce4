package simulate

import (
	"errors"
	"fmt"
	"time"
)

// ErrConfig is matched (errors.Is) by every problem Validate reports.
var ErrConfig = errors.New("simulate: invalid config")

// Limits of Config. They keep agent ids four digits wide and every instant far from
// overflow; they are not performance limits.
const (
	MinAgents = 8    // one agent for each scenario role plus a general pool
	MaxAgents = 9999 // agent ids are agent-0001 ... agent-9999
	MaxDays   = 3660 // ten years of traffic
)

// DefaultStart is the default first instant of the traffic window: Monday 2 March 2026,
// 08:00 UTC.
var DefaultStart = time.Date(2026, time.March, 2, 8, 0, 0, 0, time.UTC)

// Config describes the traffic to generate. The zero value of every field but
// Interactions means "use the default".
type Config struct {
	// Seed selects the traffic. Optional (0 is a seed like any other). The same Config
	// always gives the same events in the same order, byte for byte.
	Seed int64
	// Interactions is the number of contact-center interactions to start. Required, at
	// least 1. Full scenario coverage (doc.go) needs a few hundred; 2,000 exercises every
	// rule. Memory does not grow with it (see doc.go, "Memory").
	Interactions int
	// Agents is the number of front-line agents. Optional, default 50, between MinAgents
	// and MaxAgents. Supervisors (one per twelve agents, at least two) and two auditors
	// are added to it.
	Agents int
	// Start is the first instant of the traffic window. Optional, default DefaultStart.
	// Converted to UTC. A Start in the past is fine for files and replays; events sent to
	// a live ingest are also checked against its clock (no time more than 24 h ahead).
	Start time.Time
	// Days is the length of the traffic window in days of 24 h. Optional, default 7,
	// between 1 and MaxDays. Every event time lies in [Start, Start+Days].
	Days int
}

func (c *Config) setDefaults() {
	if c.Agents == 0 {
		c.Agents = 50
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	c.Start = c.Start.UTC()
	if c.Days == 0 {
		c.Days = 7
	}
}

// Validate reports every problem of c at once (errors.Join), each naming the field and
// matching ErrConfig. Zero values that have a default are valid.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if c.Interactions < 1 {
		bad("Interactions must be at least 1, got %d", c.Interactions)
	}
	if c.Agents < MinAgents || c.Agents > MaxAgents {
		bad("Agents must be between %d and %d, got %d", MinAgents, MaxAgents, c.Agents)
	}
	if c.Days < 1 || c.Days > MaxDays {
		bad("Days must be between 1 and %d, got %d", MaxDays, c.Days)
	}
	if c.Start.Year() < 2000 || c.Start.Year() > 2200 {
		bad("Start must lie between the years 2000 and 2200 (the contract rejects times before 2000), got %s", c.Start.Format(time.RFC3339))
	}
	return errors.Join(errs...)
}
