package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/domain"
)

// Names of custody's streams and subject prefixes (docs/adr/0002-subjects.md).
const (
	// EventsStream holds the compliance events written from outside.
	EventsStream = "CUSTODY_EVENTS"
	// EventSubjectPrefix is followed by the event type: custody.event.consent.captured.
	EventSubjectPrefix = "custody.event."
	// AlertsStream holds custody's own alert.raised events.
	AlertsStream = "CUSTODY_ALERTS"
	// AlertSubjectPrefix is followed by the alert rule.
	AlertSubjectPrefix = "custody.alert."
	// ReportsStream holds custody's own report.executed events.
	ReportsStream = "CUSTODY_REPORTS"
	// ReportSubjectPrefix is followed by the report name.
	ReportSubjectPrefix = "custody.report."
	// IntegrityStream holds the signed checkpoints of the events stream's Merkle tree.
	IntegrityStream = "CUSTODY_INTEGRITY"
	// CheckpointSubject is the subject of a signed checkpoint.
	CheckpointSubject = "custody.integrity.checkpoint"
)

// DefaultMaxAge is six years, the retention HIPAA asks of documentation (45 CFR
// 164.316(b)(2)). Leap days are covered: 6 × 366 days.
const DefaultMaxAge = 6 * 366 * 24 * time.Hour

// DefaultDuplicates is the server's deduplication window for Nats-Msg-Id.
const DefaultDuplicates = 10 * time.Minute

// ErrStreamSettings is returned when an existing stream has settings weaker than the
// ones custody requires.
var ErrStreamSettings = errors.New("stream settings do not meet custody's requirements")

// Subject is the subject an event of type t is stored under. Subjects carry the type,
// never the interaction, so the subject index stays bounded.
func Subject(t domain.Type) string {
	switch {
	case t == domain.AlertRaisedType:
		return AlertSubjectPrefix + "raised"
	case t == domain.ReportExecutedType:
		return ReportSubjectPrefix + "executed"
	case t == domain.CheckpointSignedType:
		return CheckpointSubject
	}
	return EventSubjectPrefix + string(t)
}

// TypeOf is the inverse of Subject for the events stream.
func TypeOf(subject string) (domain.Type, bool) {
	if !strings.HasPrefix(subject, EventSubjectPrefix) {
		return "", false
	}
	t := domain.Type(strings.TrimPrefix(subject, EventSubjectPrefix))
	return t, t.Accepted()
}

// LogConfig holds the settings of custody's streams.
type LogConfig struct {
	// MaxAge is how long events are kept. Optional; default DefaultMaxAge (six years).
	MaxAge time.Duration
	// Duplicates is the deduplication window. Optional; default 10 minutes; at least 10
	// minutes.
	Duplicates time.Duration
	// Replicas is the stream replication factor. Optional; default 1 (3 in a cluster).
	Replicas int
	// AtomicBatches allows atomic batch publishing (bulk ingest). Optional; default on
	// (see Publisher).
	DisableAtomicBatches bool
}

func (c *LogConfig) setDefaults() {
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// Validate reports settings that would weaken the log.
func (c *LogConfig) Validate() error {
	var errs []error
	if c.Duplicates < DefaultDuplicates {
		errs = append(errs, fmt.Errorf("log: Duplicates %s: must be at least 10m", c.Duplicates))
	}
	if c.MaxAge < c.Duplicates {
		errs = append(errs, fmt.Errorf("log: MaxAge %s: must be at least the duplicate window", c.MaxAge))
	}
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("log: Replicas %d: must be 1, 3 or 5", c.Replicas))
	}
	return errors.Join(errs...)
}

func (c LogConfig) streamConfig(name, subjects, desc string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               name,
		Description:        desc,
		Subjects:           []string{subjects},
		Retention:          jetstream.LimitsPolicy,
		Storage:            jetstream.FileStorage,
		Discard:            jetstream.DiscardNew,
		MaxAge:             c.MaxAge,
		Duplicates:         c.Duplicates,
		Replicas:           c.Replicas,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: !c.DisableAtomicBatches,
		MaxMsgSize:         1 << 20,
	}
}

// Configs returns the stream configurations custody needs.
func (c LogConfig) Configs() []jetstream.StreamConfig {
	c.setDefaults()
	return []jetstream.StreamConfig{
		c.streamConfig(EventsStream, EventSubjectPrefix+">", "custody compliance events (immutable, six years)"),
		c.streamConfig(AlertsStream, AlertSubjectPrefix+">", "custody alert.raised events"),
		c.streamConfig(ReportsStream, ReportSubjectPrefix+">", "custody report.executed events"),
		c.streamConfig(IntegrityStream, "custody.integrity.>", "custody signed checkpoints of the events stream's Merkle tree"),
	}
}

// EnsureStreams creates custody's streams, or verifies that existing ones have the
// required settings. A stream whose immutability settings are weaker (DenyDelete or
// DenyPurge off, Discard old, memory storage, a shorter window) is an error, never
// silently changed; a stream created before atomic batches were allowed is updated to
// allow them.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg LogConfig) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	for _, want := range cfg.Configs() {
		s, err := js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if _, err := js.CreateStream(ctx, want); err != nil {
				return fmt.Errorf("create stream %s: %w", want.Name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("look up stream %s: %w", want.Name, err)
		}
		have := s.CachedInfo().Config
		if err := checkSettings(have, want); err != nil {
			return err
		}
		if have.AllowAtomicPublish != want.AllowAtomicPublish || have.MaxAge < want.MaxAge || have.Duplicates != want.Duplicates || have.Replicas < want.Replicas {
			upd := have
			upd.AllowAtomicPublish = want.AllowAtomicPublish
			upd.MaxAge = max(have.MaxAge, want.MaxAge) // never shorten what is already kept
			upd.Duplicates = want.Duplicates
			upd.Replicas = max(have.Replicas, want.Replicas) // never fewer copies
			if _, err := js.UpdateStream(ctx, upd); err != nil {
				if have.Replicas < want.Replicas {
					return fmt.Errorf("stream %s: %w: %d replicas, %d required, and raising them failed: %w", want.Name, ErrStreamSettings, have.Replicas, want.Replicas, err)
				}
				return fmt.Errorf("update stream %s: %w", want.Name, err)
			}
		}
	}
	return nil
}

func checkSettings(have, want jetstream.StreamConfig) error {
	var bad []string
	if !have.DenyDelete {
		bad = append(bad, "deny_delete is off")
	}
	if !have.DenyPurge {
		bad = append(bad, "deny_purge is off")
	}
	if have.Discard != jetstream.DiscardNew {
		bad = append(bad, "discard is not new")
	}
	if have.Storage != jetstream.FileStorage {
		bad = append(bad, "storage is not file")
	}
	if have.Retention != jetstream.LimitsPolicy {
		bad = append(bad, "retention is not limits")
	}
	if have.MaxMsgs > 0 || have.MaxBytes > 0 || have.MaxMsgsPerSubject > 0 {
		bad = append(bad, "a message or byte limit could discard events")
	}
	if len(have.Subjects) != 1 || have.Subjects[0] != want.Subjects[0] {
		bad = append(bad, fmt.Sprintf("subjects are %v, want %v", have.Subjects, want.Subjects))
	}
	if len(bad) > 0 {
		return fmt.Errorf("stream %s: %w: %s", have.Name, ErrStreamSettings, strings.Join(bad, "; "))
	}
	return nil
}
