// Package api is the auditors' HTTP API: GET /v1/reports/NAME, authenticated by bearer
// tokens read from a file, with roles. There is no anonymous access: a request without
// a valid token gets 401 and no data. The reports themselves are computed by a Runner
// that the caller provides (cmd/custody wires the projection store and the log); this
// package only speaks HTTP.
//
// Tokens file: one token a line, "ROLE ACTOR TOKEN", blank lines and lines starting with
// # ignored. ROLE is auditor or compliance_officer; ACTOR names the person or system in
// the report.executed event; TOKEN is at least 32 characters. Only SHA-256 digests of the
// tokens are kept in memory, compared in constant time.
//
// Two optional routes: GET /metrics (the caller's Prometheus handler, for any valid
// token), and POST /v1/events, the signed webhook ingest, when the caller provides an
// Ingester and a signature check. A posted body is one CloudEvent or a JSON array of
// them, authenticated by X-Compliance-Signature: t=<unix seconds>,v1=<hex
// HMAC-SHA256(key, t + "." + body)> over the raw body (the caller's check decides the
// key and the allowed clock skew). The answer has one result per event: stored,
// duplicate, rejected (with every field: rule problem) or failed (503: post again).
package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Roles that may hold a token.
const (
	RoleAuditor           = "auditor"
	RoleComplianceOfficer = "compliance_officer"
	// RoleIngest may only post platform payloads (POST /v1/ingest/PLATFORM), for
	// senders that cannot sign a body, such as an EventBridge API destination.
	RoleIngest = "ingest"
)

// ErrBadRequest marks a Runner error caused by the request's parameters (answered 400).
var ErrBadRequest = errors.New("bad request")

// ErrNotFound marks an unknown report (answered 404).
var ErrNotFound = errors.New("not found")

// Request is one report request, authenticated.
type Request struct {
	Report string
	// Format is json or csv.
	Format string
	// Query holds the report parameters: as-of, as-of-seq, tz, agent, interaction,
	// from, to, flagged, offset, limit.
	Query url.Values
	Actor string
	Role  string
	// Headers collects response headers the Runner adds (e.g. the report's proof, for
	// a CSV body that cannot carry it); they are sent only with a report.
	Headers http.Header
}

// Runner computes a report and records its execution; it returns the body only once the
// execution is recorded.
type Runner interface {
	RunReport(ctx context.Context, r Request) ([]byte, error)
}

// Config configures the API server.
type Config struct {
	// Addr is the listen address, host:port. Required.
	Addr string
	// TokensFile is the bearer tokens file. Required: without it the API does not start.
	TokensFile string
	// Runner computes reports. Required.
	Runner Runner
	// Logger receives request logs (never tokens or report contents). Optional.
	Logger *slog.Logger
	// Ingester, with VerifySignature, enables POST /v1/events (signed webhook ingest).
	// Optional.
	Ingester Ingester
	// VerifySignature checks the X-Compliance-Signature header against the raw body.
	// Required with Ingester.
	VerifySignature func(header string, body []byte) error
	// MaxBody bounds a POST /v1/events body in bytes. Optional; default 8 MiB.
	MaxBody int64
	// MaxEvents bounds the events of one POST /v1/events. Optional; default 1000.
	MaxEvents int
	// Metrics, if set, is served at GET /metrics to holders of a valid token. Optional.
	Metrics http.Handler
	// Platforms, if set, enables POST /v1/ingest/{platform} for the platforms it maps:
	// a platform's own payload (a Genesys notification or EventBridge event, a CXone
	// contact record), authenticated by the signature header or by a bearer token of
	// role ingest. Optional.
	Platforms PlatformIngester
}

// PlatformIngester maps a platform's payload to contract events and stores them. An
// unknown platform is ErrNotFound; a payload it cannot map is ErrBadRequest (with the
// field and rule).
type PlatformIngester interface {
	IngestPlatform(ctx context.Context, platform string, body []byte) ([]IngestResult, error)
}

// IngestResult is the outcome of one posted event.
type IngestResult struct {
	// Index is the event's position in the posted batch (0 for a single event).
	Index int `json:"index"`
	// ID is the event's id when it could be read.
	ID string `json:"id,omitempty"`
	// Status is stored, duplicate, rejected (invalid: not retried) or failed (the log
	// did not acknowledge it: retry).
	Status string `json:"status"`
	// Reason says why an event was rejected or failed: every "field: rule" problem.
	Reason string `json:"reason,omitempty"`
	// Seq is the stream sequence of a stored event (or of the stored original of a
	// duplicate, when known).
	Seq uint64 `json:"seq,omitempty"`
}

