package cxone_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/cxone"
)

func TestConfigValidate(t *testing.T) {
	_, err := cxone.New(cxone.Config{})
	if !errors.Is(err, cxone.ErrConfig) {
		t.Fatalf("err %v", err)
	}
	for _, w := range []string{"ClientID: required", "AccessKeyID: required", "ClientSecret: set file or env", "AccessKeySecret: set file or env", "Emit: required"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err %q: want %q", err, w)
		}
	}
	f := newFake(t)
	for _, tc := range []struct {
		name string
		edit func(c *cxone.Config)
		want string
	}{
		{"other API version", func(c *cxone.Config) { c.APIVersion = "v33.0" }, "APIVersion: must be v34.0"},
		{"plain http", func(c *cxone.Config) { c.Issuer = "http://cxone.example.com" }, "Issuer: must use https"},
		{"page size", func(c *cxone.Config) { c.PageSize = 20000 }, "PageSize: must be 1-10000"},
		{"both secret sources", func(c *cxone.Config) { c.ClientSecret.Env = "X" }, "ClientSecret: set either file or env, not both"},
		{"mapping", func(c *cxone.Config) { c.Mapping = &cxone.Mapping{DefaultClassification: "secret"} }, "Mapping: defaultClassification: must be empty or one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := f.config(t, &collector{}, &sleeper{})
			tc.edit(&cfg)
			if _, err := cxone.New(cfg); !errors.Is(err, cxone.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("unreadable secret names the source, not the value", func(t *testing.T) {
		cfg := f.config(t, &collector{}, &sleeper{})
		cfg.AccessKeySecret = cxone.Secret{Env: "NOT_SET_ANYWHERE"}
		if _, err := cxone.New(cfg); !errors.Is(err, cxone.ErrSecret) || !strings.Contains(err.Error(), "env NOT_SET_ANYWHERE is not set") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("secret written as a value is refused", func(t *testing.T) {
		var s cxone.Secret
		err := s.UnmarshalJSON([]byte(`"` + accessSecretVal + `"`))
		if err == nil || strings.Contains(err.Error(), accessSecretVal) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("backfill bounds", func(t *testing.T) {
		a := newAdapter(t, f.config(t, &collector{}, &sleeper{}))
		if _, err := a.Backfill(context.Background(), base, base); !errors.Is(err, cxone.ErrConfig) {
			t.Errorf("empty interval: %v", err)
		}
		if _, err := a.Backfill(context.Background(), base, base.Add(365*24*time.Hour)); !errors.Is(err, cxone.ErrConfig) {
			t.Errorf("future end: %v", err)
		}
	})
}

func TestParseMapping(t *testing.T) {
	m, err := cxone.ParseMapping([]byte(`{
		"customData": {"consent": "hipaa_consent", "prefix": "hipaa_"},
		"defaultEmailTls": "TLSv1.2",
		"channels": {"Voice Mail": "voice", "Work Item": "skip"},
		"skills": {"1234": {"interactionType": "claims_inquiry", "dataClassification": "restricted", "authorized": true}},
		"agents": {"99999": "agent-0001"}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.CustomData.Consent != "hipaa_consent" || m.CustomData.ConsentTime != "hipaa_consent_ts" || m.Channels["Call"] != "voice" ||
		m.Channels["Voice Mail"] != "voice" || m.AgentPrefix != "cx-agent-" || m.DefaultConsentMethod != "ivr_verbal" {
		t.Errorf("defaults not merged: %+v", m)
	}
	for _, tc := range []struct{ name, json, want string }{
		{"unknown key", `{"customdata": {}}`, `unknown object member name "customdata"`},
		{"unknown nested key", `{"customData": {"consentField": "x"}}`, `unknown object member name "consentField" within "/customData"`},
		{"bad enum", `{"defaultConsentMethod": "telepathy"}`, "defaultConsentMethod: must be one of ivr_verbal, ivr_menu, written, email"},
		{"bad channel", `{"channels": {"Fax": "paper"}}`, `channels["Fax"]: must be one of voice, email, chat, message or skip`},
		{"bad skill", `{"skills": {"abc": {"dataClassification": "top_secret"}}}`, `skills["abc"]: the key must be a skillId`},
		{"bad agent id", `{"agents": {"1": "agent 1"}}`, `agents["1"]: the agent id must be 1-128 characters`},
		{"one name for two fields", `{"customData": {"part2": "hipaa_phi_class"}}`, `customData: "hipaa_phi_class" is named for two fields`},
		{"trailing data", `{} {}`, "after top-level value"},
		{"repeated key", `{"agentPrefix": "a-", "agentPrefix": "b-"}`, "duplicate object member name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := cxone.ParseMapping([]byte(tc.json)); !errors.Is(err, cxone.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "mapping.json")
		if err := os.WriteFile(p, []byte(`{"defaultAuthorized": true}`), 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := cxone.LoadMapping(p)
		if err != nil || !m.DefaultAuthorized {
			t.Fatalf("%+v, %v", m, err)
		}
	})
}

// A mapping with the default classification and the default e-mail transport:
// interactions no custom data classifies are classified all the same.
func TestMappingDefaults(t *testing.T) {
	f := newFake(t)
	f.contacts[2].custom = nil // the e-mail has no custom data at all
	c := &collector{}
	cfg := f.config(t, c, &sleeper{})
	m := testMapping()
	m.DefaultClassification, m.DefaultEmailTLS, m.DefaultAuthorized = "protected_health_information", "TLSv1.2", true
	cfg.Mapping = m
	st, err := newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Unclassified != 0 {
		t.Errorf("unclassified %d", st.Unclassified)
	}
	got := render(c.all(), "cx-100003")
	for _, w := range []string{`"tls":"TLSv1.2"`, `interaction.classified {"interactionType":"other","dataClassification":"protected_health_information"}`,
		`agent.assigned {"agentId":"cx-agent-66666","authorized":true`} {
		if !strings.Contains(got, w) {
			t.Errorf("events:\n%s\nwant %s", got, w)
		}
	}
	checkContract(t, c.all())

	t.Run("unclassified counted", func(t *testing.T) {
		f := newFake(t)
		c := &collector{}
		cfg := f.config(t, c, &sleeper{})
		cfg.Mapping = &cxone.Mapping{Channels: map[string]string{"Work Item": "skip"}, DefaultEmailTLS: "none"}
		st, err := newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// Classified by custom data only: 100002, 100003, 200002.
		if st.Unclassified != 5 || countTypes(c.all())[domain.InteractionClassifiedType] != 3 {
			t.Errorf("%+v", st)
		}
	})
}

func TestFileWatermark(t *testing.T) {
	p := filepath.Join(t.TempDir(), "wm.json")
	w := cxone.NewFileWatermark(p)
	ctx := context.Background()
	if pos, err := w.Load(ctx); err != nil || pos != (cxone.Position{}) {
		t.Fatalf("missing file: %+v, %v", pos, err)
	}
	want := cxone.Position{Window: base, WindowEnd: base.Add(time.Hour), Skip: 200, Total: 512, UpdatedSince: base.Add(-time.Hour)}
	if err := w.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got, err := cxone.NewFileWatermark(p).Load(ctx); err != nil || got != want {
		t.Fatalf("%+v, %v", got, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("%d files left in the directory", len(entries))
	}
	if err := os.WriteFile(p, []byte(`{"window":"2026-05-01T00:00:00Z","cursor":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Load(ctx); err == nil || !strings.Contains(err.Error(), `unknown object member name "cursor"`) {
		t.Errorf("err %v", err)
	}
}
