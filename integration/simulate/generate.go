package simulate

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/custody/custody/domain"
)

// Generate produces the traffic cfg describes and calls emit once per event, in arrival
// order: the order a platform would deliver them, with the late arrivals and re-sends
// of doc.go. It stops at the first error of emit and returns it, wrapped with the id of
// the event. Memory stays bounded whatever cfg.Interactions (doc.go, "Memory").
func Generate(cfg Config, emit func(domain.Event) error) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	g := newGen(cfg, emit)
	return g.run()
}

// Write writes the traffic cfg describes to w as JSON Lines: one event per line in its
// canonical form (domain.Event.MarshalJSON), in arrival order, through a buffer.
func Write(w io.Writer, cfg Config) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	err := Generate(cfg, func(e domain.Event) error {
		b, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		bw.Write(b)
		return bw.WriteByte('\n') // a write error sticks: WriteByte reports it
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("simulate: write: %w", err)
	}
	return nil
}

// Sources of the traffic.
const (
	sourceGenesys = "genesys-cloud/org-3f1c"
	sourceNICE    = "nice-cxone/tenant-42"
	sourceLMS     = "lms/workday"
	courseHIPAA   = "hipaa_annual"
)

// Arrival behaviour, per event (doc.go, "Arrival order").
const (
	pLate      = 0.008 // delivered 10 min to 6 h after its event time
	pJitter    = 0.03  // delivered 1 s to 3 min after its event time
	pResend    = 0.006 // the exact same event delivered a second time, 30 s to 8 h later
	maxLate    = 6 * time.Hour
	maxResend  = 8 * time.Hour
	ringSize   = 64
	maxTouched = 8
)

// item is one event waiting for its arrival: at is the arrival as an offset from Start,
// idx the event's slot in gen.slab. Items hold no pointers, so sifting them through the
// heap costs the garbage collector nothing.
type item struct {
	at  time.Duration
	seq uint64
	idx int32
}

// candidate is a recent ePHI interaction that a scenario touch may land on.
type candidate struct {
	id, source string
	start      time.Time
	agents     [maxTouched]int32
	n          int
}

func (c *candidate) has(a int) bool {
	for _, x := range c.agents[:c.n] {
		if int(x) == a {
			return true
		}
	}
	return false
}

func (c *candidate) add(a int) {
	if c.n < maxTouched {
		c.agents[c.n] = int32(a)
		c.n++
	}
}

// touch is a planned touch of a scenario agent: at instant at, agent touches the most
// recent ePHI interaction it has not touched yet.
type touch struct {
	at     time.Time
	agent  int
	assign bool // as an agent.assigned authorized:false, else as a phi.accessed
	reauth bool // an assignment the platform re-authorizes minutes later
}

type gen struct {
	cfg        Config
	emit       func(domain.Event) error
	rng        *rand.Rand
	ids        ids
	start, end time.Time
	queue      []item
	seq        uint64
	slab       []domain.Event // events waiting in queue, by item.idx
	free       []int32        // unused slots of slab

	// staff: agents first, then supervisors, then auditors
	staff       []string
	nAgents     int
	supervisors []int
	auditors    []int
	protected   []bool // scenario agents never given a background unauthorized assignment

	lapseAgent  int
	lapseExpiry time.Time
	lapseArmed  bool

	pUnauth, pSupNoAssign, pAudNoAssign float64

	touches []touch
	nextT   int
	ring    [ringSize]candidate
	ringN   int

	// start-time sampler
	cum  []float64
	hour int
}

func newGen(cfg Config, emit func(domain.Event) error) *gen {
	s := uint64(cfg.Seed)
	g := &gen{
		cfg:   cfg,
		emit:  emit,
		rng:   rand.New(rand.NewPCG(s, splitmix(s^0xc0ffee))),
		ids:   newIDs(cfg.Seed),
		start: cfg.Start,
		end:   cfg.Start.Add(time.Duration(cfg.Days) * 24 * time.Hour),
	}
	g.nAgents = cfg.Agents
	for i := 1; i <= cfg.Agents; i++ {
		g.staff = append(g.staff, "agent-"+pad4(i))
	}
	nSup := max(2, cfg.Agents/12)
	for i := 1; i <= nSup; i++ {
		g.supervisors = append(g.supervisors, len(g.staff))
		g.staff = append(g.staff, "supervisor-"+pad4(i))
	}
	for i := 1; i <= 2; i++ {
		g.auditors = append(g.auditors, len(g.staff))
		g.staff = append(g.staff, "auditor-"+pad4(i))
	}
	g.protected = make([]bool, len(g.staff))

	// Rates that keep the number of background findings per person and day steady
	// whatever the volume (doc.go, "Scaling").
	n := float64(cfg.Interactions)
	personDays := func(people int) float64 { return float64(people * cfg.Days) }
	g.pUnauth = clamp(0.2*personDays(cfg.Agents)/n, 0.02)
	g.pSupNoAssign = clamp(0.3*personDays(nSup)/(0.075*n), 0.15)
	g.pAudNoAssign = clamp(0.4*personDays(2)/(0.015*n), 0.3)

	g.buildSampler()
	g.planScenarios()
	return g
}

