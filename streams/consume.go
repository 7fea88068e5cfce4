package streams

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/domain"
)

// ErrGap is returned when the log skips a sequence a projector has not applied. The
// projector halts rather than skip an event.
var ErrGap = errors.New("sequence gap in the log")

// ErrUndecodable is returned when a stored message is not a valid event.
var ErrUndecodable = errors.New("stored message is not a valid event")

// linger bounds how long the reader keeps collecting a chunk after its first message.
// The applier then takes every chunk already waiting: batches grow while it is busy
// (throughput under load) and stay small when it is not (latency when quiet).
const linger = time.Millisecond

// Projector is what the consume loop drives: a view, an index or any other fold of the
// log. The loop is defined here; implementations live elsewhere and need not import this
// package (they only use domain types).
type Projector interface {
	// Name identifies the projector; its durable consumer is named after it.
	Name() string
	// Checkpoint is the last stream sequence the projector has applied (0 for none).
	Checkpoint(ctx context.Context) (uint64, error)
	// Apply applies events in sequence order and records the last one's sequence as the
	// checkpoint in the same transaction: either all of the batch is applied with its
	// checkpoint, or none of it.
	Apply(ctx context.Context, batch []domain.Stored) error
}

// ConsumerConfig configures a consume loop. The zero value is valid.
type ConsumerConfig struct {
	// Stream is the stream to read. Optional; default EventsStream.
	Stream string
	// Batch is the most events applied in one transaction. Optional; default 1000.
	Batch int
	// MaxWait bounds one fetch while the log is idle. Optional; default 1 s.
	MaxWait time.Duration
	// Ephemeral uses an ordered consumer instead of a durable one (for one-off catch-up
	// and rebuilds). Optional.
	Ephemeral bool
	// Progress, if set, is called after each applied batch with the last applied and the
	// last known stream sequence.
	Progress func(applied, last uint64)
	// Idle, if set, is called when a fetch finds nothing new: the projector is caught up.
	Idle func(ctx context.Context)
	// Raw delivers the stored bytes without decoding them (Stored.Event is zero): for
	// projectors of the log itself, such as the integrity tree, which must take every
	// stored message, valid or not. Optional.
	Raw bool
	// Until, if set, stops CatchUp at this sequence instead of the last one stored.
	// Optional.
	Until uint64
	// Durable names the durable consumer. Optional; default "custody-" + the
	// projector's name. Processes that keep the projector in different stores need
	// different names (they are at different positions); processes sharing one store
	// share the name and take turns through a lease (docs/adr/0009-ha-projectors.md).
	Durable string
	// MaxDeliver is how many times a message that cannot be decoded is delivered before
	// it is parked as a dead letter (projectors that implement Parker) or halts the
	// projector (the others). Optional; default 3.
	MaxDeliver int
	// Decode turns stored bytes into an event; it must be safe for concurrent use (a
	// catch-up decodes several chunks at once). Optional; default domain.Parse.
	Decode func([]byte) (domain.Event, error)
	// Logf, if set, is told why the loop restarted its consumer. Optional.
	Logf func(msg string, args ...any)
}

// Parker is implemented by projectors that can park a message they cannot apply: the
// dead letter (sequence, subject, reason) and the checkpoint moving past it are recorded
// in one transaction, so the sequence is accounted for and the no-gap rule holds. The
// message itself stays in the log, where a redrive reads it again.
type Parker interface {
	Park(ctx context.Context, seq uint64, subject, reason string) error
}

