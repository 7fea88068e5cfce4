package siem_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/integration/siem"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadConfigExample(t *testing.T) {
	c, err := siem.LoadConfig(filepath.Join("testdata", "siem.example.json"), envOf(map[string]string{"SIEM_TLS_DIR": "/etc/custody/tls"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sinks) != 4 || *c.MaxRetries != 3 || time.Duration(c.RetryInterval) != time.Second || time.Duration(c.RedeliveryDelay) != time.Minute {
		t.Fatalf("config %+v", c)
	}
	if got := c.Sinks[0].TLS.CertFile; got != "/etc/custody/tls/custody.pem" {
		t.Fatalf("certFile = %q, ${SIEM_TLS_DIR} not expanded", got)
	}
	if c.Sinks[1].Token != (siem.Secret{Env: "SPLUNK_HEC_TOKEN"}) || time.Duration(c.Sinks[1].Timeout) != 5*time.Second {
		t.Fatalf("hec sink %+v", c.Sinks[1])
	}
	if !c.Sinks[0].Checkpoints || c.Sinks[1].Checkpoints {
		t.Fatalf("checkpoints: grc %v, splunk %v; want true, false", c.Sinks[0].Checkpoints, c.Sinks[1].Checkpoints)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string
	}{
		{"no sinks", `{"sinks": []}`, []string{"at least one sink"}},
		{"unknown key", `{"sinks": [{"name": "a", "kind": "webhook", "tls": {}, "secret": "x"}]}`, []string{`unknown field "secret"`}},
		{"a secret written as a value is refused", `{"sinks": [{"name": "a", "kind": "webhook", "tls": {}, "signingKey": "s3cr3t"}]}`, []string{"never the value itself"}},
		{"unknown kind", `{"sinks": [{"name": "a", "kind": "kafka", "tls": {}}]}`, []string{`kind "kafka"`}},
		{"keys of another kind", `{"sinks": [{"name": "a", "kind": "webhook", "tls": {}, "address": "h:1"}, {"name": "b", "kind": "cef-syslog", "tls": {}, "url": "https://x/"}]}`,
			[]string{"apply to cef-syslog only", "do not apply to cef-syslog"}},
		{"unset variable", `{"sinks": [{"name": "a", "kind": "webhook", "url": "https://${HOST}/", "tls": {}}]}`, []string{"HOST is not set"}},
		{"bad duration", `{"retryInterval": "soon", "sinks": [{"name": "a", "kind": "webhook", "tls": {}}]}`, []string{"duration"}},
		{"trailing data", `{"sinks": [{"name": "a", "kind": "webhook", "tls": {}}]} {}`, []string{"trailing data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := siem.ParseConfig([]byte(tt.json), envOf(nil))
			if !errors.Is(err, siem.ErrConfig) {
				t.Fatalf("ParseConfig = %v, want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q shows the secret value", err)
			}
		})
	}
}

// The configuration builds real sinks; a secret read from a file or the environment
// never shows in an error.
func TestRouterConfigBuildsSinks(t *testing.T) {
	p := newPKI(t, "config-build")
	dir := t.TempDir()
	key := filepath.Join(dir, "hmac")
	if err := os.WriteFile(key, []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CA": p.caFile, "CERT": p.certFile, "KEY": p.keyFile, "KEYFILE": key, "TOKEN": "tok-PLANTED"}
	js := `{"maxRetries": 0, "sinks": [
	  {"name": "grc", "kind": "webhook", "url": "https://127.0.0.1:1/", "tls": {"caFile": "${CA}", "certFile": "${CERT}", "keyFile": "${KEY}"}, "signingKey": {"file": "` + key + `"}},
	  {"name": "splunk", "kind": "hec", "url": "https://127.0.0.1:1/", "tls": {"certFile": "${CERT}", "keyFile": "${KEY}"}, "token": {"env": "TOKEN"}},
	  {"name": "lake", "kind": "ocsf", "url": "https://127.0.0.1:1/", "tls": {"certFile": "${CERT}", "keyFile": "${KEY}"}, "events": true},
	  {"name": "arcsight", "kind": "cef-syslog", "address": "127.0.0.1:1", "tls": {"certFile": "${CERT}", "keyFile": "${KEY}"}, "checkpoints": true}]}`
	c, err := siem.ParseConfig([]byte(js), envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.RouterConfig(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	defer siem.CloseRoutes(cfg.Routes)
	if len(cfg.Routes) != 4 || !cfg.Routes[2].Events || cfg.Routes[2].Checkpoints || !cfg.Routes[3].Checkpoints || cfg.Routes[3].Events || cfg.MaxRetries != -1 {
		t.Fatalf("routes %+v, MaxRetries %d", cfg.Routes, cfg.MaxRetries)
	}

	delete(env, "TOKEN")
	_, err = c.RouterConfig(nil, envOf(env))
	if !errors.Is(err, siem.ErrSecret) || !strings.Contains(err.Error(), "env TOKEN is not set") {
		t.Fatalf("missing token: %v", err)
	}
	env["TOKEN"] = "tok-PLANTED"
	if err := os.WriteFile(key, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = c.RouterConfig(nil, envOf(env))
	if !errors.Is(err, siem.ErrSecret) || !strings.Contains(err.Error(), "is empty") || strings.Contains(err.Error(), "tok-PLANTED") {
		t.Fatalf("empty key file: %v", err)
	}
}