// Ingest statuses.
const (
	StatusStored    = "stored"
	StatusDuplicate = "duplicate"
	StatusRejected  = "rejected"
	StatusFailed    = "failed"
)

// Ingester validates posted CloudEvents and stores the valid ones in the log, one result
// per event in order.
type Ingester interface {
	Ingest(ctx context.Context, events []json.RawMessage) []IngestResult
}

// Validate reports missing settings.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("api: Addr is required"))
	}
	if c.TokensFile == "" {
		errs = append(errs, errors.New("api: TokensFile is required (there is no anonymous access)"))
	}
	if c.Runner == nil {
		errs = append(errs, errors.New("api: Runner is required"))
	}
	if (c.Ingester != nil || c.Platforms != nil) && c.VerifySignature == nil {
		errs = append(errs, errors.New("api: VerifySignature is required with Ingester (posted events are authenticated by their signature)"))
	}
	return errors.Join(errs...)
}

type principal struct {
	digest [32]byte
	role   string
	actor  string
}

// Server is the HTTP API.
type Server struct {
	cfg    Config
	tokens []principal
	ln     net.Listener
	srv    *http.Server
}

// New reads the tokens file and listens on Addr.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 8 << 20
	}
	if cfg.MaxEvents == 0 {
		cfg.MaxEvents = 1000
	}
	tokens, err := ReadTokens(cfg.TokensFile)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, tokens: tokens, ln: ln}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// ReadTokens parses a tokens file.
func ReadTokens(path string) ([]principal, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("api: tokens file: %w", err)
	}
	defer f.Close()
	var out []principal
	seen := map[[32]byte]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Fields(line)
		if len(parts) != 3 {
			return nil, fmt.Errorf("api: tokens file line %d: must be ROLE ACTOR TOKEN", n)
		}
		if parts[0] != RoleAuditor && parts[0] != RoleComplianceOfficer && parts[0] != RoleIngest {
			return nil, fmt.Errorf("api: tokens file line %d: role must be %s, %s or %s", n, RoleAuditor, RoleComplianceOfficer, RoleIngest)
		}
		if len(parts[2]) < 32 {
			return nil, fmt.Errorf("api: tokens file line %d: token must be at least 32 characters", n)
		}
		d := sha256.Sum256([]byte(parts[2]))
		if first, dup := seen[d]; dup {
			return nil, fmt.Errorf("api: tokens file line %d: the same token as line %d (each token names one actor and role)", n, first)
		}
		seen[d] = n
		out = append(out, principal{digest: d, role: parts[0], actor: parts[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("api: tokens file: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("api: tokens file holds no token")
	}
	return out, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return s.srv.Shutdown(sctx)
	}
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /v1/reports/{name}", s.report)
	if s.cfg.Ingester != nil {
		mux.HandleFunc("POST /v1/events", s.events)
	}
	if s.cfg.Platforms != nil {
		mux.HandleFunc("POST /v1/ingest/{platform}", s.platform)
	}
	if s.cfg.Metrics != nil {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			if _, ok := s.authenticate(r); !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="custody"`)
				writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
				return
			}
			s.cfg.Metrics.ServeHTTP(w, r)
		})
	}
	// HEAD would run the report and record an execution nobody sees.
	mux.HandleFunc("HEAD /v1/reports/{name}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", "GET")
		w.WriteHeader(http.StatusMethodNotAllowed)
	})
	return mux
}

func (s *Server) authenticate(r *http.Request) (principal, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return principal{}, false
	}
	d := sha256.Sum256([]byte(token))
	var found principal
	match := 0
	for _, p := range s.tokens { // constant time over every token
		if subtle.ConstantTimeCompare(d[:], p.digest[:]) == 1 {
			found, match = p, 1
		}
	}
	return found, match == 1
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="custody"`)
		writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
		s.cfg.Logger.Info("report refused", "status", 401, "remote", r.RemoteAddr)
		return
	}
	if p.role == RoleIngest {
		writeError(w, http.StatusForbidden, "an ingest token may not read reports")
		s.cfg.Logger.Info("report refused", "status", 403, "remote", r.RemoteAddr)
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	q.Del("format")
	if format == "" {
		format = "json"
		if strings.Contains(r.Header.Get("Accept"), "text/csv") {
			format = "csv"
		}
	}
	if format != "json" && format != "csv" {
		writeError(w, http.StatusBadRequest, `format: must be json or csv`)
		return
	}
	name := r.PathValue("name")
	extra := http.Header{}
	body, err := s.cfg.Runner.RunReport(r.Context(), Request{Report: name, Format: format, Query: q, Actor: p.actor, Role: p.role, Headers: extra})
	switch {
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		// Fail closed: no data unless the execution is recorded.
		writeError(w, http.StatusServiceUnavailable, "report not released: "+err.Error())
	default:
		for k, vs := range extra {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		if format == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
	}
	s.cfg.Logger.Info("report", "name", name, "role", p.role, "format", format, "ms", time.Since(start).Milliseconds(), "ok", err == nil)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// SignatureHeader carries the HMAC of a posted body: t=<unix seconds>,v1=<hex
// HMAC-SHA256(key, t + "." + body)>.
const SignatureHeader = "X-Compliance-Signature"

// events is POST /v1/events: one CloudEvent, or a JSON array of them, authenticated by
// the signature of the raw body. It answers 200 with one result per event when every
// event was stored, found a duplicate or rejected as invalid; 503 when the log did not
// acknowledge some (they are marked failed: post again, duplicates are recognised);
// 401 for a missing or wrong signature; 400 for a body that is not JSON; 413 for a body
// or batch over the limits.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", s.cfg.MaxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if err := s.cfg.VerifySignature(r.Header.Get(SignatureHeader), body); err != nil {
		writeError(w, http.StatusUnauthorized, SignatureHeader+": "+err.Error())
		s.cfg.Logger.Info("events refused", "status", 401, "remote", r.RemoteAddr)
		return
	}
	var msgs []json.RawMessage
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &msgs); err != nil {
			writeError(w, http.StatusBadRequest, "body: not a JSON array of CloudEvents: "+err.Error())
			return
		}
	case len(trimmed) > 0 && trimmed[0] == '{':
		if !json.Valid(trimmed) {
			writeError(w, http.StatusBadRequest, "body: not a valid JSON object")
			return
		}
		msgs = []json.RawMessage{trimmed}
	default:
		writeError(w, http.StatusBadRequest, "body: must be a CloudEvent (a JSON object) or a JSON array of them")
		return
	}
	if len(msgs) == 0 {
		writeError(w, http.StatusBadRequest, "batch: must hold at least one event")
		return
	}
	if len(msgs) > s.cfg.MaxEvents {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("batch: must hold 1 to %d events, has %d", s.cfg.MaxEvents, len(msgs)))
		return
	}
	results := s.cfg.Ingester.Ingest(r.Context(), msgs)
	counts := writeResults(w, results)
	s.cfg.Logger.Info("events", "events", len(msgs), "stored", counts[StatusStored], "duplicates", counts[StatusDuplicate],
		"rejected", counts[StatusRejected], "failed", counts[StatusFailed], "ms", time.Since(start).Milliseconds())
}

