package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/api"
	"github.com/custody/custody/integration/cxone"
	"github.com/custody/custody/integration/genesys"
	"github.com/custody/custody/projections"
)

// ingestTotals counts what an ingest run stored.
type ingestTotals struct{ stored, duplicates, rejected, failed int }

func (t *ingestTotals) add(res []api.IngestResult) {
	for _, r := range res {
		switch r.Status {
		case api.StatusStored:
			t.stored++
		case api.StatusDuplicate:
			t.duplicates++
		case api.StatusRejected:
			t.rejected++
		default:
			t.failed++
		}
	}
}

// emitTo is an adapter's Emit: it stores a page of events and fails (so the adapter's
// watermark does not move past them) when the log did not acknowledge one.
func (t *ingestTotals) emitTo(s *session, tl *projections.Timeline) func(context.Context, []domain.Event) error {
	return func(ctx context.Context, evs []domain.Event) error {
		res := s.storeEvents(ctx, tl, evs)
		t.add(res)
		for _, r := range res {
			if r.Status == api.StatusFailed {
				return fmt.Errorf("the log did not acknowledge event %s: %s", r.ID, r.Reason)
			}
		}
		return nil
	}
}

// storeEvents validates mapped events again (the contract is the log's gate, whoever
// mapped them), answers known ids as duplicates and publishes the rest.
func (s *session) storeEvents(ctx context.Context, tl *projections.Timeline, evs []domain.Event) []api.IngestResult {
	return ingester{s: s, tl: tl}.storeMapped(ctx, evs)
}

// genesysFlags configure the Genesys Cloud adapter.
type genesysFlags struct {
	source, mapping  string
	allowUnknown     bool
	region, clientID string
	secretFile       string
	since, until     string
	every            time.Duration
	loginURL, apiURL string
	pollInterval     time.Duration
}

func (f *genesysFlags) mapper() (*genesys.Mapper, error) {
	m := genesys.DefaultMapping()
	if f.mapping != "" {
		var err error
		if m, err = genesys.LoadMapping(f.mapping); err != nil {
			return nil, fmt.Errorf("--mapping: %w", err)
		}
	}
	return genesys.NewMapper(genesys.MapperConfig{Source: f.source, Mapping: m, AllowUnknownFields: f.allowUnknown})
}

func ingestCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ingest genesys|cxone (--from FILE | --api ...)",
		Short: "Ingest a contact-center platform's records: an exported file, or its API (backfill and reconciliation)",
		Long: `Maps a platform's own records to contract events and stores them exactly once (event ids
derive from the platform's ids, so a record ingested twice, by a file and the API, or by
the API and the real-time webhook, is a duplicate).

  custody ingest genesys --from FILE   notifications, EventBridge events, detail-job pages,
                                       audit pages or retention pages exported from Genesys
  custody ingest genesys --api         detail jobs, audit queries and the retention sweep,
                                       from a persisted watermark (DATA/ingest/genesys.json)
  custody ingest cxone --from FILE     completed contacts with their custom data
  custody ingest cxone --api           completed contacts and custom data, from a watermark

Every rejected record is reported with its line, field and rule; the valid ones are
stored. The last stderr line is "stored S, duplicates D, rejected R, failed F"; exit 0
only when nothing was rejected or failed. Configuration and mappings: go doc
./integration/genesys and ./integration/cxone.`,
	}
	cmd.AddCommand(ingestGenesysCmd(g), ingestCXoneCmd(g))
	return cmd
}

