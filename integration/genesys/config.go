package genesys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Config configures the connection to Genesys Cloud and the backfill. NewBackfill calls
// setDefaults and Validate; every field's comment says whether it is required.
type Config struct {
	// Region is the Genesys Cloud domain of the organization, e.g. "mypurecloud.com",
	// "mypurecloud.ie", "usw2.pure.cloud" (not an AWS region code): the adapter signs in
	// at https://login.<Region> and calls https://api.<Region>. Required unless both
	// LoginURL and APIURL are set.
	Region string
	// LoginURL and APIURL override the URLs derived from Region (tests, proxies).
	// Optional.
	LoginURL, APIURL string
	// ClientID is the OAuth client (grant type client credentials). Required.
	ClientID string
	// ClientSecret says where the client secret is read from. Required. The value is
	// read when the backfill starts and never logged.
	ClientSecret Secret
	// Mapper maps what Genesys returns. Required.
	Mapper *Mapper

	// From is where a backfill starts when the watermark store holds nothing yet.
	// Required for a first run.
	From time.Time
	// To ends the backfill. Optional; default: as far as Genesys has data (the data
	// lake's availability date for conversations, now minus AuditDelay for audits).
	To time.Time
	// Window is the interval of one detail job or audit query. Optional; default 24 h.
	Window time.Duration
	// Every repeats the backfill at this interval until the context ends (continuous
	// reconciliation). Optional; default 0: Run returns once caught up.
	Every time.Duration

	// Concurrency bounds the requests in flight at once. Optional; default 4.
	Concurrency int
	// PageSize is the page size of detail job results. Optional; default 1000.
	PageSize int
	// AuditPageSize is the page size of audit results (Genesys' maximum is 500).
	// Optional; default 500.
	AuditPageSize int
	// RetentionPageSize is the page size of the retention query (maximum 500).
	// Optional; default 500.
	RetentionPageSize int
	// PollInterval is the wait between two polls of a job's state. Optional; default 3 s.
	PollInterval time.Duration
	// PollTimeout bounds the wait for one job. Optional; default 30 min.
	PollTimeout time.Duration

	// AuditService is the audit serviceName that owns recordings. Optional; default
	// "Quality" (check GET /api/v2/audits/query/servicemapping for the organization).
	AuditService string
	// AuditDelay keeps audit queries this far behind now, so that late audit records are
	// not skipped. Optional; default 1 h.
	AuditDelay time.Duration
	// RetentionEvery is how often the retention query sweeps all recordings. Optional;
	// default 24 h.
	RetentionEvery time.Duration
	// RetentionThresholdDays is the retention query's retentionThresholdDays ("recordings
	// retained for more days than"). Optional; default 0 (all).
	RetentionThresholdDays int
	// SkipConversations, SkipAudits, SkipRetention leave a phase out. Optional.
	SkipConversations, SkipAudits, SkipRetention bool

	// MaxRetries bounds the retries of one request after 429, 5xx or a network error.
	// Optional; default 5.
	MaxRetries int
	// MaxRetryAfter is the longest Retry-After honoured; a longer one fails the request.
	// Optional; default 180 s (as the Genesys SDKs do).
	MaxRetryAfter time.Duration
	// RequestTimeout bounds one HTTP attempt. Optional; default 60 s.
	RequestTimeout time.Duration
	// HTTPClient sends the requests. Optional; default a client with RequestTimeout.
	HTTPClient *http.Client
	// Logger receives operational records: method, route, status, attempt, wait,
	// correlation id, counts. Never a payload value. Optional; default discards.
	Logger *slog.Logger
	// Now is the clock. Optional; default time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx ends. Optional; default a timer (tests inject a fake).
	Sleep func(ctx context.Context, d time.Duration) error
	// LookupEnv resolves ClientSecret.Env. Optional; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

var domainRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

func (c *Config) setDefaults() {
	if c.LoginURL == "" && c.Region != "" {
		c.LoginURL = "https://login." + c.Region
	}
	if c.APIURL == "" && c.Region != "" {
		c.APIURL = "https://api." + c.Region
	}
	c.LoginURL = strings.TrimRight(c.LoginURL, "/")
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Concurrency, 4)
	def(&c.PageSize, 1000)
	def(&c.AuditPageSize, 500)
	def(&c.RetentionPageSize, 500)
	def(&c.MaxRetries, 5)
	defD(&c.Window, 24*time.Hour)
	defD(&c.PollInterval, 3*time.Second)
	defD(&c.PollTimeout, 30*time.Minute)
	defD(&c.AuditDelay, time.Hour)
	defD(&c.RetentionEvery, 24*time.Hour)
	defD(&c.MaxRetryAfter, 180*time.Second)
	defD(&c.RequestTimeout, 60*time.Second)
	if c.AuditService == "" {
		c.AuditService = "Quality"
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.RequestTimeout}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.LookupEnv == nil {
		c.LookupEnv = os.LookupEnv
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Region != "" && !domainRe.MatchString(c.Region) {
		bad("region: must be a Genesys Cloud domain such as mypurecloud.com or usw2.pure.cloud")
	}
	for _, f := range []struct{ name, u string }{{"loginURL", c.LoginURL}, {"apiURL", c.APIURL}} {
		name, u := f.name, f.u
		if u == "" {
			bad("%s: required (set region)", name)
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			bad("%s: must be an http(s) URL", name)
		}
	}
	if c.ClientID == "" {
		bad("clientID: required")
	}
	if err := c.ClientSecret.Validate(); err != nil {
		bad("clientSecret: %v", err)
	}
	if c.Mapper == nil {
		bad("mapper: required")
	}
	if !c.To.IsZero() && !c.From.IsZero() && !c.To.After(c.From) {
		bad("to: must be after from")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"concurrency", c.Concurrency}, {"pageSize", c.PageSize}, {"auditPageSize", c.AuditPageSize},
		{"retentionPageSize", c.RetentionPageSize}, {"maxRetries", c.MaxRetries}} {
		if f.v < 1 {
			bad("%s: must be at least 1", f.name)
		}
	}
	if c.AuditPageSize > 500 || c.RetentionPageSize > 500 {
		bad("auditPageSize, retentionPageSize: Genesys allows at most 500")
	}
	if c.RetentionThresholdDays < 0 {
		bad("retentionThresholdDays: must not be negative")
	}
	if c.Window < time.Minute {
		bad("window: must be at least 1m")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}

// Secret says where a secret is read from: a file or an environment variable, exactly
// one of them. The configuration holds only this reference, never the value; errors name
// the file or the variable, never the value.
type Secret struct {
	// File is the path of a file holding the secret. A trailing newline is removed.
	File string `json:"file,omitempty"`
	// Env is the name of an environment variable holding the secret.
	Env string `json:"env,omitempty"`
}

// UnmarshalJSON accepts only {"file": ...} or {"env": ...}: a secret written as a value
// in a configuration file is refused, without repeating it.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var ref struct {
		File string `json:"file"`
		Env  string `json:"env"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ref); err != nil {
		return errors.New(`a secret must be {"file": path} or {"env": NAME}, never the value itself`)
	}
	*s = Secret{File: ref.File, Env: ref.Env}
	return nil
}

// Validate reports a reference that names no source or both.
func (s Secret) Validate() error {
	switch {
	case s.File != "" && s.Env != "":
		return errors.New("set either file or env, not both")
	case s.File == "" && s.Env == "":
		return errors.New("set file or env")
	}
	return nil
}

func (s Secret) where() string {
	if s.File != "" {
		return "file " + s.File
	}
	return "env " + s.Env
}

func (s Secret) load(lookup func(string) (string, bool)) (secret, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: client secret: %v", ErrConfig, err)
	}
	var b []byte
	if s.File != "" {
		var err error
		if b, err = os.ReadFile(s.File); err != nil {
			return nil, fmt.Errorf("%w: client secret: read %s: %w", ErrConfig, s.where(), errors.Unwrap(err))
		}
		b = bytes.TrimRight(b, "\r\n")
	} else {
		v, ok := lookup(s.Env)
		if !ok {
			return nil, fmt.Errorf("%w: client secret: %s is not set", ErrConfig, s.where())
		}
		b = []byte(v)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: client secret: %s is empty", ErrConfig, s.where())
	}
	return secret(b), nil
}

// secret holds a secret's bytes; every way of printing or logging it shows a placeholder.
type secret []byte

const redacted = "[redacted]"

func (secret) String() string               { return redacted }
func (secret) GoString() string             { return redacted }
func (secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (secret) Format(f fmt.State, _ rune)   { f.Write([]byte(redacted)) }
