package cxone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/custody/custody/domain"
)

// APIVersion is the one version of the CXone Reporting API the adapter speaks. Field
// names change with the version in the path (older versions say contactStart, fromAddr,
// ACWSeconds ...); the adapter knows the v34.0 names only and rejects the older ones.
const APIVersion = "v34.0"

// DefaultIssuer is the CXone authentication host: it serves the token endpoint and the
// two discovery documents (/.well-known/openid-configuration and
// /.well-known/cxone-configuration).
const DefaultIssuer = "https://cxone.niceincontact.com"

// Defaults of Config.
const (
	DefaultPageSize      = 100
	DefaultConcurrency   = 4
	DefaultWindow        = 24 * time.Hour
	DefaultOrderBy       = "contactId asc"
	DefaultPollInterval  = 5 * time.Minute
	DefaultPollLookback  = 24 * time.Hour
	DefaultMaxRetries    = 5
	DefaultMaxRetryAfter = 180 * time.Second
	DefaultRetryBackoff  = time.Second
	DefaultTimeout       = 30 * time.Second
)

// maxPageSize bounds Config.PageSize; the platform's own maximum of top is not
// documented.
const maxPageSize = 10000

// Config configures an Adapter. The zero value of every optional field is valid and
// means its default.
type Config struct {
	// Issuer is the CXone authentication host, used for discovery. Optional; default
	// DefaultIssuer. Must be https (http only for a loopback host, in tests).
	Issuer string
	// TokenURL is the token endpoint. Optional; default the token_endpoint of
	// Issuer/.well-known/openid-configuration.
	TokenURL string
	// APIBaseURL is the tenant's API host, e.g. https://api-na1.niceincontact.com.
	// Optional; default the api_endpoint of Issuer/.well-known/cxone-configuration for
	// the tenantId claim of the id_token.
	APIBaseURL string

	// ClientID and ClientSecret identify the application registered with NICE; they are
	// sent as HTTP Basic authentication on the token request. Required.
	ClientID     string
	ClientSecret Secret
	// AccessKeyID and AccessKeySecret are the access key of the CXone user the adapter
	// acts as (Profile > Access Keys); its permissions bound what the adapter can read.
	// Sent as username and password of grant_type=password. Required.
	AccessKeyID     string
	AccessKeySecret Secret

	// APIVersion must be APIVersion ("v34.0"). Optional; default APIVersion.
	APIVersion string
	// PageSize is top, the contacts asked for per page. Optional; default 100, at most
	// 10000.
	PageSize int
	// Concurrency bounds the custom-data requests in flight. Optional; default 4.
	Concurrency int
	// Window is the span of one completed-contacts query of a backfill. Optional;
	// default 24 h.
	Window time.Duration
	// OrderBy is the orderBy parameter; paging with skip needs an order that does not
	// change between requests. Optional; default "contactId asc".
	OrderBy string
	// PollInterval is the pause between two incremental passes of Run. Optional;
	// default 5 min.
	PollInterval time.Duration
	// PollLookback is how far back the first incremental pass starts when the watermark
	// has none. Optional; default 24 h.
	PollLookback time.Duration
	// MaxRetries bounds the retries of one request after 429, 5xx or a network error.
	// Optional; default 5; negative means none.
	MaxRetries int
	// MaxRetryAfter is the longest Retry-After the adapter waits for; a longer one
	// fails the request with ErrRateLimited. Optional; default 180 s.
	MaxRetryAfter time.Duration
	// RetryBackoff is the first pause after a 5xx or a network error, doubled per
	// retry up to 30 s. Optional; default 1 s.
	RetryBackoff time.Duration
	// Timeout bounds one HTTP request. Optional; default 30 s.
	Timeout time.Duration
	// AllowUnknownFields accepts fields of a response that API v34.0 does not define.
	// Optional; default false: an unknown field is an error naming it.
	AllowUnknownFields bool

	// Mapping says how custom data and skills become events. Optional; nil means
	// DefaultMapping().
	Mapping *Mapping
	// Emit receives the events of one page. The watermark moves past the page only
	// after Emit returned nil. Required.
	Emit func(context.Context, []domain.Event) error
	// Watermark persists the position. Optional; nil keeps it in memory, so a restart
	// starts over (re-emitting, never losing).
	Watermark Watermark

	// HTTPClient sends the requests. Optional; default a client with Timeout.
	HTTPClient *http.Client
	// Logger receives progress and retries, never a contact id, an agent id, an
	// address, custom data or a secret. Optional; nil discards.
	Logger *slog.Logger
	// Now is the clock. Optional; default time.Now.
	Now func() time.Time
	// Sleep waits for a retry. Optional; default a timer that stops with ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// LookupEnv resolves Secret.Env. Optional; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

func (c *Config) setDefaults() {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	c.APIBaseURL = strings.TrimRight(c.APIBaseURL, "/")
	if c.APIVersion == "" {
		c.APIVersion = APIVersion
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.OrderBy == "" {
		c.OrderBy = DefaultOrderBy
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.PollLookback == 0 {
		c.PollLookback = DefaultPollLookback
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Mapping == nil {
		c.Mapping = DefaultMapping()
	} else {
		m := *c.Mapping // the caller's mapping is not changed
		m.setDefaults()
		c.Mapping = &m
	}
	if c.Watermark == nil {
		c.Watermark = &memWatermark{}
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.Timeout}
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
}

// Validate reports every problem of the configuration at once. New runs it after
// filling in the defaults.
func (c *Config) Validate() error {
	var errs []error
	for _, u := range []struct{ name, v string }{{"Issuer", c.Issuer}, {"TokenURL", c.TokenURL}, {"APIBaseURL", c.APIBaseURL}} {
		if u.v == "" && u.name != "Issuer" {
			continue
		}
		if err := checkURL(u.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.name, err))
		}
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("ClientID: required (the application registered with NICE)"))
	}
	if c.AccessKeyID == "" {
		errs = append(errs, errors.New("AccessKeyID: required (the access key of the CXone user the adapter acts as)"))
	}
	if err := c.ClientSecret.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ClientSecret: %w", err))
	}
	if err := c.AccessKeySecret.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("AccessKeySecret: %w", err))
	}
	if c.APIVersion != APIVersion {
		errs = append(errs, fmt.Errorf("APIVersion: must be %s, the version whose field names the adapter knows", APIVersion))
	}
	if c.PageSize < 1 || c.PageSize > maxPageSize {
		errs = append(errs, fmt.Errorf("PageSize: must be 1-%d", maxPageSize))
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("Concurrency: must be at least 1"))
	}
	if c.Window < time.Minute {
		errs = append(errs, errors.New("Window: must be at least 1m"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"PollInterval", c.PollInterval}, {"PollLookback", c.PollLookback}, {"MaxRetryAfter", c.MaxRetryAfter},
		{"RetryBackoff", c.RetryBackoff}, {"Timeout", c.Timeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", d.name))
		}
	}
	if c.Emit == nil {
		errs = append(errs, errors.New("Emit: required"))
	}
	if c.Mapping != nil {
		if err := c.Mapping.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("Mapping: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// checkURL accepts an absolute https URL, or http for a loopback host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("must be an absolute https URL")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return errors.New("must use https (http only for a loopback host)")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not carry credentials, a query or a fragment")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