func (c *ConsumerConfig) setDefaults() {
	if c.Stream == "" {
		c.Stream = EventsStream
	}
	if c.Batch == 0 {
		c.Batch = 1000
	}
	if c.MaxWait == 0 {
		c.MaxWait = time.Second
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 3
	}
	if c.Decode == nil {
		c.Decode = domain.Parse
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Consumer feeds one projector from the log, exactly once by sequence: a delivered
// sequence at or below the checkpoint is skipped, a gap halts it with ErrGap.
type Consumer struct {
	js   jetstream.JetStream
	proj Projector
	cfg  ConsumerConfig
	// deliveries counts the deliveries of an undecodable message, by sequence.
	deliveries map[uint64]int
}

// NewConsumer returns a consume loop for proj.
func NewConsumer(js jetstream.JetStream, proj Projector, cfg ConsumerConfig) *Consumer {
	cfg.setDefaults()
	return &Consumer{js: js, proj: proj, cfg: cfg, deliveries: map[uint64]int{}}
}

// Run applies events until ctx is done. It returns nil on cancellation.
func (c *Consumer) Run(ctx context.Context) error {
	err := c.run(ctx, false)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// CatchUp applies every event stored up to the moment it is called, then returns.
func (c *Consumer) CatchUp(ctx context.Context) error { return c.run(ctx, true) }

func (c *Consumer) run(ctx context.Context, untilLast bool) error {
	stream, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return fmt.Errorf("%s: stream %s: %w", c.proj.Name(), c.cfg.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("%s: stream info: %w", c.proj.Name(), err)
	}
	cp, err := c.proj.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("%s: checkpoint: %w", c.proj.Name(), err)
	}
	// Events older than MaxAge expire by policy; a fresh projector starts at the
	// first sequence the stream still holds.
	if info.State.FirstSeq > 1 && cp < info.State.FirstSeq-1 {
		if cp != 0 {
			return fmt.Errorf("%s: %w: checkpoint %d but the log now starts at %d", c.proj.Name(), ErrGap, cp, info.State.FirstSeq)
		}
		cp = info.State.FirstSeq - 1
	}
	last := info.State.LastSeq
	if c.cfg.Until > 0 && c.cfg.Until < last {
		last = c.cfg.Until
	}
	restarts := 0
	for {
		if untilLast && cp >= last {
			return nil
		}
		// follow returns errMovedBack when another process moved the checkpoint back
		// (a rebuild was swapped in): read again from right after it. It returns a
		// restart when the delivery went wrong but the log is intact (a consumer lost
		// with a node, a stalled pull, a delivery gap over sequences the log holds): the
		// consumer is made again at the checkpoint, which is authoritative.
		next, err := c.follow(ctx, stream, cp, last, untilLast)
		var r *restart
		switch {
		case errors.Is(err, errMovedBack):
			cp, restarts = next, 0
			continue
		case errors.As(err, &r) && ctx.Err() == nil:
			if next > cp {
				restarts = 0 // it made progress before it failed
			}
			cp = next
			restarts++
			if untilLast && restarts > maxCatchUpRestarts {
				return fmt.Errorf("%s: gave up after %d restarts: %w", c.proj.Name(), restarts-1, r.err)
			}
			c.cfg.Logf("consumer restarted", "projector", c.proj.Name(), "at", cp, "reason", r.err.Error())
			sleepCtx(ctx, min(time.Duration(restarts)*100*time.Millisecond, 2*time.Second))
			continue
		}
		return err
	}
}

// maxCatchUpRestarts bounds how often a one-off catch-up makes its consumer again
// before it gives up; a long-running loop tries for as long as it runs.
const maxCatchUpRestarts = 20

var errMovedBack = errors.New("checkpoint moved back")

// restart is a delivery problem the loop recovers from by making its consumer again at
// the checkpoint.
type restart struct{ err error }

func (r *restart) Error() string { return "restart: " + r.err.Error() }
func (r *restart) Unwrap() error { return r.err }

// stallAfter is how long the loop waits for a delivery while the log holds events after
// its checkpoint before it decides the pull was lost (a node restarted with it) and
// makes its consumer again.
const stallAfter = 5 * time.Second

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// fetched is one decoded batch from the reader (empty: the log was idle for MaxWait).
type fetched struct {
	batch  []domain.Stored
	last   jetstream.Msg
	err    error
	poison *poison // a message after the batch that does not decode
}

// poison is a stored message that is not a valid event.
type poison struct {
	seq     uint64
	subject string
	err     error
}

// follow applies events after cp. A reader goroutine fetches and decodes the next batch
// while the projector applies the current one; it stops when follow returns.
func (c *Consumer) follow(ctx context.Context, stream jetstream.Stream, cp, last uint64, untilLast bool) (uint64, error) {
	cons, err := c.consumer(ctx, stream, cp)
	if err != nil {
		// On a cluster the consumer's lookup or creation fails for a while when its
		// leader restarts (a lookup times out, then a create finds the consumer there
		// with another start: "start sequence can not be updated"): try again, with the
		// loop's back-off (a one-off catch-up gives up after maxCatchUpRestarts).
		return cp, &restart{err}
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * c.cfg.Batch))
	if err != nil {
		return cp, &restart{fmt.Errorf("%s: consume: %w", c.proj.Name(), err)}
	}
	rctx, cancel := context.WithCancel(ctx)
	out := make(chan fetched, 8)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // cancellation ends a blocked Next
		defer wg.Done()
		<-rctx.Done()
		it.Stop()
	}()
	go func() {
		defer wg.Done()
		defer close(out)
		c.read(rctx, it, cp, last, untilLast, out)
	}()
	defer func() {
		cancel()
		for range out { // let the reader finish a blocked send
		}
		wg.Wait()
	}()

	checked := time.Now()
	progressed := time.Now() // the last delivery, or the start
	var stallChecked time.Time
	for {
		var f fetched
		var ok bool
		select {
		case f, ok = <-out:
		case <-ctx.Done():
			return cp, ctx.Err()
		}
		if !ok {
			return cp, ctx.Err() // the reader reached the last sequence
		}
		var pending error // an error behind the batches already read: apply them first
		for drained := false; !drained && f.err == nil && f.poison == nil && len(f.batch) < c.cfg.Batch; {
			select {
			case g, ok := <-out:
				switch {
				case !ok:
					drained = true
				case g.err != nil:
					pending, drained = g.err, true
				default:
					if len(g.batch) > 0 {
						f.batch, f.last = append(f.batch, g.batch...), g.last
					}
					if g.poison != nil {
						f.poison, drained = g.poison, true
					}
				}
			default:
				drained = true
			}
		}
		if f.err != nil {
			return cp, f.err
		}
		if len(f.batch) > 0 || f.poison != nil {
			progressed = time.Now()
		} else {
			if c.cfg.Idle != nil && ctx.Err() == nil {
				c.cfg.Idle(ctx)
			}
			// Nothing came: either the log is idle, or the pull was lost with a node.
			if time.Since(progressed) >= stallAfter && time.Since(stallChecked) >= stallAfter {
				stallChecked = time.Now()
				if info, err := stream.Info(ctx); err == nil && info.State.LastSeq > cp {
					return cp, &restart{fmt.Errorf("no delivery for %s while the log holds %d after %d", time.Since(progressed).Round(time.Second), info.State.LastSeq, cp)}
				}
			}
		}
		// Another process may have moved the checkpoint: ahead (it applied events
		// first; they are skipped) or back (a rebuild was swapped in). Looked at once a
		// second, not per batch.
		if time.Since(checked) >= time.Second {
			checked = time.Now()
			now, err := c.proj.Checkpoint(ctx)
			if err != nil {
				return cp, fmt.Errorf("%s: checkpoint: %w", c.proj.Name(), err)
			}
			if now < cp {
				return now, errMovedBack
			}
			cp = now
		}
		batch := f.batch
		for len(batch) > 0 && batch[0].Seq <= cp {
			batch = batch[1:] // applied by another process meanwhile
		}
		if len(batch) > 0 {
			if err := c.proj.Apply(ctx, batch); err != nil {
				return cp, fmt.Errorf("%s: apply %d..%d: %w", c.proj.Name(), batch[0].Seq, batch[len(batch)-1].Seq, err)
			}
			cp = batch[len(batch)-1].Seq
			if !c.cfg.Ephemeral {
				_ = f.last.Ack() // AckAll: the checkpoint is the truth, the ack only trims redelivery
			}
			if c.cfg.Progress != nil {
				c.cfg.Progress(cp, max(last, cp))
			}
		}
		if f.poison != nil {
			if err := c.park(ctx, f.poison, cp); err != nil {
				return cp, err
			}
			// Parked: the checkpoint is past it. Not parked yet: deliver it again.
			if now, err := c.proj.Checkpoint(ctx); err == nil && now >= f.poison.seq {
				cp = f.poison.seq
				return cp, &restart{fmt.Errorf("sequence %d parked as a dead letter", cp)}
			}
			return cp, &restart{fmt.Errorf("sequence %d does not decode (delivery %d of %d)", f.poison.seq, c.deliveries[f.poison.seq], c.cfg.MaxDeliver)}
		}
		if pending != nil {
			return cp, pending
		}
		if untilLast && cp >= last {
			return cp, nil
		}
	}
}

