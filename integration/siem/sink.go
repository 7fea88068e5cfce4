package siem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/custody/custody/domain"
)

// Outcome classes of a failed delivery, checked with errors.Is on the error of
// Sink.Deliver.
var (
	// ErrRetryable: the receiver may accept the event later (HTTP 429 or 5xx, a network
	// or TLS failure, a timeout). The router retries, then leaves the event
	// unacknowledged in the stream for a later redelivery.
	ErrRetryable = errors.New("retryable")
	// ErrPermanent: sending the same event again cannot succeed (HTTP 4xx other than
	// 429, any other non-2xx status, an event no format can render). The router parks it
	// in the dead-letter subject with the reason and acknowledges it.
	ErrPermanent = errors.New("permanent")
)

// ErrConfig is matched by every configuration error of this package.
var ErrConfig = errors.New("siem: invalid configuration")

// DeliveryError is a failed delivery. Its text holds the sink, the event id, the status
// and a short reason: never the payload, a response body, a URL's query or a secret.
type DeliveryError struct {
	Sink    string
	EventID string
	// Status is the HTTP status code, 0 when none was received.
	Status int
	// Reason is a short description without ePHI, e.g. "http 503 Service Unavailable".
	Reason    string
	Permanent bool
	// Err is the underlying error, if any (e.g. ErrPinMismatch), for errors.Is.
	Err error
}

// Unwrap returns the underlying error.
func (e *DeliveryError) Unwrap() error { return e.Err }

func (e *DeliveryError) Error() string {
	return fmt.Sprintf("siem %s: deliver %s: %s", e.Sink, e.EventID, e.Reason)
}

// Is matches ErrPermanent or ErrRetryable.
func (e *DeliveryError) Is(target error) bool {
	return (target == ErrPermanent && e.Permanent) || (target == ErrRetryable && !e.Permanent)
}

// classify turns an HTTP status into nil (2xx) or a DeliveryError: 429 and 5xx are
// retryable, everything else (4xx, and 1xx/3xx, which a sink never follows) permanent.
func classify(sink, id string, status int) error {
	if status >= 200 && status < 300 {
		return nil
	}
	reason := fmt.Sprintf("http %d %s", status, http.StatusText(status))
	retry := status == http.StatusTooManyRequests || status >= 500
	return &DeliveryError{Sink: sink, EventID: id, Status: status, Reason: strings.TrimSpace(reason), Permanent: !retry}
}

// networkReason describes a transport error without the URL (which may carry
// a query the operator considers sensitive).
func networkReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
}

var sinkName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

func validateName(name string) error {
	if !sinkName.MatchString(name) {
		return fmt.Errorf("name %q: must be 1-32 characters of a-z 0-9 _ -, starting with a letter or digit", name)
	}
	return nil
}

func defaultProductVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// HTTPConfig is what every HTTPS sink needs.
type HTTPConfig struct {
	// Name names the sink in metrics, logs, the durable consumer and the dead-letter
	// subject. Required; 1-32 characters of a-z 0-9 _ -.
	Name string `json:"name"`
	// URL is the receiver's endpoint. Required; https only.
	URL string `json:"url"`
	// TLS configures mutual TLS. Required (certFile and keyFile).
	TLS TLSConfig `json:"tls"`
	// SigningKey is the HMAC-SHA256 key of the X-Compliance-Signature header. Required
	// for the webhook sink; optional for HEC and OCSF (the header is sent when set).
	SigningKey Secret `json:"signingKey"`
	// Timeout bounds one attempt (connect, TLS, request, response). Optional; default 10 s.
	Timeout time.Duration `json:"-"`
	// ProductVersion is custody's version in OCSF metadata. Optional; default the
	// module version from the build information.
	ProductVersion string `json:"productVersion,omitempty"`
	// Now is the clock of the signature's timestamp. Optional; default time.Now.
	Now func() time.Time `json:"-"`
	// LookupEnv reads environment variables for secrets. Optional; default os.LookupEnv.
	LookupEnv func(string) (string, bool) `json:"-"`
}

func (c *HTTPConfig) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ProductVersion == "" {
		c.ProductVersion = defaultProductVersion()
	}
}

