package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/integration/api"
)

const (
	auditorToken = "auditor-token-0123456789abcdef0123456789"
	officerToken = "officer-token-0123456789abcdef0123456789"
	// reportMarker is in every body the fake runner returns; a refused request must
	// never carry it.
	reportMarker = "SECRET-REPORT-DATA"
)

// fakeRunner records every request and answers with a body naming the report, or with
// the error configured for that report name.
type fakeRunner struct {
	mu   sync.Mutex
	reqs []api.Request
	errs map[string]error
}

func (f *fakeRunner) RunReport(_ context.Context, r api.Request) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r)
	if err := f.errs[r.Report]; err != nil {
		return nil, err
	}
	if r.Format == "csv" {
		return []byte("report,marker\n" + r.Report + "," + reportMarker + "\n"), nil
	}
	return []byte(fmt.Sprintf(`{"report":%q,"marker":%q}`+"\n", r.Report, reportMarker)), nil
}

func (f *fakeRunner) requests() []api.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Request(nil), f.reqs...)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func goodTokens(t *testing.T) string {
	return writeFile(t, "# role actor token\n\n"+
		"auditor auditor-1 "+auditorToken+"\n"+
		"  compliance_officer officer-1   "+officerToken+"  \n")
}

// startServer runs a server on a free port until the test ends.
func startServer(t *testing.T, runner api.Runner) string {
	t.Helper()
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0", TokensFile: goodTokens(t), Runner: runner})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return "http://" + srv.Addr()
}

var client = &http.Client{Timeout: 10 * time.Second}

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// errorBody checks that a refusal is a JSON {"error": ...} carrying no report data.
func errorBody(t *testing.T, body string) string {
	t.Helper()
	if strings.Contains(body, reportMarker) {
		t.Fatalf("refusal carries report data: %s", body)
	}
	var e map[string]string
	if err := json.Unmarshal([]byte(body), &e); err != nil || len(e) != 1 || e["error"] == "" {
		t.Fatalf("refusal body is not {\"error\": ...}: %q (%v)", body, err)
	}
	return e["error"]
}

func TestAPIReadTokensErrors(t *testing.T) {
	long := strings.Repeat("x", 32)
	cases := []struct {
		name, content string
		want          string
	}{
		{"bad role", "admin someone-1 " + long + "\n", "line 1: role must be auditor, compliance_officer or ingest"},
		{"short token", "# header\nauditor someone-1 " + long[:31] + "\n", "line 2: token must be at least 32 characters"},
		{"two fields", "auditor " + long + "\n", "line 1: must be ROLE ACTOR TOKEN"},
		{"four fields", "auditor someone-1 " + long + " extra\n", "line 1: must be ROLE ACTOR TOKEN"},
		{"bad line after good", "auditor someone-1 " + long + "\n\nauditor\n", "line 3: must be ROLE ACTOR TOKEN"},
		{"empty file", "", "holds no token"},
		{"only comments and blanks", "# nothing\n\n   \n", "holds no token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, c.content)
			if _, err := api.ReadTokens(p); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ReadTokens: %v, want an error containing %q", err, c.want)
			}
			// New refuses to start on the same file, with the same error, and listens on nothing.
			srv, err := api.New(api.Config{Addr: "127.0.0.1:0", TokensFile: p, Runner: &fakeRunner{}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				if srv != nil {
					t.Logf("server listening on %s", srv.Addr())
				}
				t.Fatalf("New: %v, want an error containing %q", err, c.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "absent")
		_, err := api.ReadTokens(p)
		if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "tokens file") {
			t.Fatalf("ReadTokens: %v, want a tokens file not-exist error", err)
		}
		if _, err := api.New(api.Config{Addr: "127.0.0.1:0", TokensFile: p, Runner: &fakeRunner{}}); err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("good file", func(t *testing.T) {
		toks, err := api.ReadTokens(goodTokens(t))
		if err != nil || len(toks) != 2 {
			t.Fatalf("ReadTokens: %d tokens, %v", len(toks), err)
		}
	})
}

func TestAPIConfigValidate(t *testing.T) {
	tokens := goodTokens(t)
	r := &fakeRunner{}
	cases := []struct {
		name    string
		cfg     api.Config
		want    []string
		wantNot []string
	}{
		{"all missing", api.Config{}, []string{"Addr is required", "TokensFile is required", "Runner is required"}, nil},
		{"no addr", api.Config{TokensFile: tokens, Runner: r}, []string{"Addr is required"}, []string{"TokensFile", "Runner"}},
		{"no tokens", api.Config{Addr: "127.0.0.1:0", Runner: r}, []string{"TokensFile is required", "no anonymous access"}, []string{"Addr", "Runner"}},
		{"no runner", api.Config{Addr: "127.0.0.1:0", TokensFile: tokens}, []string{"Runner is required"}, []string{"Addr", "TokensFile"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if err == nil {
				t.Fatal("Validate: nil")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q lacks %q", err, w)
				}
			}
			for _, w := range c.wantNot {
				if strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q names %q, which is set", err, w)
				}
			}
			if srv, nerr := api.New(c.cfg); nerr == nil || nerr.Error() != err.Error() {
				if srv != nil {
					t.Logf("server listening on %s", srv.Addr())
				}
				t.Errorf("New: %v, want the Validate error", nerr)
			}
		})
	}
	if err := (api.Config{Addr: "127.0.0.1:0", TokensFile: tokens, Runner: r}).Validate(); err != nil {
		t.Fatalf("complete config: %v", err)
	}
}

