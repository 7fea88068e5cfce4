package genesys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTPError is an unexpected HTTP status from Genesys. It names the route and the
// Genesys error code, never the response body (which may echo request data).
type HTTPError struct {
	Method, Route string
	Status        int
	// Code is the Genesys error code of the body ("bad.request", "not.found"), if any.
	Code string
	// CorrelationID is the ININ-Correlation-Id header, for Genesys support.
	CorrelationID string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("genesys: %s %s: HTTP %d", e.Method, e.Route, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.CorrelationID != "" {
		s += " (correlation id " + e.CorrelationID + ")"
	}
	return s
}

// Is matches ErrHTTP, and ErrUnauthorized for 401 and 403.
func (e *HTTPError) Is(target error) bool {
	return target == ErrHTTP || (target == ErrUnauthorized && (e.Status == 401 || e.Status == 403))
}

// client calls the Genesys Cloud API with a client-credentials token: it re-authenticates
// once on 401 (a HIPAA organization's tokens expire after 15 idle minutes), honours
// Retry-After on 429, backs off on 5xx and network errors, and bounds the requests in
// flight.
type client struct {
	cfg    *Config
	log    *slog.Logger
	secret secret
	sem    chan struct{}

	mu      sync.Mutex
	token   string
	expires time.Time
}

func newClient(cfg *Config) (*client, error) {
	s, err := cfg.ClientSecret.load(cfg.LookupEnv)
	if err != nil {
		return nil, err
	}
	return &client{cfg: cfg, log: cfg.Logger, secret: s, sem: make(chan struct{}, cfg.Concurrency)}, nil
}

// tokenFor returns a cached token or signs in.
func (c *client) tokenFor(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.cfg.Now().Before(c.expires) {
		return c.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	build := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.LoginURL+"/oauth/token", strings.NewReader(form))
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(c.cfg.ClientID, string(c.secret))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		return req, nil
	}
	resp, body, err := c.send(ctx, "POST", "/oauth/token", build)
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		var oe struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &oe)
		herr := &HTTPError{Method: "POST", Route: "/oauth/token", Status: resp.StatusCode, Code: oe.Error,
			CorrelationID: resp.Header.Get("ININ-Correlation-Id")}
		if resp.StatusCode == 400 || resp.StatusCode == 401 || resp.StatusCode == 403 {
			return "", fmt.Errorf("%w: client credentials refused: %w", ErrUnauthorized, herr)
		}
		return "", herr
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("%w: POST /oauth/token: the response has no access_token", ErrUnauthorized)
	}
	// Refresh a minute early, as the Genesys SDKs do; a HIPAA organization's idle
	// timeout can still end it sooner, which the 401 path handles.
	life := time.Duration(tok.ExpiresIn)*time.Second - time.Minute
	if life < 0 {
		life = 0
	}
	c.token, c.expires = tok.AccessToken, c.cfg.Now().Add(life)
	c.log.Info("genesys: signed in", "expires_in_s", tok.ExpiresIn)
	return c.token, nil
}

// invalidate drops tok if it is still the cached token.
func (c *client) invalidate(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

// call performs one API request: method, route (for logs and errors: a path without
// query), query, JSON body (nil for none). It returns the response body of a 2xx.
func (c *client) call(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("genesys: %s %s: encode request: %w", method, path, err)
		}
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()

	target := c.cfg.APIURL + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	for reauth := 0; ; reauth++ {
		tok, err := c.tokenFor(ctx)
		if err != nil {
			return nil, err
		}
		build := func(ctx context.Context) (*http.Request, error) {
			var r io.Reader
			if payload != nil {
				r = bytes.NewReader(payload)
			}
			req, err := http.NewRequestWithContext(ctx, method, target, r)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Accept", "application/json")
			if payload != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, nil
		}
		resp, respBody, err := c.send(ctx, method, path, build)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && reauth == 0 {
			// The token expired or went idle: sign in again, once, and retry.
			c.log.Info("genesys: token refused, signing in again", "method", method, "route", path)
			c.invalidate(tok)
			continue
		}
		if resp.StatusCode/100 == 2 {
			return respBody, nil
		}
		var ge struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(respBody, &ge)
		herr := &HTTPError{Method: method, Route: path, Status: resp.StatusCode, Code: ge.Code,
			CorrelationID: resp.Header.Get("ININ-Correlation-Id")}
		if resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("%w: refused again with a fresh token: %w", ErrUnauthorized, herr)
		}
		return nil, herr
	}
}

// send performs a request, retrying 429 (after Retry-After), 5xx other than 501 and
// network errors up to MaxRetries times. It returns the last response with its body read.
func (c *client) send(ctx context.Context, method, route string, build func(context.Context) (*http.Request, error)) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		req, err := build(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("genesys: %s %s: %w", method, route, err)
		}
		start := c.cfg.Now()
		resp, err := c.cfg.HTTPClient.Do(req)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(resp.Body, 256<<20))
			resp.Body.Close()
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if attempt >= c.cfg.MaxRetries {
				return nil, nil, fmt.Errorf("genesys: %s %s: %w", method, route, redactURLError(err))
			}
			wait := backoff(attempt)
			c.log.Warn("genesys: request failed, retrying", "method", method, "route", route, "attempt", attempt+1, "wait", wait)
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return nil, nil, err
			}
			continue
		}
		cid := resp.Header.Get("ININ-Correlation-Id")
		c.log.Debug("genesys: response", "method", method, "route", route, "status", resp.StatusCode,
			"attempt", attempt+1, "correlation_id", cid, "elapsed", c.cfg.Now().Sub(start))
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			wait, ok := retryAfter(resp.Header.Get("Retry-After"), c.cfg.Now())
			if !ok {
				wait = backoff(attempt)
			}
			if wait > c.cfg.MaxRetryAfter {
				return nil, nil, fmt.Errorf("%w: %s %s: Retry-After %s is longer than %s", ErrRateLimited, method, route, wait, c.cfg.MaxRetryAfter)
			}
			if attempt >= c.cfg.MaxRetries {
				return nil, nil, fmt.Errorf("%w: %s %s: still 429 after %d retries", ErrRateLimited, method, route, attempt)
			}
			c.log.Warn("genesys: rate limited, waiting", "method", method, "route", route, "attempt", attempt+1, "wait", wait, "correlation_id", cid)
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return nil, nil, err
			}
		case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented && attempt < c.cfg.MaxRetries:
			wait := backoff(attempt)
			c.log.Warn("genesys: server error, retrying", "method", method, "route", route, "status", resp.StatusCode, "attempt", attempt+1, "wait", wait, "correlation_id", cid)
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return nil, nil, err
			}
		default:
			return resp, body, nil
		}
	}
}

// redactURLError drops the URL (whose query holds a cursor) from a transport error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// backoff is 1 s, 2 s, 4 s, ... capped at 30 s.
func backoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 5)
	return min(d, 30*time.Second)
}

// retryAfter parses Retry-After: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
