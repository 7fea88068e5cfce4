package siem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/custody/custody/domain"
)

// Streams and subjects the router reads (docs/adr/0002-subjects.md). They are repeated
// here because integration packages do not import streams.
const (
	AlertsStream  = "CUSTODY_ALERTS"
	AlertsSubject = "custody.alert.>"
	EventsStream  = "CUSTODY_EVENTS"
	EventsSubject = "custody.event.>"
	ReportsStream = "CUSTODY_REPORTS"
	// ReportsSubject selects report.executed events.
	ReportsSubject = "custody.report.>"
	// IntegrityStream holds the signed checkpoints of the log's Merkle tree.
	IntegrityStream = "CUSTODY_INTEGRITY"
	// CheckpointSubject selects the signed checkpoints (checkpoint.signed).
	CheckpointSubject = "custody.integrity.checkpoint"
)

// Dead-letter defaults.
const (
	DefaultDeadLetterStream = "CUSTODY_SIEM_DEADLETTER"
	DefaultDeadLetterPrefix = "custody.deadletter.siem."
)

// Headers of a dead-lettered message. Its body is the event exactly as it was read.
const (
	HeaderDeadLetterReason = "Custody-Deadletter-Reason"
	HeaderDeadLetterSink   = "Custody-Deadletter-Sink"
	HeaderOriginalStream   = "Custody-Original-Stream"
	HeaderOriginalSubject  = "Custody-Original-Subject"
	HeaderOriginalSequence = "Custody-Original-Sequence"
	HeaderEventID          = "Custody-Event-Id"
)

// Sink delivers events to one receiver. Deliver makes one attempt; the router retries.
// Its error must match ErrRetryable or ErrPermanent (see DeliveryError), or be
// ErrNotForwarded, or the context's error; an unclassified error counts as retryable.
type Sink interface {
	Name() string
	Deliver(ctx context.Context, e domain.Event) error
}

// Route sends what one sink receives.
type Route struct {
	// Sink is the destination. Required.
	Sink Sink
	// Events also forwards every compliance event of CUSTODY_EVENTS. Optional; default
	// alerts only.
	Events bool
	// Reports also forwards every report.executed of CUSTODY_REPORTS. Optional.
	Reports bool
	// Checkpoints also forwards every signed checkpoint of CUSTODY_INTEGRITY
	// (checkpoint.signed), the receiver's independent copy of what the log's signing
	// key vouched for. The stream must exist (custody creates it with its other streams
	// at start). Optional.
	Checkpoints bool
	// Backfill starts a newly created events or reports consumer at the beginning of its
	// stream instead of at its end. Alerts and checkpoints always start at the
	// beginning: an alert raised before the sink existed still needs a person, and a
	// copy of the checkpoints is only worth having whole. Optional.
	Backfill bool
}

