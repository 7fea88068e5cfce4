package cxone

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxBody bounds one response body.
const maxBody = 32 << 20

// maxBackoff caps the doubling pause after 5xx and network errors.
const maxBackoff = 30 * time.Second

// client speaks HTTP to CXone: discovery, the access-key token flow, the retry policy.
// It never logs a URL (a custom-data URL holds a contact id), a token or a body.
type client struct {
	cfg          *Config
	log          *slog.Logger
	clientSecret secret
	accessSecret secret

	mu       sync.Mutex // guards everything below; held across token requests
	tokenURL string
	apiBase  string
	tok      tokenState
}

type tokenState struct {
	access    string
	refresh   string
	refreshAt time.Time // renew from this instant on, ahead of the expiry
	gen       uint64    // counts tokens, so a 401 invalidates only the token it saw
}

func newClient(cfg *Config) (*client, error) {
	cs, err := cfg.ClientSecret.load(cfg.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("ClientSecret: %w", err)
	}
	as, err := cfg.AccessKeySecret.load(cfg.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("AccessKeySecret: %w", err)
	}
	return &client{cfg: cfg, log: cfg.Logger, clientSecret: cs, accessSecret: as,
		tokenURL: cfg.TokenURL, apiBase: cfg.APIBaseURL}, nil
}