func ingestGenesysCmd(g *globals) *cobra.Command {
	var f genesysFlags
	var from string
	var useAPI bool
	cmd := &cobra.Command{
		Use:   "genesys (--from FILE | --api)",
		Short: "Ingest Genesys Cloud records",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for flag, env := range map[string]string{"source": "CUSTODY_GENESYS_SOURCE", "mapping": "CUSTODY_GENESYS_MAPPING",
				"region": "CUSTODY_GENESYS_REGION", "client-id": "CUSTODY_GENESYS_CLIENT_ID", "client-secret-file": "CUSTODY_GENESYS_CLIENT_SECRET_FILE",
				"login-url": "CUSTODY_GENESYS_LOGIN_URL", "api-url": "CUSTODY_GENESYS_API_URL"} {
				applyEnv(cmd.Flags(), flag, env)
			}
			if (from == "") == !useAPI {
				return errors.New("give exactly one of --from FILE and --api")
			}
			m, err := f.mapper()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			sess, err := g.open(ctx, connectOpts{})
			if err != nil {
				return err
			}
			defer sess.close()
			tl, err := sess.catchUpTimeline(ctx)
			if err != nil {
				return err
			}
			var t ingestTotals
			if from != "" {
				r, closeIn, err := openInput(g, from)
				if err != nil {
					return err
				}
				defer closeIn()
				evs, ferr := m.ReadFile(r)
				t.add(sess.storeEvents(ctx, tl, evs))
				if ferr != nil {
					fmt.Fprintln(g.stderr, ferr)
					t.rejected += max(lineErrors(ferr), 1)
				}
			} else {
				cfg := genesys.Config{Region: f.region, LoginURL: f.loginURL, APIURL: f.apiURL, PollInterval: f.pollInterval,
					ClientID: f.clientID, ClientSecret: genesys.Secret{File: f.secretFile}, Mapper: m, Every: f.every}
				if cfg.From, err = parseInstant("--since", f.since, time.Time{}); err != nil {
					return err
				}
				if cfg.To, err = parseInstant("--until", f.until, time.Time{}); err != nil {
					return err
				}
				wm := genesys.FileWatermark{Path: filepath.Join(g.data, "ingest", "genesys.json")}
				if err := os.MkdirAll(filepath.Dir(wm.Path), 0o700); err != nil {
					return err
				}
				b, err := genesys.NewBackfill(cfg, wm, t.emitTo(sess, tl))
				if err != nil {
					return err
				}
				if err := b.Run(ctx); err != nil && ctx.Err() == nil {
					fmt.Fprintf(g.stderr, "stored %d, duplicates %d, rejected %d, failed %d\n", t.stored, t.duplicates, t.rejected, t.failed)
					return err
				}
			}
			fmt.Fprintf(g.stderr, "stored %d, duplicates %d, rejected %d, failed %d\n", t.stored, t.duplicates, t.rejected, t.failed)
			if t.rejected > 0 || t.failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "an exported file (JSON Lines or concatenated JSON documents; - for stdin)")
	fl.BoolVar(&useAPI, "api", false, "backfill and reconcile from the Genesys Cloud API, resuming from the watermark")
	fl.StringVar(&f.source, "source", "genesys-cloud/default", "CloudEvents source of the events, naming the organization (env CUSTODY_GENESYS_SOURCE)")
	fl.StringVar(&f.mapping, "mapping", "", "mapping file: attribute names, queue classification, the queue/role table that decides authorized (env CUSTODY_GENESYS_MAPPING)")
	fl.BoolVar(&f.allowUnknown, "allow-unknown-fields", false, "accept fields the adapter does not know instead of rejecting the record")
	fl.StringVar(&f.region, "region", "", "--api: the organization's domain, e.g. mypurecloud.com (env CUSTODY_GENESYS_REGION)")
	fl.StringVar(&f.clientID, "client-id", "", "--api: OAuth client id, client-credentials grant (env CUSTODY_GENESYS_CLIENT_ID)")
	fl.StringVar(&f.secretFile, "client-secret-file", "", "--api: file holding the OAuth client secret (env CUSTODY_GENESYS_CLIENT_SECRET_FILE)")
	fl.StringVar(&f.since, "since", "", "--api: where a first backfill starts (RFC 3339)")
	fl.StringVar(&f.until, "until", "", "--api: where it ends (default: as far as Genesys has data)")
	fl.DurationVar(&f.every, "every", 0, "--api: repeat the reconciliation at this interval until stopped")
	fl.StringVar(&f.loginURL, "login-url", "", "--api: the login host, instead of login.<region> (proxies, tests; env CUSTODY_GENESYS_LOGIN_URL)")
	fl.StringVar(&f.apiURL, "api-url", "", "--api: the API host, instead of api.<region> (env CUSTODY_GENESYS_API_URL)")
	fl.DurationVar(&f.pollInterval, "poll-interval", 0, "--api: wait between two polls of a job's state (default 3s)")
	return cmd
}