func TestAPIUnauthorized(t *testing.T) {
	r := &fakeRunner{}
	base := startServer(t, r)
	cases := []struct {
		name   string
		header map[string]string
	}{
		{"no header", nil},
		{"wrong scheme", map[string]string{"Authorization": "Basic " + auditorToken}},
		{"token without scheme", map[string]string{"Authorization": auditorToken}},
		{"wrong token", bearer(strings.Repeat("z", 40))},
		{"token prefix", bearer(auditorToken[:len(auditorToken)-1])},
		{"empty token", map[string]string{"Authorization": "Bearer "}},
		{"scheme only", map[string]string{"Authorization": "Bearer"}},
		{"extra space", map[string]string{"Authorization": "Bearer  " + auditorToken}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/v1/reports/unauthorized", "/v1/reports/nonexistent", "/v1/reports/unauthorized?format=xml"} {
				resp, body := get(t, base+path, c.header)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("%s: status %d, want 401: %s", path, resp.StatusCode, body)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
					t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", path, got)
				}
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("%s: Cache-Control %q", path, cc)
				}
				errorBody(t, body)
			}
		})
	}
	if n := len(r.requests()); n != 0 {
		t.Fatalf("the runner was called %d times for unauthenticated requests", n)
	}
}

func TestAPIRolesAndFormats(t *testing.T) {
	r := &fakeRunner{}
	base := startServer(t, r)
	cases := []struct {
		name, token, path string
		accept            string
		wantActor         string
		wantRole          string
		wantFormat        string
		wantType          string
		wantQuery         map[string]string
	}{
		{"auditor json", auditorToken, "/v1/reports/unauthorized", "", "auditor-1", api.RoleAuditor, "json", "application/json", map[string]string{}},
		{"officer json", officerToken, "/v1/reports/consent?as-of=2026-03-08T00:00:00Z", "", "officer-1", api.RoleComplianceOfficer, "json", "application/json",
			map[string]string{"as-of": "2026-03-08T00:00:00Z"}},
		{"format=csv", auditorToken, "/v1/reports/access-audit?format=csv&limit=5&offset=10", "", "auditor-1", api.RoleAuditor, "csv", "text/csv",
			map[string]string{"limit": "5", "offset": "10"}},
		{"accept text/csv", officerToken, "/v1/reports/retention", "text/csv", "officer-1", api.RoleComplianceOfficer, "csv", "text/csv", map[string]string{}},
		{"format=json beats accept", auditorToken, "/v1/reports/alerts?format=json", "text/csv", "auditor-1", api.RoleAuditor, "json", "application/json", map[string]string{}},
		{"accept json", auditorToken, "/v1/reports/exposure", "application/json", "auditor-1", api.RoleAuditor, "json", "application/json", map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(r.requests())
			h := bearer(c.token)
			if c.accept != "" {
				h["Accept"] = c.accept
			}
			resp, body := get(t, base+c.path, h)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.wantType) {
				t.Errorf("Content-Type %q, want %s", ct, c.wantType)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			if !strings.Contains(body, reportMarker) {
				t.Errorf("body is not the runner's: %q", body)
			}
			reqs := r.requests()
			if len(reqs) != before+1 {
				t.Fatalf("runner called %d times, want once", len(reqs)-before)
			}
			got := reqs[len(reqs)-1]
			name := strings.TrimPrefix(strings.SplitN(c.path, "?", 2)[0], "/v1/reports/")
			if got.Report != name || got.Actor != c.wantActor || got.Role != c.wantRole || got.Format != c.wantFormat {
				t.Errorf("runner got report %q actor %q role %q format %q; want %q %q %q %q",
					got.Report, got.Actor, got.Role, got.Format, name, c.wantActor, c.wantRole, c.wantFormat)
			}
			// format is the server's own parameter: the runner sees only report parameters.
			if len(got.Query) != len(c.wantQuery) {
				t.Errorf("runner query %v, want %v", got.Query, c.wantQuery)
			}
			for k, v := range c.wantQuery {
				if got.Query.Get(k) != v || len(got.Query[k]) != 1 {
					t.Errorf("runner query %s=%v, want %q", k, got.Query[k], v)
				}
			}
		})
	}
	t.Run("format=xml", func(t *testing.T) {
		before := len(r.requests())
		resp, body := get(t, base+"/v1/reports/unauthorized?format=xml", bearer(auditorToken))
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400: %s", resp.StatusCode, body)
		}
		if msg := errorBody(t, body); !strings.Contains(msg, "format") {
			t.Errorf("error %q does not name format", msg)
		}
		if len(r.requests()) != before {
			t.Error("the runner was called for an unsupported format")
		}
	})
}

