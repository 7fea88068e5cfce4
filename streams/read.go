package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/domain"
)

// Log reads custody's events stream.
type Log struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// OpenLog looks up the events stream.
func OpenLog(ctx context.Context, js jetstream.JetStream) (*Log, error) {
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &Log{js: js, stream: s}, nil
}

// LastSeq returns the last stream sequence stored.
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("log info: %w", err)
	}
	return info.State.LastSeq, nil
}

// Get fetches the event stored at seq.
func (l *Log) Get(ctx context.Context, seq uint64) (domain.Stored, error) {
	m, err := l.stream.GetMsg(ctx, seq)
	if err != nil {
		return domain.Stored{}, fmt.Errorf("get sequence %d: %w", seq, err)
	}
	ev, err := domain.Parse(m.Data)
	if err != nil {
		return domain.Stored{}, fmt.Errorf("sequence %d: %w: %v", seq, ErrUndecodable, err)
	}
	return domain.Stored{Seq: m.Sequence, Subject: m.Subject, Received: m.Time.UTC(), Raw: m.Data, Event: ev}, nil
}

// ReplayFrom says where an ordered replay starts: at a sequence, or at the first event
// the log received at or after a time. The zero value starts at the beginning.
type ReplayFrom struct {
	Seq  uint64
	Time time.Time
}

// Replay delivers every stored event from the start point up to the last one stored
// when it was called, in stream order, through an ordered consumer (flow-controlled, gap
// detecting, recreated by the client on a missed message). fn returning an error stops
// the replay with that error.
func (l *Log) Replay(ctx context.Context, from ReplayFrom, fn func(domain.Stored) error) error {
	return l.ReplayRaw(ctx, from, func(seq uint64, subject string, received time.Time, data []byte) error {
		ev, err := domain.Parse(data)
		if err != nil {
			return fmt.Errorf("sequence %d: %w: %v", seq, ErrUndecodable, err)
		}
		return fn(domain.Stored{Seq: seq, Subject: subject, Received: received, Raw: data, Event: ev})
	})
}

// ReplayRaw is Replay without decoding: the raw stored bytes.
func (l *Log) ReplayRaw(ctx context.Context, from ReplayFrom, fn func(seq uint64, subject string, received time.Time, data []byte) error) error {
	last, err := l.LastSeq(ctx)
	if err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case from.Seq > 0:
		if from.Seq > last {
			return nil
		}
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from.Seq
	case !from.Time.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		t := from.Time
		cfg.OptStartTime = &t
	}
	if last == 0 {
		return nil
	}
	cons, err := l.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer it.Stop()
	stopErr := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			it.Stop()
		case <-stopErr:
		}
	}()
	defer close(stopErr)
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("replay: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if err := fn(meta.Sequence.Stream, m.Subject(), meta.Timestamp.UTC(), m.Data()); err != nil {
			return err
		}
		if meta.Sequence.Stream >= last {
			return nil
		}
	}
}