// token returns a valid access token and its generation, authenticating when there is
// none or the current one is about to expire: first with the refresh token, then (or
// if that is refused) with the access key.
func (c *client) token(ctx context.Context) (string, string, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.access != "" && c.cfg.Now().Before(c.tok.refreshAt) {
		return c.tok.access, c.apiBase, c.tok.gen, nil
	}
	if c.tokenURL == "" {
		if err := c.discoverTokenURL(ctx); err != nil {
			return "", "", 0, err
		}
	}
	var tr *tokenResponse
	if c.tok.refresh != "" {
		var err error
		tr, err = c.requestToken(ctx, "refresh_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.tok.refresh}})
		if err != nil {
			if ctx.Err() != nil {
				return "", "", 0, ctx.Err()
			}
			c.log.Info("cxone: refresh token refused, authenticating with the access key", "error", err.Error())
			tr = nil
		}
	}
	if tr == nil {
		var err error
		tr, err = c.requestToken(ctx, "password", url.Values{"grant_type": {"password"},
			"username": {c.cfg.AccessKeyID}, "password": {string(c.accessSecret)}})
		if err != nil {
			return "", "", 0, err
		}
	}
	lifetime := tr.lifetime()
	margin := time.Minute
	if lifetime <= 2*time.Minute {
		margin = lifetime / 2
	}
	refresh := tr.RefreshToken
	if refresh == "" && tr.grant == "refresh_token" {
		refresh = c.tok.refresh
	}
	c.tok = tokenState{access: tr.AccessToken, refresh: refresh, refreshAt: c.cfg.Now().Add(lifetime - margin), gen: c.tok.gen + 1}
	c.log.Info("cxone: authenticated", "grant", tr.grant, "expiresIn", lifetime.String())
	if c.apiBase == "" {
		if err := c.discoverAPI(ctx, tr.IDToken); err != nil {
			c.tok.access = ""
			return "", "", 0, err
		}
	}
	return c.tok.access, c.apiBase, c.tok.gen, nil
}

// invalidate drops the token of generation gen (the one a 401 answered), so the next
// call authenticates with the access key.
func (c *client) invalidate(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.gen == gen {
		c.tok.access, c.tok.refresh = "", ""
	}
}

type tokenResponse struct {
	AccessToken  string   `json:"access_token"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    *float64 `json:"expires_in"`
	RefreshToken string   `json:"refresh_token"`
	IDToken      string   `json:"id_token"`
	grant        string
}

// lifetime is expires_in, or a conservative five minutes when the answer has none.
func (t *tokenResponse) lifetime() time.Duration {
	if t.ExpiresIn == nil || *t.ExpiresIn <= 0 {
		return 5 * time.Minute
	}
	return time.Duration(*t.ExpiresIn * float64(time.Second))
}

var oauthErrorCode = regexp.MustCompile(`^[a-z_]{1,40}$`)

// requestToken posts one grant to the token endpoint, with the application's client
// id and secret as HTTP Basic authentication.
func (c *client) requestToken(ctx context.Context, grant string, form url.Values) (*tokenResponse, error) {
	op := "token (" + grant + " grant)"
	status, body, err := c.send(ctx, op, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(c.cfg.ClientID, string(c.clientSecret))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		return req, nil
	})
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		code := ""
		var oe struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &oe) == nil && oauthErrorCode.MatchString(oe.Error) {
			code = " " + oe.Error
		}
		return nil, fmt.Errorf("%w: %s: HTTP %d%s", ErrAuth, op, status, code)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("%w: %s: the answer is not the documented JSON object", ErrAuth, op)
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("%w: %s: the answer has no access_token", ErrAuth, op)
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, fmt.Errorf("%w: %s: token_type must be bearer", ErrAuth, op)
	}
	tr.grant = grant
	return &tr, nil
}

// discoverTokenURL reads token_endpoint from the issuer's OpenID configuration.
func (c *client) discoverTokenURL(ctx context.Context) error {
	const op = "openid-configuration"
	var doc struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := c.getPublic(ctx, op, c.cfg.Issuer+"/.well-known/openid-configuration", &doc); err != nil {
		return err
	}
	if err := checkURL(doc.TokenEndpoint); err != nil {
		return fmt.Errorf("%w: %s: token_endpoint %w", ErrPayload, op, err)
	}
	c.tokenURL = doc.TokenEndpoint
	return nil
}

// discoverAPI reads the tenant's api_endpoint from the CXone configuration for the
// tenantId claim of the id_token. The id_token came straight from the token endpoint
// over TLS, which vouches for it (OpenID Connect Core 3.1.3.7), so its signature is not
// checked; it is used for nothing else.
func (c *client) discoverAPI(ctx context.Context, idToken string) error {
	const op = "cxone-configuration"
	tenant, err := tenantID(idToken)
	if err != nil {
		return fmt.Errorf("%w: %s: %w; set APIBaseURL to skip discovery", ErrPayload, op, err)
	}
	var doc struct {
		APIEndpoint string `json:"api_endpoint"`
		Area        string `json:"area"`
		Cluster     string `json:"cluster"`
	}
	u := c.cfg.Issuer + "/.well-known/cxone-configuration?" + url.Values{"tenantId": {tenant}}.Encode()
	if err := c.getPublic(ctx, op, u, &doc); err != nil {
		return err
	}
	if err := checkURL(strings.TrimRight(doc.APIEndpoint, "/")); err != nil {
		return fmt.Errorf("%w: %s: api_endpoint %w", ErrPayload, op, err)
	}
	c.apiBase = strings.TrimRight(doc.APIEndpoint, "/")
	c.log.Info("cxone: discovered the API host", "area", safeLabel(doc.Area), "cluster", safeLabel(doc.Cluster))
	return nil
}

var labelRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,40}$`)

func safeLabel(s string) string {
	if labelRE.MatchString(s) {
		return s
	}
	return ""
}

// tenantID reads the tenantId claim of a JWT.
func tenantID(jwt string) (string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", errors.New("the token answer has no id_token (a JWT) to read tenantId from")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", errors.New("the id_token payload is not base64url")
	}
	var claims struct {
		TenantID any `json:"tenantId"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", errors.New("the id_token payload is not a JSON object")
	}
	s, ok := claims.TenantID.(string)
	if !ok || s == "" || len(s) > 128 {
		return "", errors.New("the id_token has no tenantId claim")
	}
	return s, nil
}

// getPublic reads an unauthenticated discovery document.
func (c *client) getPublic(ctx context.Context, op, u string, v any) error {
	status, body, err := c.send(ctx, op, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err == nil {
			req.Header.Set("Accept", "application/json")
		}
		return req, err
	})
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return &StatusError{Op: op, Status: status}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %s: the answer is not the documented JSON object", ErrPayload, op)
	}
	return nil
}

// get sends an authenticated GET to the API host. A 401 invalidates the token and the
// request is sent once more with a new one; a second 401 is ErrAuth. It returns 200
// with its body, or 204; any other status is a *StatusError.
func (c *client) get(ctx context.Context, op, path string, q url.Values) (int, []byte, error) {
	reauthenticated := false
	for {
		tok, base, gen, err := c.token(ctx)
		if err != nil {
			return 0, nil, err
		}
		u := base + path
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		status, body, err := c.send(ctx, op, func() (*http.Request, error) {
			req, err := http.NewRequest(http.MethodGet, u, nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Accept", "application/json")
			}
			return req, err
		})
		if err != nil {
			return 0, nil, err
		}
		switch {
		case status == http.StatusUnauthorized && !reauthenticated:
			c.log.Info("cxone: token refused, authenticating again", "op", op)
			c.invalidate(gen)
			reauthenticated = true
		case status == http.StatusUnauthorized:
			return 0, nil, fmt.Errorf("%w: %s: HTTP 401 again after a new authentication (check the access key's permissions)", ErrAuth, op)
		case status == http.StatusOK || status == http.StatusNoContent:
			return status, body, nil
		default:
			return 0, nil, &StatusError{Op: op, Status: status}
		}
	}
}

// send performs a request with the retry policy: a 429 waits for Retry-After (seconds
// or an HTTP date; without one, the backoff) up to MaxRetryAfter; a 5xx other than 501
// and a network error back off, doubling from RetryBackoff up to 30 s; at most
// MaxRetries retries. Any other answer is returned with its body.
func (c *client) send(ctx context.Context, op string, build func() (*http.Request, error)) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		req, err := build()
		if err != nil {
			return 0, nil, fmt.Errorf("cxone: %s: build request: %w", op, err)
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		status, header, body, err := c.roundTrip(req.WithContext(rctx))
		cancel()
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		var wait time.Duration
		switch {
		case err != nil:
			if attempt >= c.cfg.MaxRetries {
				return 0, nil, fmt.Errorf("%w: %s: %v (after %d retries)", ErrUnavailable, op, err, attempt)
			}
			wait = c.backoff(attempt)
			c.log.Warn("cxone: request failed, retrying", "op", op, "attempt", attempt+1, "wait", wait.String(), "error", err.Error())
		case status == http.StatusTooManyRequests:
			d, ok := retryAfter(header.Get("Retry-After"), c.cfg.Now())
			if !ok {
				d = c.backoff(attempt)
			}
			if d > c.cfg.MaxRetryAfter {
				return 0, nil, fmt.Errorf("%w: %s: Retry-After %s exceeds MaxRetryAfter %s", ErrRateLimited, op, d, c.cfg.MaxRetryAfter)
			}
			if attempt >= c.cfg.MaxRetries {
				return 0, nil, fmt.Errorf("%w: %s: still HTTP 429 after %d retries", ErrRateLimited, op, attempt)
			}
			wait = d
			c.log.Warn("cxone: rate limited, waiting", "op", op, "attempt", attempt+1, "retryAfter", wait.String())
		case status >= 500 && status != http.StatusNotImplemented:
			if attempt >= c.cfg.MaxRetries {
				return 0, nil, fmt.Errorf("%w: %s: HTTP %d (after %d retries)", ErrUnavailable, op, status, attempt)
			}
			wait = c.backoff(attempt)
			c.log.Warn("cxone: server error, retrying", "op", op, "status", status, "attempt", attempt+1, "wait", wait.String())
		default:
			return status, body, nil
		}
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return 0, nil, err
		}
	}
}

// roundTrip sends one request and reads the body. Its error never holds the URL: a
// *url.Error is unwrapped to its cause.
func (c *client) roundTrip(req *http.Request) (int, http.Header, []byte, error) {
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nil, fmt.Errorf("read the answer: %w", err)
	}
	if len(body) > maxBody {
		return 0, nil, nil, fmt.Errorf("the answer is larger than %d MiB", maxBody>>20)
	}
	return resp.StatusCode, resp.Header, body, nil
}

func (c *client) backoff(attempt int) time.Duration {
	d := c.cfg.RetryBackoff
	for i := 0; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// retryAfter reads Retry-After: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > 1<<31 {
			n = 1 << 31
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