func pad4(i int) string {
	s := strconv.Itoa(i)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

func clamp(p, hi float64) float64 { return min(max(p, 0), hi) }

// run streams the interactions in start order. Before interaction i starts at s, the
// scenario touches due by s are placed, then every waiting event that arrives by s is
// emitted: nothing generated later can arrive earlier, because every later event is at
// or after s and arrives at or after its time.
func (g *gen) run() error {
	for i := range g.cfg.Interactions {
		s := g.nextStart(i)
		g.placeTouches(s)
		if err := g.flush(s.Sub(g.start)); err != nil {
			return err
		}
		g.interaction(s)
	}
	g.placeTouches(g.end)
	return g.flush(1<<63 - 1)
}

// ---- the arrival queue: a binary min-heap on (arrival, sequence) ----

func (g *gen) enqueue(at time.Time, ev domain.Event) {
	g.seq++
	var idx int32
	if n := len(g.free); n > 0 {
		idx = g.free[n-1]
		g.free = g.free[:n-1]
		g.slab[idx] = ev
	} else {
		idx = int32(len(g.slab))
		g.slab = append(g.slab, ev)
	}
	g.queue = append(g.queue, item{at: at.Sub(g.start), seq: g.seq, idx: idx})
	q := g.queue
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(&q[i], &q[p]) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func less(a, b *item) bool { return a.at < b.at || a.at == b.at && a.seq < b.seq }

func (g *gen) flush(upTo time.Duration) error {
	for len(g.queue) > 0 && g.queue[0].at <= upTo {
		q := g.queue
		idx := q[0].idx
		ev := g.slab[idx]
		g.slab[idx] = domain.Event{}
		g.free = append(g.free, idx)
		last := len(q) - 1
		q[0] = q[last]
		q = q[:last]
		i := 0
		for {
			l := 2*i + 1
			if l >= len(q) {
				break
			}
			m := l
			if r := l + 1; r < len(q) && less(&q[r], &q[l]) {
				m = r
			}
			if !less(&q[m], &q[i]) {
				break
			}
			q[i], q[m] = q[m], q[i]
			i = m
		}
		g.queue = q
		if err := g.emit(ev); err != nil {
			return fmt.Errorf("simulate: emit event %s: %w", ev.ID, err)
		}
	}
	return nil
}

// ---- event helpers ----

// push creates an event at t and schedules its arrival; it is dropped (ok false) when t
// lies after the window, as a fact that has not happened yet.
func (g *gen) push(t time.Time, typ domain.Type, subject, source string, data domain.Data) (domain.Event, bool) {
	if t.After(g.end) {
		return domain.Event{}, false
	}
	ev := domain.Event{ID: g.ids.next(t), Source: source, Type: typ, Time: t, Subject: subject, Data: data}
	if source != sourceNICE {
		ev.DataContentType = domain.ContentType
	}
	g.schedule(ev)
	return ev, true
}

// retag sends ev again under a new id, as a platform does after a failover.
func (g *gen) retag(ev domain.Event) {
	ev.ID = g.ids.next(ev.Time)
	g.schedule(ev)
}

func (g *gen) schedule(ev domain.Event) {
	at := ev.Time
	switch r := g.rng.Float64(); {
	case r < pLate:
		at = at.Add(g.between(10*time.Minute, maxLate))
	case r < pLate+pJitter:
		at = at.Add(g.between(time.Second, 3*time.Minute))
	}
	g.enqueue(at, ev)
	if g.chance(pResend) {
		g.enqueue(ev.Time.Add(g.between(30*time.Second, maxResend)), ev)
	}
}

func (g *gen) chance(p float64) bool { return g.rng.Float64() < p }

// between is a uniform duration in [lo, hi], in whole milliseconds.
func (g *gen) between(lo, hi time.Duration) time.Duration {
	span := int64((hi - lo) / time.Millisecond)
	return lo + time.Duration(g.rng.Int64N(span+1))*time.Millisecond
}

// pick draws an index from cumulative weights.
func (g *gen) pick(cum []float64) int {
	r := g.rng.Float64() * cum[len(cum)-1]
	for i, c := range cum {
		if r < c {
			return i
		}
	}
	return len(cum) - 1
}

func cumulative(w ...float64) []float64 {
	out := make([]float64, len(w))
	s := 0.0
	for i, x := range w {
		s += x
		out[i] = s
	}
	return out
}

// ---- start times: stratified sampling of a weekly contact-center profile ----

// hourWeight is the relative volume of each hour of the day (UTC, read as the payer's
// local time), weekdays; weekends carry weekendFactor of it.
var hourWeight = [24]float64{
	0.05, 0.03, 0.02, 0.02, 0.03, 0.08, 0.20, 0.50, 0.90, 1.00, 1.00, 0.95,
	0.80, 0.90, 1.00, 0.95, 0.85, 0.70, 0.50, 0.35, 0.25, 0.15, 0.10, 0.07,
}

const weekendFactor = 0.35

func (g *gen) buildSampler() {
	hours := g.cfg.Days * 24
	g.cum = make([]float64, hours+1)
	for h := range hours {
		t := g.start.Add(time.Duration(h) * time.Hour)
		w := hourWeight[t.Hour()]
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			w *= weekendFactor
		}
		g.cum[h+1] = g.cum[h] + w
	}
}

// nextStart is the start of interaction i: the inverse of the volume profile at the
// stratified point (i+u)/N, so starts never decrease and follow the daily curve.
func (g *gen) nextStart(i int) time.Time {
	u := (float64(i) + g.rng.Float64()) / float64(g.cfg.Interactions) * g.cum[len(g.cum)-1]
	for g.hour < len(g.cum)-2 && g.cum[g.hour+1] <= u {
		g.hour++
	}
	lo, hi := g.cum[g.hour], g.cum[g.hour+1]
	frac := min(max((u-lo)/(hi-lo), 0), 1)
	off := time.Duration(g.hour)*time.Hour + time.Duration(frac*float64(time.Hour))
	return g.start.Add(off.Truncate(time.Millisecond))
}

// ---- scenario touches ----

// remember adds an ePHI interaction to the ring of candidates.
func (g *gen) remember(c candidate) {
	g.ring[g.ringN%ringSize] = c
	g.ringN++
}

// placeTouches lands every planned touch due by frontier on the most recent ePHI
// interaction that started before it and that the agent has neither been assigned to
// nor touched. A touch with no such interaction is dropped.
func (g *gen) placeTouches(frontier time.Time) {
	for g.nextT < len(g.touches) && !g.touches[g.nextT].at.After(frontier) {
		tc := g.touches[g.nextT]
		g.nextT++
		if tc.at.After(g.end) {
			continue
		}
		var c *candidate
		for k := 1; k <= min(g.ringN, ringSize); k++ {
			x := &g.ring[(g.ringN-k)%ringSize]
			if !x.start.After(tc.at) && !x.has(tc.agent) {
				c = x
				break
			}
		}
		if c == nil {
			continue
		}
		c.add(tc.agent)
		agent := g.staff[tc.agent]
		if tc.assign || tc.reauth {
			g.push(tc.at, domain.AgentAssignedType, c.id, c.source, &domain.AgentAssigned{AgentID: agent, Authorized: false})
			if tc.reauth {
				g.push(tc.at.Add(g.between(2*time.Minute, 15*time.Minute)), domain.AgentAssignedType, c.id, c.source, &domain.AgentAssigned{AgentID: agent, Authorized: true})
			}
			g.push(tc.at.Add(g.between(2*time.Second, 9*time.Second)), domain.PHIAccessedType, c.id, c.source,
				&domain.PHIAccessed{AgentID: agent, Action: "handled"})
			continue
		}
		action := "body_viewed"
		if g.chance(0.3) {
			action = "attachment_viewed"
		}
		g.push(tc.at, domain.PHIAccessedType, c.id, c.source, &domain.PHIAccessed{AgentID: agent, Action: action, RemoteIP: g.remoteIP(0.5)})
	}
}

// planScenarios chooses the scenario agents and plans their touches and the training
// feed (doc.go, "Unauthorized access" and "Training").
func (g *gen) planScenarios() {
	perm := g.rng.Perm(g.nAgents)
	next := 0
	take := func() int {
		a := perm[next]
		next++
		return a
	}
	nRogue := max(1, g.nAgents/25)
	rogues := make([]int, nRogue)
	for i := range rogues {
		rogues[i] = take()
	}
	exact3, boundary := take(), take()
	g.protected[exact3], g.protected[boundary] = true, true
	nLapse := max(1, g.nAgents/25)
	lapses := make([]int, nLapse)
	for i := range lapses {
		lapses[i] = take()
	}

	day := func(d int) time.Time { return g.start.Add(time.Duration(d) * 24 * time.Hour) }
	for d := range g.cfg.Days {
		if d%2 == 0 { // a rogue episode: 4 to 6 unauthorized ePHI interactions within 20 h
			r := rogues[(d/2)%nRogue]
			t0 := day(d).Add(g.between(2*time.Hour, 6*time.Hour))
			k := 4 + g.rng.IntN(3)
			gap := g.between(time.Hour, 20*time.Hour/time.Duration(k-1))
			for j := range k {
				g.touches = append(g.touches, touch{at: t0.Add(time.Duration(j) * gap), agent: r, assign: j%3 == 1})
			}
		} else { // exactly three within 24 h: no alert
			t0 := day(d).Add(g.between(2*time.Hour, 6*time.Hour))
			gap := g.between(2*time.Hour, 6*time.Hour)
			for j := range 3 {
				g.touches = append(g.touches, touch{at: t0.Add(time.Duration(j) * gap), agent: exact3, assign: j == 2})
			}
		}
		// an assignment flagged unauthorized and re-authorized minutes later, by a general agent
		g.touches = append(g.touches, touch{at: day(d).Add(g.between(9*time.Hour, 17*time.Hour)), agent: perm[next+g.rng.IntN(len(perm)-next)], reauth: true})
		if d%3 == 0 && d+1 < g.cfg.Days { // three, then a fourth exactly 24 h after the first
			t1 := day(d).Add(g.between(3*time.Hour, 7*time.Hour))
			for _, off := range []time.Duration{0, 90 * time.Minute, 3 * time.Hour, 24 * time.Hour} {
				g.touches = append(g.touches, touch{at: t1.Add(off), agent: boundary})
			}
		}
	}
	slices.SortStableFunc(g.touches, func(a, b touch) int { return a.at.Compare(b.at) })

	// Training: everyone completed hipaa_annual before the window; the LMS feed syncs it at
	// Start. Lapse agents' training expires inside the window.
	lapseExp := make([]time.Time, nLapse)
	for j := range lapses {
		var at time.Time
		if j == 0 {
			at = day(g.cfg.Days / 3).Add(5*time.Hour + g.between(0, 50*time.Minute))
		} else {
			at = day((g.cfg.Days/3 + 2*j) % g.cfg.Days).Add(g.between(14*time.Hour, 22*time.Hour))
		}
		lapseExp[j] = at
	}
	g.lapseAgent, g.lapseExpiry, g.lapseArmed = lapses[0], lapseExp[0], true
	for i, name := range g.staff {
		exp := g.end.Add(time.Duration(30+g.rng.IntN(300))*24*time.Hour + g.between(0, 24*time.Hour))
		if j := slices.Index(lapses, i); j >= 0 {
			exp = lapseExp[j]
		}
		g.push(g.start, domain.TrainingCompletedType, name, sourceLMS, &domain.TrainingCompleted{Course: courseHIPAA, ExpiresAt: exp})
	}
	for j, l := range lapses {
		name := g.staff[l]
		g.push(lapseExp[j], domain.TrainingExpiredType, name, sourceLMS, &domain.TrainingExpired{Course: courseHIPAA})
		if j%2 == 0 {
			renew := lapseExp[j].Add(g.between(18*time.Hour, 26*time.Hour))
			g.push(renew, domain.TrainingCompletedType, name, sourceLMS,
				&domain.TrainingCompleted{Course: courseHIPAA, ExpiresAt: renew.AddDate(1, 0, 0)})
		}
	}
	// Other courses do not count for the training rule, but an LMS feed carries them.
	for d := range g.cfg.Days {
		at := day(d).Add(g.between(time.Hour, 10*time.Hour))
		course := "part2_handling"
		if d%2 == 1 {
			course = "privacy_refresher"
		}
		g.push(at, domain.TrainingCompletedType, g.staff[g.rng.IntN(g.nAgents)], sourceLMS,
			&domain.TrainingCompleted{Course: course, ExpiresAt: at.AddDate(2, 0, 0)})
	}
}
