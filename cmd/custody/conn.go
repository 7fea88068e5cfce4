package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// session is an open connection to the log (embedded or external) and the projection
// store in the data directory.
type session struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	embedded *streams.Embedded
	store    *projections.Store
	pub      *streams.Publisher
	// reportPub records report executions: few retries, so that a log that cannot
	// acknowledge fails the request quickly (fail closed) instead of stalling it.
	reportPub *streams.Publisher
	// lateness and redaction are the views' settings (flags --lateness, --redaction-buffer).
	lateness, redaction time.Duration
	// held: the data directory belongs to a running custody serve, whose projectors
	// keep the store current; this process only reads it.
	held bool
	g    *globals
	// holderID names this process in the store's leases (see holder).
	holderID string
}

// holder is this process's name in the store's leases: host, pid and a random part,
// so that two live processes never share it.
func holderName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

type connectOpts struct {
	persistent bool   // reconnect forever (serve); one-off commands give up after ~10 s
	listen     string // embedded client listener; "" for in-process only
	// readOnly only reads the log: existing streams are not checked against custody's
	// settings (verify reads a store whatever was done to it).
	readOnly bool
}

// connect opens the log: the external server given by --nats; else the server of the
// custody process that holds --data (a running serve); else an embedded server on --data.
func (g *globals) connect(ctx context.Context, o connectOpts) (*session, error) {
	s := &session{lateness: g.lateness, redaction: g.redaction, g: g, holderID: holderName()}
	url := g.natsURL
	if url == "" {
		held, err := streams.HeldURL(g.data)
		if err != nil {
			return nil, fmt.Errorf("data directory %s: %w (is another custody command running on it without a listener?)", g.data, err)
		}
		url = held
		s.held = held != ""
	}
	var err error
	reconnects := 40
	if o.persistent {
		reconnects = -1
	}
	opts := []nats.Option{nats.Name("custody"), nats.MaxReconnects(reconnects), nats.ReconnectWait(250 * time.Millisecond)}
	if url != "" {
		s.nc, err = nats.Connect(url, opts...)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS: %w", err)
		}
	} else {
		s.embedded, err = streams.StartEmbedded(streams.EmbeddedConfig{DataDir: g.data, Listen: o.listen, KeyFile: g.encryptionKey})
		if err != nil {
			return nil, err
		}
		s.nc, err = s.embedded.Connect(opts...)
		if err != nil {
			s.embedded.Shutdown()
			return nil, err
		}
	}
	s.js, err = jetstream.New(s.nc)
	if err != nil {
		s.close()
		return nil, err
	}
	if !o.readOnly {
		if err := streams.EnsureStreams(ctx, s.js, streams.LogConfig{Replicas: g.replicas}); err != nil {
			s.close()
			return nil, err
		}
	}
	if s.pub, err = streams.NewPublisher(s.nc, streams.PublisherConfig{}); err != nil {
		s.close()
		return nil, err
	}
	if s.reportPub, err = streams.NewPublisher(s.nc, streams.PublisherConfig{Retries: 2, AckTimeout: 5 * time.Second}); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// open connects to the log and opens the projection store.
func (g *globals) open(ctx context.Context, o connectOpts) (*session, error) {
	sess, err := g.connect(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := g.openStore(ctx, sess); err != nil {
		sess.close()
		return nil, err
	}
	return sess, nil
}

// openStore opens the projection store that --store names: SQLite in the data
// directory, or a PostgreSQL database.
func (g *globals) openStore(ctx context.Context, s *session) error {
	kind, err := storeKind(g.store)
	if err != nil {
		return err
	}
	var st *projections.Store
	if kind == "postgres" {
		st, err = projections.OpenPostgres(ctx, g.store)
	} else {
		st, err = projections.OpenSQLite(ctx, filepath.Join(g.data, "custody.db"))
	}
	if err != nil {
		return err
	}
	s.store = st
	return nil
}

// storeKind checks a --store value and names its store: "sqlite" for "" or "sqlite",
// "postgres" for a postgres:// or postgresql:// URL. The value itself is
// never quoted: it may hold a password.
func storeKind(v string) (string, error) {
	if v == "" || v == "sqlite" {
		return "sqlite", nil
	}
	const rule = "--store (env CUSTODY_STORE): must be empty, sqlite, or a postgres:// or postgresql:// URL"
	scheme, _, ok := strings.Cut(v, "://")
	if !ok {
		return "", errors.New(rule)
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
	default:
		return "", fmt.Errorf("%s, not a %s:// URL", rule, sanitizeScheme(scheme))
	}
	if _, err := url.Parse(v); err != nil {
		// Not wrapped: url.Parse's message quotes the whole value, password included.
		return "", fmt.Errorf("%s: this one does not parse as a URL", rule)
	}
	return "postgres", nil
}

// sanitizeScheme keeps a scheme printable and short, for an error message.
func sanitizeScheme(s string) string {
	if len(s) > 20 || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')
	}) {
		return "(unrecognized scheme)"
	}
	return s
}

// catchUpTimeline brings the timeline index up to the log's last sequence (or, when a
// serve holds the data directory, waits for it to get there).
func (s *session) catchUpTimeline(ctx context.Context) (*projections.Timeline, error) {
	tl := projections.NewTimeline(s.store)
	if s.held {
		return tl, s.waitFor(ctx, []string{projections.TimelineName})
	}
	c := streams.NewConsumer(s.js, tl, streams.ConsumerConfig{Ephemeral: true, Decode: s.decoder()})
	if err := c.CatchUp(ctx); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	return tl, nil
}

func (s *session) close() {
	if s.store != nil {
		s.store.Close()
	}
	if s.nc != nil {
		if err := s.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.nc.Close()
		}
		for i := 0; i < 100 && !s.nc.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
	}
}

// waitFor waits until the named projectors of the serve holding the data directory have
// applied the log up to its last sequence as of now.
func (s *session) waitFor(ctx context.Context, names []string) error {
	return s.waitUntil(ctx, names, 2*time.Minute)
}

// waitUntil is waitFor with a bound.
func (s *session) waitUntil(ctx context.Context, names []string, bound time.Duration) error {
	log, err := streams.OpenLog(ctx, s.js)
	if err != nil {
		return err
	}
	last, err := log.LastSeq(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(bound)
	for {
		behind := ""
		for _, n := range names {
			cp, err := s.store.Checkpoint(ctx, n)
			if err != nil {
				return err
			}
			if cp < last {
				behind = fmt.Sprintf("%s at %d of %d", n, cp, last)
				break
			}
		}
		if behind == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the running custody serve has not caught up with the log (%s)", behind)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
