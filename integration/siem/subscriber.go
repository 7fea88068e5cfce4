package siem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Metadata keys set on every message the subscriber hands to the router.
const (
	MetaSubject  = "nats_subject"
	MetaStream   = "nats_stream"
	MetaSequence = "nats_stream_sequence"
	MetaDelivery = "nats_num_delivered"
	// MetaTimestamp is when the stream stored the message, RFC 3339 in UTC.
	MetaTimestamp = "nats_timestamp"
)

// subscriberConfig configures a Watermill subscriber reading one stream through one
// durable pull consumer. It is written here rather than taken from watermill-nats:
// that subscriber drains the connection it is given on Close (the caller's shared
// connection), names streams after topics, and its jetstream package is marked beta.
type subscriberConfig struct {
	// JetStream is the client. Required.
	JetStream jetstream.JetStream
	// Stream is the stream to read. Required; it must exist.
	Stream string
	// Durable is the durable consumer's name. Required.
	Durable string
	// DeliverNew starts a newly created consumer at the end of the stream rather than at
	// its beginning. Optional.
	DeliverNew bool
	// AckWait is the consumer's acknowledgement timeout; while a message is being handled
	// the subscriber signals progress every AckWait/3. Optional; default 30 s.
	AckWait time.Duration
	// NakDelay is how long the server waits before redelivering a Nacked message.
	// Optional; default 1 min.
	NakDelay time.Duration
	// FetchWait bounds one pull request. Optional; default 5 s.
	FetchWait time.Duration
	// CloseGrace is how long a message in flight may take to be Acked or Nacked once the
	// subscription is closing; after it the message is left to the server's AckWait.
	// Optional; default 10 s.
	CloseGrace time.Duration
	// Logger is the logger. Optional; default slog.Default().
	Logger *slog.Logger
}

func (c *subscriberConfig) setDefaults() {
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.NakDelay == 0 {
		c.NakDelay = time.Minute
	}
	if c.FetchWait == 0 {
		c.FetchWait = 5 * time.Second
	}
	if c.CloseGrace == 0 {
		c.CloseGrace = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *subscriberConfig) Validate() error {
	var errs []error
	if c.JetStream == nil {
		errs = append(errs, errors.New("subscriber: JetStream is required"))
	}
	if c.Stream == "" || c.Durable == "" {
		errs = append(errs, errors.New("subscriber: Stream and Durable are required"))
	}
	if c.AckWait < 3*time.Millisecond {
		errs = append(errs, errors.New("subscriber: AckWait is too short"))
	}
	return errors.Join(errs...)
}

// subscriber is a message.Subscriber over a durable JetStream pull consumer. It hands
// out one message at a time and fetches the next only after the router Acked or Nacked
// it, so no prefetched message ages in a buffer while a slow receiver is retried. An
// Ack is confirmed by the server (double ack); a Nack asks for redelivery after
// NakDelay. MaxDeliver is unlimited: nothing is ever dropped by the consumer.
type subscriber struct {
	cfg     subscriberConfig
	wg      sync.WaitGroup
	mu      sync.Mutex
	cancels []context.CancelFunc
	closed  bool
}

var _ message.Subscriber = (*subscriber)(nil)

func newSubscriber(cfg subscriberConfig) (*subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &subscriber{cfg: cfg}, nil
}

// consumerConfig is the durable consumer for a filter subject.
func (s *subscriber) consumerConfig(topic string) jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:       s.cfg.Durable,
		Description:   "custody SIEM delivery",
		FilterSubject: topic,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 1000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if s.cfg.DeliverNew {
		cc.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	return cc
}

// Subscribe creates (or updates) the durable consumer filtered on topic and starts
// handing out its messages.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("subscriber: closed")
	}
	stream, err := s.cfg.JetStream.Stream(ctx, s.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: stream %s: %w", topic, s.cfg.Stream, err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, s.consumerConfig(topic))
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: consumer %s: %w", topic, s.cfg.Durable, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancels = append(s.cancels, cancel)
	out := make(chan *message.Message)
	s.wg.Go(func() {
		defer close(out)
		s.loop(ctx, cons, out)
	})
	return out, nil
}

func (s *subscriber) loop(ctx context.Context, cons jetstream.Consumer, out chan<- *message.Message) {
	log := s.cfg.Logger.With("stream", s.cfg.Stream, "consumer", s.cfg.Durable)
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, s.cfg.FetchWait)
		jm, err := cons.Next(jetstream.FetchContext(fctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			log.Warn("siem: fetch failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		s.handle(ctx, jm, out, log)
	}
}

func (s *subscriber) handle(ctx context.Context, jm jetstream.Msg, out chan<- *message.Message, log *slog.Logger) {
	md, err := jm.Metadata()
	if err != nil {
		log.Warn("siem: message without metadata", "err", err)
		_ = jm.Nak()
		return
	}
	id := jm.Headers().Get(jetstream.MsgIDHeader)
	if id == "" {
		id = s.cfg.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	msg := message.NewMessage(id, jm.Data())
	msg.Metadata.Set(MetaSubject, jm.Subject())
	msg.Metadata.Set(MetaStream, md.Stream)
	msg.Metadata.Set(MetaSequence, strconv.FormatUint(md.Sequence.Stream, 10))
	msg.Metadata.Set(MetaDelivery, strconv.FormatUint(md.NumDelivered, 10))
	msg.Metadata.Set(MetaTimestamp, md.Timestamp.UTC().Format(time.RFC3339Nano))
	mctx, mcancel := context.WithCancel(ctx)
	defer mcancel()
	msg.SetContext(mctx)

	select {
	case out <- msg:
	case <-ctx.Done():
		_ = jm.Nak() // not handed out: give it back at once
		return
	}

	progress := time.NewTicker(s.cfg.AckWait / 3)
	defer progress.Stop()
	var grace <-chan time.Time
	done := ctx.Done()
	for {
		select {
		case <-msg.Acked():
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := jm.DoubleAck(actx); err != nil {
				// The server redelivers after AckWait; receivers deduplicate by event id.
				log.Warn("siem: ack failed", "event_id", id, "err", err)
			}
			cancel()
			return
		case <-msg.Nacked():
			if ctx.Err() != nil {
				_ = jm.Nak()
			} else if err := jm.NakWithDelay(s.cfg.NakDelay); err != nil {
				log.Warn("siem: nak failed", "event_id", id, "err", err)
			}
			return
		case <-progress.C:
			_ = jm.InProgress()
		case <-done:
			done = nil
			t := time.NewTimer(s.cfg.CloseGrace)
			defer t.Stop()
			grace = t.C
		case <-grace:
			log.Warn("siem: message still in flight at close; the server will redeliver it", "event_id", id)
			return
		}
	}
}

// Close stops every subscription and waits for their goroutines. It does not close
// the connection, which belongs to the caller.
func (s *subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.cancels {
		c()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