// park counts a delivery of an undecodable message and parks it once it has been
// delivered MaxDeliver times, if the projector can park; otherwise it halts with
// ErrUndecodable.
func (c *Consumer) park(ctx context.Context, p *poison, cp uint64) error {
	if p.seq != cp+1 {
		return &restart{fmt.Errorf("undecodable sequence %d ahead of checkpoint %d", p.seq, cp)}
	}
	c.deliveries[p.seq]++
	if c.deliveries[p.seq] < c.cfg.MaxDeliver {
		return nil
	}
	reason := fmt.Sprintf("%v: %v", ErrUndecodable, p.err)
	pk, ok := c.proj.(Parker)
	if !ok {
		return fmt.Errorf("%s: sequence %d: %w: %v", c.proj.Name(), p.seq, ErrUndecodable, p.err)
	}
	if err := pk.Park(ctx, p.seq, p.subject, reason); err != nil {
		return fmt.Errorf("%s: park sequence %d: %w", c.proj.Name(), p.seq, err)
	}
	delete(c.deliveries, p.seq)
	c.cfg.Logf("dead letter parked", "projector", c.proj.Name(), "seq", p.seq, "reason", reason)
	return nil
}

// read fetches and decodes batches after cp and sends them on out until ctx is done,
// an error (sent too), a message that does not decode (sent with the batch before it),
// or, with untilLast, the last sequence. A chunk of many events (a catch-up) is
// decoded on a goroutine of its own while the next one is fetched, so that decoding
// uses every core; the chunks are sent in sequence order whatever order they finish
// decoding in.
func (c *Consumer) read(ctx context.Context, it jetstream.MessagesContext, cp, last uint64, untilLast bool, out chan<- fetched) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ordered := make(chan *chunk, runtime.GOMAXPROCS(0)+1)
	var decoders sync.WaitGroup
	emitted := make(chan struct{})
	go func() {
		defer close(emitted)
		defer cancel() // the fetcher stops once nothing more is sent
		for ch := range ordered {
			if ch.decoded != nil {
				<-ch.decoded
			}
			select {
			case out <- ch.fetched:
			case <-ctx.Done():
				return
			}
			if ch.err != nil || ch.poison != nil {
				return
			}
		}
	}()
	c.fetch(ctx, it, cp, last, untilLast, ordered, &decoders)
	close(ordered)
	<-emitted
	decoders.Wait()
}

