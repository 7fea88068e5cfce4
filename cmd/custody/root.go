package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
	"github.com/custody/custody/projections/integrity"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// swallowedFlag returns an error naming a flag whose value is another flag: a flag that
// needs a value takes the next argument, so "--agent --format csv" would otherwise
// filter on the agent "--format" and leave "csv" as an argument.
func swallowedFlag(cmd *cobra.Command) error {
	var err error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if v := f.Value.String(); err == nil && f.Value.Type() != "bool" && strings.HasPrefix(v, "--") {
			err = fmt.Errorf("--%s has no value: the next argument is the flag %s", f.Name, v)
		}
	})
	return err
}

// exitError carries a process exit status without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// globals are the settings shared by every subcommand.
type globals struct {
	data    string
	natsURL string
	// store is the projection store: "" or "sqlite" (DATA/custody.db), or a PostgreSQL
	// URL (checked by storeKind).
	store string
	// lateness is the allowed lateness of the views; redaction the redaction buffer.
	lateness  time.Duration
	redaction time.Duration
	// integrity: the checkpoint signing key, the public keys checkpoints are checked
	// with, the checkpoint directory, the log's origin name and the cadence.
	signingKey         string
	verifyKeys         []string
	checkpoints        string
	origin             string
	checkpointEvery    int64
	checkpointInterval time.Duration
	// encryptionKey is the file of the embedded store's encryption key.
	encryptionKey string
	// replicas is the replication factor custody's streams need (--replicas); 0 keeps
	// the default (1).
	replicas int
	// decode is what projectors decode stored messages with; nil is domain.Parse. Tests
	// stand in a fixed decoder here, as a newer custody would bring one.
	decode func([]byte) (domain.Event, error)
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// Run executes the custody command line with the given arguments and streams and returns
// the exit status. Tests call it in-process.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// stderr is written by the command and by its goroutines' loggers at once.
	g := &globals{stdin: stdin, stdout: stdout, stderr: &lockedWriter{w: stderr}}
	root := &cobra.Command{
		Use:           "custody",
		Short:         "HIPAA chain of custody for contact-center ePHI, on an immutable JetStream log",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := swallowedFlag(cmd); err != nil {
				return err
			}
			applyEnv(cmd.Flags(), "data", "CUSTODY_DATA")
			applyEnv(cmd.Flags(), "nats", "CUSTODY_NATS_URL")
			applyEnv(cmd.Flags(), "store", "CUSTODY_STORE")
			applyEnv(cmd.Flags(), "lateness", "CUSTODY_LATENESS")
			applyEnv(cmd.Flags(), "redaction-buffer", "CUSTODY_REDACTION_BUFFER")
			applyEnv(cmd.Flags(), "signing-key", "CUSTODY_SIGNING_KEY")
			applyEnv(cmd.Flags(), "verify-key", "CUSTODY_VERIFY_KEYS")
			applyEnv(cmd.Flags(), "checkpoints", "CUSTODY_CHECKPOINTS")
			applyEnv(cmd.Flags(), "origin", "CUSTODY_ORIGIN")
			applyEnv(cmd.Flags(), "checkpoint-every", "CUSTODY_CHECKPOINT_EVERY")
			applyEnv(cmd.Flags(), "checkpoint-interval", "CUSTODY_CHECKPOINT_INTERVAL")
			applyEnv(cmd.Flags(), "encryption-key", "CUSTODY_ENCRYPTION_KEY")
			applyEnv(cmd.Flags(), "replicas", "CUSTODY_REPLICAS")
			if g.lateness <= 0 || g.redaction <= 0 {
				return fmt.Errorf("--lateness and --redaction-buffer must be positive durations")
			}
			if g.checkpointEvery <= 0 || g.checkpointInterval <= 0 {
				return fmt.Errorf("--checkpoint-every and --checkpoint-interval must be positive")
			}
			if _, err := storeKind(g.store); err != nil {
				return err
			}
			g.log = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			return nil
		},
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.data, "data", "./custody-data", "data directory: embedded log, projection store (env CUSTODY_DATA)")
	root.PersistentFlags().DurationVar(&g.lateness, "lateness", projections.DefaultLateness, "allowed lateness of events behind the latest event time; a later event stays in the log and the access audit only (env CUSTODY_LATENESS; changing it needs a rebuild)")
	root.PersistentFlags().DurationVar(&g.redaction, "redaction-buffer", domain.DefaultRedactionBuffer, "how long a requested redaction may stay pending before it is overdue (env CUSTODY_REDACTION_BUFFER)")
	pf := root.PersistentFlags()
	pf.StringVar(&g.signingKey, "signing-key", "", "file of the Ed25519 key (note format) that signs the log's checkpoints; default: one custody generates in the data directory (env CUSTODY_SIGNING_KEY)")
	pf.StringSliceVar(&g.verifyKeys, "verify-key", nil, "public key file(s) that checkpoints are verified with, several during a key rotation (env CUSTODY_VERIFY_KEYS, comma-separated)")
	pf.StringVar(&g.checkpoints, "checkpoints", "", "directory of signed checkpoints; default DATA/checkpoints (env CUSTODY_CHECKPOINTS)")
	pf.StringVar(&g.origin, "origin", "", "the log's name in its checkpoints; default custody/CUSTODY_EVENTS (env CUSTODY_ORIGIN)")
	pf.Int64Var(&g.checkpointEvery, "checkpoint-every", integrity.DefaultEvery, "sign a checkpoint at every multiple of this many events (env CUSTODY_CHECKPOINT_EVERY)")
	pf.DurationVar(&g.checkpointInterval, "checkpoint-interval", integrity.DefaultInterval, "and one of the current size when this long has passed and the log has grown (env CUSTODY_CHECKPOINT_INTERVAL)")
	pf.StringVar(&g.encryptionKey, "encryption-key", "", "file holding the key that encrypts the embedded log at rest (JetStream's cipher); off when empty (env CUSTODY_ENCRYPTION_KEY)")
	pf.StringVar(&g.store, "store", "", "projection store: empty or sqlite for DATA/custody.db, or a PostgreSQL URL postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?OPTIONS] (env CUSTODY_STORE)")
	pf.IntVar(&g.replicas, "replicas", 0, "replicas custody's streams must have on a NATS cluster (1, 3 or 5): created so, raised to it when fewer (which needs a user allowed to update streams), never lowered; default 1 (env CUSTODY_REPLICAS)")
	root.PersistentFlags().StringVar(&g.natsURL, "nats", "", "URL of an external NATS server with JetStream; empty runs the embedded server on --data (env CUSTODY_NATS_URL)")
	root.AddCommand(publishCmd(g), simulateCmd(g), replayCmd(g), serveCmd(g), benchCmd(g), reportCmd(g), rebuildCmd(g), demoCmd(g),
		verifyCmd(g), proveCmd(g), verifyProofCmd(g), keygenCmd(g), verifyReportCmd(g), ingestCmd(g), backupCmd(g), restoreCmd(g),
		deadLettersCmd(g), streamsCmd(g))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if cmd != nil {
		// An argument left over because a flag took the next flag as its value fails
		// the command's argument checks first: name the flag instead.
		if ferr := swallowedFlag(cmd); ferr != nil {
			err = ferr
		}
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(stderr, "custody:", err)
	return 2
}

// logger is the command's logger, one that discards when none was set up (tests that
// build globals directly).
func (g *globals) logger() *slog.Logger {
	if g.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.log
}

// applyEnv gives a flag the value of an environment variable when the flag was not set
// on the command line: flags > environment > defaults.
func applyEnv(fs *pflag.FlagSet, name, env string) {
	f := fs.Lookup(name)
	if f == nil || f.Changed {
		return
	}
	if v, ok := os.LookupEnv(env); ok && v != "" {
		_ = fs.Set(name, v)
	}
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