// Config configures a Router.
type Config struct {
	// JetStream is the client of custody's log. Required.
	JetStream jetstream.JetStream
	// Routes lists the sinks. Required: at least one, with distinct sink names.
	Routes []Route
	// Logger receives the router's logs: sink names, event ids, status codes, never
	// payloads. Optional; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics. Optional; default none (metrics are kept but not
	// exported).
	Registerer prometheus.Registerer
	// MaxRetries is how many times a retryable failure is retried before the event is
	// left in the stream. Optional; default 3 (four attempts); negative: no retry.
	MaxRetries int
	// RetryInterval is the constant wait between attempts. Optional; default 1 s.
	RetryInterval time.Duration
	// RedeliveryDelay is how long the stream waits before redelivering an event whose
	// attempts all failed. Optional; default 1 min.
	RedeliveryDelay time.Duration
	// AckWait is the consumers' acknowledgement timeout (progress is signalled while an
	// event is being delivered). Optional; default 30 s.
	AckWait time.Duration
	// DeadLetterPrefix is followed by the sink name to make the dead-letter subject.
	// Optional; default "custody.deadletter.siem.".
	DeadLetterPrefix string
	// DeadLetterStream stores the dead-letter subjects; it is created (file storage, no
	// limits) when missing. Optional; default "CUSTODY_SIEM_DEADLETTER".
	DeadLetterStream string
	// ConsumerPrefix is followed by the sink name (and "-events", "-reports" or
	// "-checkpoints") to name the durable consumers. Optional; default "siem-".
	ConsumerPrefix string
	// CloseTimeout bounds the wait for deliveries in flight at shutdown. Optional;
	// default 30 s.
	CloseTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 3
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Second
	}
	if c.RedeliveryDelay == 0 {
		c.RedeliveryDelay = time.Minute
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.DeadLetterPrefix == "" {
		c.DeadLetterPrefix = DefaultDeadLetterPrefix
	}
	if c.DeadLetterStream == "" {
		c.DeadLetterStream = DefaultDeadLetterStream
	}
	if c.ConsumerPrefix == "" {
		c.ConsumerPrefix = "siem-"
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 30 * time.Second
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.JetStream == nil {
		errs = append(errs, errors.New("JetStream is required"))
	}
	if len(c.Routes) == 0 {
		errs = append(errs, errors.New("at least one route is required"))
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		if r.Sink == nil {
			errs = append(errs, fmt.Errorf("routes[%d]: Sink is required", i))
			continue
		}
		n := r.Sink.Name()
		if err := validateName(n); err != nil {
			errs = append(errs, fmt.Errorf("routes[%d]: %w", i, err))
		}
		if seen[n] {
			errs = append(errs, fmt.Errorf("routes[%d]: sink name %q used twice", i, n))
		}
		seen[n] = true
	}
	if c.RetryInterval < 0 || c.RedeliveryDelay < 0 {
		errs = append(errs, errors.New("RetryInterval and RedeliveryDelay must not be negative"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, errors.New("AckWait must be at least 1s"))
	}
	return errors.Join(errs...)
}

// Router delivers custody's alerts (and, per route, every compliance event, report
// execution and signed checkpoint) to SIEM and GRC sinks on a Watermill router: one
// durable JetStream consumer and one handler per sink and stream.
type Router struct {
	cfg Config
	log *slog.Logger
	m   *metrics
}

// New checks the configuration and registers the metrics.
func New(cfg Config) (*Router, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: router: %w", ErrConfig, err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	for _, r := range cfg.Routes {
		m.init(r.Sink.Name())
	}
	return &Router{cfg: cfg, log: cfg.Logger, m: m}, nil
}

type source struct {
	stream, subject, suffix string
	deliverNew              bool
}

func (r Route) sources() []source {
	s := []source{{stream: AlertsStream, subject: AlertsSubject}}
	if r.Events {
		s = append(s, source{stream: EventsStream, subject: EventsSubject, suffix: "-events", deliverNew: !r.Backfill})
	}
	if r.Reports {
		s = append(s, source{stream: ReportsStream, subject: ReportsSubject, suffix: "-reports", deliverNew: !r.Backfill})
	}
	if r.Checkpoints {
		s = append(s, source{stream: IntegrityStream, subject: CheckpointSubject, suffix: "-checkpoints"})
	}
	return s
}

// Run delivers until ctx is cancelled, then waits for deliveries in flight (at most
// CloseTimeout) and returns. It creates the dead-letter stream if it is missing and the
// durable consumers. It returns an error when it cannot start; a cancellation while it
// starts is not an error.
func (r *Router) Run(ctx context.Context) error {
	err := r.run(ctx)
	if err != nil && ctx.Err() != nil {
		return nil
	}
	return err
}

func (r *Router) run(ctx context.Context) error {
	if err := r.ensureDeadLetterStream(ctx); err != nil {
		return err
	}
	wlog := watermill.NewSlogLoggerWithLevelMapping(r.log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	wr, err := message.NewRouter(message.RouterConfig{CloseTimeout: r.cfg.CloseTimeout}, wlog)
	if err != nil {
		return fmt.Errorf("siem router: %w", err)
	}
	var subs []*subscriber
	defer func() {
		for _, s := range subs {
			s.Close()
		}
	}()
	for _, route := range r.cfg.Routes {
		name := route.Sink.Name()
		for _, src := range route.sources() {
			sub, err := newSubscriber(subscriberConfig{
				JetStream:  r.cfg.JetStream,
				Stream:     src.stream,
				Durable:    r.cfg.ConsumerPrefix + name + src.suffix,
				DeliverNew: src.deliverNew,
				AckWait:    r.cfg.AckWait,
				NakDelay:   r.cfg.RedeliveryDelay,
				Logger:     r.log,
			})
			if err != nil {
				return err
			}
			subs = append(subs, sub)
			h := wr.AddConsumerHandler("siem-"+name+src.suffix, src.subject, sub, r.deliver(route.Sink))
			h.AddMiddleware(r.outcome(name), r.retry(name))
		}
	}
	if err := wr.Run(ctx); err != nil {
		return fmt.Errorf("siem router: %w", err)
	}
	return nil
}

// deliver is the handler: parse the event as stored, make one delivery attempt.
func (r *Router) deliver(s Sink) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		e, err := parseStored(msg)
		if err != nil {
			// The parse error names fields and rules, never values; still, only a fixed
			// reason leaves this function.
			return &DeliveryError{Sink: s.Name(), EventID: msg.UUID, Reason: "the stored event does not parse", Permanent: true}
		}
		return s.Deliver(msg.Context(), e)
	}
}

