package siem

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Sink kinds of the configuration file.
const (
	KindWebhook   = "webhook"
	KindHEC       = "hec"
	KindOCSF      = "ocsf"
	KindCEFSyslog = "cef-syslog"
)

// FileConfig is the SIEM configuration file (JSON; see the package documentation for
// an example). Unknown keys are errors. Every string of a sink except secrets may
// reference environment variables as ${NAME}; secrets are never values in the file,
// only {"file": path} or {"env": NAME}.
type FileConfig struct {
	// Sinks lists the receivers. Required: at least one.
	Sinks []SinkConfig `json:"sinks"`
	// MaxRetries: see Config.MaxRetries. Optional; default 3.
	MaxRetries *int `json:"maxRetries,omitempty"`
	// RetryInterval: see Config.RetryInterval, e.g. "1s". Optional; default 1s.
	RetryInterval Duration `json:"retryInterval,omitzero"`
	// RedeliveryDelay: see Config.RedeliveryDelay, e.g. "1m". Optional; default 1m.
	RedeliveryDelay Duration `json:"redeliveryDelay,omitzero"`
	// DeadLetterPrefix: see Config.DeadLetterPrefix. Optional.
	DeadLetterPrefix string `json:"deadLetterPrefix,omitempty"`
	// DeadLetterStream: see Config.DeadLetterStream. Optional.
	DeadLetterStream string `json:"deadLetterStream,omitempty"`
}