// chunk is a fetched batch on its way to out, in sequence order.
type chunk struct {
	fetched
	msgs []jetstream.Msg // the batch's messages (for the last one before a poison)
	// decoded is closed once a decoding goroutine has decoded the batch; nil when the
	// fetcher decoded it (or nothing is to be decoded).
	decoded chan struct{}
}

// decodeAside is the smallest chunk decoded on a goroutine of its own: a smaller one
// (a quiet log) is decoded by the fetcher, which costs no hand-over.
const decodeAside = 32

// decode decodes a chunk's events; at the first message that does not decode, the
// batch ends before it and the message is the chunk's poison.
func (c *Consumer) decode(ch *chunk) {
	for i := range ch.batch {
		s := &ch.batch[i]
		ev, err := c.cfg.Decode(s.Raw)
		if err != nil {
			ch.poison = &poison{seq: s.Seq, subject: s.Subject, err: err}
			ch.batch, ch.last = ch.batch[:i], nil
			if i > 0 {
				ch.last = ch.msgs[i-1]
			}
			return
		}
		s.Event = ev
	}
}

// fetch reads the chunks after cp and queues them on ordered until ctx is done, an
// error (queued too), or, with untilLast, the last sequence.
func (c *Consumer) fetch(ctx context.Context, it jetstream.MessagesContext, cp, last uint64, untilLast bool, ordered chan<- *chunk, decoders *sync.WaitGroup) {
	send := func(ch *chunk) bool {
		select {
		case ordered <- ch:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fail := func(err error) { send(&chunk{fetched: fetched{err: err}}) }
	for {
		// Block for the first message, then take whatever else is already there: a
		// batch under load, a single event (low latency) when the log is quiet.
		ch := &chunk{}
		n := min(c.cfg.Batch, 256) // grows when a backlog fills it
		batch, msgs := make([]domain.Stored, 0, n), make([]jetstream.Msg, 0, n)
		wait := c.cfg.MaxWait
		var first time.Time
		for len(batch) < c.cfg.Batch {
			// Linger at most a few milliseconds after the first message: under a steady
			// stream a batch must not wait to fill (latency); a backlog fills it at once.
			if !first.IsZero() && time.Since(first) > linger {
				break
			}
			m, err := it.Next(jetstream.NextMaxWait(wait))
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, nats.ErrTimeout) {
					break
				}
				// The consumer went away (deleted, lost with its node, heartbeats
				// missed, the connection reconnecting): make it again.
				fail(&restart{fmt.Errorf("%s: consume: %w", c.proj.Name(), err)})
				return
			}
			if first.IsZero() {
				first = time.Now()
			}
			wait = time.Millisecond
			meta, err := m.Metadata()
			if err != nil {
				fail(fmt.Errorf("%s: metadata: %w", c.proj.Name(), err))
				return
			}
			seq := meta.Sequence.Stream
			if seq <= cp {
				continue // applied before a crash or redelivered: skip
			}
			if seq != cp+1 {
				fail(c.gap(ctx, cp, seq))
				return
			}
			batch = append(batch, domain.Stored{Seq: seq, Subject: m.Subject(), Received: meta.Timestamp.UTC(), Raw: m.Data()})
			msgs = append(msgs, m)
			cp = seq
			if untilLast && cp >= last {
				break
			}
		}
		ch.batch, ch.msgs = batch, msgs
		if len(msgs) > 0 {
			ch.last = msgs[len(msgs)-1]
		}
		poisoned := false // known here only for a chunk the fetcher decoded
		switch {
		case c.cfg.Raw:
		case len(batch) < decodeAside:
			c.decode(ch)
			poisoned = ch.poison != nil
		default:
			ch.decoded = make(chan struct{})
			decoders.Add(1)
			go func() {
				defer decoders.Done()
				defer close(ch.decoded)
				c.decode(ch)
			}()
		}
		if !send(ch) || poisoned {
			return
		}
		if untilLast && cp >= last {
			return
		}
	}
}