// parseStored decodes a stored message: an event of custody's contract or, on the
// checkpoint subject, a bare signed note (the checkpoint file's bytes, as the integrity
// projector publishes them), which becomes its checkpoint.signed event
// (domain.CheckpointEvent) with the time the stream stored it. The same message always
// gives the same event, and the same checkpoint the same event id.
func parseStored(msg *message.Message) (domain.Event, error) {
	e, err := domain.Parse(msg.Payload)
	if err == nil || msg.Metadata.Get(MetaSubject) != CheckpointSubject || bytes.HasPrefix(msg.Payload, []byte("{")) {
		return e, err
	}
	stored, terr := time.Parse(time.RFC3339Nano, msg.Metadata.Get(MetaTimestamp))
	if terr != nil {
		return domain.Event{}, err
	}
	return domain.CheckpointEvent(string(msg.Payload), stored)
}

// retry is Watermill's Retry middleware with a constant interval: a retryable failure
// is attempted MaxRetries more times, RetryInterval apart. Permanent failures, skipped
// events and shutdowns are not retried.
func (r *Router) retry(sink string) message.HandlerMiddleware {
	return middleware.Retry{
		MaxRetries:          r.cfg.MaxRetries,
		InitialInterval:     r.cfg.RetryInterval,
		MaxInterval:         r.cfg.RetryInterval,
		Multiplier:          1,
		RandomizationFactor: 0,
		ShouldRetry: func(p middleware.RetryParams) bool {
			if errors.Is(p.Err, ErrPermanent) || errors.Is(p.Err, ErrNotForwarded) || errors.Is(p.Err, context.Canceled) {
				return false
			}
			attempt := p.RetryNum + 1
			var de *DeliveryError
			status := 0
			if errors.As(p.Err, &de) {
				status = de.Status
			}
			if p.RetryNum < r.cfg.MaxRetries {
				r.m.retried.WithLabelValues(sink).Inc()
				r.log.Info("siem: delivery attempt failed, retrying", "sink", sink, "event_id", eventID(p.Err), "attempt", attempt, "status", status, "err", p.Err)
			} else {
				r.log.Info("siem: delivery attempt failed", "sink", sink, "event_id", eventID(p.Err), "attempt", attempt, "status", status, "err", p.Err)
			}
			return true
		},
	}.Middleware
}