// SinkConfig is one sink of the configuration file.
type SinkConfig struct {
	// Name names the sink. Required; 1-32 characters of a-z 0-9 _ -.
	Name string `json:"name"`
	// Kind is webhook, hec, ocsf or cef-syslog. Required.
	Kind string `json:"kind"`
	// URL is the HTTPS endpoint. Required for webhook, hec and ocsf.
	URL string `json:"url,omitempty"`
	// Address is host:port of the syslog/TLS receiver. Required for cef-syslog.
	Address string `json:"address,omitempty"`
	// TLS configures mutual TLS. Required (certFile, keyFile).
	TLS TLSConfig `json:"tls"`
	// SigningKey is the HMAC key of X-Compliance-Signature. Required for webhook;
	// optional for hec and ocsf; not used by cef-syslog.
	SigningKey Secret `json:"signingKey,omitzero"`
	// Token is the HEC token. Required for hec.
	Token Secret `json:"token,omitzero"`
	// HEC holds the HEC metadata (host, source, sourcetype, index). Optional, hec only.
	HEC HECFields `json:"hec,omitzero"`
	// Facility, Hostname, AppName: see SyslogConfig. Optional, cef-syslog only.
	Facility int    `json:"facility,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	AppName  string `json:"appName,omitempty"`
	// Timeout bounds one attempt, e.g. "10s". Optional; default 10s.
	Timeout Duration `json:"timeout,omitzero"`
	// Events, Reports, Checkpoints and Backfill: see Route. Optional; default alerts
	// only.
	Events      bool `json:"events,omitempty"`
	Reports     bool `json:"reports,omitempty"`
	Checkpoints bool `json:"checkpoints,omitempty"`
	Backfill    bool `json:"backfill,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("1s", "2m30s").
type Duration time.Duration

// UnmarshalJSON reads "1s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("duration must be a string such as \"1s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes "1s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadConfig reads and checks a configuration file. lookupEnv resolves ${NAME}
// references (nil: os.LookupEnv). Secrets are not read yet.
func LoadConfig(path string, lookupEnv func(string) (string, bool)) (*FileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c, err := ParseConfig(b, lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes and checks configuration JSON (see LoadConfig).
func ParseConfig(data []byte, lookupEnv func(string) (string, bool)) (*FileConfig, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c FileConfig
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the configuration object", ErrConfig)
	}
	var errs []error
	if len(c.Sinks) == 0 {
		errs = append(errs, errors.New("sinks: at least one sink is required"))
	}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		ex := expander{lookup: lookupEnv}
		for _, p := range []*string{&s.URL, &s.Address, &s.TLS.CAFile, &s.TLS.CertFile, &s.TLS.KeyFile, &s.TLS.ServerName,
			&s.HEC.Host, &s.HEC.Source, &s.HEC.SourceType, &s.HEC.Index, &s.Hostname, &s.AppName} {
			*p = ex.expand(*p)
		}
		for j := range s.TLS.Pins {
			s.TLS.Pins[j] = ex.expand(s.TLS.Pins[j])
		}
		errs = append(errs, ex.errs...)
		if err := s.check(); err != nil {
			errs = append(errs, fmt.Errorf("sinks[%d] (%s): %w", i, s.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &c, nil
}

// check reports keys that do not apply to the sink's kind; the constructors check the
// rest.
func (s *SinkConfig) check() error {
	var errs []error
	http := s.Kind == KindWebhook || s.Kind == KindHEC || s.Kind == KindOCSF
	switch {
	case http:
		if s.Address != "" || s.Facility != 0 || s.Hostname != "" || s.AppName != "" {
			errs = append(errs, errors.New("address, facility, hostname and appName apply to cef-syslog only"))
		}
		if s.Kind != KindHEC && (!s.Token.IsZero() || s.HEC != (HECFields{})) {
			errs = append(errs, errors.New("token and hec apply to hec only"))
		}
	case s.Kind == KindCEFSyslog:
		if s.URL != "" || !s.SigningKey.IsZero() || !s.Token.IsZero() || s.HEC != (HECFields{}) {
			errs = append(errs, errors.New("url, signingKey, token and hec do not apply to cef-syslog"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %q: must be webhook, hec, ocsf or cef-syslog", s.Kind))
	}
	return errors.Join(errs...)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

type expander struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (x *expander) expand(s string) string {
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := x.lookup(name)
		if !ok {
			x.errs = append(x.errs, fmt.Errorf("environment variable %s is not set", name))
		}
		return v
	})
}

// Sink builds the sink: it reads the TLS files and the secrets.
func (s SinkConfig) Sink(lookupEnv func(string) (string, bool)) (Sink, error) {
	h := HTTPConfig{Name: s.Name, URL: s.URL, TLS: s.TLS, SigningKey: s.SigningKey, Timeout: time.Duration(s.Timeout), LookupEnv: lookupEnv}
	switch s.Kind {
	case KindWebhook:
		return NewWebhook(h)
	case KindHEC:
		return NewHEC(HECConfig{HTTPConfig: h, Token: s.Token, Fields: s.HEC})
	case KindOCSF:
		return NewOCSF(h)
	case KindCEFSyslog:
		return NewCEFSyslog(SyslogConfig{Name: s.Name, Address: s.Address, TLS: s.TLS, Facility: s.Facility,
			Hostname: s.Hostname, AppName: s.AppName, DialTimeout: time.Duration(s.Timeout), WriteTimeout: time.Duration(s.Timeout)})
	}
	return nil, fmt.Errorf("%w: sink %q: unknown kind %q", ErrConfig, s.Name, s.Kind)
}

// RouterConfig builds every sink and the router configuration. The caller adds the
// logger and the registerer, runs the router, and closes the routes (CloseRoutes)
// after Run returned.
func (c *FileConfig) RouterConfig(js jetstream.JetStream, lookupEnv func(string) (string, bool)) (Config, error) {
	cfg := Config{
		JetStream:        js,
		RetryInterval:    time.Duration(c.RetryInterval),
		RedeliveryDelay:  time.Duration(c.RedeliveryDelay),
		DeadLetterPrefix: c.DeadLetterPrefix,
		DeadLetterStream: c.DeadLetterStream,
	}
	if c.MaxRetries != nil {
		cfg.MaxRetries = *c.MaxRetries
		if cfg.MaxRetries == 0 {
			cfg.MaxRetries = -1 // an explicit 0 in the file means no retry
		}
	}
	for _, s := range c.Sinks {
		sink, err := s.Sink(lookupEnv)
		if err != nil {
			CloseRoutes(cfg.Routes)
			return Config{}, err
		}
		cfg.Routes = append(cfg.Routes, Route{Sink: sink, Events: s.Events, Reports: s.Reports, Checkpoints: s.Checkpoints, Backfill: s.Backfill})
	}
	return cfg, nil
}

// CloseRoutes closes every route's sink that holds connections (io.Closer).
func CloseRoutes(routes []Route) error {
	var errs []error
	for _, r := range routes {
		if c, ok := r.Sink.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