// lineErrors counts the rejected documents of a file error.
func lineErrors(err error) int {
	var n int
	var walk func(error)
	walk = func(e error) {
		var le *genesys.LineError
		if errors.As(e, &le) && e == error(le) {
			n++
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return n
}

// joined counts the errors joined in err (1 for a single one).
func joined(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}

// openInput opens --from: a file, or stdin for "-".
func openInput(g *globals, path string) (io.Reader, func(), error) {
	if path == "-" {
		return g.stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--from: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// cxoneFlags configure the NICE CXone adapter.
type cxoneFlags struct {
	mapping                string
	allowUnknown           bool
	issuer, apiBase        string
	clientID, clientSecret string
	accessKeyID, accessKey string
	since, until           string
	follow                 bool
}

func ingestCXoneCmd(g *globals) *cobra.Command {
	var f cxoneFlags
	var from string
	var useAPI bool
	cmd := &cobra.Command{
		Use:   "cxone (--from FILE | --api)",
		Short: "Ingest NICE CXone completed contacts and their custom data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for flag, env := range map[string]string{"mapping": "CUSTODY_CXONE_MAPPING", "issuer": "CUSTODY_CXONE_ISSUER",
				"api-base": "CUSTODY_CXONE_API_BASE", "client-id": "CUSTODY_CXONE_CLIENT_ID", "client-secret-file": "CUSTODY_CXONE_CLIENT_SECRET_FILE",
				"access-key-id": "CUSTODY_CXONE_ACCESS_KEY_ID", "access-key-secret-file": "CUSTODY_CXONE_ACCESS_KEY_SECRET_FILE"} {
				applyEnv(cmd.Flags(), flag, env)
			}
			if (from == "") == !useAPI {
				return errors.New("give exactly one of --from FILE and --api")
			}
			var mapping *cxone.Mapping
			if f.mapping != "" {
				var err error
				if mapping, err = cxone.LoadMapping(f.mapping); err != nil {
					return fmt.Errorf("--mapping: %w", err)
				}
			}
			ctx := cmd.Context()
			sess, err := g.open(ctx, connectOpts{})
			if err != nil {
				return err
			}
			defer sess.close()
			tl, err := sess.catchUpTimeline(ctx)
			if err != nil {
				return err
			}
			var t ingestTotals
			report := func() {
				fmt.Fprintf(g.stderr, "stored %d, duplicates %d, rejected %d, failed %d\n", t.stored, t.duplicates, t.rejected, t.failed)
			}
			if from != "" {
				r, closeIn, err := openInput(g, from)
				if err != nil {
					return err
				}
				defer closeIn()
				evs, ferr := cxone.ReadFile(r, cxone.FileOptions{Mapping: mapping, AllowUnknownFields: f.allowUnknown})
				if ferr != nil {
					// The file is checked as a whole: a rejected line stores nothing.
					fmt.Fprintln(g.stderr, ferr)
					t.rejected += max(joined(ferr), 1)
					report()
					return exitError{1}
				}
				t.add(sess.storeEvents(ctx, tl, evs))
			} else {
				cfg := cxone.Config{Issuer: f.issuer, APIBaseURL: f.apiBase, ClientID: f.clientID, ClientSecret: cxone.Secret{File: f.clientSecret},
					AccessKeyID: f.accessKeyID, AccessKeySecret: cxone.Secret{File: f.accessKey}, Mapping: mapping, AllowUnknownFields: f.allowUnknown,
					Watermark: cxone.NewFileWatermark(filepath.Join(g.data, "ingest", "cxone.json")), Logger: g.logger(),
					Emit: t.emitTo(sess, tl)}
				if err := os.MkdirAll(filepath.Join(g.data, "ingest"), 0o700); err != nil {
					return err
				}
				a, err := cxone.New(cfg)
				if err != nil {
					return err
				}
				if f.follow {
					err = a.Run(ctx)
				} else {
					var since, until time.Time
					if since, err = parseInstant("--since", f.since, time.Time{}); err != nil {
						return err
					}
					if until, err = parseInstant("--until", f.until, time.Now()); err != nil {
						return err
					}
					if since.IsZero() {
						return errors.New("--since: required for a backfill (or --follow for continuous polling)")
					}
					_, err = a.Backfill(ctx, since, until)
				}
				if err != nil && ctx.Err() == nil {
					report()
					return err
				}
			}
			report()
			if t.rejected > 0 || t.failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "an exported file (JSON Lines of API answers; - for stdin)")
	fl.BoolVar(&useAPI, "api", false, "read completed contacts and custom data from the CXone API")
	fl.StringVar(&f.mapping, "mapping", "", "mapping file: custom data fields and skills to events (env CUSTODY_CXONE_MAPPING)")
	fl.BoolVar(&f.allowUnknown, "allow-unknown-fields", false, "accept fields API v34.0 does not define instead of rejecting the record")
	fl.StringVar(&f.issuer, "issuer", "", "--api: authentication host for discovery (default the CXone production issuer; env CUSTODY_CXONE_ISSUER)")
	fl.StringVar(&f.apiBase, "api-base", "", "--api: the tenant's API host (default: discovered; env CUSTODY_CXONE_API_BASE)")
	fl.StringVar(&f.clientID, "client-id", "", "--api: the registered application's client id (env CUSTODY_CXONE_CLIENT_ID)")
	fl.StringVar(&f.clientSecret, "client-secret-file", "", "--api: file of its client secret (env CUSTODY_CXONE_CLIENT_SECRET_FILE)")
	fl.StringVar(&f.accessKeyID, "access-key-id", "", "--api: the access key id of the CXone user the adapter acts as (env CUSTODY_CXONE_ACCESS_KEY_ID)")
	fl.StringVar(&f.accessKey, "access-key-secret-file", "", "--api: file of the access key secret (env CUSTODY_CXONE_ACCESS_KEY_SECRET_FILE)")
	fl.StringVar(&f.since, "since", "", "--api: backfill from this instant (RFC 3339)")
	fl.StringVar(&f.until, "until", "", "--api: backfill up to this instant (default now)")
	fl.BoolVar(&f.follow, "follow", false, "--api: poll for newly completed contacts until stopped, from the watermark")
	return cmd
}
