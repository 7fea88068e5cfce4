package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/domain"
)

// Status is the outcome of publishing one event.
type Status int

const (
	// Stored: the log acknowledged the event; Result.Seq is its stream sequence.
	Stored Status = iota + 1
	// Duplicate: an event with the same id is already in the log (Result.Seq is the
	// sequence of that event when the log reports it).
	Duplicate
	// Rejected: the log refused the event; Result.Err says why. Nothing was stored.
	Rejected
)

func (s Status) String() string {
	switch s {
	case Stored:
		return "stored"
	case Duplicate:
		return "duplicate"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}

// ErrOutcomeUnknown is wrapped by the error of a Rejected result whose outcome the log
// never settled (no acknowledgement, no quorum, the context ended): the event may still
// be stored, once; send it again with the same id to learn which. Any other Rejected
// result is a refusal by the log.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// Result is the outcome of publishing one event.
type Result struct {
	Status Status
	Seq    uint64
	Err    error
}

// Outgoing is one event ready for the log: its id (the Nats-Msg-Id), the subject and the
// canonical bytes.
type Outgoing struct {
	ID      string
	Subject string
	Data    []byte
}

// NewOutgoing encodes a validated event for the log.
func NewOutgoing(e domain.Event) (Outgoing, error) {
	b, err := e.MarshalJSON()
	if err != nil {
		return Outgoing{}, err
	}
	return Outgoing{ID: e.ID, Subject: Subject(e.Type), Data: b}, nil
}

// PublisherConfig configures a Publisher. The zero value is valid.
type PublisherConfig struct {
	// MaxInFlight bounds the acknowledgements outstanding at once. Optional; default 1024.
	MaxInFlight int
	// Retries is how many times a publish whose outcome is unknown (timeout, no
	// responders, connection loss) is sent again with the same id. Optional; default 8.
	Retries int
	// RetryWait is the pause before a retry, doubled each time up to 2 s. Optional;
	// default 100 ms.
	RetryWait time.Duration
	// AckTimeout bounds the wait for one acknowledgement. Optional; default 10 s.
	AckTimeout time.Duration
	// AtomicBatch, when > 1, commits events in atomic batches of up to this many
	// messages (at most MaxAtomicBatch): the server stores each batch with one disk sync
	// and acknowledges it as a whole. Optional; default 0 (one acknowledgement per event).
	AtomicBatch int
}

// MaxAtomicBatch is the server's limit on the messages of one atomic batch.
const MaxAtomicBatch = 1000

func (c *PublisherConfig) setDefaults() {
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 1024
	}
	if c.Retries == 0 {
		c.Retries = 8
	}
	if c.RetryWait == 0 {
		c.RetryWait = 100 * time.Millisecond
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 10 * time.Second
	}
}

// Validate reports settings that cannot work.
func (c *PublisherConfig) Validate() error {
	var errs []error
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("publisher: MaxInFlight %d: must be at least 1", c.MaxInFlight))
	}
	if c.Retries < 0 {
		errs = append(errs, fmt.Errorf("publisher: Retries %d: must not be negative", c.Retries))
	}
	if c.AtomicBatch < 0 || c.AtomicBatch > MaxAtomicBatch {
		errs = append(errs, fmt.Errorf("publisher: AtomicBatch %d: must be 0 to %d", c.AtomicBatch, MaxAtomicBatch))
	}
	return errors.Join(errs...)
}

// Publisher writes events to the log exactly once: each message carries its event id as
// Nats-Msg-Id, so a retry after an unknown outcome is deduplicated by the server.
type Publisher struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg PublisherConfig
}