func eventID(err error) string {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.EventID
	}
	return ""
}

// outcome settles a message after the retries: delivered, skipped and dead-lettered
// events are acknowledged; an event whose attempts all failed is Nacked so that it stays
// in the stream and is redelivered after RedeliveryDelay.
func (r *Router) outcome(sink string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			_, err := h(msg)
			id := msg.UUID
			log := r.log.With("sink", sink, "event_id", id)
			switch {
			case err == nil:
				r.m.delivered.WithLabelValues(sink).Inc()
				r.m.settled(sink, id)
				log.Debug("siem: delivered")
				return nil, nil
			case errors.Is(err, ErrNotForwarded):
				r.m.skipped.WithLabelValues(sink).Inc()
				r.m.settled(sink, id)
				log.Debug("siem: not forwarded by this sink's format")
				return nil, nil
			case errors.Is(err, ErrPermanent):
				reason := err.Error()
				var de *DeliveryError
				if errors.As(err, &de) {
					reason = de.Reason
				}
				if perr := r.deadLetter(msg, sink, reason); perr != nil {
					r.m.undelivered.WithLabelValues(sink).Inc()
					r.m.wait(sink, id)
					log.Error("siem: dead-letter publish failed; event left in the stream", "reason", reason, "err", perr)
					return nil, perr
				}
				r.m.deadlettered.WithLabelValues(sink).Inc()
				r.m.settled(sink, id)
				log.Warn("siem: refused permanently; dead-lettered", "reason", reason, "subject", r.cfg.DeadLetterPrefix+sink)
				return nil, nil
			case msg.Context().Err() != nil:
				return nil, err // shutting down: give the event back without counting
			default:
				r.m.undelivered.WithLabelValues(sink).Inc()
				r.m.wait(sink, id)
				log.Warn("siem: undelivered after retries; left in the stream for redelivery",
					"attempts", r.cfg.MaxRetries+1, "redelivery_in", r.cfg.RedeliveryDelay.String())
				return nil, err
			}
		}
	}
}

// deadLetter publishes the message as read to the sink's dead-letter subject with the
// reason. The message id makes a repeated publication (after a lost acknowledgement)
// a duplicate the stream drops.
func (r *Router) deadLetter(msg *message.Message, sink, reason string) error {
	nm := nats.NewMsg(r.cfg.DeadLetterPrefix + sink)
	nm.Data = msg.Payload
	nm.Header.Set(jetstream.MsgIDHeader, sink+":"+msg.UUID)
	nm.Header.Set(HeaderDeadLetterReason, reason)
	nm.Header.Set(HeaderDeadLetterSink, sink)
	nm.Header.Set(HeaderEventID, msg.UUID)
	nm.Header.Set(HeaderOriginalStream, msg.Metadata.Get(MetaStream))
	nm.Header.Set(HeaderOriginalSubject, msg.Metadata.Get(MetaSubject))
	nm.Header.Set(HeaderOriginalSequence, msg.Metadata.Get(MetaSequence))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.cfg.JetStream.PublishMsg(ctx, nm); err != nil {
		return fmt.Errorf("dead-letter %s: %w", msg.UUID, err)
	}
	return nil
}

func (r *Router) ensureDeadLetterStream(ctx context.Context) error {
	_, err := r.cfg.JetStream.Stream(ctx, r.cfg.DeadLetterStream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("siem router: dead-letter stream %s: %w", r.cfg.DeadLetterStream, err)
	}
	_, err = r.cfg.JetStream.CreateStream(ctx, jetstream.StreamConfig{
		Name:        r.cfg.DeadLetterStream,
		Description: "custody SIEM deliveries refused permanently, with the reason",
		Subjects:    []string{r.cfg.DeadLetterPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		Duplicates:  10 * time.Minute,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("siem router: create dead-letter stream %s: %w", r.cfg.DeadLetterStream, err)
	}
	return nil
}