// Validate reports every problem at once. It reads no file.
func (c *HTTPConfig) Validate() error {
	var errs []error
	if err := validateName(c.Name); err != nil {
		errs = append(errs, err)
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("url is required"))
	case err != nil:
		errs = append(errs, errors.New("url does not parse"))
	case u.Scheme != "https" || u.Host == "":
		errs = append(errs, errors.New("url must be https://host/..."))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !c.SigningKey.IsZero() {
		if err := c.SigningKey.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("signingKey: %w", err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout must not be negative"))
	}
	return errors.Join(errs...)
}

func configError(kind, name string, err error) error {
	return fmt.Errorf("%w: %s sink %q: %w", ErrConfig, kind, name, err)
}

// HTTPSink posts events to an HTTPS receiver in one of three formats. Build it with
// NewWebhook, NewHEC or NewOCSF. It is safe for concurrent use.
type HTTPSink struct {
	name    string
	url     string
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
	key     secret
	auth    secret // the whole Authorization header value, if any
	render  func(domain.Event) ([]byte, error)
}

func newHTTPSink(kind string, c HTTPConfig, keyRequired bool) (*HTTPSink, error) {
	c.setDefaults()
	err := c.Validate()
	if keyRequired && c.SigningKey.IsZero() {
		err = errors.Join(err, errors.New("signingKey is required"))
	}
	if err != nil {
		return nil, configError(kind, c.Name, err)
	}
	u, _ := url.Parse(c.URL)
	tlsCfg, err := c.TLS.ClientConfig(u.Hostname())
	if err != nil {
		return nil, configError(kind, c.Name, err)
	}
	s := &HTTPSink{name: c.Name, url: c.URL, timeout: c.Timeout, now: c.Now}
	if !c.SigningKey.IsZero() {
		if s.key, err = c.SigningKey.load(c.LookupEnv); err != nil {
			return nil, configError(kind, c.Name, fmt.Errorf("signingKey: %w", err))
		}
	}
	s.client = &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     tlsCfg,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: c.Timeout,
		},
		// A redirect is never followed: it would send ePHI to a host nobody configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// NewWebhook builds the generic HTTPS webhook sink (body: WebhookPayload).
func NewWebhook(c HTTPConfig) (*HTTPSink, error) {
	s, err := newHTTPSink("webhook", c, true)
	if err != nil {
		return nil, err
	}
	s.render = WebhookPayload
	return s, nil
}

// OCSFConfig configures the OCSF-over-HTTPS sink.
type OCSFConfig = HTTPConfig

// NewOCSF builds the sink posting OCSF JSON (body: OCSFPayload). Events OCSF has no
// class for here are not sent (ErrNotForwarded).
func NewOCSF(c OCSFConfig) (*HTTPSink, error) {
	c.setDefaults()
	s, err := newHTTPSink("ocsf", c, false)
	if err != nil {
		return nil, err
	}
	version := c.ProductVersion
	s.render = func(e domain.Event) ([]byte, error) { return OCSFPayload(e, version) }
	return s, nil
}

// HECConfig configures the Splunk HTTP Event Collector sink.
type HECConfig struct {
	HTTPConfig
	// Token is the HEC token, sent as "Authorization: Splunk <token>". Required.
	Token Secret `json:"token"`
	// Fields are the HEC metadata (host, source, sourcetype, index). Optional.
	Fields HECFields `json:"fields"`
}

// NewHEC builds the Splunk HEC sink (body: HECPayload). URL is the collector's event
// endpoint, e.g. https://splunk.example.org:8088/services/collector/event.
func NewHEC(c HECConfig) (*HTTPSink, error) {
	if err := c.Token.Validate(); err != nil {
		return nil, configError("hec", c.Name, fmt.Errorf("token: %w", err))
	}
	s, err := newHTTPSink("hec", c.HTTPConfig, false)
	if err != nil {
		return nil, err
	}
	tok, err := c.Token.load(c.LookupEnv)
	if err != nil {
		return nil, configError("hec", c.Name, fmt.Errorf("token: %w", err))
	}
	s.auth = append(secret("Splunk "), tok...)
	fields := c.Fields
	s.render = func(e domain.Event) ([]byte, error) { return HECPayload(e, fields) }
	return s, nil
}

// Name is the sink's name.
func (s *HTTPSink) Name() string { return s.name }

// Deliver makes one attempt to post the event. It returns nil when the receiver
// answered 2xx, ErrNotForwarded for an event the format does not map, or a
// *DeliveryError matching ErrRetryable or ErrPermanent. Every attempt for the same event
// sends the same body and the same Idempotency-Key; the signature is made afresh at
// each attempt, so a redelivery hours later still passes the receiver's skew check.
func (s *HTTPSink) Deliver(ctx context.Context, e domain.Event) error {
	body, err := s.render(e)
	if errors.Is(err, ErrNotForwarded) {
		return err
	}
	if err != nil {
		return &DeliveryError{Sink: s.name, EventID: e.ID, Reason: "cannot render the event", Permanent: true}
	}
	actx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return &DeliveryError{Sink: s.name, EventID: e.ID, Reason: "cannot build the request", Permanent: true}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "custody-siem")
	req.Header.Set(EventIDHeader, e.ID)
	if s.key != nil {
		req.Header.Set(SignatureHeader, Sign(s.key, s.now(), body))
	}
	if s.auth != nil {
		req.Header.Set("Authorization", string(s.auth))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: neither a failure of the receiver nor final
		}
		return &DeliveryError{Sink: s.name, EventID: e.ID, Reason: networkReason(err), Err: err}
	}
	// The body is drained for connection reuse and never read into logs or errors: a
	// receiver may echo the payload.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return classify(s.name, e.ID, resp.StatusCode)
}

// Close releases idle connections.
func (s *HTTPSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