// gap decides what a delivery that skips sequences means: the log holds the next
// sequence (deliveries were lost, e.g. with a consumer's leader): make the consumer again;
// the log does not hold it: a real gap, which halts the projector with ErrGap.
func (c *Consumer) gap(ctx context.Context, cp, got uint64) error {
	stream, err := c.js.Stream(ctx, c.cfg.Stream)
	if err == nil {
		_, err = stream.GetMsg(ctx, cp+1)
		if err == nil {
			return &restart{fmt.Errorf("delivery skipped from %d to %d; the log holds %d", cp, got, cp+1)}
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%s: %w: expected sequence %d, got %d", c.proj.Name(), ErrGap, cp+1, got)
	}
	return &restart{fmt.Errorf("delivery skipped from %d to %d: %w", cp, got, err)}
}

// consumer returns the durable consumer positioned right after cp, re-creating it when
// its position disagrees with the checkpoint (the checkpoint is authoritative), or an
// ordered consumer in ephemeral mode.
func (c *Consumer) consumer(ctx context.Context, stream jetstream.Stream, cp uint64) (jetstream.Consumer, error) {
	if c.cfg.Ephemeral {
		return stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   cp + 1,
		})
	}
	name := c.cfg.Durable
	if name == "" {
		name = "custody-" + c.proj.Name()
	}
	if existing, err := stream.Consumer(ctx, name); err == nil {
		ci := existing.CachedInfo()
		if ci.AckFloor.Stream == cp && ci.NumAckPending == 0 {
			return existing, nil
		}
		if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("%s: reset consumer: %w", c.proj.Name(), err)
		}
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "custody projector " + c.proj.Name(),
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   cp + 1,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       5 * time.Minute,
		MaxAckPending: -1,
		MaxWaiting:    16,
		// A durable whose store is gone (a removed data directory, a test) is removed
		// by the server after a week unused; a running projector pulls every second.
		InactiveThreshold: 7 * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: create consumer: %w", c.proj.Name(), err)
	}
	return cons, nil
}