// platform is POST /v1/ingest/{platform}: a platform's payload, authenticated by the
// signature of the raw body or by a bearer token of role ingest, mapped to contract
// events and stored. Answers as POST /v1/events does.
func (s *Server) platform(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", s.cfg.MaxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if sig := r.Header.Get(SignatureHeader); sig != "" {
		if err := s.cfg.VerifySignature(sig, body); err != nil {
			writeError(w, http.StatusUnauthorized, SignatureHeader+": "+err.Error())
			return
		}
	} else if p, ok := s.authenticate(r); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="custody"`)
		writeError(w, http.StatusUnauthorized, "a signature or a bearer token of role ingest is required")
		return
	} else if p.role != RoleIngest {
		writeError(w, http.StatusForbidden, "only a token of role ingest may post platform payloads")
		return
	}
	platform := r.PathValue("platform")
	results, err := s.cfg.Platforms.IngestPlatform(r.Context(), platform, body)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	counts := writeResults(w, results)
	s.cfg.Logger.Info("ingest", "platform", platform, "events", len(results), "stored", counts[StatusStored],
		"failed", counts[StatusFailed], "ms", time.Since(start).Milliseconds())
}

// writeResults answers an ingest with one result per event and the counts by status:
// 200, or 503 when the log did not acknowledge some (post again). It returns the counts.
func writeResults(w http.ResponseWriter, results []IngestResult) map[string]int {
	counts := map[string]int{}
	for _, res := range results {
		counts[res.Status]++
	}
	status := http.StatusOK
	if counts[StatusFailed] > 0 {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"results": results, "stored": counts[StatusStored], "duplicates": counts[StatusDuplicate],
		"rejected": counts[StatusRejected], "failed": counts[StatusFailed],
	})
	return counts
}