// NewPublisher returns a publisher on an open connection.
func NewPublisher(nc *nats.Conn, cfg PublisherConfig) (*Publisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The async timeout makes the client forget an acknowledgement that never comes (a
	// leader that died with the request, a subject nobody answers): without it the
	// lost futures count against MaxPending for good and publishing stalls.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.MaxInFlight*2),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	return &Publisher{nc: nc, js: js, cfg: cfg}, nil
}

// Publish stores one event and waits for the log's acknowledgement.
func (p *Publisher) Publish(ctx context.Context, m Outgoing) Result {
	return p.PublishAll(ctx, []Outgoing{m})[0]
}

// PublishAll stores a slice of events with at most MaxInFlight acknowledgements
// outstanding (or in atomic batches) and returns one Result per event, in order. An event
// whose outcome stays unknown after every retry, or that the context cancels, is
// Rejected with the reason; nothing is reported Stored that the log did not acknowledge.
func (p *Publisher) PublishAll(ctx context.Context, msgs []Outgoing) []Result {
	res := make([]Result, len(msgs))
	if p.cfg.AtomicBatch > 1 {
		p.publishBatches(ctx, msgs, res)
		return res
	}
	pending := make([]int, 0, len(msgs))
	for i := range msgs {
		pending = append(pending, i)
	}
	wait := p.cfg.RetryWait
	for attempt := 0; len(pending) > 0; attempt++ {
		retry := p.publishAsync(ctx, msgs, pending, res, attempt > 0)
		if len(retry) == 0 {
			break
		}
		if attempt >= p.cfg.Retries || ctx.Err() != nil {
			for _, i := range retry {
				if res[i].Err == nil {
					res[i].Err = ctx.Err()
				}
				res[i].Status = Rejected
				res[i].Err = fmt.Errorf("publish %s: %w after %d attempts: %w", msgs[i].ID, ErrOutcomeUnknown, attempt+1, res[i].Err)
			}
			break
		}
		sleep(ctx, wait)
		wait = min(wait*2, 2*time.Second)
		pending = retry
	}
	return res
}

// publishAsync sends the pending messages and collects their acknowledgements; it
// returns the indexes whose outcome is unknown and must be retried.
func (p *Publisher) publishAsync(ctx context.Context, msgs []Outgoing, pending []int, res []Result, isRetry bool) []int {
	sem := make(chan struct{}, p.cfg.MaxInFlight)
	var (
		mu    sync.Mutex
		retry []int
		wg    sync.WaitGroup
	)
	unknown := func(i int, err error) {
		mu.Lock()
		res[i].Err = err
		retry = append(retry, i)
		mu.Unlock()
	}
	for _, i := range pending {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			unknown(i, ctx.Err())
			continue
		}
		m := msgs[i]
		msg := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{jetstream.MsgIDHeader: []string{m.ID}}}
		fut, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			<-sem
			unknown(i, err)
			continue
		}
		wg.Add(1)
		go func(i int, fut jetstream.PubAckFuture) {
			defer wg.Done()
			defer func() { <-sem }()
			timer := time.NewTimer(p.cfg.AckTimeout)
			defer timer.Stop()
			select {
			case ack := <-fut.Ok():
				res[i] = ackResult(ack, isRetry)
			case err := <-fut.Err():
				if r, final := classify(err); final {
					res[i] = r
				} else {
					unknown(i, err)
				}
			case <-timer.C:
				unknown(i, fmt.Errorf("no acknowledgement within %s", p.cfg.AckTimeout))
			}
		}(i, fut)
	}
	wg.Wait()
	return retry
}

// ackResult turns an acknowledgement into a Result. A duplicate acknowledgement to a
// retry means the first attempt was stored (its acknowledgement was lost), so it counts
// as Stored: the event is in the log once, at the sequence the server names.
func ackResult(ack *jetstream.PubAck, isRetry bool) Result {
	if ack.Duplicate && !isRetry {
		return Result{Status: Duplicate, Seq: ack.Sequence}
	}
	return Result{Status: Stored, Seq: ack.Sequence}
}

// Server errors whose outcome is unknown rather than a refusal: the message may be
// stored once the cluster settles, so it is sent again with the same id.
const (
	// errDuplicateInProcess (409, "duplicate message id is in process"): an earlier
	// attempt with this id is being replicated; it is stored once quorum returns.
	errDuplicateInProcess = 10158
)

// classify separates a definite refusal by the log (final) from an unknown outcome.
// 503 answers (no quorum, a leader election, store failures) and a duplicate still in
// process are unknown outcomes: retried with the same id, so never stored twice.
func classify(err error) (Result, bool) {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		if apiErr.Code == 503 || apiErr.ErrorCode == errDuplicateInProcess {
			return Result{}, false
		}
		return Result{Status: Rejected, Err: fmt.Errorf("log refused the event: %w", err)}, true
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		return Result{Status: Rejected, Err: err}, true
	}
	return Result{}, false
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