func TestAPIRunnerErrors(t *testing.T) {
	r := &fakeRunner{errs: map[string]error{
		"badparam": fmt.Errorf("%w: unknown parameter %q", api.ErrBadRequest, "foo"),
		"nosuch":   fmt.Errorf("%w: report %q: must be one of ...", api.ErrNotFound, "nosuch"),
		"logdown":  errors.New("its report.executed event was not acknowledged by the log: nats: no responders"),
		"canceled": context.Canceled,
		"wrapped":  fmt.Errorf("store: %w", errors.New("disk I/O error")),
	}}
	base := startServer(t, r)
	cases := []struct {
		report   string
		status   int
		contains string
	}{
		{"badparam", http.StatusBadRequest, `unknown parameter "foo"`},
		{"nosuch", http.StatusNotFound, `report "nosuch"`},
		{"logdown", http.StatusServiceUnavailable, "report not released"},
		{"canceled", http.StatusServiceUnavailable, "report not released"},
		{"wrapped", http.StatusServiceUnavailable, "report not released"},
	}
	for _, c := range cases {
		for _, format := range []string{"json", "csv"} {
			t.Run(c.report+"/"+format, func(t *testing.T) {
				resp, body := get(t, base+"/v1/reports/"+c.report+"?format="+format, bearer(officerToken))
				if resp.StatusCode != c.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q of an error", ct)
				}
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q", cc)
				}
				if msg := errorBody(t, body); !strings.Contains(msg, c.contains) {
					t.Errorf("error %q lacks %q", msg, c.contains)
				}
			})
		}
	}
}

func TestAPIHealthzAndRoutes(t *testing.T) {
	r := &fakeRunner{}
	base := startServer(t, r)
	resp, body := get(t, base+"/healthz", nil)
	if resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	// A token changes nothing: healthz carries no data either way.
	resp, body = get(t, base+"/healthz", bearer(auditorToken))
	if resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthz with token: %d %q", resp.StatusCode, body)
	}
	// Other methods and paths never reach the runner.
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/v1/reports/unauthorized", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/v1/reports/unauthorized", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/reports/", http.StatusNotFound},
		{http.MethodGet, "/v1/reports/unauthorized/extra", http.StatusNotFound},
		{http.MethodGet, "/", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+auditorToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || strings.Contains(string(b), reportMarker) {
			t.Errorf("%s %s: %d %q, want %d", c.method, c.path, resp.StatusCode, b, c.status)
		}
	}
	if n := len(r.requests()); n != 0 {
		t.Fatalf("runner called %d times", n)
	}
}

func TestAPIRunStopsOnCancel(t *testing.T) {
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0", TokensFile: goodTokens(t), Runner: &fakeRunner{}})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr %q, want the bound port", addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	resp, body := get(t, "http://"+addr+"/v1/reports/unauthorized", bearer(auditorToken))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancellation, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	// The listener is closed.
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("server still answers after Run returned")
	}
}

func TestAPINewListenError(t *testing.T) {
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0", TokensFile: goodTokens(t), Runner: &fakeRunner{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The same port again cannot be bound: New says which address.
	_, err = api.New(api.Config{Addr: srv.Addr(), TokensFile: goodTokens(t), Runner: &fakeRunner{}})
	if err == nil || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("New on a bound port: %v", err)
	}
}

func TestAPIDuplicateTokenRefused(t *testing.T) {
	path := writeFile(t, "auditor auditor-1 "+auditorToken+"\ncompliance_officer officer-2 "+auditorToken+"\n")
	_, err := api.ReadTokens(path)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("duplicate token: %v, want an error naming lines 2 and 1", err)
	}
}

func TestAPISchemeCaseAndHead(t *testing.T) {
	runner := &fakeRunner{}
	base := startServer(t, runner)
	resp, body := get(t, base+"/v1/reports/consent", map[string]string{"Authorization": "bearer " + auditorToken})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, reportMarker) {
		t.Fatalf("lower-case scheme: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodHead, base+"/v1/reports/consent", nil)
	req.Header.Set("Authorization", "Bearer "+auditorToken)
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != http.StatusMethodNotAllowed || len(runner.requests()) != 1 {
		t.Fatalf("HEAD: %d, runner called %d times (want 405 and no run)", hr.StatusCode, len(runner.requests()))
	}
}
